"""`botpool plan LAYOUT --measured INVENTORY`: what each host's pools really used, read from
the host's own Prometheus (one remote command per host: botpool.hosts.prometheus), projected
and balanced by botpool.core.capacity, and reported.

Prometheus keeps what botpool's exporter sampled: each pool container's memory (cgroup, no
page cache) and each bot's PSS. The peak of each over the window is the figure; a pool that
moved was measured on its old host as well, and the larger peak counts. So the projection
needs the monitoring stack (`monitoring.enabled`, on by default), and is only as good as the
history it reads: the report says how many hours each host's history covers.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botpool.core.capacity import HostLoad, Measured, Proposal, loads, over, propose
from botpool.core.plan import Plan
from botpool.core.source import table
from botpool.hosts import prometheus
from botpool.hosts.remote import RemoteError, RemoteHost

MIB = 2**20


def queries(window: str) -> list[dict[str, str]]:
    """Every query of one host (instant queries over the window)."""
    return [
        {"id": "pools", "expr": f"max_over_time(botpool_pool_memory_bytes[{window}])"},
        {"id": "bots", "expr": f"max_over_time(botpool_bot_pss_bytes[{window}])"},
        {  # how far back the window's samples go, per pool
            "id": "history",
            "expr": f"time() - min_over_time(timestamp(botpool_pool_memory_bytes)[{window}:1m])",
        },
    ]


@dataclass
class HostMeasure:
    """One inventory host's reading: its peaks in MiB, or why there are none."""

    host: str  # as in the inventory
    layout_host: str
    pools: dict[str, float] = field(default_factory=dict)
    bots: dict[str, float] = field(default_factory=dict)
    history_h: float = 0.0  # the oldest sample of the window, hours ago
    error: str | None = None


def _peaks(answers: dict[str, Any], key: str) -> list[prometheus.Sample]:
    """One query's samples; a value that is not positive (no memory used) is left out, as
    prometheus.vector leaves out what is not finite (NaN: no sample in the window)."""
    return [sample for sample in prometheus.vector(answers.get(key)) if sample.value > 0]


def read(remote: RemoteHost, plan: Plan, window: str) -> HostMeasure:
    """One host's peaks over the window."""
    seen = HostMeasure(remote.name, remote.layout_host)
    if remote.layout_host not in plan.hosts:
        seen.error = (
            f"{remote.name}: no host {remote.layout_host!r} in {plan.layout.file} "
            f"(hosts: {', '.join(plan.hosts)}): set its botpool_host data"
        )
        return seen
    try:
        answers = prometheus.ask(remote, plan.layout, queries(window))
    except RemoteError as exc:
        seen.error = str(exc)
        return seen
    for sample in _peaks(answers, "pools"):
        if "pool" in sample.labels:
            seen.pools[sample.labels["pool"]] = sample.value / MIB
    for sample in _peaks(answers, "bots"):
        if "user" in sample.labels and "bot" in sample.labels:
            seen.bots[f"{sample.labels['user']}/{sample.labels['bot']}"] = sample.value / MIB
    seen.history_h = max((s.value / 3600 for s in _peaks(answers, "history")), default=0.0)
    return seen


def measure(remotes: list[RemoteHost], plan: Plan, window: str) -> list[HostMeasure]:
    """Every host read in parallel."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda remote: read(remote, plan, window), remotes))


def merged(readings: list[HostMeasure]) -> Measured:
    """The peaks of every host at once (a pool or bot seen on two hosts: the larger)."""
    pools: dict[str, float] = {}
    bots: dict[str, float] = {}
    for seen in readings:
        for name, mb in seen.pools.items():
            pools[name] = max(mb, pools.get(name, 0.0))
        for key, mb in seen.bots.items():
            bots[key] = max(mb, bots.get(key, 0.0))
    return Measured(pools, bots)


@dataclass(frozen=True)
class Report:
    plan: Plan
    readings: list[HostMeasure]
    measured: Measured
    now: dict[str, HostLoad]
    proposal: Proposal | None  # None: no set of moves does it
    threshold: float
    window: str

    @property
    def above(self) -> list[str]:
        return over(self.now, self.threshold)

    def as_dict(self) -> dict[str, Any]:
        history = {r.layout_host: r.history_h for r in self.readings if not r.error}
        return {
            "window": self.window,
            "threshold": self.threshold,
            "errors": [r.error for r in self.readings if r.error],
            "hosts": [
                {
                    "host": name,
                    "planned_mb": load.plan.projected_mb,
                    "measured_mb": round(load.mb),
                    "usable_mb": load.usable_mb,
                    "share": round(load.share, 3),
                    "above": name in self.above,
                    "history_hours": round(history[name], 2) if name in history else None,
                }
                for name, load in self.now.items()
            ],
            "pools": [
                {
                    "pool": p.pool.name,
                    "host": p.pool.host,
                    "bots": len(p.pool.bots),
                    "planned_mb": p.pool.projected_mb,
                    "measured_mb": round(p.mb) if p.measured else None,
                    "unmeasured_bots": p.unmeasured_bots,
                }
                for load in self.now.values()
                for p in load.pools
            ],
            "moves": None
            if self.proposal is None
            else [
                {"edit": m.edit, "pool": m.pool, "from": m.source, "to": m.target, "bots": m.bots}
                for m in self.proposal.moves
            ],
        }


def report(plan: Plan, readings: list[HostMeasure], window: str, threshold: float) -> Report:
    measured = merged(readings)
    now = loads(plan, measured)
    proposal = propose(plan, measured, threshold)
    return Report(plan, readings, measured, now, proposal, threshold, window)


def text(r: Report) -> str:
    """The report for people: hosts, pools, bots per runtime, then the moves."""
    history = {m.layout_host: f"{m.history_h:.1f} h" for m in r.readings if not m.error}
    limit = f"{100 * r.threshold:.0f} %"
    hosts = [
        (
            name,
            len(load.plan.pools),
            len(load.plan.bots),
            f"{load.plan.projected_mb} MiB",
            f"{load.mb:.0f} MiB",
            f"{load.usable_mb} MiB",
            f"{100 * load.share:.0f} %",
            history.get(name, "not read"),
            f"ABOVE {limit}" if name in r.above else "ok",
        )
        for name, load in r.now.items()
    ]
    pools = [
        (
            p.pool.name,
            p.pool.host,
            len(p.pool.bots),
            f"{p.pool.projected_mb} MiB",
            f"{p.mb:.0f} MiB" if p.measured else "not measured",
            f"+{p.unmeasured_bots} planned" if p.measured and p.unmeasured_bots else "",
        )
        for load in r.now.values()
        for p in load.pools
    ]
    parts = [
        f"measured: each pool's peak memory over the last {r.window} (its host's Prometheus);\n"
        "planned: exchanges, monitoring, pools not measured yet, bots added since",
        table(
            hosts,
            ("HOST", "POOLS", "BOTS", "PLANNED", "MEASURED", "USABLE", "USE", "HISTORY", "FLAG"),
        ),
        table(pools, ("POOL", "HOST", "BOTS", "PLANNED", "MEASURED", "")),
        _per_bot(r),
    ]
    parts.append(_moves(r, limit))
    return "\n\n".join(p for p in parts if p)


def _per_bot(r: Report) -> str:
    """Each runtime's bots: their measured peak PSS against the figure they are planned with."""
    lines = []
    runtimes: dict[str, list[tuple[float, int]]] = {}
    for bot in r.plan.bots:
        if bot.key in r.measured.bots:
            pool = next(p for p in r.plan.pools if p.name == bot.pool)
            runtimes.setdefault(pool.runtime.name, []).append(
                (r.measured.bots[bot.key], bot.memory_mb)
            )
    for name, figures in sorted(runtimes.items()):
        peaks = [mb for mb, _ in figures]
        planned = sorted({p for _, p in figures})
        lines.append(
            f"{name} bots: {len(peaks)} measured, peak PSS {sum(peaks) / len(peaks):.0f} MiB "
            f"on average, {max(peaks):.0f} at most; planned with "
            f"{'/'.join(map(str, planned))} MiB"
        )
    return "\n".join(lines)


def _moves(r: Report, limit: str) -> str:
    if not r.above:
        return f"every host is under {limit} of its usable memory"
    if r.proposal is None:
        return (
            f"{', '.join(r.above)} above {limit} of usable memory, and no set of pool moves "
            "brings every host under it: add a host (hosts:), declare a host's real "
            "memory_mb, or remove bots"
        )
    lines = [
        f"{', '.join(r.above)} above {limit} of usable memory; the fewest pool moves that "
        f"bring every host under it ({len(r.proposal.moves)}), as layout edits:"
    ]
    for move in r.proposal.moves:
        before, after = r.now, r.proposal.after
        lines.append(
            f"  {move.edit}    # {move.bots} bots, {move.mb:.0f} MiB: "
            f"{move.source} {100 * before[move.source].share:.0f} % -> "
            f"{100 * after[move.source].share:.0f} %, "
            f"{move.target} {100 * before[move.target].share:.0f} % -> "
            f"{100 * after[move.target].share:.0f} %"
        )
    lines.append(
        "then `botpool plan LAYOUT`, commit the layout and its lock, and converge: the pools "
        "move with their data"
    )
    return "\n".join(lines)


def as_json(r: Report) -> str:
    return json.dumps(r.as_dict(), indent=2)
