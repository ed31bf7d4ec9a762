"""Is every bot really alive and useful? Pure evaluation of what a host showed.

Each finding names its subject and, when it fails, says why in words a person can act on:
a stagnant bot shows its wallet, stake, free slots, whitelist and last warning; a crash
loop shows its state and exits; memory shows the numbers against the limit.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from botpool.layout import CheckSettings
from botpool.plan import ZYGOTE_PROGRAM, BotPlan, HostPlan, PoolPlan
from botpool.probe import MARK
from botpool.snapshot import Snapshot

LOOPBACK = {"127.0.0.1", "::1"}


@dataclass
class Health:
    listening: dict[int, set[str]] = field(default_factory=dict)  # port -> addresses
    mem_available_mb: int | None = None
    container_memory: dict[str, tuple[float, float]] = field(default_factory=dict)  # MiB
    bots: dict[str, dict[str, Any]] = field(default_factory=dict)  # program -> probe report
    probe_error: str | None = None


@dataclass(frozen=True)
class Finding:
    subject: str  # "bot alice/btc-trend", "pool alice-pool-1", "host local"
    check: str  # running | api | config | heartbeat | stagnant | crash-loop | memory | port
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
        elif section == "probe":
            probe.append(line)
    try:
        health.bots = json.loads(probe[-1]) if probe else {}
    except (ValueError, IndexError):
        health.probe_error = " ".join(probe)[-500:] or "no answer"
    return health


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
    host: HostPlan, snap: Snapshot, health: Health, limits: CheckSettings, now: float | None = None
) -> list[Finding]:
    """Every check of one host, passed or failed, in a stable order."""
    now = time.time() if now is None else now
    findings: list[Finding] = []
    for pool in host.pools:
        findings += _pool(pool, snap, health, limits)
        for bot in pool.bots:
            findings += _bot(bot, snap, health, limits, now)
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
    container = snap.containers.get(pool.name)
    out = [
        Finding(
            subject,
            "container",
            bool(container and container.running),
            f"container {pool.name} is {'stopped' if container else 'missing'}: "
            "run a converge to recreate or start it",
        )
    ]
    answered = pool.name in snap.programs and pool.name not in snap.supervisor_errors
    out.append(
        Finding(
            subject,
            "supervisord",
            answered,
            f"supervisord in {pool.name} does not answer: "
            f"{snap.supervisor_errors.get(pool.name, 'no status')}",
        )
    )
    if pool.runtime == "zygote":
        zygote = snap.programs.get(pool.name, {}).get(ZYGOTE_PROGRAM)
        out.append(
            Finding(
                subject,
                "zygote",
                bool(zygote and zygote.state in ("RUNNING", "STARTING")),
                f"the zygote of {pool.name} is {zygote.state if zygote else 'absent'}: no bot "
                f"of the pool can start; see logs/zygote.log in the pool's folder",
            )
        )
    used, limit = health.container_memory.get(pool.name, (0.0, 0.0))
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


def _bot(
    bot: BotPlan, snap: Snapshot, health: Health, limits: CheckSettings, now: float
) -> list[Finding]:
    subject = f"bot {bot.key}"
    program = snap.programs.get(bot.pool, {}).get(bot.program)
    report = health.bots.get(bot.program, {})
    state = program.state if program else "absent"
    out = [
        Finding(
            subject,
            "running",
            # STARTING lasts startsecs at most: then RUNNING, or BACKOFF (which fails here)
            state in ("RUNNING", "STARTING"),
            f"program {bot.program} in {bot.pool} is {state}"
            + (
                f"; last warning: {report.get('last_warning')}"
                if report.get("last_warning")
                else ""
            ),
        )
    ]
    exits = report.get("exits_last_hour", 0)
    out.append(
        Finding(
            subject,
            "crash-loop",
            state not in ("FATAL", "BACKOFF") and exits <= limits.max_exits_per_hour,
            f"{bot.program} is {state} and exited {exits} times in the last hour "
            f"(checks.max_exits_per_hour: {limits.max_exits_per_hour}); last "
            f"warning: {report.get('last_warning') or 'none logged'}",
        )
    )
    addresses = health.listening.get(bot.host_port, set())
    out.append(
        Finding(
            subject,
            "port",
            bool(addresses) and addresses <= LOOPBACK,
            f"port {bot.host_port} listens on {sorted(addresses) or 'nothing'}; "
            "it must listen on 127.0.0.1 only",
        )
    )
    error = report.get("error") or health.probe_error
    out.append(
        Finding(
            subject,
            "api",
            bool(report.get("ping")) and not error,
            f"the API at 127.0.0.1:{bot.host_port} does not answer: {error or 'no ping'}",
        )
    )
    config = report.get("config") or {}
    s = bot.settings
    expected = {
        "bot_name": bot.program,
        "dry_run": s.dry_run,
        "strategy": s.strategy,
        "stake_amount": float(s.stake_amount),
    }
    seen = {
        k: (
            float(config[k]) if k == "stake_amount" and config.get(k) is not None else config.get(k)
        )
        for k in expected
    }
    wrong = [k for k in expected if seen[k] != expected[k]]
    out.append(
        Finding(
            subject,
            "config",
            bool(config) and not wrong,
            f"show_config differs from the plan in {', '.join(wrong) or 'everything'}: "
            "run a converge",
        )
    )
    last = report.get("last_process_ts")
    age = now - last if isinstance(last, (int, float)) else None
    out.append(
        Finding(
            subject,
            "heartbeat",
            age is not None and age <= limits.heartbeat_max_age_seconds,
            f"the bot loop of {bot.program} last ran "
            f"{'never' if age is None else _duration(age) + ' ago'} (limit "
            f"{limits.heartbeat_max_age_seconds} s): it is stuck or not started",
        )
    )
    uptime = program.uptime_s if program and program.uptime_s is not None else 0
    trades = report.get("trade_count")
    stagnant = trades == 0 and uptime >= limits.stagnant_after_minutes * 60
    count = report.get("count") or {}
    wallet = report.get("wallet") or {}
    free_slots = (count.get("max") or 0) - (count.get("current") or 0)
    out.append(
        Finding(
            subject,
            "stagnant",
            not stagnant,
            f"{bot.program} has run {_duration(uptime)} with 0 trades "
            f"(checks.stagnant_after_minutes: {limits.stagnant_after_minutes}): wallet "
            f"{wallet.get('free')} {s.stake_currency} free of {wallet.get('total')}, stake "
            f"{config.get('stake_amount', s.stake_amount)}, free trade slots {free_slots} of "
            f"{count.get('max')}, whitelist {report.get('whitelist')} pairs; last warning: "
            f"{report.get('last_warning') or 'none logged'}",
        )
    )
    return out
