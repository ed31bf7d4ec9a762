"""botpool's Prometheus exporter: per pool and per bot, what the host really runs.

Runs in the host's monitoring container (botpool/core/monitoring.py), on the host's
network, as `python3 exporter.py CONFIG`. CONFIG (exporter.json, rendered by the converge)
names the pools and bots planned on this host and the hash of every file the converge
wrote into the pools. Every `interval_seconds` it reads, and keeps for the next scrape:
- each pool container's memory, memory limit and CPU time (the Docker API, via the socket),
- each bot's supervisor state, uptime and starts (supervisor_status.py in its pool, which
  prints what `supervisorctl status` prints for half its CPU; read again only when the
  pool's processes changed, a program is between states, or a minute passed: a `docker exec`
  of supervisorctl cost about 0.1 CPU-second, which every pool paid every cycle, about 2 %
  of a 2-core host's CPU for 5 pools; StatusCache),
- whether each bot's API answers `/api/v1/ping` on its 127.0.0.1 port, and with the login
  of the bot's own config.json (read as the probe reads it: botpool/payloads/probe.py, shipped
  beside this file) its heartbeat, open and closed trades, closed profit, wallet and the age
  of its last trade, and the last warning of its log (for BotStagnant's reason),
- each bot's PSS: every process of the bot's own uid in its pool (each bot runs as its own
  uid; a zygote's child takes its launcher's), from the host's /proc smaps_rollup,
- how many of the converge's files in the pools are missing or differ (out of sync).
A planned bot whose pool is gone counts as not running: that is what BotDown is for.

Sampling in a loop rather than on each scrape: a scrape costs nothing, and a slow engine
never makes Prometheus time out. Bots are untrusted: their API answers are read bounded
(probe.call: size, per-call timeout, no redirect) within a per-bot deadline, a figure of
the wrong type is left out, files are hashed only when they are regular files (no link is
followed), and the login is used for the call only: never a label, never printed.
Needs prometheus_client and the Docker SDK (Debian's python3-prometheus-client,
python3-docker); the parts tests read (parsing, counting, metrics) need neither.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from botpool.payloads import probe
except ImportError:  # in the monitoring container: probe.py lies beside this file
    import probe  # type: ignore[no-redef]

POOLS = "/pools"  # the deployment's pools folder, mounted read-only
PROC = "/host/proc"  # the host's /proc, read-only (pids of docker top are the host's)
CALL_TIMEOUT = 2.0  # one API call
BOT_DEADLINE = 5.0  # every call to one bot in one cycle
FILE_MAX_BYTES = 16 << 20
STATUS_MAX_BYTES = 8192
LOG_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ - ")  # varies: not in a label
STATES = {"RUNNING", "STARTING", "BACKOFF", "STOPPED", "STOPPING", "EXITED", "FATAL", "UNKNOWN"}


@dataclass(frozen=True)
class Program:
    state: str
    pid: int | None
    uptime_s: int | None


@dataclass(frozen=True)
class PoolReading:
    """One pool container as the engine and its supervisord show it."""

    running: bool
    memory_bytes: float = 0
    limit_bytes: float = 0
    cpu_seconds: float = 0
    programs: dict[str, Program] = field(default_factory=dict)
    pss: dict[str, int] = field(default_factory=dict)  # program -> PSS in bytes


@dataclass(frozen=True)
class BotAnswer:
    """What one bot's API and log said in one cycle; None: not said, or not a number."""

    api_up: bool
    heartbeat_ts: float | None = None
    trades_open: float | None = None
    trades_closed: float | None = None
    profit_closed_coin: float | None = None
    wallet_coin: float | None = None
    last_trade_ts: float | None = None  # when its latest trade opened; None: never
    last_warning: str | None = None


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str  # gauge | counter
    help: str
    labels: dict[str, str]
    value: float


def parse_status(text: str) -> dict[str, Program]:
    """`supervisorctl status` output (supervisor_status.py prints the same): NAME STATE
    [pid N, uptime H:MM:SS | message]."""
    programs = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2 or parts[1] not in STATES:
            continue
        pid = uptime = None
        rest = parts[2] if len(parts) > 2 else ""
        if rest.startswith("pid "):
            pid_text, _, uptime_text = rest[4:].partition(", uptime ")
            pid = int(pid_text) if pid_text.isdigit() else None
            uptime = _seconds(uptime_text)
        programs[parts[0]] = Program(parts[1], pid, uptime)
    return programs


def _seconds(text: str) -> int | None:
    days = 0
    if "day" in text:
        day_text, _, text = text.partition(", ")
        days = int(day_text.split()[0]) if day_text.split()[0].isdigit() else 0
    try:
        h, m, s = (int(x) for x in text.strip().split(":"))
    except ValueError:
        return None
    return days * 86400 + h * 3600 + m * 60 + s


STATUS_EVERY = 60.0  # seconds: a pool's supervisor status is read at least this often
STEADY = {"RUNNING", "STOPPED", "EXITED", "FATAL"}  # change only with a process's start or end


@dataclass(frozen=True)
class Status:
    """A pool's supervisor status as read, and the pool's processes at that moment."""

    programs: dict[str, Program]
    pids: frozenset[int]
    at: float  # time.monotonic()


class StatusCache:
    """Each pool's last supervisor status, while it still says what a new read would.

    A program changes state by starting or ending a process (seen in the pool's process
    list, which the exporter reads anyway) except in the passing states (STARTING, BACKOFF,
    STOPPING): so the status is read again when the processes differ from those it was read
    with, when a program is in a passing state, or after STATUS_EVERY; otherwise it is the
    same, with each running program's uptime counted on."""

    def __init__(self, every: float = STATUS_EVERY) -> None:
        self.every = every
        self.pools: dict[str, Status] = {}

    def get(self, pool: str, pids: frozenset[int], now: float) -> dict[str, Program] | None:
        """The status brought to now, or None: read it again."""
        last = self.pools.get(pool)
        if last is None or now - last.at >= self.every or pids != last.pids:
            return None
        if any(p.state not in STEADY for p in last.programs.values()):
            return None
        passed = int(now - last.at)
        return {
            name: Program(p.state, p.pid, None if p.uptime_s is None else p.uptime_s + passed)
            if p.state == "RUNNING"
            else p
            for name, p in last.programs.items()
        }

    def put(
        self, pool: str, programs: dict[str, Program], pids: frozenset[int], now: float
    ) -> None:
        self.pools[pool] = Status(programs, pids, now)


class Starts:
    """Counts each bot's starts seen: a new pid after a known one. The first pid seen is no
    start (the exporter may start long after the bot), so a restarted exporter adds none."""

    def __init__(self) -> None:
        self.last_pid: dict[tuple[str, str], int] = {}
        self.count: dict[tuple[str, str], int] = {}

    def see(self, key: tuple[str, str], pid: int | None) -> int:
        if pid is not None:
            if key in self.last_pid and self.last_pid[key] != pid:
                self.count[key] = self.count.get(key, 0) + 1
            self.last_pid[key] = pid
        return self.count.get(key, 0)


def out_of_sync(manifest: dict[str, str], pools: str = POOLS) -> int:
    """How many files the converge wrote are missing, not regular files, or changed."""
    return sum(1 for path, digest in manifest.items() if file_hash(f"{pools}/{path}") != digest)


def file_hash(path: str) -> str | None:
    """sha256 of a regular file, never through a link at its end; None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > FILE_MAX_BYTES:
            return None
        return hashlib.sha256(f.read()).hexdigest()


def number(value: Any) -> float | None:
    """A figure from a bot's answer: a finite int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def ask(pools: str, pool: str, bot: dict[str, Any]) -> BotAnswer:
    """Ping the bot, then read its figures with the login of its own config (as the probe
    does); the whole within BOT_DEADLINE. Anything going wrong leaves figures out."""
    port, folder = bot["port"], f"{pool}/bots/{bot['name']}"
    try:
        with probe.time_limit(BOT_DEADLINE, f"more than {BOT_DEADLINE:g} s"):
            if probe.call(port, "ping", CALL_TIMEOUT).get("status") != "pong":
                return BotAnswer(api_up=False)
    except Exception:  # noqa: BLE001 - a bot that does not answer well is just down
        return BotAnswer(api_up=False)
    figures: dict[str, float | None] = {}
    try:
        login = probe.api_login(probe.read_config(Path(pools), folder))
        with probe.time_limit(BOT_DEADLINE, f"more than {BOT_DEADLINE:g} s"):
            figures = api_figures(port, login)
    except Exception:  # noqa: BLE001 - a figure the bot does not give is left out
        pass
    return BotAnswer(api_up=True, last_warning=warning(pools, folder), **figures)


def api_figures(port: int, login: tuple[str, str]) -> dict[str, float | None]:
    """Heartbeat, trades, profit and wallet from the bot's API (freqtrade's /health,
    /count, /profit, /balance); a field of the wrong type is None."""
    health = probe.call(port, "health", CALL_TIMEOUT, login)
    count = probe.call(port, "count", CALL_TIMEOUT, login)
    profit = probe.call(port, "profit", CALL_TIMEOUT, login)
    balance = probe.call(port, "balance", CALL_TIMEOUT, login)
    latest_ms = number(profit.get("latest_trade_timestamp"))
    return {
        "heartbeat_ts": number(health.get("last_process_ts")),
        "trades_open": number(count.get("current")),
        "trades_closed": number(profit.get("closed_trade_count")),
        "profit_closed_coin": number(profit.get("profit_closed_coin")),
        "wallet_coin": number(balance.get("total")),
        "last_trade_ts": latest_ms / 1000 if latest_ms else None,  # 0: no trade yet
    }


def warning(pools: str, folder: str) -> str | None:
    """The last warning of the bot's log, as the checks show it (URLs hidden, control
    characters replaced), without its time stamp: one series per distinct warning."""
    try:
        text = probe.last_warning(probe.log_tail(Path(pools), f"{folder}/logs/freqtrade.log"))
    except probe.Unreadable:
        return None
    return LOG_STAMP.sub("", probe.printable(text)) if text else None


# --- PSS: each bot's processes, as the kernel accounts them ------------------------------


def proc_text(proc: str, host_pid: int, name: str) -> str | None:
    """/proc/PID/NAME of a host process, read bounded; None if it is gone or unreadable."""
    try:
        with open(f"{proc}/{host_pid}/{name}", "rb") as file:
            return file.read(STATUS_MAX_BYTES).decode(errors="replace")
    except OSError:
        return None


def namespace_pid(proc: str, host_pid: int) -> int | None:
    """The pid a host process has in its own (the pool's) namespace: NSpid's last field."""
    for line in (proc_text(proc, host_pid, "status") or "").splitlines():
        if line.startswith("NSpid:"):
            last = line.split()[-1]
            return int(last) if last.isdigit() else None
    return None


def pss_bytes(proc: str, host_pid: int) -> int | None:
    """PSS of one process (shared pages split among their sharers), from smaps_rollup."""
    match = re.search(r"^Pss:\s+(\d+) kB", proc_text(proc, host_pid, "smaps_rollup") or "", re.M)
    return int(match[1]) * 1024 if match else None


def bot_pss(proc: str, processes: list[tuple[int, int]], program_pid: int | None) -> int | None:
    """PSS of a bot: every process of its pool (host pid, uid) with the uid of its program.

    program_pid is supervisor's (the pool's namespace). Each bot runs as its own uid, so
    its uid gathers its process tree in both runtimes: freqtrade and its children, or the
    zygote's launcher and the child the zygote forked for it. None: not found or unreadable.
    """
    if program_pid is None:
        return None
    uids = [uid for pid, uid in processes if namespace_pid(proc, pid) == program_pid]
    if not uids or uids[0] == 0:  # not found, or root: never a bot's own uid
        return None
    sizes = [pss_bytes(proc, pid) for pid, uid in processes if uid == uids[0]]
    return sum(s for s in sizes if s is not None) if any(s is not None for s in sizes) else None


BOT_FIGURES = (  # BotAnswer field, metric, help: a gauge each, left out when None
    ("trades_open", "botpool_bot_trades_open", "trades open now"),
    ("trades_closed", "botpool_bot_trades_closed", "trades closed so far"),
    ("profit_closed_coin", "botpool_bot_profit_closed_coin", "closed profit, stake currency"),
    ("wallet_coin", "botpool_bot_wallet_coin", "total wallet, stake currency"),
)


def samples(
    config: dict[str, Any],
    readings: dict[str, PoolReading | None],
    answers: Callable[[str, dict[str, Any]], BotAnswer],
    starts: Starts,
    unsynced: int,
    now: float,
) -> list[Sample]:
    """The metrics of one cycle, from what was read (None: the pool's container is gone).
    answers(pool, bot) asks a running bot; a bot that does not run is not asked."""
    out = []
    for pool in config["pools"]:
        reading = readings.get(pool["container"]) or PoolReading(running=False)
        labels = {"pool": pool["name"], "user": pool["user"]}
        out += [
            Sample("botpool_pool_up", "gauge", "the pool container runs", labels, reading.running),
            Sample(
                "botpool_pool_memory_bytes",
                "gauge",
                "memory the pool container uses (without page cache)",
                labels,
                reading.memory_bytes,
            ),
            Sample(
                "botpool_pool_memory_limit_bytes",
                "gauge",
                "memory limit of the pool container",
                labels,
                reading.limit_bytes,
            ),
            Sample(
                "botpool_pool_cpu_seconds",
                "counter",
                "CPU time the pool container used",
                labels,
                reading.cpu_seconds,
            ),
        ]
        for bot in pool["bots"]:
            program = reading.programs.get(bot["program"])
            running = program is not None and program.state == "RUNNING"
            answer = answers(pool["name"], bot) if running else BotAnswer(api_up=False)
            out += bot_samples(
                {**labels, "bot": bot["name"]},
                program if running else None,
                answer,
                starts.see((pool["name"], bot["name"]), program.pid if program else None),
                reading.pss.get(bot["program"]),
                now,
            )
    out.append(
        Sample(
            "botpool_host_out_of_sync_files",
            "gauge",
            "files the last converge wrote into the pools that are missing or differ",
            {},
            unsynced,
        )
    )
    return out


def bot_samples(
    labels: dict[str, str],
    program: Program | None,
    answer: BotAnswer,
    starts: int,
    pss: int | None,
    now: float,
) -> list[Sample]:
    """One bot's metrics (program: None unless RUNNING); a figure not known is left out."""

    def gauge(name: str, text: str, value: float, extra: dict[str, str] | None = None) -> Sample:
        return Sample(name, "gauge", text, {**labels, **(extra or {})}, value)

    out = [
        gauge("botpool_bot_running", "supervisor says RUNNING", program is not None),
        gauge("botpool_bot_api_up", "the bot's API answers /api/v1/ping", answer.api_up),
        Sample(
            "botpool_bot_starts",
            "counter",
            "starts of the bot seen by this exporter (a new pid)",
            labels,
            starts,
        ),
        gauge(
            "botpool_bot_uptime_seconds",
            "seconds since supervisor started the bot",
            (program.uptime_s or 0) if program else 0,
        ),
    ]
    if answer.heartbeat_ts is not None:
        age = max(0.0, now - answer.heartbeat_ts)
        out.append(gauge("botpool_bot_heartbeat_age_seconds", "since the bot loop last ran", age))
    if answer.last_trade_ts is not None:
        age = max(0.0, now - answer.last_trade_ts)
        out.append(gauge("botpool_bot_last_trade_age_seconds", "since its last trade opened", age))
    out += [
        gauge(metric, text, value)
        for field_name, metric, text in BOT_FIGURES
        if (value := getattr(answer, field_name)) is not None
    ]
    if pss is not None:
        out.append(gauge("botpool_bot_pss_bytes", "PSS of the bot's processes", pss))
    if answer.last_warning:
        out.append(
            gauge(
                "botpool_bot_last_warning_info",
                "the last warning of the bot's log (URLs hidden), for alerts to show",
                1,
                {"warning": answer.last_warning},
            )
        )
    return out


# --- the engine: what needs the Docker SDK -----------------------------------------------


def read_pool(
    client: Any,
    container: str,
    status_command: list[str],
    proc: str,
    statuses: StatusCache | None = None,
) -> PoolReading | None:
    """A pool container's memory, limit, CPU time, programs and each program's PSS; None
    if it does not exist. The programs come from statuses while it may say (StatusCache)."""
    import docker.errors  # type: ignore[import-untyped,unused-ignore]

    try:
        found = client.containers.get(container)
    except docker.errors.NotFound:
        return None
    if found.status != "running":
        return PoolReading(running=False)
    stats = found.stats(stream=False)
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0)
    top = found.top(ps_args="-eo pid,uid")  # host pids (the engine runs ps on the host)
    processes = [
        (int(row[0]), int(row[1]))
        for row in top.get("Processes") or []
        if len(row) >= 2 and row[0].isdigit() and row[1].isdigit()
    ]
    pids, now = frozenset(pid for pid, _ in processes), time.monotonic()
    programs = statuses.get(container, pids, now) if statuses is not None else None
    if programs is None:
        result = found.exec_run(status_command, demux=False)
        programs = parse_status(result.output.decode(errors="replace"))
        if statuses is not None:  # (a program that changed since `top` changes the next one)
            statuses.put(container, programs, pids, now)
    pss = {name: bot_pss(proc, processes, program.pid) for name, program in programs.items()}
    return PoolReading(
        running=True,
        memory_bytes=max(0, memory.get("usage", 0) - cache),
        limit_bytes=memory.get("limit", 0),
        cpu_seconds=cpu / 1e9,
        programs=programs,
        pss={name: size for name, size in pss.items() if size is not None},
    )


def families(latest: list[Sample]) -> Iterator[Any]:
    """The samples as prometheus_client metric families (one per name)."""
    from prometheus_client.core import (  # type: ignore[import-not-found,unused-ignore]
        CounterMetricFamily,
        GaugeMetricFamily,
    )

    grouped: dict[str, list[Sample]] = {}
    for sample in latest:
        grouped.setdefault(sample.name, []).append(sample)
    for name, group in grouped.items():
        kind = CounterMetricFamily if group[0].kind == "counter" else GaugeMetricFamily
        family = kind(name, group[0].help, labels=sorted(group[0].labels))
        for sample in group:
            family.add_metric([sample.labels[k] for k in sorted(sample.labels)], sample.value)
        yield family


class Collector:
    """Serves the last cycle's samples to every scrape."""

    def __init__(self) -> None:
        self.latest: list[Sample] = []

    def collect(self) -> Iterator[Any]:
        yield from families(self.latest)


def main(argv: list[str]) -> int:
    import docker
    from prometheus_client import REGISTRY, start_http_server

    path = argv[0]
    config = json.loads(Path(path).read_text())
    collector = Collector()
    REGISTRY.register(collector)
    start_http_server(config["port"], addr=config["listen"])
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=30)
    starts = Starts()
    statuses = StatusCache()
    while True:
        began = time.monotonic()
        try:
            config = json.loads(Path(path).read_text())  # a converge may have changed the plan
            proc = config.get("proc", PROC)
            readings = {
                pool["container"]: read_pool(
                    client, pool["container"], config["supervisor_status"], proc, statuses
                )
                for pool in config["pools"]
            }
            unsynced = out_of_sync(config["manifest"])

            def answers(pool: str, bot: dict[str, Any]) -> BotAnswer:
                return ask(POOLS, pool, bot)

            collector.latest = samples(config, readings, answers, starts, unsynced, time.time())
        except Exception as exc:  # noqa: BLE001 - one failed cycle must not end the exporter
            print(f"cycle failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        time.sleep(max(1.0, config["interval_seconds"] - (time.monotonic() - began)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
