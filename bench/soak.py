"""Soak: 50 bots on a VPS the size of the seed's (7.8 GB, 2 CPUs, no swap) for hours.

    flock /tmp/botpool-e2e.lock .venv/bin/python bench/soak.py [--hours 2] [--bots 50]
        [--every 5] [--exit-at PCT] [--out /var/tmp/botpool-soak] [--keep]
    .venv/bin/python bench/soak.py --report [--out DIR]   # table and plot from the CSV so far

1. A "VPS in a container" (tests/harness/vps.py) limited to the seed's size, its inner
   engine's storage on a named volume (a tmpfs would count against the memory limit) and
   its containers' cgroups nested under its own (so the limit covers them).
2. Converged over SSH from this machine (the controller ships the images), 5 users x 10 bots,
   zygote runtime, trading on the sandbox, monitoring on (its memory counts; its alerts are
   recorded). The strategy (SandboxScalper) exits at +0.2 % or after 10 minutes: about 35
   trades a bot an hour, far more than a real bot makes. --exit-at PCT makes every bot exit at
   +PCT % or -PCT % only (freqtrade's minimal_roi and stoploss in the layout), so that trades
   last longer and come at a rate closer to a real fleet's; the report gives the rate.
3. Inside the VPS, bench/soak_inside.py calls every bot's API as a dashboard would (every
   10 s: ping, status, profit, balance, trades, health) on the VPS's 127.0.0.1.
4. Every --every minutes one row of samples.csv (and per pool and bot, detail.csv), written
   as it goes; raw.jsonl keeps every sample whole. At the end (or with --report at any time)
   memory.png and the pass criteria of issue 18.

Ctrl-C, SIGTERM or a crash remove the VPS and its volume (unless --keep) and keep the files.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.density import table  # noqa: E402
from bench.memory import classify  # noqa: E402
from tests.e2e import CTL, Deployment  # noqa: E402
from tests.harness import images  # noqa: E402
from tests.harness.vps import (  # noqa: E402
    Vps,
    docker,
    new_key,
    remove_orphans,
    start_vps,
    write_inventory,
)

DEFAULT_OUT = Path("/var/tmp/botpool-soak")
SEED = {"memory": "7800m", "cpus": "2"}  # the seed's VPS: 7.8 GB, 2 cores, no swap
# a VPS's cores are its own: its CPU comes before anything else this machine runs (the
# default weight is 1024), so other work here slows itself, not the soak
CPU_SHARES = "262144"
SEED_MEMORY_MIB = 7800
PROJECT = "soak"
BOT_BASE_PORT = 9000  # on the VPS's own 127.0.0.1
MONITORING_PORT = 19090  # Prometheus; botpool's exporter is + 3
PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "DOGE/USDT", "BNB/USDT", "ADA/USDT")
EXPECTED_ALERTS = {"", "n/a", "Watchdog"}  # nothing recorded, not measured, always firing
INSIDE = "/root/soak"  # the VPS's folder for the traffic script, its log and credentials
TRAFFIC_EVERY = 10.0  # seconds between two rounds of API calls to one bot
MIB = 1024
COLUMNS = (
    "time_utc",
    "elapsed_min",
    "bots_running",
    "pools_pss_mib",
    "pss_per_bot_mib",
    "bot_own_pss_mib_mean",
    "zygotes_pss_mib",
    "supervisord_pss_mib",
    "monitoring_pss_mib",
    "exchange_pss_mib",
    "other_containers_pss_mib",
    "vps_pss_mib",
    "vps_memory_mib",
    "vps_working_set_mib",
    "vps_anon_mib",
    "vps_limit_mib",
    "vps_available_mib",
    "cpu_percent",
    "oom_kills",
    "restarts",
    "exporter_starts",
    "unexpected_exits",
    "api_calls",
    "api_errors",
    "api_p50_ms",
    "api_p95_ms",
    "trades",
    "heartbeat_max_s",
    "alerts_firing",
)
DETAIL_COLUMNS = ("time_utc", "elapsed_min", "kind", "name", "pss_mib", "restarts", "exits")


# --- the VPS and its deployment ---------------------------------------------------------------


def layout_users(bots: int, per_user: int = 10, exit_at: float | None = None) -> str:
    """`bots` bots, 10 a user (u0, u1, ...), a few pairs spread among them; with exit_at,
    each exits a trade at +exit_at % or -exit_at % only."""
    users: dict[str, Any] = {}
    exits = {"minimal_roi": {"0": exit_at / 100}, "stoploss": -exit_at / 100} if exit_at else {}
    for i in range(bots):
        user = users.setdefault(f"u{i // per_user}", {"bots": []})
        bot: dict[str, Any] = {"name": f"b{i % per_user}", "pairs": [PAIRS[i % len(PAIRS)]]}
        user["bots"].append({**bot, "freqtrade": exits} if exits else bot)
    return yaml.safe_dump(users, default_flow_style=None, sort_keys=False)


def nest_inner_cgroups(vps: Vps) -> None:
    """Make the VPS's engine create its containers' cgroups below the VPS's own.

    The VPS sees the machine's cgroup tree (cgroup v1, host namespace): without this its
    engine would put each container beside the VPS, outside its memory limit. With a private
    cgroup namespace (the VPS's path is "/") they nest already.
    """
    lines = vps.exec("cat /proc/1/cgroup").splitlines()
    path = next((line.split(":", 2)[2] for line in lines if ":memory:" in line), "/")
    if path != "/":
        config = json.dumps({"cgroup-parent": path})
        vps.exec(f"mkdir -p /etc/docker && echo '{config}' > /etc/docker/daemon.json")


def credentials_json(dep: Deployment) -> bytes:
    """Every bot's port and API login, for the traffic script (never printed)."""
    bots = []
    for bot in dep.plan().bots:
        creds = dep.secrets.api_credentials(bot.key)
        bots.append(
            {
                "key": bot.key,
                "port": bot.host_port,
                "username": creds.username,
                "password": creds.password,
            }
        )
    return json.dumps(bots).encode()


def put(vps: Vps, path: str, data: bytes) -> None:
    """Write a file inside the VPS, 0600 from its first byte."""
    command = f"umask 077 && mkdir -p {INSIDE} && cat > {path}"
    docker("exec", "-i", vps.name, "sh", "-c", command, stdin=data)


def silent_bots(vps: Vps, ports: list[int]) -> list[int]:
    """The ports whose bot does not answer /ping yet (asked inside the VPS, one command)."""
    script = (
        "import json, sys, urllib.request\n"
        "def ok(p):\n"
        "    try:\n"
        "        u = f'http://127.0.0.1:{p}/api/v1/ping'\n"
        "        return b'pong' in urllib.request.urlopen(u, timeout=3).read()\n"
        "    except OSError:\n"
        "        return False\n"
        "print(json.dumps([p for p in json.loads(sys.argv[1]) if not ok(p)]))\n"
    )
    out = docker("exec", vps.name, "python3", "-c", script, json.dumps(ports), check=False)
    try:
        return list(json.loads(out))
    except ValueError:
        return ports


def wait_answering(vps: Vps, ports: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while silent := silent_bots(vps, ports):
        if time.monotonic() > deadline:
            raise SystemExit(f"bots on ports {silent} did not answer within {timeout:.0f} s")
        time.sleep(2)


@dataclass
class Setup:
    vps: Vps
    volume: str
    dep: Deployment


def start(
    out: Path, bots: int, events: dict[str, float], exit_at: float | None = None
) -> Iterator[Setup]:
    """A converged VPS with `bots` bots answering, yielded once; removed afterwards."""
    remove_orphans()  # VPSes of runs that were killed, then their volumes
    label = "botpool-test=soak"
    stale = docker("volume", "ls", "-q", "--filter", f"label={label}", "--filter", "dangling=true")
    for old in stale.split():
        docker("volume", "rm", old, check=False)
    volume = f"botpool-soak-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", "--label", label, volume)
    vps: Vps | None = None
    try:
        flags = ("--memory", SEED["memory"], "--memory-swap", SEED["memory"])
        vps = start_vps(
            new_key(out),
            run_flags=(*flags, "--cpus", SEED["cpus"], "--cpu-shares", CPU_SHARES),
            docker_volume=volume,
        )
        nest_inner_cgroups(vps)
        events["vps_started"] = time.time()
        dep = Deployment(PROJECT, out / "deploy", BOT_BASE_PORT, monitoring="{enabled: true}")
        dep.directory.mkdir(parents=True, exist_ok=True)
        dep.write(
            layout_users(bots, exit_at=exit_at),
            extra_yaml=f"hosts:\n  vps: {{memory_mb: {SEED_MEMORY_MIB}}}\n",
        )
        host = {"botpool_host": "vps", "botpool_image_build": "controller"}
        dep.inventory = str(
            write_inventory(
                dep.directory / "inventory.py", {vps: host}, botpool_image_cache=str(images.CACHE)
            )
        )
        images.saved_archive(images.pool_spec())  # built here once, shipped to the VPS
        log(f"VPS {vps.name} up; converging {bots} bots over SSH")
        run = dep.converge(check=False)
        (out / "converge.log").write_text(run.output)
        if run.returncode:
            raise SystemExit(f"the converge failed (see {out / 'converge.log'})")
        events["converged"] = time.time()
        wait_answering(vps, [b.host_port for b in dep.plan().bots], timeout=900)
        events["answering"] = time.time()
        yield Setup(vps, volume, dep)
    finally:
        if vps is not None and not KEEP:
            vps.remove()
        if not KEEP:
            docker("volume", "rm", "--force", volume, check=False)


KEEP = False  # --keep: set once by main(); start()'s cleanup reads it


def start_traffic(setup: Setup) -> None:
    put(setup.vps, f"{INSIDE}/soak_inside.py", (REPO / "bench" / "soak_inside.py").read_bytes())
    put(setup.vps, f"{INSIDE}/credentials.json", credentials_json(setup.dep))
    docker(
        "exec",
        "--detach",
        setup.vps.name,
        "python3",
        f"{INSIDE}/soak_inside.py",
        "traffic",
        f"{INSIDE}/credentials.json",
        f"{INSIDE}/traffic.jsonl",
        "--every",
        str(TRAFFIC_EVERY),
    )


# --- sampling ------------------------------------------------------------------------------------


@dataclass
class Sampler:
    """Turns raw samples from inside the VPS into CSV rows; keeps what spans samples."""

    setup: Setup
    out: Path
    every: float  # seconds
    started: float = field(default_factory=time.time)
    traffic_offset: int = 0
    # (container, program) -> the last pid seen, pid changes seen, exits before the first sample
    pids: dict[tuple[str, str], int] = field(default_factory=dict)
    restarts: dict[tuple[str, str], int] = field(default_factory=dict)
    first_exits: dict[tuple[str, str], int] | None = None
    first_starts: float | None = None
    trades: dict[str, int] = field(default_factory=dict)  # bot -> latest total_trades
    last_cpu: tuple[float, int] | None = None

    def raw(self) -> dict[str, Any]:
        dep = self.setup.dep
        spec = {
            "root": str(dep.root),
            "ctl": CTL.split(),
            "pools": {dep.container(p.name): p.name for p in dep.plan().pools},
            "exporter_port": MONITORING_PORT + 3,
            "prometheus_port": MONITORING_PORT,
            "window": int(self.every) + 60,
        }
        script = f"{INSIDE}/soak_inside.py"
        text = docker("exec", self.setup.vps.name, "python3", script, "sample", json.dumps(spec))
        return dict(json.loads(text))

    def traffic(self) -> list[dict[str, Any]]:
        """The traffic script's lines written since the last call (whole lines only)."""
        text = docker(
            "exec",
            self.setup.vps.name,
            "tail",
            "-c",
            f"+{self.traffic_offset + 1}",
            f"{INSIDE}/traffic.jsonl",
            check=False,
        )
        complete = text[: text.rfind("\n") + 1]
        self.traffic_offset += len(complete.encode())
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def take(self) -> None:
        raw = self.raw()
        rounds = self.traffic()
        with open(self.out / "raw.jsonl", "a") as f:
            f.write(json.dumps({"sample": raw, "traffic": rounds}) + "\n")
        row, detail = self.rows(raw, rounds)
        append_csv(self.out / "samples.csv", COLUMNS, [row])
        append_csv(self.out / "detail.csv", DETAIL_COLUMNS, detail)
        log(
            f"{row['elapsed_min']:>6} min  pools {row['pools_pss_mib']} MiB, "
            f"VPS {row['vps_working_set_mib']}/{row['vps_limit_mib']} MiB, "
            f"restarts {row['restarts']}, exits {row['unexpected_exits']}, "
            f"OOM {row['oom_kills']}, API {row['api_errors']}/{row['api_calls']} errors, "
            f"trades {row['trades']}, alerts [{row['alerts_firing']}]"
        )

    def rows(
        self, raw: dict[str, Any], rounds: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        dep = self.setup.dep
        now = float(raw["time"])
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elapsed = f"{(now - self.started) / 60:.1f}"
        plan = dep.plan()
        program_of = {b.key: b.program for b in plan.bots}
        containers: dict[str, list[list[Any]]] = raw["containers"]
        pool_containers = {dep.container(p.name): p.name for p in plan.pools}
        detail: list[dict[str, Any]] = []
        pools_kib = zygote_kib = supervisord_kib = 0
        bot_own: list[float] = []

        # restarts: a program whose pid changed since the previous sample
        running = 0
        for container, programs in raw["supervisor"].items():
            for program, (state, pid) in programs.items():
                running += state == "RUNNING" and program in program_of.values()
                key = (container, program)
                if pid is not None:
                    if key in self.pids and self.pids[key] != pid:
                        self.restarts[key] = self.restarts.get(key, 0) + 1
                    self.pids[key] = pid
        exits_now = {(c, p): n for c, counts in raw["exits"].items() for p, n in counts.items()}
        if self.first_exits is None:
            self.first_exits = exits_now
        exits = {k: n - self.first_exits.get(k, 0) for k, n in exits_now.items()}

        for container, pool in sorted(pool_containers.items()):
            rows = containers.get(container, [])
            memory = classify([(r[0], r[1], r[2], r[3]) for r in rows])
            pools_kib += memory.total
            zygote_kib += memory.zygote
            supervisord_kib += memory.supervisord
            programs = raw["supervisor"].get(container, {})
            detail.append(
                dict(
                    time_utc=stamp,
                    elapsed_min=elapsed,
                    kind="pool",
                    name=pool,
                    pss_mib=f"{memory.total / MIB:.1f}",
                    restarts=sum(self.restarts.get((container, p), 0) for p in programs),
                    exits=sum(exits.get((container, p), 0) for p in programs),
                )
            )
            by_pid = {r[0]: r for r in rows}
            for bot in (b for b in plan.bots if dep.container(b.pool) == container):
                program = program_of[bot.key]
                launcher = programs.get(program, [None, None])[1]
                own = [r[3] for r in rows if r[4] == bot.key.replace("/", "-")[:15]]
                kib = sum(own) + (by_pid[launcher][3] if launcher in by_pid else 0)
                bot_own.append(kib)
                detail.append(
                    dict(
                        time_utc=stamp,
                        elapsed_min=elapsed,
                        kind="bot",
                        name=bot.key,
                        pss_mib=f"{kib / MIB:.1f}",
                        restarts=self.restarts.get((container, program), 0),
                        exits=exits.get((container, program), 0),
                    )
                )

        def container_kib(name: str) -> int:
            return sum(r[3] for r in containers.get(name, []))

        monitoring = sum(container_kib(c) for c in containers if c.endswith("_monitoring"))
        exchange = sum(container_kib(c) for c in containers if "_exchange_" in c)
        other = sum(container_kib(c) for c in containers) - pools_kib - monitoring - exchange

        group = raw["cgroup"]
        working_set = group["usage"] - group["inactive_file"]
        limit = group["limit"]
        cpu = ""
        if self.last_cpu is not None:
            wall, ns = self.last_cpu
            cpu = f"{(group['cpu_ns'] - ns) / 1e9 / (now - wall) / float(SEED['cpus']) * 100:.1f}"
        self.last_cpu = (now, group["cpu_ns"])

        starts = raw["starts"]
        exporter_starts: object = "n/a"
        if starts is not None:
            total = sum(starts.values())
            if self.first_starts is None:
                self.first_starts = total
            exporter_starts = int(total - self.first_starts)

        latencies = sorted(lat for r in rounds for lat in r["latencies"])
        for r in rounds:
            if r.get("trades") is not None:
                self.trades[r["bot"]] = int(r["trades"])
        ages = [r["heartbeat_age"] for r in rounds if r.get("heartbeat_age") is not None]
        alerts = raw["alerts"]
        row = dict(
            time_utc=stamp,
            elapsed_min=elapsed,
            bots_running=running,
            pools_pss_mib=f"{pools_kib / MIB:.0f}",
            pss_per_bot_mib=f"{pools_kib / MIB / max(1, len(plan.bots)):.1f}",
            bot_own_pss_mib_mean=f"{statistics.mean(bot_own) / MIB:.1f}" if bot_own else "",
            zygotes_pss_mib=f"{zygote_kib / MIB:.0f}",
            supervisord_pss_mib=f"{supervisord_kib / MIB:.0f}",
            monitoring_pss_mib=f"{monitoring / MIB:.0f}",
            exchange_pss_mib=f"{exchange / MIB:.0f}",
            other_containers_pss_mib=f"{other / MIB:.0f}",
            vps_pss_mib=f"{raw['all_pss_kib'] / MIB:.0f}",
            vps_memory_mib=f"{group['usage'] / 2**20:.0f}",
            vps_working_set_mib=f"{working_set / 2**20:.0f}",
            vps_anon_mib=f"{group['anon'] / 2**20:.0f}" if "anon" in group else "",
            vps_limit_mib=f"{limit / 2**20:.0f}" if limit else "",
            vps_available_mib=f"{(limit - working_set) / 2**20:.0f}" if limit else "",
            cpu_percent=cpu,
            oom_kills=group["oom_kills"],
            restarts=sum(self.restarts.values()),
            exporter_starts=exporter_starts,
            unexpected_exits=sum(exits.values()),
            api_calls=sum(r["calls"] for r in rounds),
            api_errors=sum(len(r["errors"]) for r in rounds),
            api_p50_ms=f"{percentile(latencies, 50) * 1000:.0f}" if latencies else "",
            api_p95_ms=f"{percentile(latencies, 95) * 1000:.0f}" if latencies else "",
            trades=sum(self.trades.values()),
            heartbeat_max_s=f"{max(ages):.0f}" if ages else "",
            alerts_firing="n/a" if alerts is None else ";".join(sorted(map(alert_name, alerts))),
        )
        return row, detail


def alert_name(labels: dict[str, str]) -> str:
    subject = labels.get("bot") and f"{labels.get('user')}/{labels['bot']}" or labels.get("pool")
    return f"{labels.get('alertname')}({subject})" if subject else str(labels.get("alertname"))


def percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def append_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# --- the report -------------------------------------------------------------------------------


def read_samples(out: Path) -> list[dict[str, str]]:
    path = out / "samples.csv"
    if not path.exists():
        raise SystemExit(f"no samples in {out} yet ({path.name} is missing)")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def number(row: dict[str, str], column: str) -> float | None:
    try:
        return float(row[column])
    except (KeyError, ValueError):
        return None


def growth(rows: list[dict[str, str]], column: str) -> tuple[float, float, float] | None:
    """Least-squares growth of a column over the second half of the run, so that the
    start-up growth (candles and trades accumulating in every bot) weighs less: (MiB per
    hour, value at the last sample, projected at 48 h), or None with fewer than 3 samples."""
    points = [(number(r, "elapsed_min"), number(r, column)) for r in rows]
    pairs = [(t, v) for t, v in points if t is not None and v is not None]
    if not pairs:
        return None
    pairs = [(t, v) for t, v in pairs if t >= pairs[-1][0] / 2]
    if len(pairs) < 3 or pairs[-1][0] == pairs[0][0]:
        return None
    slope, intercept = statistics.linear_regression([t for t, _ in pairs], [v for _, v in pairs])
    return slope * 60, pairs[-1][1], intercept + slope * 48 * 60


def report(out: Path) -> str:
    rows = read_samples(out)
    meta = json.loads((out / "meta.json").read_text()) if (out / "meta.json").exists() else {}
    last = rows[-1]
    minutes = number(last, "elapsed_min") or 0.0
    limit = number(last, "vps_limit_mib") or SEED_MEMORY_MIB
    lines = [
        f"soak: {meta.get('bots', '?')} bots, {len(rows)} samples over {minutes:.0f} min "
        f"(planned {meta.get('hours', '?')} h), VPS limit {limit:.0f} MiB",
    ]
    if "startup_s" in meta:
        lines.append(f"startup: {meta['startup_s']}")
    trades, planned = number(last, "trades"), meta.get("bots")
    if trades is not None and isinstance(planned, int) and planned > 0 and minutes > 0:
        rate = trades / planned / (minutes / 60)
        lines.append(
            f"trades: {trades:.0f}, {rate:.1f} a bot an hour (exits: {meta.get('exits', '?')})"
        )
    verdicts: list[tuple[str, str, str, str]] = []

    def values(column: str) -> list[float]:
        return [v for r in rows if (v := number(r, column)) is not None]

    def maximum(column: str) -> float | None:
        return max(values(column), default=None)

    def mean(column: str) -> str:
        return f"{statistics.mean(values(column)):.0f}" if values(column) else "n/a"

    exits, restarts = maximum("unexpected_exits"), maximum("restarts")
    verdicts.append(
        (
            "unexpected bot exits",
            f"{exits:.0f} (pid changes: {restarts:.0f}, exporter starts: "
            f"{last.get('exporter_starts', 'n/a')})"
            if exits is not None and restarts is not None
            else "not measured",
            "0",
            verdict(exits is not None and exits == 0 and restarts == 0, exits is None),
        )
    )
    ooms = maximum("oom_kills")
    verdicts.append(
        ("OOM kills (VPS and its containers)", fmt(ooms), "0", verdict(ooms == 0, ooms is None))
    )
    calls = sum(number(r, "api_calls") or 0 for r in rows)
    errors = sum(number(r, "api_errors") or 0 for r in rows)
    p95 = maximum("api_p95_ms")
    share = errors / calls * 100 if calls else None
    verdicts.append(
        (
            "API errors",
            f"{errors:.0f} of {calls:.0f} calls ({share:.3f} %), worst p95 "
            + (f"{p95:.0f} ms" if p95 is not None else "n/a")
            if share is not None
            else "no calls recorded",
            "< 0.1 %",
            verdict(share is not None and share < 0.1, share is None),
        )
    )
    for column, what in (
        ("vps_pss_mib", "VPS memory, PSS of every process"),
        ("vps_working_set_mib", "VPS memory, cgroup working set"),
        ("vps_anon_mib", "VPS memory no swap can free (anonymous and shared)"),
    ):
        fit = growth(rows, column)
        if not values(column):  # a CSV of an older soak.py
            verdicts.append((f"{what}: growth, 48 h", "not measured", "", "not measured"))
            continue
        if fit is None:
            verdicts.append((f"{what}: growth, 48 h", "not measurable (< 3 samples)", "", "n/a"))
            continue
        per_hour, now, at_48h = fit
        short = " (a run under 2 h: early growth, not a forecast)" if minutes < 120 else ""
        verdicts.append(
            (
                f"{what}: growth, 48 h",
                f"{now:.0f} MiB now, {per_hour:+.0f} MiB/h, {at_48h:.0f} MiB at 48 h{short}",
                f"< {limit:.0f} MiB",
                verdict(at_48h < limit, False),
            )
        )
    alerts = sorted(
        {a for r in rows for a in r["alerts_firing"].split(";") if a not in EXPECTED_ALERTS}
    )
    measured = any(r["alerts_firing"] != "n/a" for r in rows)
    verdicts.append(
        (
            "alerts that fired (the Watchdog always does: the dead man's switch)",
            ", ".join(alerts) if alerts else ("none" if measured else "not measured"),
            "none",
            verdict(measured and not alerts, not measured),
        )
    )
    pools = number(last, "pools_pss_mib")
    lines += [
        "",
        table(("criterion", "measured", "target", "verdict"), verdicts),
        "",
        f"last sample ({minutes:.0f} min): pools {last['pools_pss_mib']} MiB PSS "
        f"({last['pss_per_bot_mib']} per bot, each bot's own {last['bot_own_pss_mib_mean']}), "
        f"zygotes {last['zygotes_pss_mib']}, supervisord {last['supervisord_pss_mib']}, "
        f"monitoring {last['monitoring_pss_mib']}, exchange {last['exchange_pss_mib']}, "
        f"other containers {last['other_containers_pss_mib']}; VPS PSS {last['vps_pss_mib']}, "
        f"working set {last['vps_working_set_mib']} of {last['vps_limit_mib']} MiB "
        f"(available {last['vps_available_mib']}); trades {last['trades']}; "
        f"heartbeat age max {maximum('heartbeat_max_s') or 'n/a'} s; "
        f"CPU {mean('cpu_percent')} % of {SEED['cpus']} CPUs on average",
    ]
    if pools is not None:
        lines.append(f"density goal (50 bots in at most 5,000 MiB PSS): {pools:.0f} MiB")
    fit = per_trade(out)
    if fit is not None:
        kib, base, r, bots = fit
        lines.append(
            f"each bot's own PSS at the last sample, against its trades ({bots} bots): "
            f"{base:.1f} MiB + {kib:.0f} KiB a trade (r = {r:.2f})"
        )
    try:
        plot(rows, out / "memory.png", limit)
        lines.append(f"plot: {out / 'memory.png'}")
    except ImportError:
        lines.append("no plot: matplotlib is missing (pip install -e '.[bench]')")
    text = "\n".join(lines)
    (out / "summary.txt").write_text(text + "\n")
    return text


def per_trade(out: Path) -> tuple[float, float, float, int] | None:
    """Each bot's own PSS at the last sample against its trade count, across the bots: (KiB
    a trade, MiB at no trade, correlation, bots), or None when it cannot be fitted. Growth
    that follows trades rather than the clock shows as a steady slope, sample after sample."""
    detail, raw = out / "detail.csv", out / "raw.jsonl"
    if not detail.exists() or not raw.exists():
        return None
    with detail.open() as f:
        bots = [r for r in csv.DictReader(f) if r["kind"] == "bot"]
    if not bots:
        return None
    last = max(float(r["elapsed_min"]) for r in bots)
    pss = {r["name"]: float(r["pss_mib"]) for r in bots if float(r["elapsed_min"]) == last}
    trades: dict[str, float] = {}
    with raw.open() as f:
        for line in f:
            for call in json.loads(line).get("traffic") or []:
                if isinstance(call.get("trades"), int | float):
                    trades[call["bot"]] = call["trades"]
    pairs = [(trades[bot], size) for bot, size in pss.items() if bot in trades]
    xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
    if len(pairs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    slope, intercept = statistics.linear_regression(xs, ys)
    return slope * 1024, intercept, statistics.correlation(xs, ys), len(pairs)


def fmt(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.0f}"


def verdict(passed: bool, unmeasured: bool) -> str:
    return "not measured" if unmeasured else ("pass" if passed else "FAIL")


def plot(rows: list[dict[str, str]], path: Path, limit: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [(number(r, "elapsed_min") or 0) / 60 for r in rows]

    def series(column: str) -> list[float]:
        return [number(r, column) or math.nan for r in rows]

    figure, (memory, restarts) = plt.subplots(
        2, 1, figsize=(10, 7), sharex=True, height_ratios=(3, 1)
    )
    for column, label in (
        ("vps_working_set_mib", "VPS working set (cgroup)"),
        ("vps_pss_mib", "VPS, PSS of every process"),
        ("vps_anon_mib", "VPS, anonymous and shared (no swap can free it)"),
        ("pools_pss_mib", "pools, PSS"),
        ("monitoring_pss_mib", "monitoring, PSS"),
    ):
        memory.plot(hours, series(column), marker=".", label=label)
    memory.axhline(limit, color="red", linestyle="--", label=f"VPS limit {limit:.0f} MiB")
    memory.set_ylabel("MiB")
    memory.set_ylim(0, limit * 1.05)
    per_bot = memory.twinx()
    per_bot.plot(hours, series("pss_per_bot_mib"), color="grey", linestyle=":", label="per bot")
    per_bot.set_ylabel("PSS per bot, MiB (dotted)")
    per_bot.set_ylim(0, max([250.0, *(v for v in series("pss_per_bot_mib") if v == v)]) * 1.2)
    memory.legend(loc="lower right", fontsize="small")
    memory.set_title("botpool soak: memory and restarts")
    for column, label in (
        ("restarts", "restarts (pid changes)"),
        ("unexpected_exits", "unexpected exits"),
        ("oom_kills", "OOM kills"),
    ):
        restarts.step(hours, series(column), where="post", label=label)
    counts = [v for c in ("restarts", "unexpected_exits", "oom_kills") for v in series(c)]
    restarts.set_ylim(-0.05, max([1.0, *(v for v in counts if not math.isnan(v))]) * 1.2)
    restarts.yaxis.get_major_locator().set_params(integer=True)
    restarts.set_xlabel("hours")
    restarts.set_ylabel("count")
    restarts.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# --- the run --------------------------------------------------------------------------------------


def soak(args: argparse.Namespace) -> None:
    out: Path = args.out
    if (out / "samples.csv").exists():
        raise SystemExit(f"{out / 'samples.csv'} exists: give another --out, or --report")
    import matplotlib  # noqa: F401 - fail now, not after hours

    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"bots": args.bots, "hours": args.hours, "every_min": args.every}
    meta["exits"] = f"+/-{args.exit_at:g} %" if args.exit_at else "the strategy's own"
    events: dict[str, float] = {"start": time.time()}
    setups = start(out, args.bots, events, args.exit_at)
    setup = next(setups)
    try:
        meta["vps"] = setup.vps.name
        meta["startup_s"] = (
            f"VPS {events['vps_started'] - events['start']:.0f} s, converge "
            f"{events['converged'] - events['vps_started']:.0f} s, every bot answering "
            f"{events['answering'] - events['converged']:.0f} s later; total "
            f"{events['answering'] - events['start']:.0f} s"
        )
        (out / "meta.json").write_text(json.dumps(meta, indent=2))
        log(f"startup: {meta['startup_s']}")
        start_traffic(setup)
        sampler = Sampler(setup, out, args.every * 60)
        end = sampler.started + args.hours * 3600
        for due in sample_times(sampler.started, end, sampler.every):
            time.sleep(max(0.0, due - time.time()))
            sampler.take()
        print(report(out))
    finally:
        if KEEP:
            log(f"kept: VPS {setup.vps.name}, volume {setup.volume}")
        setups.close()  # runs start()'s cleanup
        log(f"the samples are in {out}")


def sample_times(start: float, end: float, every: float) -> Iterator[float]:
    """When to sample: at the start, every `every` seconds on that grid (a slow sample does
    not shift the next ones), and at the end."""
    due = start
    while due < end:
        yield due
        due += every
    yield end


def positive(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def percent(text: str) -> float:
    """A loss freqtrade accepts: its stoploss goes no lower than -1 (all of the stake)."""
    value = positive(text)
    if value >= 100:
        raise argparse.ArgumentTypeError(f"must be below 100, not {text!r}")
    return value


def main() -> None:
    global KEEP
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=positive, default=2.0, help="how long (default 2)")
    parser.add_argument("--bots", type=int, default=50, help="bots, 10 a user (default 50)")
    parser.add_argument("--every", type=positive, default=5.0, help="minutes between samples")
    parser.add_argument(
        "--exit-at", type=percent, default=None, help="exit trades at +/- this %% only"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="CSV, plot, summary")
    parser.add_argument("--report", action="store_true", help="only the table and plot so far")
    parser.add_argument("--keep", action="store_true", help="leave the VPS running at the end")
    args = parser.parse_args()
    if args.report:
        print(report(args.out))
        return
    if not 1 <= args.bots <= 200:
        parser.error("--bots must be between 1 and 200")
    KEEP = args.keep
    # clean up on Ctrl-C and SIGTERM, also when started in the background by a shell that
    # ignores SIGINT for its background jobs (Python then keeps ignoring it)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        soak(args)
    except KeyboardInterrupt:
        sys.exit("interrupted; `bench/soak.py --report` reports the samples taken so far")


if __name__ == "__main__":
    main()
