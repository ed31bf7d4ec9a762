"""What the pages show, shaped from what a refresh read. Pure: no host, no network.

A host's reading (HostReading) is what the checks read (the host snapshot: containers and
supervisor programs; the bot probe and its health findings: botpool.core.health) plus the
answers of its Prometheus (botpool.dashboard.prometheus), or why it could not be read. Each
function here turns readings into one page's model. Everything that comes from a host or a
bot stays data: the templates escape it, the JSON answers carry it as strings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botpool.core.health import Finding, Health
from botpool.core.plan import BotPlan, HostPlan, Plan, PoolPlan
from botpool.core.snapshot import Snapshot
from botpool.dashboard import prometheus
from botpool.dashboard.prometheus import Sample, Series

MIB = 2**20
DOWN_CHECKS = ("running", "api")  # a bot failing one of these does not work at all
# bot metrics the exporter may provide (some come later): name shown -> metric
BOT_METRICS = {
    "heartbeat age (s)": "botpool_bot_heartbeat_age_seconds",
    "open trades": "botpool_bot_trades_open",
    "closed trades": "botpool_bot_trades_closed",
    "closed profit": "botpool_bot_profit_closed_coin",
    "wallet": "botpool_bot_wallet_coin",
    "last trade age (s)": "botpool_bot_last_trade_age_seconds",
    "PSS (bytes)": "botpool_bot_pss_bytes",
    "uptime (s)": "botpool_bot_uptime_seconds",
}
# settings a bot page shows (from the plan: never a credential or a notification secret)
SHOWN_SETTINGS = (
    "exchange",
    "strategy",
    "pairs",
    "stake_currency",
    "stake_amount",
    "dry_run",
    "dry_run_wallet",
    "tradable_balance_ratio",
    "max_open_trades",
    "timeframe",
)


@dataclass
class HostReading:
    """One inventory host, as one refresh read it."""

    name: str  # as in the inventory
    layout_host: str
    plan: Plan | None = None
    snapshot: Snapshot | None = None
    health: Health | None = None
    findings: list[Finding] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)  # query id -> Prometheus' answer
    window: str = prometheus.DEFAULT_WINDOW
    monitoring: bool = True  # the layout enables monitoring on this host
    prometheus_error: str | None = None  # why its Prometheus gave no answers
    error: str | None = None  # unreachable, or its layout unreadable
    commands: int = 0  # remote commands this refresh cost
    read_at: float = 0.0

    @property
    def host_plan(self) -> HostPlan | None:
        return self.plan.hosts.get(self.layout_host) if self.plan else None


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str


@dataclass(frozen=True)
class BotView:
    key: str
    user: str
    name: str
    pool: str
    host: str  # inventory name
    port: int
    state: str  # supervisor's, or "unknown" when the host could not be read
    health: str  # healthy | degraded | down | unknown
    checks: tuple[Check, ...]
    open_trades: int | None
    closed_trades: int | None
    wallet: Any
    last_warnings: tuple[str, ...]  # oldest first
    exits_last_hour: int | None
    restarts_1h: float | None
    metrics: dict[str, float | None]

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


@dataclass(frozen=True)
class Program:
    name: str
    state: str
    pid: int | None
    uptime_s: int | None


@dataclass(frozen=True)
class PoolView:
    name: str
    user: str
    host: str
    container: str
    runtime: str
    limit_mb: int
    used_mb: float | None  # docker stats now, None when not read
    programs: tuple[Program, ...]
    bots: tuple[BotView, ...]

    @property
    def share(self) -> float | None:
        return self.used_mb / self.limit_mb if self.used_mb is not None and self.limit_mb else None


@dataclass(frozen=True)
class AlertView:
    host: str
    alertname: str
    severity: str
    pool: str
    user: str
    bot: str


@dataclass(frozen=True)
class HostView:
    name: str
    layout_host: str
    error: str | None
    monitoring: str  # "on", "off" (layout), or why Prometheus could not be asked
    used_mb: float | None
    planned_mb: int | None
    total_mb: float | None
    cpu_busy: float | None
    alerts: tuple[AlertView, ...]
    pools: tuple[PoolView, ...]

    @property
    def reachable(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class HeatRow:
    host: str
    pool: str
    user: str
    cells: tuple[float | None, ...]  # memory / limit per step, None: no data


@dataclass(frozen=True)
class Fleet:
    hosts: tuple[HostView, ...]
    window: str
    times: tuple[float, ...]  # the heatmap's columns (unix seconds)
    heat: tuple[HeatRow, ...]
    user: str | None

    @property
    def bots(self) -> list[BotView]:
        return [b for h in self.hosts for p in h.pools for b in p.bots]

    @property
    def alerts(self) -> list[AlertView]:
        return [a for h in self.hosts for a in h.alerts]

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("healthy", "degraded", "down", "unknown"), 0)
        for bot in self.bots:
            counts[bot.health] += 1
        return counts


# --- one host ---------------------------------------------------------------------------


def _matches(labels: dict[str, str], **wanted: str) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def bot_health(checks: Sequence[Check]) -> str:
    """down: not running or its API silent; degraded: another check fails; else healthy."""
    failed = {c.name for c in checks if not c.ok}
    if failed & set(DOWN_CHECKS):
        return "down"
    return "degraded" if failed else "healthy"


def bot_view(reading: HostReading, bot: BotPlan, samples: Sequence[Sample]) -> BotView:
    subject = f"bot {bot.key}"
    checks = tuple(
        Check(f.check, f.ok, f.message) for f in reading.findings if f.subject == subject
    )
    report = (reading.health.bots.get(bot.program) if reading.health else None) or {}
    program = None
    if reading.snapshot is not None:
        program = reading.snapshot.programs.get(_container(reading, bot), {}).get(bot.program)
    mine = [s for s in samples if _matches(s.labels, pool=bot.pool, bot=bot.name)]
    metrics: dict[str, float | None] = {
        shown: next((s.value for s in mine if s.labels.get("__name__") == name), None)
        for shown, name in BOT_METRICS.items()
    }
    restarts = [
        s.value
        for s in prometheus.vector(reading.answers.get("restarts_1h"))
        if _matches(s.labels, pool=bot.pool, bot=bot.name)
    ]
    count = report.get("count")
    count = count if isinstance(count, dict) else {}
    wallet = report.get("wallet")
    wallet = wallet if isinstance(wallet, dict) else {}
    known = reading.error is None and reading.snapshot is not None
    return BotView(
        key=bot.key,
        user=bot.user,
        name=bot.name,
        pool=bot.pool,
        host=reading.name,
        port=bot.host_port,
        state=(program.state if program else "absent") if known else "unknown",
        health=bot_health(checks) if known and checks else "unknown",
        checks=checks,
        open_trades=_int(count.get("current")),
        closed_trades=_int(report.get("trade_count")),
        wallet=wallet.get("total"),
        last_warnings=_texts(report.get("last_warnings")),
        exits_last_hour=_int(report.get("exits_last_hour")),
        restarts_1h=restarts[0] if restarts else None,
        metrics=metrics,
    )


def _container(reading: HostReading, bot: BotPlan) -> str:
    host = reading.host_plan
    pool = next((p for p in host.pools if p.name == bot.pool), None) if host else None
    return pool.container if pool else ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def pool_view(reading: HostReading, pool: PoolPlan, samples: Sequence[Sample]) -> PoolView:
    programs: tuple[Program, ...] = ()
    if reading.snapshot is not None:
        seen = reading.snapshot.programs.get(pool.container, {})
        programs = tuple(Program(p.name, p.state, p.pid, p.uptime_s) for p in seen.values())
    used = None
    if reading.health is not None and pool.container in reading.health.container_memory:
        used = reading.health.container_memory[pool.container][0]
    return PoolView(
        name=pool.name,
        user=pool.user,
        host=reading.name,
        container=pool.container,
        runtime=pool.runtime.name,
        limit_mb=pool.memory_limit_mb,
        used_mb=used,
        programs=programs,
        bots=tuple(bot_view(reading, bot, samples) for bot in pool.bots),
    )


def host_view(reading: HostReading, user: str | None = None) -> HostView:
    """One host: its memory (used from the node exporter, planned, total), CPU, alerts and
    pools (of one user, if given)."""
    host = reading.host_plan
    answers = reading.answers
    samples = prometheus.vector(answers.get("bots"))
    pools = tuple(
        pool_view(reading, pool, samples)
        for pool in (host.pools if host else ())
        if user is None or pool.user == user
    )
    alerts = tuple(
        AlertView(
            reading.name,
            *(s.labels.get(k, "") for k in ("alertname", "severity", "pool", "user", "bot")),
        )
        for s in prometheus.vector(answers.get("alerts"))
        if user is None or s.labels.get("user") == user
    )
    total = _first(prometheus.vector(answers.get("host_memory_total")))
    available = _first(prometheus.vector(answers.get("host_memory_available")))
    if available is None and reading.health and reading.health.mem_available_mb is not None:
        available = reading.health.mem_available_mb * MIB  # the probe's /proc/meminfo
    layout_total = host.host.memory_mb * MIB if host else None
    total = total or layout_total
    return HostView(
        name=reading.name,
        layout_host=reading.layout_host,
        error=reading.error,
        monitoring=monitoring_state(reading),
        used_mb=(total - available) / MIB if total and available is not None else None,
        planned_mb=host.projected_mb if host else None,
        total_mb=total / MIB if total else None,
        cpu_busy=_first(prometheus.vector(answers.get("host_cpu_busy"))),
        alerts=alerts,
        pools=pools,
    )


def monitoring_state(reading: HostReading) -> str:
    if not reading.monitoring:
        return "off"
    if reading.error:
        return "unknown"
    if reading.prometheus_error:
        return reading.prometheus_error
    return prometheus.error_of(reading.answers) or ("on" if reading.answers else "no answer")


def _first(samples: Sequence[Sample]) -> float | None:
    return samples[0].value if samples else None


# --- the fleet ------------------------------------------------------------------------------


def grid(window: str, readings: Iterable[HostReading]) -> tuple[float, ...]:
    """The heatmap's and the charts' time columns: the window's steps up to the newest read."""
    seconds, step = prometheus.WINDOWS[window]
    newest = max((r.read_at for r in readings), default=0.0)
    end = math.floor(newest / step) * step
    return tuple(float(end - seconds + i * step) for i in range(seconds // step + 1))


def aligned(series: Series | None, times: Sequence[float]) -> list[float | None]:
    """A series' values at each grid time (None where it has no point)."""
    if series is None:
        return [None] * len(times)
    points = {round(t): v for t, v in series.points}
    return [points.get(round(t)) for t in times]


def heat_rows(reading: HostReading, times: Sequence[float], user: str | None) -> list[HeatRow]:
    host = reading.host_plan
    shares = prometheus.matrix(reading.answers.get("pool_share"))
    rows = []
    for pool in host.pools if host else ():
        if user is not None and pool.user != user:
            continue
        series = next((s for s in shares if _matches(s.labels, pool=pool.name)), None)
        rows.append(HeatRow(reading.name, pool.name, pool.user, tuple(aligned(series, times))))
    return rows


def fleet(readings: Sequence[HostReading], window: str, user: str | None = None) -> Fleet:
    """The fleet page: every host, every pool's heat row, every bot (of one user, if given)."""
    times = grid(window, readings)
    return Fleet(
        hosts=tuple(host_view(r, user) for r in readings),
        window=window,
        times=times,
        heat=tuple(row for r in readings for row in heat_rows(r, times, user)),
        user=user,
    )


# --- charts (uPlot's data: [times, series...], None where a point is missing) ---------------


def pool_charts(reading: HostReading, pool: PoolPlan, times: Sequence[float]) -> dict[str, Any]:
    """Memory (the pool's, its limit, each bot's PSS) and CPU of one pool over the window."""

    def one(key: str) -> list[float | None]:
        found = [
            s
            for s in prometheus.matrix(reading.answers.get(key))
            if _matches(s.labels, pool=pool.name)
        ]
        return aligned(found[0] if found else None, times)

    def mib(values: list[float | None]) -> list[float | None]:
        return [v / MIB if v is not None else None for v in values]

    pss = {
        s.labels.get("bot", "?"): mib(aligned(s, times))
        for s in prometheus.matrix(reading.answers.get("bot_pss"))
        if _matches(s.labels, pool=pool.name)
    }
    return {
        "times": list(times),
        "memory": {"pool": mib(one("pool_memory")), "limit": mib(one("pool_limit")), "bots": pss},
        "cpu": one("pool_cpu"),
    }


def bot_charts(reading: HostReading, bot: BotPlan, times: Sequence[float]) -> dict[str, Any]:
    """Profit, wallet, trades and PSS of one bot over the window."""
    out: dict[str, Any] = {"times": list(times)}
    for key in ("bot_profit", "bot_wallet", "bot_trades_open", "bot_trades_closed", "bot_pss"):
        found = [
            s
            for s in prometheus.matrix(reading.answers.get(key))
            if _matches(s.labels, pool=bot.pool, bot=bot.name)
        ]
        out[key.removeprefix("bot_")] = aligned(found[0] if found else None, times)
    return out


def has_data(values: Iterable[Any]) -> bool:
    return any(v is not None for v in values)


def settings_of(bot: BotPlan) -> dict[str, Any]:
    """The bot's settings from the plan, never a secret (no credentials, no notify)."""
    settings = bot.settings
    shown = {key: getattr(settings, key) for key in SHOWN_SETTINGS}
    pairs = shown["pairs"]
    shown["pairs"] = ", ".join(pairs) if pairs is not None else "dynamic (a pair list picks them)"
    return shown
