"""Drift: how each host differs from the plan, read from the host itself (never a state file).

The comparison is the one converge makes (botpool.core.pipeline), so "no drift" means exactly
"a converge would change nothing". Changed files are explained key by key (JSON keys,
supervisor settings); values are never shown, since configs hold secrets.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from botpool.core import snapshot
from botpool.core.pipeline import Artifact, Desired, Difference, HostChanges, HostRef, desired
from botpool.core.plan import Plan
from botpool.core.source import LayoutError
from botpool.hosts.remote import RemoteError, RemoteHost

FILE_MARK = "@@botpool-file "


@dataclass
class HostDrift:
    host: str
    differences: list[Difference] = field(default_factory=list)
    error: str | None = None
    commands: int = 0

    @property
    def findings(self) -> list[Difference]:
        return self.differences

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
    desired: Desired
    snapshot: snapshot.Snapshot
    changes: HostChanges

    @property
    def plan(self) -> Plan:
        return self.desired.plan


def read_host(remote: RemoteHost) -> HostState:
    """Plan, render and snapshot one host (one command on the host)."""
    want = desired(HostRef(remote.layout, remote.layout_host))
    snap = snapshot.parse(remote.run(want.snapshot_command(), "the host snapshot"))
    return HostState(remote, want, snap, want.compare(snap))


def host_drift(remote: RemoteHost) -> HostDrift:
    try:
        state = read_host(remote)
        differences = explain(state)
    except RemoteError as exc:
        return HostDrift(remote.name, error=str(exc), commands=remote.commands)
    except LayoutError as exc:
        return HostDrift(remote.name, error=f"{remote.name}: {exc}", commands=remote.commands)
    return HostDrift(remote.name, differences, commands=remote.commands)


def explain(state: HostState) -> list[Difference]:
    """Name the keys behind every "content differs" (one more command, only if needed)."""
    wanted: dict[str, Artifact] = {}
    for unit in state.changes.pools + state.changes.exchanges + state.changes.jobs:
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
        # a newline first: a file that does not end in one must not swallow the next mark
        f"echo; echo {shlex.quote(FILE_MARK + p)}; cat {shlex.quote(root + '/' + p)}"
        for p in paths
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
    """Dotted keys whose values differ, for JSON and for supervisor/ini files; none for
    anything else (code: a strategy or a payload is not made of keys)."""
    if want.path.endswith(".json"):
        try:
            return _json_diff(json.loads(want.text), json.loads(have), "")
        except ValueError:
            return ["(not valid JSON)"]
    if not want.path.endswith((".conf", ".ini")):
        return []
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
