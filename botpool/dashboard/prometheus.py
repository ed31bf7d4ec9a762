"""What the dashboard asks each host's Prometheus, and the answers made into plain series.

A refresh asks a FIXED list of queries per host (QUERIES), each covering every pool or bot of
the host at once, so its cost does not grow with the number of bots. The answers are
Prometheus' own JSON (`/api/v1/query`: a vector; `/api/v1/query_range`: a matrix); a query
that failed, or a metric no exporter provides yet, gives no series: the pages say "no data".
Pure: the remote command lives in botpool.dashboard.collect.
"""

from __future__ import annotations

import math
from typing import Any

# how an answer is read is the same for every asker (botpool.hosts.prometheus)
from botpool.hosts.prometheus import Sample as Sample
from botpool.hosts.prometheus import Series as Series
from botpool.hosts.prometheus import matrix as matrix
from botpool.hosts.prometheus import vector as vector

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
