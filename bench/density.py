"""Bot density: the two runtimes side by side, in one run on this machine.

    .venv/bin/python bench/density.py [--minutes 30] [--skip-example]

1. One deployment runs pools of 1, 5 and 10 bots under each runtime at once (users p1, p5,
   p10 with runtime process; z1, z5, z10 with runtime zygote: 32 bots trading on one sandbox
   exchange), with API traffic to every bot (ping, status, profit, balance, trades every
   10 s). PSS of each pool, per bot and per part (supervisord, zygote, bots) 60 s after
   every API answers, and again after --minutes.
2. Restart of one bot in each 10-bot pool, three times: from `supervisorctl restart` to the
   bot's /ping answering again (the old process must have stopped first).
3. Unless --skip-example: the 36-bot example (inventory/loadtest.yaml) under each runtime,
   one after the other: cold converge until every API answers, and its PSS after 60 s.
   Then 50 bots (5 pools of 10) under the zygote: the seed VPS's target.

Memory is PSS from /proc/<pid>/smaps_rollup (bench/memory.py). It uses its own root
(/var/tmp/botpool-density), ports (21000+) and exchange profile, and removes what it made.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.memory import PoolMemory, pool_memory  # noqa: E402
from tests.e2e import CTL, Deployment  # noqa: E402

WORK = Path("/var/tmp/botpool-density")
SIZES = (1, 5, 10)
ENDPOINTS = ("ping", "status", "profit", "balance", "trades")


def users(prefix: str, runtime: str, sizes: tuple[int, ...] = SIZES) -> dict[str, object]:
    return {
        f"{prefix}{n}": {"runtime": runtime, "bots": [{"name": f"b{i}"} for i in range(n)]}
        for n in sizes
    }


def write(dep: Deployment, data: dict[str, object]) -> None:
    dep.write(
        yaml.safe_dump(data, default_flow_style=None, sort_keys=False),
        extra_yaml="hosts:\n  local: {memory_mb: 20000}\n",
    )


class Traffic(threading.Thread):
    """Calls every bot's API every 10 s, as a dashboard would; counts answers and errors."""

    def __init__(self, dep: Deployment) -> None:
        super().__init__(daemon=True)
        self.targets = [(b.host_port, dep.secrets.api_credentials(b.key)) for b in dep.plan().bots]
        self.stop = threading.Event()
        self.calls = self.errors = 0

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.wait(10):
                for port, creds in self.targets:
                    for path in ENDPOINTS:
                        try:
                            client.get(
                                f"http://127.0.0.1:{port}/api/v1/{path}",
                                auth=(creds.username, creds.password),
                            ).raise_for_status()
                        except httpx.HTTPError:
                            self.errors += 1
                        self.calls += 1


def memory_rows(label: str, pools: dict[str, PoolMemory]) -> list[tuple[str, ...]]:
    rows = []
    for name, m in pools.items():
        runtime = "zygote" if m.zygote else "process"
        own = statistics.mean(m.bots) / 1024 if m.bots else 0.0
        rows.append(
            (
                label,
                runtime,
                f"{name} ({len(m.bots)} bots)",
                f"{m.total / 1024:.0f}",
                f"{m.per_bot_mib:.0f}",
                f"{own:.0f}",
                f"{m.zygote / 1024:.0f}" if m.zygote else "-",
                f"{m.supervisord / 1024:.0f}",
            )
        )
    return rows


def measure(dep: Deployment) -> dict[str, PoolMemory]:
    """Each pool's memory, by pool name (read from its container, <project>_<pool>)."""
    pools = sorted(dep.plan().pools, key=lambda pool: pool.name)
    return {p.name: pool_memory(p.container) for p in pools}


def ping(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v1/ping", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def restart_seconds(container: str, program: str, port: int) -> float:
    """From `supervisorctl restart` until /ping answers from the new process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        ["docker", "exec", container, *CTL.split(), "restart", program],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while ping(port):  # the old process answers until it has stopped
        time.sleep(0.02)
        if time.perf_counter() - start > 60:
            raise SystemExit(f"{program} never stopped")
    while not ping(port):
        time.sleep(0.02)
        if time.perf_counter() - start > 120:
            raise SystemExit(f"{program} never answered after its restart")
    elapsed = time.perf_counter() - start
    proc.wait()
    return elapsed


def cold(dep: Deployment) -> float:
    start = time.perf_counter()
    dep.converge()
    dep.wait_answering(timeout=900)
    return time.perf_counter() - start


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--skip-example", action="store_true")
    args = parser.parse_args()
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    memory: list[tuple[str, ...]] = []
    timing: list[tuple[str, ...]] = []
    dep = Deployment("densityex", WORK / "pools", 21000)
    dep.directory.mkdir()
    write(dep, {**users("p", "process"), **users("z", "zygote")})
    try:
        seconds = cold(dep)
        timing.append(
            (
                "both runtimes, 32 bots in 6 pools",
                "cold converge until every API answers",
                f"{seconds:.1f} s",
            )
        )
        traffic = Traffic(dep)
        traffic.start()
        started = time.monotonic()
        time.sleep(60)
        memory += memory_rows("60 s", measure(dep))
        for runtime, prefix in (("process", "p"), ("zygote", "z")):
            bot = next(b for b in dep.plan().bots if b.key == f"{prefix}10/b3")
            container = dep.container(bot.pool)
            runs = [restart_seconds(container, bot.program, bot.host_port) for _ in range(3)]
            timing.append(
                (
                    runtime,
                    "restart one bot until /ping answers (3 runs)",
                    " / ".join(f"{r:.1f}" for r in runs) + " s",
                )
            )
        time.sleep(max(0.0, args.minutes * 60 - (time.monotonic() - started)))
        memory += memory_rows(f"{args.minutes:g} min", measure(dep))
        traffic.stop.set()
        trades = {
            prefix: sum(
                dep.api(b.user, b.name, "trades").json()["total_trades"]
                for b in dep.plan().bots
                if b.user.startswith(prefix)
            )
            for prefix in ("p", "z")
        }
        timing.append(
            (
                "both",
                f"API traffic over {args.minutes:g} min",
                f"{traffic.calls} calls, {traffic.errors} errors; trades: process "
                f"{trades['p']}, zygote {trades['z']}",
            )
        )
    finally:
        dep.teardown()

    if not args.skip_example:
        example = yaml.safe_load((REPO / "inventory" / "loadtest.yaml").read_text())["users"]
        for runtime in ("process", "zygote"):
            dep = Deployment("densityex", WORK / f"example-{runtime}", 21000, runtime=runtime)
            dep.directory.mkdir()
            write(dep, example)
            try:
                seconds = cold(dep)
                timing.append(
                    (
                        runtime,
                        "36-bot example: cold converge until every API answers",
                        f"{seconds:.1f} s",
                    )
                )
                time.sleep(60)
                pools = measure(dep)
                memory += memory_rows("36-bot example, 60 s", pools)
                total = sum(m.total for m in pools.values()) / 1024
                memory.append(
                    (
                        "36-bot example, 60 s",
                        runtime,
                        "all pools (36 bots)",
                        f"{total:.0f}",
                        f"{total / 36:.0f}",
                        "",
                        "",
                        "",
                    )
                )
            finally:
                dep.teardown()
        dep = Deployment("densityex", WORK / "fifty", 21000, runtime="zygote")
        dep.directory.mkdir()
        write(dep, {f"f{i}": {"bots": [{"name": f"b{j}"} for j in range(10)]} for i in range(5)})
        try:
            seconds = cold(dep)
            timing.append(
                (
                    "zygote",
                    "50 bots in 5 pools: cold converge until every API answers",
                    f"{seconds:.1f} s",
                )
            )
            time.sleep(60)
            pools = measure(dep)
            total = sum(m.total for m in pools.values()) / 1024
            memory.append(
                (
                    "50 bots, 60 s",
                    "zygote",
                    "all 5 pools (50 bots)",
                    f"{total:.0f}",
                    f"{total / 50:.0f}",
                    "",
                    "",
                    "",
                )
            )
        finally:
            dep.teardown()

    print(
        table(
            ("when", "runtime", "pool", "PSS MiB", "per bot", "bot's own", "zygote", "supervisord"),
            memory,
        )
    )
    print()
    print(table(("runtime", "what", "figure"), timing))


if __name__ == "__main__":
    main()
