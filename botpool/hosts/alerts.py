"""`botpool alerts INVENTORY`: what is firing on every host, asked of each host's own
Alertmanager (through SSH, like the checks and drift; nothing listens beyond 127.0.0.1).

One command per host: `amtool alert query` inside its monitoring container, whose output
(Alertmanager's API v2 JSON: active alerts, silenced and inhibited ones left out) is read
here. The alerts' texts come from botpool's own rules, their labels from the layout's names.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from botpool.core.monitoring import container_name
from botpool.core.pipeline import plan_of
from botpool.core.source import LayoutError
from botpool.hosts.remote import RemoteError, RemoteHost

FIELDS = ("alertname", "severity", "pool", "user", "bot")
ALWAYS_FIRING = "Watchdog"  # the dead man's switch fires all the time: not a problem


@dataclass(frozen=True)
class Alert:
    alertname: str
    severity: str
    pool: str
    user: str
    bot: str
    summary: str
    since: str  # when it started firing (UTC, RFC 3339)


@dataclass
class HostAlerts:
    host: str
    alerts: list[Alert] = field(default_factory=list)
    error: str | None = None

    @property
    def findings(self) -> list[Alert]:
        return self.alerts

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "alerts": [asdict(a) for a in self.alerts],
            "error": self.error,
        }


def parse(text: str) -> list[Alert]:
    """amtool's JSON list of alerts, the Watchdog left out; ValueError if it is not that."""
    data = json.loads(text or "[]")
    if not isinstance(data, list):
        raise ValueError("not a list of alerts")
    alerts = []
    for item in data:
        labels = item.get("labels") or {}
        annotations = item.get("annotations") or {}
        named = {name: str(labels.get(name, "")) for name in FIELDS}
        if named["alertname"] == ALWAYS_FIRING:
            continue
        summary = str(annotations.get("summary", ""))
        alerts.append(Alert(**named, summary=summary, since=str(item.get("startsAt", ""))))
    return sorted(alerts, key=lambda a: (a.alertname, a.pool, a.user, a.bot))


def host_alerts(remote: RemoteHost) -> HostAlerts:
    """The alerts firing on one host, or why they could not be read."""
    try:
        layout = plan_of(remote.layout).layout
        settings = layout.monitoring
        if not settings.enabled:
            return HostAlerts(remote.name, error=f"{remote.name}: monitoring is off in the layout")
        url = f"http://127.0.0.1:{settings.ports['alertmanager']}"
        command = (
            f"docker exec {shlex.quote(container_name(layout.project))} amtool alert query "
            f"--output=json --alertmanager.url={url}"
        )
        lines = remote.run(command, "reading its alerts")
        return HostAlerts(remote.name, parse("\n".join(lines)))
    except LayoutError as exc:
        return HostAlerts(remote.name, error=f"{remote.name}: {exc.problems[0]}")
    except RemoteError as exc:
        return HostAlerts(remote.name, error=str(exc))
    except ValueError as exc:
        return HostAlerts(remote.name, error=f"{remote.name}: unreadable answer of amtool: {exc}")
