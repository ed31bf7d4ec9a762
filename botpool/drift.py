"""Drift: how each host differs from the plan, read from the host itself (never a state file).

The comparison is the one converge makes (botpool.reconcile), so "no drift" means exactly
"a converge would change nothing". Changed files are explained key by key (JSON keys,
supervisor settings); values are never shown, since configs hold secrets.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from botpool import snapshot
from botpool.image import pool_images
from botpool.plan import Plan, load_plan
from botpool.reconcile import Difference, HostChanges, reconcile
from botpool.remote import RemoteError, RemoteHost
from botpool.render import Artifact, RenderedExchange, RenderedPool, render_host
from botpool.secrets import SecretStore
from botpool.source import LayoutError

FILE_MARK = "@@botpool-file "


@dataclass
class HostDrift:
    host: str
    differences: list[Difference] = field(default_factory=list)
    error: str | None = None
    commands: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "error": self.error,
            "commands": self.commands,
            "differences": [asdict(d) for d in self.differences],
        }


@dataclass
class HostState:
    """A host as planned, rendered and seen: what drift and the checks both need."""

    remote: RemoteHost
    plan: Plan
    pools: list[RenderedPool]
    exchanges: list[RenderedExchange]
    snapshot: snapshot.Snapshot
    changes: HostChanges


@cache
def _plan(layout: str) -> Plan:
    return load_plan(layout, SecretStore.from_env().credentials_exist)


def read_host(remote: RemoteHost) -> HostState:
    """Plan, render and snapshot one host (one command on the host)."""
    plan = _plan(remote.layout)
    if remote.layout_host not in plan.hosts:
        raise RemoteError(
            f"{remote.name}: layout {remote.layout} declares no host "
            f"{remote.layout_host!r}; set the inventory's botpool_host"
        )
    images = {v: s.tag for v, s in pool_images(plan.layout).items()}
    pools, exchanges = render_host(
        plan, plan.hosts[remote.layout_host], images, SecretStore.from_env()
    )
    snap = snapshot.parse(remote.run(snapshot.command(plan.layout.root), "the host snapshot"))
    return HostState(remote, plan, pools, exchanges, snap, reconcile(snap, pools, exchanges))


def host_drift(remote: RemoteHost) -> HostDrift:
    try:
        state = read_host(remote)
        differences = explain(state)
    except (RemoteError, LayoutError) as exc:
        return HostDrift(remote.name, error=str(exc), commands=remote.commands)
    return HostDrift(remote.name, differences, commands=remote.commands)


def explain(state: HostState) -> list[Difference]:
    """Name the keys behind every "content differs" (one more command, only if needed)."""
    wanted: dict[str, Artifact] = {}
    for unit in state.changes.pools + state.changes.exchanges:
        for upload in unit.uploads:
            wanted[upload.dest] = upload.artifact
    changed = [
        d
        for d in state.changes.differences
        if d.kind == "changed"
        and d.detail.startswith("content")
        and d.subject.removeprefix("file ") in wanted
    ]
    if not changed:
        return state.changes.differences
    root = state.plan.layout.root
    paths = [d.subject.removeprefix("file ") for d in changed]
    script = "; ".join(
        f"echo {shlex.quote(FILE_MARK + p)}; cat {shlex.quote(root + '/' + p)}" for p in paths
    )
    current: dict[str, list[str]] = {}
    name = ""
    for line in state.remote.run(script, "reading the changed files"):
        if line.startswith(FILE_MARK):
            name = line[len(FILE_MARK) :]
            current[name] = []
        elif name:
            current[name].append(line)
    explained = []
    for d in state.changes.differences:
        path = d.subject.removeprefix("file ")
        if d in changed and path in current:
            keys = differing_keys(wanted[path], "\n".join(current[path]))
            detail = f"{', '.join(keys)} differ" if keys else "content differs"
            d = Difference(d.subject, d.kind, detail + " (values not shown)")
        explained.append(d)
    return explained


def differing_keys(want: Artifact, have: str) -> list[str]:
    """Dotted keys whose values differ, for JSON and for supervisor/ini files."""
    if want.path.endswith(".json"):
        try:
            return _json_diff(json.loads(want.text), json.loads(have), "")
        except ValueError:
            return ["(not valid JSON)"]
    return sorted(
        k
        for k in _ini(want.text).keys() | _ini(have).keys()
        if _ini(want.text).get(k) != _ini(have).get(k)
    )


def _json_diff(a: Any, b: Any, prefix: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(a.keys() | b.keys()):
            out += _json_diff(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _ini(text: str) -> dict[str, str]:
    section, out = "", {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line and not line.startswith(";"):
            key, _, value = line.partition("=")
            out[f"{section}.{key.strip()}"] = value.strip()
    return out
