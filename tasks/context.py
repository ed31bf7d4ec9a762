"""What one host should run and what it runs now: computed once per host, shared by tasks.

The desired state comes from botpool.core.pipeline (the same one drift and checks use): the
layout of `BOTPOOL_LAYOUT`, else the inventory's `botpool_layout` host data, else
inventory/layout.yaml, and the layout host named by `botpool_host` (default: the
inventory name). The snapshot is one pyinfra fact (one command on the host).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache

from gevent.lock import RLock
from pyinfra import inventory
from pyinfra.api.host import Host

from botpool.core import freqtrade_validation
from botpool.core.allocate import Allocation
from botpool.core.image import DockerState, ImageSpec
from botpool.core.pipeline import Desired, HostChanges, HostRef, desired, host_ref, plan_of
from botpool.core.plan import HostPlan, Plan
from botpool.core.snapshot import Snapshot
from botpool.core.source import LayoutError
from tasks.facts import BotpoolSnapshot, DockerStateFact

STAMP = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")  # one archive folder per converge


@dataclass(frozen=True)
class HostContext:
    desired: Desired
    snapshot: Snapshot
    changes: HostChanges

    @property
    def plan(self) -> Plan:
        return self.desired.plan

    @property
    def host(self) -> HostPlan:
        return self.desired.host

    @property
    def images(self) -> dict[str, ImageSpec]:
        return self.desired.images

    @property
    def root(self) -> str:
        return self.desired.root


def ref(host: Host) -> HostRef:
    return host_ref(host.name, host.data.dict())


def layout_path(host: Host) -> str:
    return ref(host).layout


def layout_host(host: Host) -> str:
    """The name of an inventory host in the layout's `hosts:`."""
    return ref(host).host


def _fail(exc: LayoutError) -> SystemExit:
    """The problems, plainly, and nothing is applied."""
    print("\n".join(str(p) for p in exc.problems), file=sys.stderr)
    print(f"{len(exc.problems)} problem(s) in the layout; nothing was changed", file=sys.stderr)
    return SystemExit(1)


@cache
def _judged(layout: str) -> tuple[Plan, bool]:
    """The plan, once freqtrade itself accepted every bot's config (nothing applied if not),
    and whether the controller's freqtrade judged them all (if not, each host does:
    tasks/freqtrade_check.py)."""
    plan = plan_of(layout)
    judged = freqtrade_validation.judge(plan)
    if judged.problems:
        raise LayoutError(judged.problems)
    return plan, judged.here


def _converge_plan(layout: str) -> Plan:
    return _judged(layout)[0]


def judged_here(host: Host) -> bool:
    """Did the controller's freqtrade judge every config of this host's layout (so no host
    check is needed)?"""
    plan(host)  # judged with the plan (every problem, plainly, if it has any)
    return _judged(layout_path(host))[1]


def plan(host: Host) -> Plan:
    """The plan this host's converge follows (every problem, plainly, if it has any)."""
    try:
        return _converge_plan(layout_path(host))
    except LayoutError as exc:
        raise _fail(exc) from None


_contexts: dict[str, HostContext] = {}


# pyinfra loads every host's deploy at once, each in a greenlet, and a task may read another
# host (moves): one lock per host, so that its snapshot is read once however many ask
_locks: defaultdict[str, RLock] = defaultdict(RLock)


def for_host(host: Host) -> HostContext:
    """Plan, render and snapshot this host once per run; every task reads the result."""
    with _locks[host.name]:
        return _context(host)


def _context(host: Host) -> HostContext:
    if host.name not in _contexts:
        try:
            want = desired(ref(host), _converge_plan(layout_path(host)))
        except LayoutError as exc:
            raise _fail(exc) from None
        snap = host.get_fact(BotpoolSnapshot, root=want.root)
        _contexts[host.name] = HostContext(want, snap, want.compare(snap))
    return _contexts[host.name]


_docker: dict[str, DockerState] = {}


def docker_state(host: Host) -> DockerState:
    """What Docker on this host has, read once per run: the engine and image tasks decide from
    the same answer.

    In a layout deploy (no `botpool_image` host data) it is the host snapshot, read anyway,
    so no extra command (which does not say whether a silent engine is installed: None, "not
    known", and apt finds out). A deploy that names its images in `botpool_image` (or sets it
    to [] to get the engine alone) reads DockerStateFact, one command.
    """
    if host.name not in _docker:
        if host.data.get("botpool_image") is None:
            snap = for_host(host).snapshot
            _docker[host.name] = DockerState(
                installed=True if snap.engine else None,
                engine=snap.engine,
                images=frozenset(snap.images),
            )
        else:
            _docker[host.name] = host.get_fact(DockerStateFact)
    return _docker[host.name]


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
                        f"the pool), or, if {origin} and its data are gone for good, run "
                        f"`botpool plan {target.plan.layout.file} --lost-host {origin}` and "
                        "restore its bots from pulled backups"
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
