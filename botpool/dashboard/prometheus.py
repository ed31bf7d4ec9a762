"""What the dashboard asks each host's Prometheus, and the answers made into plain series.

A refresh asks a FIXED list of queries per host (QUERIES), each covering every pool or bot of
the host at once, so its cost does not grow with the number of bots. The answers are
Prometheus' own JSON (`/api/v1/query`: a vector; `/api/v1/query_range`: a matrix); a query
that failed, or a metric no exporter provides yet, gives no series: the pages say "no data".
Pure: the remote command lives in botpool.dashboard.collect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# window -> (seconds shown, step between points): about 100 points, whatever the window
WINDOWS = {"1h": (3600, 30), "1d": (86400, 900), "1w": (604800, 7200)}
DEFAULT_WINDOW = "1h"

# instant queries: the state now
INSTANT = {
    "alerts": 'ALERTS{alertstate="firing"}',
    "host_memory_total": "node_memory_MemTotal_bytes",
    "host_memory_available": "node_memory_MemAvailable_bytes",
    "host_cpu_busy": 'sum(1 - rate(node_cpu_seconds_total{mode="idle"}[1m]))'
    ' / count(node_cpu_seconds_total{mode="idle"})',
    "bots": '{__name__=~"botpool_bot_.+"}',
    "restarts_1h": "increase(botpool_bot_starts_total[1h])",
}
# range queries ({rate} is the rate window for the step): history over the window
RANGE = {
    "pool_share": "botpool_pool_memory_bytes / (botpool_pool_memory_limit_bytes > 0)",
    "pool_memory": "botpool_pool_memory_bytes",
    "pool_limit": "botpool_pool_memory_limit_bytes",
    "pool_cpu": "rate(botpool_pool_cpu_seconds_total[{rate}])",
    "bot_pss": "botpool_bot_pss_bytes",
    "bot_profit": "botpool_bot_profit_closed_coin",
    "bot_wallet": "botpool_bot_wallet_coin",
    "bot_trades_open": "botpool_bot_trades_open",
    "bot_trades_closed": "botpool_bot_trades_closed",
}


def queries(window: str, now: float) -> list[dict[str, Any]]:
    """Every query of one refresh, for the payload botpool/payloads/promquery.py."""
    seconds, step = WINDOWS[window]
    end = math.floor(now / step) * step  # aligned: the same cells from refresh to refresh
    rate = f"{max(step * 2, 60)}s"
    out: list[dict[str, Any]] = [{"id": key, "expr": expr} for key, expr in INSTANT.items()]
    start = end - seconds
    out += [
        {"id": key, "expr": expr.format(rate=rate), "start": start, "end": end, "step": step}
        for key, expr in RANGE.items()
    ]
    return out


@dataclass(frozen=True)
class Sample:
    """One series of an instant query: its labels and value."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its points (unix seconds, value)."""

    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]


def _number(text: Any) -> float | None:
    """A Prometheus sample value (a string: "1.5", "NaN", "+Inf"); None if not finite."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _result(answer: Any, kind: str) -> list[dict[str, Any]]:
    """The result list of a successful answer of that kind; [] for anything else."""
    if not isinstance(answer, dict) or answer.get("status") != "success":
        return []
    data = answer.get("data")
    if not isinstance(data, dict) or data.get("resultType") != kind:
        return []
    result = data.get("result")
    return [r for r in result if isinstance(r, dict)] if isinstance(result, list) else []


def _labels(item: dict[str, Any]) -> dict[str, str]:
    metric = item.get("metric")
    return {str(k): str(v) for k, v in metric.items()} if isinstance(metric, dict) else {}


def vector(answer: Any) -> list[Sample]:
    """An instant query's answer as samples (non-finite values left out)."""
    out = []
    for item in _result(answer, "vector"):
        pair = item.get("value")
        value = _number(pair[1]) if isinstance(pair, list) and len(pair) == 2 else None
        if value is not None:
            out.append(Sample(_labels(item), value))
    return out


def matrix(answer: Any) -> list[Series]:
    """A range query's answer as series (non-finite points left out)."""
    out = []
    for item in _result(answer, "matrix"):
        values = item.get("values")
        points = []
        for pair in values if isinstance(values, list) else []:
            if isinstance(pair, list) and len(pair) == 2:
                stamp, value = _number(pair[0]), _number(pair[1])
                if stamp is not None and value is not None:
                    points.append((stamp, value))
        out.append(Series(_labels(item), tuple(points)))
    return out


def error_of(answers: dict[str, Any]) -> str | None:
    """Why Prometheus could not be asked at all (every query failed alike), else None."""
    errors = {
        str(a.get("error"))
        for a in answers.values()
        if isinstance(a, dict) and a.get("status") == "error"
    }
    return errors.pop() if answers and len(errors) == 1 and _all_failed(answers) else None


def _all_failed(answers: dict[str, Any]) -> bool:
    return all(isinstance(a, dict) and a.get("status") == "error" for a in answers.values())
