"""What one host should run and what it runs now: computed once per host, shared by tasks.

The layout is read from `BOTPOOL_LAYOUT`, else the inventory's `botpool_layout` host data,
else inventory/layout.yaml. A pyinfra host maps to the layout host named by its
`botpool_host` data (default: the inventory name).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from pyinfra.api.host import Host

from botpool.image import ImageSpec, pool_images
from botpool.plan import HostPlan, Plan, load_plan
from botpool.reconcile import HostChanges, reconcile
from botpool.render import RenderedExchange, RenderedPool, render_host
from botpool.secrets import SecretStore
from botpool.snapshot import Snapshot
from botpool.source import LayoutError
from tasks.facts import BotpoolSnapshot

STAMP = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")  # one archive folder per converge


@dataclass(frozen=True)
class HostContext:
    plan: Plan
    host: HostPlan
    images: dict[str, ImageSpec]  # freqtrade version -> pool image
    pools: list[RenderedPool]
    exchanges: list[RenderedExchange]
    snapshot: Snapshot
    changes: HostChanges

    @property
    def root(self) -> str:
        return self.plan.layout.root


def layout_path(host: Host) -> str:
    return (
        os.environ.get("BOTPOOL_LAYOUT")
        or host.data.get("botpool_layout")
        or "inventory/layout.yaml"
    )


@cache
def _plan(path: str) -> Plan:
    try:
        return load_plan(path, SecretStore.from_env().credentials_exist)
    except LayoutError as exc:  # the problems, plainly, and nothing is applied
        print("\n".join(str(p) for p in exc.problems), file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in the layout; nothing was changed", file=sys.stderr)
        raise SystemExit(1) from None


_contexts: dict[str, HostContext] = {}


def for_host(host: Host) -> HostContext:
    """Plan, render and snapshot this host once per run; every task reads the result."""
    if host.name not in _contexts:
        plan = _plan(layout_path(host))
        name = host.data.get("botpool_host") or host.name
        if name not in plan.hosts:
            # never treat "not in the layout" as "should run nothing": that would wipe a host
            raise ValueError(
                f"inventory host {host.name} maps to layout host {name!r}, which "
                f"{plan.layout.file} does not declare (hosts: "
                f"{', '.join(plan.hosts)}); set its botpool_host data"
            )
        host_plan = plan.hosts[name]
        images = pool_images(plan.layout)
        tags = {version: spec.tag for version, spec in images.items()}
        pools, exchanges = render_host(plan, host_plan, tags, SecretStore.from_env())
        snap = host.get_fact(BotpoolSnapshot, root=plan.layout.root)
        _contexts[host.name] = HostContext(
            plan, host_plan, images, pools, exchanges, snap, reconcile(snap, pools, exchanges)
        )
    return _contexts[host.name]
