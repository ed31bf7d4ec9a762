"""Density ideas about the allocators measured: one environment variable in zygote pools.

    .venv/bin/python bench/malloc.py [--minutes 20] [--env MALLOC_ARENA_MAX=2]

- MALLOC_ARENA_MAX=2 (the default): glibc gives each thread that allocates an arena of its
  own (up to 8 per core), and freed memory stays in its arena: a freqtrade bot has several
  threads (its loop, the API server's event loop, ...), so its heap may grow with the arenas.
- PYTHONMALLOC=malloc: Python's small objects from glibc's heaps instead of pymalloc's 1 MiB
  arenas, which go back to the kernel only when every object in them is gone (from glibc's
  heaps, malloc_trim can give back any whole free page). Measured with malloc_trim after each
  collection, since taken out again: README, "Where a zygote bot's memory goes".

Two zygote pools of 10 bots run side by side on one sandbox exchange with the same API
traffic (every bot's ping, status, profit, balance and trades every 10 s): `za` as botpool
renders it, `zb` with NAME=VALUE added to its zygote's environment (its children inherit the
zygote's allocators). Both pools' programs are restarted at the same moment,
then the PSS of each pool (bench/memory.py) is read 60 s later and every 5 minutes until
--minutes: one table, side by side. Own root (/var/tmp/botpool-malloc), ports 21500+; it
removes what it made.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.density import Traffic, table, users, write  # noqa: E402
from bench.memory import pool_memory  # noqa: E402
from tests.e2e import CTL, Deployment  # noqa: E402

WORK = Path("/var/tmp/botpool-malloc")


def add_environment(dep: Deployment, pool: str, name: str, value: str) -> None:
    conf = dep.root / "pools" / pool / "programs" / "zygote.conf"
    text = conf.read_text()
    assert "environment=" in text, text
    conf.write_text(text.replace("environment=", f'environment={name}="{value}",', 1))


def restart(dep: Deployment, pools: list[str]) -> None:
    """Every program of each pool at once: the zygote reads its new environment."""
    runs = [
        subprocess.Popen(
            ["docker", "exec", dep.container(p), *CTL.split(), "update"],
            stdout=subprocess.DEVNULL,
        )
        for p in pools
    ]
    for run in runs:
        run.wait()
    runs = [
        subprocess.Popen(
            ["docker", "exec", dep.container(p), *CTL.split(), "restart", "all"],
            stdout=subprocess.DEVNULL,
        )
        for p in pools
    ]
    for run in runs:
        run.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--env", default="MALLOC_ARENA_MAX=2", help="NAME=VALUE for zb")
    args = parser.parse_args()
    name, _, value = args.env.partition("=")
    if not name.isidentifier() or not value or '"' in value:
        parser.error(f"--env wants NAME=VALUE, not {args.env!r}")
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    dep = Deployment("malloc", WORK / "pools", 21500)
    dep.directory.mkdir()
    write(dep, {**users("za", "zygote", (10,)), **users("zb", "zygote", (10,))})
    pools = ["za10-pool-1", "zb10-pool-1"]
    rows: list[tuple[str, ...]] = []
    try:
        dep.converge()
        dep.wait_answering(timeout=900)
        add_environment(dep, pools[1], name, value)
        restart(dep, pools)
        dep.wait_answering(timeout=900)
        traffic = Traffic(dep)
        traffic.start()
        started = time.monotonic()
        marks = [1.0, *[m for m in range(5, int(args.minutes) + 1, 5)]]
        for mark in marks:
            time.sleep(max(0.0, mark * 60 - (time.monotonic() - started)))
            a, b = (pool_memory(dep.container(p)) for p in pools)
            rows.append(
                (
                    f"{mark:g} min",
                    f"{a.total / 1024:.0f}",
                    f"{b.total / 1024:.0f}",
                    f"{a.per_bot_mib:.1f}",
                    f"{b.per_bot_mib:.1f}",
                    f"{100 * (b.total - a.total) / max(a.total, 1):+.1f} %",
                )
            )
            print(rows[-1], flush=True)
        traffic.stop.set()
        print(
            table(
                (
                    "after restart",
                    "za MiB (as rendered)",
                    f"zb MiB ({args.env})",
                    "za per bot",
                    "zb per bot",
                    "zb vs za",
                ),
                rows,
            )
        )
        print(f"API calls {traffic.calls}, errors {traffic.errors}")
    finally:
        dep.teardown()
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
