"""The plan: every host, pool and bot with its ports and memory, derived from layout + lock."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from botpool.core import names
from botpool.core.allocate import Allocation, PoolBlock, allocate, lock_path, read_lock
from botpool.core.layout import (
    Bot,
    BotSettings,
    ExchangeProfile,
    Host,
    Layout,
)
from botpool.core.runtimes import RUNTIMES, Runtime
from botpool.core.source import LayoutError, Problem
from botpool.core.validate import SecretFiles, read_layout

EXCHANGE_MB = 40  # a sandbox exchange container
# The monitoring container (Prometheus, Alertmanager, node exporter, botpool's exporter):
# 129 MiB measured with `docker stats` on a host of 6 bots after hours; a bot adds a few
# dozen series (kilobytes in Prometheus' head), so 160 MiB holds a host of 50 bots.
MONITORING_MB = 160


@dataclass(frozen=True)
class BotPlan:
    bot: Bot
    pool: str
    host: str
    slot: int
    host_port: int
    memory_mb: int

    @property
    def name(self) -> str:
        return self.bot.name

    @property
    def user(self) -> str:
        return self.bot.user

    @property
    def program(self) -> str:
        return self.bot.program

    @property
    def key(self) -> str:
        return self.bot.key

    @property
    def settings(self) -> BotSettings:
        return self.bot.settings

    @property
    def container_port(self) -> int:
        return names.CONTAINER_FIRST_PORT + self.slot

    @property
    def uid(self) -> int:
        """The bot's uid, and its gid: no other bot of the host, and no login, has it."""
        return names.bot_uid(self.host_port)


@dataclass(frozen=True)
class PoolPlan:
    block: PoolBlock
    freqtrade_version: str
    memory_limit_mb: int
    bots: tuple[BotPlan, ...]
    runtime: Runtime
    project: str

    @property
    def projected_mb(self) -> int:
        """The pool's planned memory: its runtime's own share plus its bots'."""
        return self.runtime.pool_mb + sum(b.memory_mb for b in self.bots)

    @property
    def name(self) -> str:
        return self.block.name

    @property
    def user(self) -> str:
        return self.block.user

    @property
    def host(self) -> str:
        return self.block.host

    @property
    def container(self) -> str:
        return names.pool_container(self.project, self.name)

    @property
    def network(self) -> str:
        return names.user_network(self.project, self.user)


@dataclass(frozen=True)
class ExchangePlan:
    """A sandbox exchange container on one host, serving the sandbox's fixed market list."""

    profile: ExchangeProfile
    users: tuple[str, ...]  # users of this host whose bots trade on it
    project: str

    @property
    def container(self) -> str:
        return names.exchange_container(self.project, self.profile.name)

    @property
    def networks(self) -> tuple[str, ...]:
        """It joins the network of every user it serves: each user's bots reach it by name."""
        return tuple(names.user_network(self.project, user) for user in self.users)

    @property
    def url(self) -> str:
        return f"http://{self.container}:{names.EXCHANGE_PORT}"


@dataclass(frozen=True)
class HostPlan:
    host: Host
    pools: tuple[PoolPlan, ...]
    exchanges: tuple[ExchangePlan, ...]
    monitoring_mb: int = 0  # MONITORING_MB when the layout's monitoring is on

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def bots(self) -> tuple[BotPlan, ...]:
        return tuple(b for p in self.pools for b in p.bots)

    @property
    def projected_mb(self) -> int:
        exchanges = EXCHANGE_MB * len(self.exchanges)
        return sum(p.projected_mb for p in self.pools) + exchanges + self.monitoring_mb

    def bots_per_profile(self) -> dict[str, int]:
        """How many bots of each exchange profile run here (they share this host's IP)."""
        count: dict[str, int] = {}
        for bot in self.bots:
            count[bot.settings.exchange] = count.get(bot.settings.exchange, 0) + 1
        return dict(sorted(count.items()))


@dataclass(frozen=True)
class Plan:
    layout: Layout
    allocation: Allocation
    hosts: dict[str, HostPlan]

    @property
    def pools(self) -> tuple[PoolPlan, ...]:
        return tuple(p for h in self.hosts.values() for p in h.pools)

    @property
    def bots(self) -> tuple[BotPlan, ...]:
        return tuple(b for p in self.pools for b in p.bots)

    def host(self, name: str) -> HostPlan:
        """The plan of one host; a host the layout does not know gets an empty plan."""
        return self.hosts.get(name) or HostPlan(Host(name, 0, 0, None, 0, {}), (), ())


def make_plan(
    layout: Layout, previous: Allocation, lost: frozenset[str] = frozenset()
) -> tuple[Plan, list[Problem]]:
    allocation, problems = allocate(layout, previous, lost)
    bots_by_key = {bot.key: bot for bot in layout.bots}
    users = {user.name: user for user in layout.users}
    hosts: dict[str, HostPlan] = {}
    for host in layout.hosts.values():
        pools = []
        for block in sorted(allocation.pools.values(), key=lambda p: (p.user, p.number)):
            if block.host != host.name:
                continue
            user = users[block.user]
            runtime = RUNTIMES[user.runtime]
            bot_mb = host.bot_mb(runtime)
            seated = sorted(
                (seat.slot, key) for key, seat in allocation.bots.items() if seat.pool == block.name
            )
            bots = tuple(
                BotPlan(
                    bots_by_key[key],
                    block.name,
                    host.name,
                    slot,
                    block.first_port + slot,
                    bot_mb,
                )
                for slot, key in seated
            )
            # the limit leaves room for a full pool, and 50% over the planned figures
            limit = layout.pool_memory_limit_mb or math.ceil(
                1.5 * runtime.pool_memory_mb(block.size, bot_mb)
            )
            pools.append(
                PoolPlan(block, user.freqtrade_version, limit, bots, runtime, layout.project)
            )
        monitoring_mb = MONITORING_MB if layout.monitoring.enabled else 0
        hosts[host.name] = HostPlan(host, tuple(pools), _exchanges(layout, pools), monitoring_mb)
        problems += _capacity_problems(layout, hosts[host.name])
        problems += _rate_limit_problems(layout, hosts[host.name])
    for block in sorted(allocation.pools.values(), key=lambda p: p.name):
        line = users[block.user].line if block.user in users else 1
        if block.host not in layout.hosts:
            problems.append(
                Problem(
                    layout.file,
                    line,
                    f"users.{block.user}",
                    f"pool {block.name} runs on host {block.host}, which the layout no "
                    f"longer declares: move it first (users.{block.user}.host or "
                    f"users.{block.user}.pools) and converge, or remove its bots; then "
                    "remove the host",
                )
            )
        elif block.moved_from and block.moved_from not in layout.hosts:
            problems.append(
                Problem(
                    layout.file,
                    line,
                    f"users.{block.user}",
                    f"pool {block.name} is still moving from host {block.moved_from}: keep "
                    "that host in the layout and the inventory until a converge has carried "
                    "the pool's data, then remove it",
                )
            )
    return Plan(layout, allocation, hosts), problems


def _exchanges(layout: Layout, pools: list[PoolPlan]) -> tuple[ExchangePlan, ...]:
    users: dict[str, set[str]] = {}
    for bot in (b for p in pools for b in p.bots):
        if layout.exchanges[bot.settings.exchange].sandbox:
            users.setdefault(bot.settings.exchange, set()).add(bot.user)
    return tuple(
        ExchangePlan(layout.exchanges[name], tuple(sorted(u)), layout.project)
        for name, u in sorted(users.items())
    )


def _rate_limit_problems(layout: Layout, plan: HostPlan) -> list[Problem]:
    """More bots of a profile on one host than the profile allows: refused (a pin or a pool
    placement put them there; placement of new pools avoids it)."""
    found = []
    for name, count in plan.bots_per_profile().items():
        limit = layout.exchanges[name].max_bots_per_host
        if limit is not None and count > limit:
            found.append(
                Problem(
                    layout.file,
                    plan.host.line,
                    f"hosts.{plan.name}",
                    f"host {plan.name} would run {count} bots of exchange profile {name}, "
                    f"more than its max_bots_per_host {limit} (they share one IP, which the "
                    "exchange rate-limits): move a pool to another host (users.<user>.pools), "
                    "add a host, or raise exchanges."
                    f"{name}.max_bots_per_host if you know the exchange allows it",
                )
            )
    return found


def _capacity_problems(layout: Layout, plan: HostPlan) -> list[Problem]:
    host = plan.host
    if plan.projected_mb <= host.usable_mb:
        return []
    path = f"hosts.{host.name}" if host.name in layout.hosts and host.line > 1 else "hosts"
    by_runtime: dict[Runtime, list[PoolPlan]] = {}
    for pool in plan.pools:
        by_runtime.setdefault(pool.runtime, []).append(pool)
    parts = [
        f"{len(pools)} {runtime.name} pools x {runtime.pool_mb} MiB + "
        f"{sum(len(p.bots) for p in pools)} bots x {host.bot_mb(runtime)} MiB"
        for runtime, pools in sorted(by_runtime.items(), key=lambda item: item[0].name)
    ]
    return [
        Problem(
            layout.file,
            host.line,
            path,
            f"host {host.name} cannot hold its bots: {len(plan.bots)} bots in "
            f"{len(plan.pools)} pools need about {plan.projected_mb} MiB "
            f"({' + '.join(parts)} + exchanges"
            f"{' + monitoring' if plan.monitoring_mb else ''}), more "
            f"than its {host.usable_mb} MiB usable (memory_mb {host.memory_mb} - "
            f"reserved_mb {host.reserved_mb}); declare the host's real memory_mb, add a "
            "host, or remove bots",
        )
    ]


def load_plan(
    layout_file: str | Path, secrets: SecretFiles | None = None, lost: frozenset[str] = frozenset()
) -> Plan:
    """Layout + lock -> plan, or LayoutError with every problem found in either. `lost`:
    hosts whose data is gone for good (see allocate)."""
    lock = lock_path(layout_file)
    if lock.resolve() == Path(layout_file).resolve():
        message = "a layout must not be named *.lock (its lock file would be itself): rename it"
        raise LayoutError([Problem(str(layout_file), 1, "", message)])
    layout, problems = read_layout(layout_file, secrets)
    previous = read_lock(lock, layout)
    if layout is None:
        raise LayoutError(problems)
    plan, more = make_plan(layout, previous, lost)
    if problems or more:
        raise LayoutError(problems + more)
    return plan
