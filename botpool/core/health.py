"""Is every bot really alive and useful? Pure evaluation of what a host showed.

Each finding names its subject and, when it fails, says why in words a person can act on:
a stagnant bot shows its wallet, its stake against what it may use, free slots, whitelist
and last warning; a crash loop shows its state and exits; a file the probe refused names
its path; memory shows the numbers against the limit. Each bot check is one small
function of a `_Bot` (BOT_CHECKS lists them in the order they are reported).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botpool.core.layout import BackupSettings, CheckSettings
from botpool.core.plan import BotPlan, HostPlan, PoolPlan
from botpool.core.render import PROGRAM_TIMING
from botpool.core.snapshot import MARK, ProgramState, Snapshot

LOOPBACK = {"127.0.0.1", "::1"}
STARTSECS = PROGRAM_TIMING["startsecs"]  # supervisord says RUNNING (or BACKOFF) after it
STARTING_GRACE_SECONDS = 3 * STARTSECS  # STARTING longer than this is stuck


@dataclass
class Health:
    listening: dict[int, set[str]] = field(default_factory=dict)  # port -> addresses
    mem_available_mb: int | None = None
    container_memory: dict[str, tuple[float, float]] = field(default_factory=dict)  # MiB
    bots: dict[str, dict[str, Any]] = field(default_factory=dict)  # program -> probe report
    probe_error: str | None = None
    newest_backup: dict[str, float] = field(default_factory=dict)  # user/bot -> epoch seconds


@dataclass(frozen=True)
class Finding:
    subject: str  # "bot alice/btc-trend", "pool alice-pool-1", "host local"
    check: str  # running | crash-loop | port | api | files | config | heartbeat | stagnant | ...
    ok: bool
    message: str


def parse(lines: list[str]) -> Health:
    health, section, probe = Health(), "", []
    for line in lines:
        if line.startswith(MARK):
            section = line[len(MARK) :]
        elif section == "listening":
            _listening(line, health)
        elif section == "meminfo" and line.startswith("MemAvailable:"):
            health.mem_available_mb = int(line.split()[1]) // 1024
        elif section == "stats" and "|" in line:
            name, usage = line.split("|", 1)
            used, _, limit = usage.partition(" / ")
            health.container_memory[name] = (_mib(used), _mib(limit))
        elif section == "backups":
            _backup(line, health)
        elif section == "probe":
            probe.append(line)
    try:
        health.bots = json.loads(probe[-1]) if probe else {}
    except (ValueError, IndexError):
        health.probe_error = " ".join(probe)[-500:] or "no answer"
    return health


BACKUP_NAME = re.compile(r"\./([a-z0-9-]+/[a-z0-9-]+)/([0-9]{8}T[0-9]{6}Z)\.sqlite\.gz")


def _backup(line: str, health: Health) -> None:
    """One backup file (`./<user>/<bot>/<UTC stamp>.sqlite.gz`): the newest of each bot counts.
    A file there is whole and checked (the job renames it into place only then)."""
    match = BACKUP_NAME.fullmatch(line.strip())
    if match:
        taken = datetime.strptime(match.group(2), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        key, stamp = match.group(1), taken.timestamp()
        health.newest_backup[key] = max(stamp, health.newest_backup.get(key, 0.0))


def _listening(line: str, health: Health) -> None:
    parts = line.split()
    if len(parts) < 4 or parts[3] != "0A" or ":" not in parts[1]:  # 0A: LISTEN
        return
    address_hex, port_hex = parts[1].rsplit(":", 1)
    if len(address_hex) == 8:
        address = ".".join(str(int(address_hex[i : i + 2], 16)) for i in (6, 4, 2, 0))
    else:
        address = (
            "::1"
            if address_hex == "00000000000000000000000001000000"
            else ("::" if set(address_hex) == {"0"} else address_hex)
        )
    health.listening.setdefault(int(port_hex, 16), set()).add(address)


def _mib(text: str) -> float:
    match = re.match(r"([\d.]+)\s*([KMGT]?i?B)", text.strip())
    if not match:
        return 0.0
    scale = {
        "B": 1 / 2**20,
        "KiB": 1 / 1024,
        "KB": 1 / 1024,
        "MiB": 1,
        "MB": 1,
        "GiB": 1024,
        "GB": 1024,
        "TiB": 2**20,
    }.get(match.group(2), 1)
    return float(match.group(1)) * scale


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def evaluate(
    host: HostPlan,
    snap: Snapshot,
    health: Health,
    limits: CheckSettings,
    now: float | None = None,
    backups: BackupSettings | None = None,
) -> list[Finding]:
    """Every check of one host, passed or failed, in a stable order (with backups: the
    layout's backup settings, each bot's backup age too, when they are on)."""
    now = time.time() if now is None else now
    findings: list[Finding] = []
    for pool in host.pools:
        findings += _pool(pool, snap, health, limits)
        for bot in pool.bots:
            programs = snap.programs.get(pool.container, {})
            findings += _bot(bot, programs, health, limits, now)
            if backups and backups.enabled:
                findings.append(_backup_age(bot, programs.get(bot.program), health, backups, now))
    available = health.mem_available_mb
    findings.append(
        Finding(
            f"host {host.name}",
            "memory",
            available is not None and available >= limits.host_min_available_mb,
            f"host {host.name} has {available} MiB available, below the "
            f"{limits.host_min_available_mb} MiB headroom (checks.host_min_available_mb): "
            "remove bots or move pools to another host",
        )
    )
    return findings


def _pool(pool: PoolPlan, snap: Snapshot, health: Health, limits: CheckSettings) -> list[Finding]:
    subject = f"pool {pool.name}"
    container = snap.containers.get(pool.container)
    out = [
        Finding(
            subject,
            "container",
            bool(container and container.running),
            f"container {pool.container} is {'stopped' if container else 'missing'}: "
            "run a converge to recreate or start it",
        )
    ]
    answered = pool.container in snap.programs and pool.container not in snap.supervisor_errors
    out.append(
        Finding(
            subject,
            "supervisord",
            answered,
            f"supervisord in {pool.name} does not answer: "
            f"{snap.supervisor_errors.get(pool.container, 'no status')}",
        )
    )
    for service in pool.runtime.services:  # the programs its runtime gives the pool
        program = snap.programs.get(pool.container, {}).get(service)
        out.append(
            Finding(
                subject,
                service,
                bool(program and program.state in ("RUNNING", "STARTING")),
                f"the {service} of {pool.name} is {program.state if program else 'absent'}: no "
                f"bot of the pool can start; see logs/{service}.log in the pool's folder",
            )
        )
    used, limit = health.container_memory.get(pool.container, (0.0, 0.0))
    share = used / limit if limit else 0.0
    out.append(
        Finding(
            subject,
            "memory",
            share <= limits.pool_memory_share,
            f"pool {pool.name} uses {used:.0f} MiB of its {limit:.0f} MiB limit "
            f"({share:.0%} > {limits.pool_memory_share:.0%}, "
            "checks.pool_memory_share): give it fewer bots or more memory",
        )
    )
    return out


@dataclass(frozen=True)
class _Bot:
    """One bot as the host showed it: its plan, its supervisor program, its probe report."""

    plan: BotPlan
    program: ProgramState | None
    report: dict[str, Any]
    listening: set[str]  # addresses its host port listens on
    probe_error: str | None  # the whole probe failed: no report for any bot
    limits: CheckSettings
    now: float

    @property
    def state(self) -> str:
        return self.program.state if self.program else "absent"

    @property
    def last_warning(self) -> str:
        return str(self.report.get("last_warning") or "none logged")

    def finding(self, check: str, ok: bool, message: str) -> Finding:
        return Finding(f"bot {self.plan.key}", check, ok, message)


def _bot(
    bot: BotPlan,
    programs: dict[str, ProgramState],  # its pool's, as supervisor shows them
    health: Health,
    limits: CheckSettings,
    now: float,
) -> list[Finding]:
    seen = _Bot(
        bot,
        programs.get(bot.program),
        health.bots.get(bot.program, {}),
        health.listening.get(bot.host_port, set()),
        health.probe_error,
        limits,
        now,
    )
    return [check(seen) for check in BOT_CHECKS]


def _running(bot: _Bot) -> Finding:
    """RUNNING; or STARTING for its first seconds, after which supervisord says RUNNING or
    BACKOFF. A program STARTING for longer, or since an unknown time, is stuck."""
    state, since = bot.state, ""
    ok = state == "RUNNING"
    if state == "STARTING":
        age = bot.report.get("spawned_seconds_ago")
        ok = isinstance(age, (int, float)) and age <= STARTING_GRACE_SECONDS
        since = (
            f" for {age:.0f} s (it should be RUNNING after {STARTSECS} s)"
            if isinstance(age, (int, float))
            else " since an unknown time (no spawn in the tail of supervisord's log)"
        )
    warning = bot.report.get("last_warning")
    return bot.finding(
        "running",
        ok,
        f"program {bot.plan.program} in {bot.plan.pool} is {state}{since}"
        + (f"; last warning: {warning}" if warning else ""),
    )


def _crash_loop(bot: _Bot) -> Finding:
    exits = bot.report.get("exits_last_hour", 0)
    limit = bot.limits.max_exits_per_hour
    return bot.finding(
        "crash-loop",
        bot.state not in ("FATAL", "BACKOFF") and exits <= limit,
        f"{bot.plan.program} is {bot.state} and exited {exits} times in the last hour "
        f"(checks.max_exits_per_hour: {limit}); last warning: {bot.last_warning}",
    )


def _port(bot: _Bot) -> Finding:
    return bot.finding(
        "port",
        bool(bot.listening) and bot.listening <= LOOPBACK,
        f"port {bot.plan.host_port} listens on {sorted(bot.listening) or 'nothing'}; "
        "it must listen on 127.0.0.1 only",
    )


def _api(bot: _Bot) -> Finding:
    where = f"the API at 127.0.0.1:{bot.plan.host_port}"
    not_asked = bot.report.get("not_asked")
    if not_asked:
        return bot.finding("api", False, f"{where} was not asked: {not_asked}")
    error = bot.report.get("error") or bot.probe_error
    return bot.finding(
        "api",
        bool(bot.report.get("ping")) and not error,
        f"{where} does not answer: {error or 'no ping'}",
    )


def _files(bot: _Bot) -> Finding:
    """The files the probe reads (config, logs) are plain regular files of sane size."""
    errors = bot.report.get("file_errors")
    reason = "; ".join(errors) if errors else bot.probe_error or "no report of this bot"
    return bot.finding(
        "files",
        errors == [],
        f"the probe could not read the files of {bot.plan.program}: {reason}. It reads "
        "regular files only and follows no symbolic link; the bot's own code may have "
        "replaced them: look at the bot, then converge",
    )


def _config(bot: _Bot) -> Finding:
    config = bot.report.get("config") or {}
    s = bot.plan.settings
    expected = {
        "bot_name": bot.plan.program,
        "dry_run": s.dry_run,
        "strategy": s.strategy,
        "stake_amount": float(s.stake_amount),
    }
    shown = {key: config.get(key) for key in expected}
    shown["stake_amount"] = _number(shown["stake_amount"])
    wrong = [key for key in expected if shown[key] != expected[key]]
    return bot.finding(
        "config",
        bool(config) and not wrong,
        f"show_config differs from the plan in {', '.join(wrong) or 'everything'}: run a converge",
    )


def _heartbeat(bot: _Bot) -> Finding:
    last = bot.report.get("last_process_ts")
    age = bot.now - last if isinstance(last, (int, float)) else None
    limit = bot.limits.heartbeat_max_age_seconds
    return bot.finding(
        "heartbeat",
        age is not None and age <= limit,
        f"the bot loop of {bot.plan.program} last ran "
        f"{'never' if age is None else _duration(age) + ' ago'} (limit "
        f"{limit} s): it is stuck or not started",
    )


def _stagnant(bot: _Bot) -> Finding:
    """Running long enough with 0 trades; the message says why, with the bot's own figures."""
    uptime = bot.program.uptime_s if bot.program and bot.program.uptime_s is not None else 0
    minutes = bot.limits.stagnant_after_minutes
    stagnant = bot.report.get("trade_count") == 0 and uptime >= minutes * 60
    count = bot.report.get("count") or {}
    free_slots = (count.get("max") or 0) - (count.get("current") or 0)
    return bot.finding(
        "stagnant",
        not stagnant,
        f"{bot.plan.program} has run {_duration(uptime)} with 0 trades "
        f"(checks.stagnant_after_minutes: {minutes}): {_stake_figures(bot)}, free trade "
        f"slots {free_slots} of {count.get('max')}, whitelist {bot.report.get('whitelist')} "
        f"pairs; last warning: {bot.last_warning}",
    )


def _stake_figures(bot: _Bot) -> str:
    """The bot's real stake against what freqtrade lets it use: wallet x tradable ratio.

    Figures come from the bot (show_config, balance, its config file), not from the plan:
    a config edited on the host is what the bot trades with. freqtrade refuses a trade
    only when the stake is MORE than what is available, so equal is enough.
    """
    s, report = bot.plan.settings, bot.report
    currency = s.stake_currency
    wallet = report.get("wallet") or {}
    stake_text = (report.get("config") or {}).get("stake_amount", s.stake_amount)
    ratio = _number(report.get("tradable_balance_ratio")) or s.tradable_balance_ratio
    figures = f"wallet {wallet.get('free')} {currency} free of {wallet.get('total')}"
    stake, total = _number(stake_text), _number(wallet.get("total"))
    if stake is None or total is None:
        return f"{figures}, stake {stake_text} {currency}"
    tradable = total * ratio
    verdict = "is more than" if stake > tradable * (1 + 1e-9) else "fits in"
    return (
        f"{figures}, stake {stake_text} {currency} {verdict} the {tradable:g} {currency} "
        f"it may use (wallet {total:g} x tradable_balance_ratio {ratio:g})"
    )


def _number(value: object) -> float | None:
    """A figure from a bot's answer (freqtrade shows stake_amount as text), or None."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _backup_age(
    bot: BotPlan, program: ProgramState | None, health: Health, backups: BackupSettings, now: float
) -> Finding:
    """The bot's newest scheduled backup is at most two intervals old (one run may be late or
    still running). A bot without any backup passes while it has run less than that (a new bot
    has no database until it starts, so the job's first run may skip it), or while it does not
    run (the `running` check reports that; its age is then unknown)."""
    allowed = 2 * backups.interval_minutes * 60
    newest = health.newest_backup.get(bot.key)
    uptime = program.uptime_s if program and program.uptime_s is not None else None
    if newest is None:
        young = uptime is None or uptime <= allowed
        said = "has no backup" + (f" and has run {_duration(uptime)}" if uptime else "")
        ok = young
    else:
        age = now - newest
        ok = age <= allowed
        said = f"last good backup is {_duration(age)} old"
    return Finding(
        f"bot {bot.key}",
        "backup",
        ok,
        f"{bot.key} {said}; the schedule allows {_duration(allowed)} (twice "
        f"backups.interval_minutes: {backups.interval_minutes}): see `docker logs` of the "
        "host's backup job, or take one now with `botpool backup`",
    )


BOT_CHECKS = (_running, _crash_loop, _port, _api, _files, _config, _heartbeat, _stagnant)
