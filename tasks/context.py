"""What one host should run and what it runs now: computed once per host, shared by tasks.

The layout is read from `BOTPOOL_LAYOUT`, else the inventory's `botpool_layout` host data,
else inventory/layout.yaml. A pyinfra host maps to the layout host named by its
`botpool_host` data (default: the inventory name).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache

from pyinfra import inventory
from pyinfra.api.host import Host

from botpool.allocate import Allocation
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


def layout_host(host: Host) -> str:
    """The name of an inventory host in the layout's `hosts:`."""
    return str(host.data.get("botpool_host") or host.name)


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
        name = layout_host(host)
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


@dataclass(frozen=True)
class Move:
    """A pool whose data must go from one inventory host to another in this run."""

    pool: str
    source: Host
    target: Host

    def __str__(self) -> str:
        return f"{self.pool} ({layout_host(self.source)} -> {layout_host(self.target)})"


_moves: list[Move] | None = None
CARRIED: set[str] = set()  # pools whose data reached their new host in this run


def moves() -> list[Move]:
    """Every pool move this run carries out; the same list for every host of the run.

    A pool moves when the lock says it came from another host (`moved_from`), its new host
    is in this run and has none of its data yet, and its old host has the data. Its old
    host must then be in the run too: a move that cannot carry the data stops the deploy.
    """
    global _moves
    if _moves is None:
        hosts: dict[str, Host] = {}
        for h in sorted(inventory.get_active_hosts(), key=lambda h: h.name):
            hosts.setdefault(layout_host(h), h)
        found = []
        for h in list(hosts.values()):
            target = for_host(h)
            for pool in target.host.pools:
                origin = pool.block.moved_from
                data = f"pools/{pool.name}"
                if not origin or data in target.snapshot.directories:
                    continue
                source = hosts.get(origin)
                if source is None:
                    raise ValueError(
                        f"pool {pool.name} moves from host {origin} to {pool.host}, but "
                        f"{origin} is not in this run: include it (its trade data moves with "
                        f"the pool), or, if {origin} and its data are gone for good, delete "
                        f"`moved_from: {origin}` from {target.plan.layout.file}'s lock file"
                    )
                if data in for_host(source).snapshot.directories:
                    found.append(Move(pool.name, source, h))
        _moves = found
    return _moves


def applied_allocation(plan: Plan) -> Allocation:
    """The allocation to record: moves into hosts that are still in the run (not failed) are
    done. Call it when the run ends, so that a failed host keeps its pending moves."""
    arrived = {layout_host(h) for h in inventory.get_active_hosts()}
    pools = {
        name: replace(block, moved_from=None) if block.host in arrived else block
        for name, block in plan.allocation.pools.items()
    }
    return replace(plan.allocation, pools=pools)
