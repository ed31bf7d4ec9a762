"""Ask a host's own Prometheus: every query at once, in ONE remote command.

Prometheus listens on the host's 127.0.0.1 only, so the queries run inside the monitoring
container (botpool/payloads/promquery.py, `docker exec ... python3 -I -c`): no port leaves the
host, and the cost is one command per host whatever the number of bots or queries. The
dashboard (botpool.dashboard.collect), `botpool plan --measured` (botpool.hosts.capacity) and
bench/monitoring.py ask through here, and read the answers with vector() and matrix().
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from importlib import resources
from typing import Any

from botpool.core import monitoring
from botpool.core.layout import Layout
from botpool.core.snapshot import MARK
from botpool.hosts.remote import RemoteError, RemoteHost

PROMQUERY = (resources.files("botpool.payloads") / "promquery.py").read_text()
SECTION = "prometheus"
TIMEOUT_S = 60  # every query of one command, on the host
ERROR_CHARS = 300  # of what a failing `docker exec` said


def ask_command(layout: Layout, asked: list[dict[str, Any]]) -> str:
    """Shell printing a section mark, then the host's Prometheus' JSON answers to `asked`
    (the queries of botpool/payloads/promquery.py); read them back with split()."""
    url = f"http://127.0.0.1:{layout.monitoring.ports['prometheus']}"
    queries = json.dumps(asked, separators=(",", ":"))
    container = monitoring.container_name(layout.project)
    return "\n".join(
        [
            f"echo '{MARK}{SECTION}'",
            f"timeout {TIMEOUT_S} docker exec {shlex.quote(container)} python3 -I -c "
            f"{shlex.quote(PROMQUERY)} {shlex.quote(url)} {shlex.quote(queries)} 2>&1 "
            "|| echo 'the monitoring container did not answer'",
        ]
    )


def split(lines: list[str]) -> tuple[list[str], dict[str, Any], str | None]:
    """The lines of the rest of the command, and the Prometheus answers (or why none)."""
    rest: list[str] = []
    mine: list[str] = []
    inside = False
    for line in lines:
        if line.startswith(MARK):
            inside = line[len(MARK) :] == SECTION
            if inside:
                continue
        (mine if inside else rest).append(line)
    if not mine:
        return rest, {}, None
    try:
        answers = json.loads(mine[-1])
        if not isinstance(answers, dict):
            raise ValueError("not an object")
    except ValueError:
        return rest, {}, " ".join(mine)[-ERROR_CHARS:] or "no answer"
    return rest, answers, None


def ask(remote: RemoteHost, layout: Layout, asked: list[dict[str, Any]]) -> dict[str, Any]:
    """The answers of one host's Prometheus alone; RemoteError if it did not answer."""
    _, answers, error = split(remote.run(ask_command(layout, asked), "asking Prometheus"))
    if error:
        raise RemoteError(f"{remote.name}: its Prometheus did not answer: {error}")
    return answers


# --- reading the answers: Prometheus' own JSON, made into plain samples and series ------


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
