"""Capacity planned from measurements: `botpool plan LAYOUT --measured INVENTORY`.

The plan places pools with planned figures (botpool.core.runtimes), but bots grow for hours
(the README's soak), so a host can fill up while its plan says it fits. Here each host is
projected with what its pools really used: the peak of each pool container's memory over a
window, as the host's own Prometheus recorded it (botpool's exporter: the cgroup figure that
the pool's limit and the kernel's OOM killer count), plus the planned figure of each bot of
the pool that has not run yet; a pool never measured, and the exchanges and the monitoring
container, count with their planned figures. A host above a share of its usable memory
(THRESHOLD) is flagged, and the fewest pool moves that bring every host under it are
searched: each move is a layout edit (`users.<user>.pools: {<pool>: <host>}`), and every
proposal is planned (make_plan, the converge's own rules: rate limits, port blocks, the
planned capacity) before it is shown, so the converge accepts what is proposed. The tool
proposes; the user edits the layout, commits, and converges.

Pure: reading the hosts' Prometheus is botpool.hosts.capacity.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from botpool.core.layout import Layout
from botpool.core.plan import EXCHANGE_MB, HostPlan, Plan, PoolPlan, make_plan

THRESHOLD = 0.8  # of a host's usable memory (memory_mb - reserved_mb)
WINDOW_RE = re.compile(r"[1-9][0-9]{0,3}[hdw]")  # a Prometheus range: 1h .. 9999w
DEFAULT_WINDOW = "1d"  # the peak over the last day
MAX_MOVES = 4  # pools moved at once: beyond that, the layout needs a host, not a shuffle
MAX_TRIALS = 5_000  # proposals planned in full in one search (each is a make_plan)


@dataclass(frozen=True)
class Measured:
    """What the hosts' Prometheus recorded over the window, in MiB."""

    pools: Mapping[str, float]  # pool -> peak memory of its container
    bots: Mapping[str, float]  # bot key (user/bot) -> peak PSS of its processes


@dataclass(frozen=True)
class PoolLoad:
    pool: PoolPlan
    mb: float
    measured: bool  # False: the planned figure (never measured)
    unmeasured_bots: int  # bots of the plan not measured yet, counted with planned figures


@dataclass(frozen=True)
class HostLoad:
    plan: HostPlan
    pools: tuple[PoolLoad, ...]

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def mb(self) -> float:
        others = EXCHANGE_MB * len(self.plan.exchanges) + self.plan.monitoring_mb
        return sum(p.mb for p in self.pools) + others

    @property
    def usable_mb(self) -> int:
        return self.plan.host.usable_mb

    @property
    def share(self) -> float:
        return self.mb / self.usable_mb if self.usable_mb > 0 else float("inf")


@dataclass(frozen=True)
class Move:
    user: str
    pool: str
    source: str
    target: str
    bots: int
    mb: float

    @property
    def edit(self) -> str:
        """The layout edit that makes it."""
        return f"users.{self.user}.pools: {{{self.pool}: {self.target}}}"


@dataclass(frozen=True)
class Proposal:
    moves: tuple[Move, ...]
    after: dict[str, HostLoad]  # every host once the moves are made


def pool_load(pool: PoolPlan, measured: Measured) -> PoolLoad:
    """A pool's projected memory: its measured peak, plus its bots not measured yet."""
    peak = measured.pools.get(pool.name)
    if peak is None:
        return PoolLoad(pool, float(pool.projected_mb), False, len(pool.bots))
    new = [b for b in pool.bots if b.key not in measured.bots]
    return PoolLoad(pool, peak + sum(b.memory_mb for b in new), True, len(new))


def loads(plan: Plan, measured: Measured) -> dict[str, HostLoad]:
    return {
        name: HostLoad(host, tuple(pool_load(p, measured) for p in host.pools))
        for name, host in plan.hosts.items()
    }


def over(loads_: Mapping[str, HostLoad], threshold: float = THRESHOLD) -> list[str]:
    """The hosts above `threshold` of their usable memory."""
    return [name for name, load in loads_.items() if load.share > threshold]


def propose(plan: Plan, measured: Measured, threshold: float = THRESHOLD) -> Proposal | None:
    """The fewest pool moves after which no host is above `threshold`: among those, the one
    moving the fewest bots, then leaving the fullest host the emptiest. An empty proposal when
    no host is above it; None when no set of up to MAX_MOVES moves (within MAX_TRIALS planned
    proposals) does it: the fleet needs a host, or fewer bots."""
    now = loads(plan, measured)
    full = over(now, threshold)
    if not full:
        return Proposal((), now)
    candidates = [p for name in full for p in now[name].pools]
    targets = sorted(plan.hosts)
    trials = 0
    for count in range(1, min(MAX_MOVES, len(candidates)) + 1):
        best: tuple[tuple[int, float, tuple[str, ...]], Proposal] | None = None
        for moves in _assignments(candidates, targets, count, now, threshold):
            if trials >= MAX_TRIALS:
                return best[1] if best else None
            trials += 1
            after = _planned(plan, measured, moves)
            if after is None or over(after, threshold):
                continue
            rank = (
                sum(m.bots for m in moves),
                max(load.share for load in after.values()),
                tuple(m.edit for m in moves),
            )
            if best is None or rank < best[0]:
                best = (rank, Proposal(moves, after))
        if best:
            return best[1]
    return None


def _assignments(
    candidates: list[PoolLoad],
    targets: list[str],
    count: int,
    now: Mapping[str, HostLoad],
    threshold: float,
) -> Iterator[tuple[Move, ...]]:
    """Every way to move `count` of the candidates to other hosts that could take them. A
    host receiving pools whose pools alone (plus its monitoring) would be above the threshold
    is skipped: exchanges only add to that, so planning it could not pass."""
    before = {name: sum(p.mb for p in load.pools) for name, load in now.items()}
    for chosen in itertools.combinations(candidates, count):
        options = [[t for t in targets if t != load.pool.host] for load in chosen]
        for picked in itertools.product(*options):
            pools = dict(before)
            for load, target in zip(chosen, picked, strict=True):
                pools[load.pool.host] -= load.mb
                pools[target] += load.mb
            if all(
                pools[t] + now[t].plan.monitoring_mb <= threshold * now[t].usable_mb
                for t in set(picked)
            ):
                yield tuple(
                    Move(
                        load.pool.user,
                        load.pool.name,
                        load.pool.host,
                        target,
                        len(load.pool.bots),
                        load.mb,
                    )
                    for load, target in zip(chosen, picked, strict=True)
                )


def _planned(plan: Plan, measured: Measured, moves: tuple[Move, ...]) -> dict[str, HostLoad] | None:
    """Every host's load once the layout says the moves; None if the converge would refuse
    that layout (its own rules, planned figures included) or places a pool elsewhere."""
    layout = edited(plan.layout, moves)
    moved, problems = make_plan(layout, plan.allocation)
    if problems:
        return None
    placed = {p.name: p.host for p in moved.pools}
    if any(placed.get(m.pool) != m.target for m in moves):
        return None
    return loads(moved, measured)


def edited(layout: Layout, moves: tuple[Move, ...]) -> Layout:
    """The layout with each move written as its edit (users.<user>.pools)."""
    users = []
    for user in layout.users:
        placed = {m.pool: m.target for m in moves if m.user == user.name}
        users.append(replace(user, pools={**user.pools, **placed}) if placed else user)
    return replace(layout, users=tuple(users))
