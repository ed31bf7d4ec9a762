"""Ask a host's own Prometheus: every query at once, in ONE remote command.

Prometheus listens on the host's 127.0.0.1 only, so the queries run inside the monitoring
container (botpool/payloads/promquery.py, `docker exec ... python3 -I -c`): no port leaves the
host, and the cost is one command per host whatever the number of bots or queries. The
dashboard (botpool.dashboard.collect), `botpool plan --measured` (botpool.hosts.capacity) and
bench/monitoring.py ask through here.
"""

from __future__ import annotations

import json
import shlex
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
