"""Benchmark converge on this machine with the 36-bot example (inventory/loadtest.yaml).

    .venv/bin/python bench/converge.py [--skip-compose] [--runtime zygote|process]

Prints, from one run: cold converge until every API answers; no-op converge wall time and
the number of commands it ran on the host; add-one-bot converge until the new bot answers;
the same 36 bots as one docker-compose service each (cold and no-op), the reference a user
would otherwise pick; PSS per bot and per pool from /proc/*/smaps_rollup.

It uses its own root (/var/tmp/botpool-bench), ports (20000+) and exchange profile, so it
leaves other deployments on this engine alone, and removes what it made at the end.
Needs the pool image built once (make up builds it); debian's docker-compose is installed
for the reference when missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.memory import pool_memory  # noqa: E402
from tests.e2e import Deployment, docker  # noqa: E402 - the same harness the tests use

WORK = Path("/var/tmp/botpool-bench")


def timed(func) -> tuple[float, object]:  # noqa: ANN001
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def loadtest_users() -> str:
    data = yaml.safe_load((REPO / "inventory" / "loadtest.yaml").read_text())
    return yaml.safe_dump(data["users"], default_flow_style=None, sort_keys=False)


def compose_reference(dep: Deployment, image: str) -> tuple[float, float]:
    """36 bots as 36 compose services, one container each, the usual alternative."""
    if not shutil.which("docker-compose"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "docker-compose"], check=True, capture_output=True
        )
    plan = dep.plan()
    directory = WORK / "compose"
    services = {}
    for bot in plan.bots:
        src = dep.root / "pools" / bot.pool / "bots" / bot.name
        dst = directory / bot.program
        shutil.copytree(
            src, dst, ignore=shutil.ignore_patterns("*.sqlite*", "logs"), dirs_exist_ok=True
        )
        (dst / "logs").mkdir(exist_ok=True)
        services[bot.program] = {
            "image": image,
            "user": "1000",
            "working_dir": "/bot",
            "command": "freqtrade trade --config config.json --userdir user_data",
            "volumes": [f"{dst}:/bot", f"{dep.root}/pools/{bot.pool}/strategies:/strategies:ro"],
            "ports": [f"127.0.0.1:{bot.host_port + 1000}:{bot.container_port}"],
            "networks": [dep.network(bot.user)],  # where its exchange is, by name
            "restart": "unless-stopped",
        }
    for service in services.values():  # its strategies folder moved next to it
        config = Path(service["volumes"][0].split(":")[0]) / "config.json"
        config.write_text(config.read_text().replace('"../../strategies"', '"/strategies"'))
    subprocess.run(["chown", "-R", "1000:1000", str(directory)], check=True)
    networks = {dep.network(user): {"external": True} for user in {b.user for b in plan.bots}}
    compose = {"version": "2.4", "services": services, "networks": networks}
    (directory / "docker-compose.yml").write_text(yaml.safe_dump(compose))
    up = ["docker-compose", "-p", "botpoolbench", "up", "-d"]
    cold, _ = timed(
        lambda: (
            subprocess.run(up, cwd=directory, check=True, capture_output=True),
            wait_ports([b.host_port + 1000 for b in plan.bots]),
        )
    )
    noop, _ = timed(lambda: subprocess.run(up, cwd=directory, check=True, capture_output=True))
    subprocess.run(
        ["docker-compose", "-p", "botpoolbench", "down"], cwd=directory, capture_output=True
    )
    return cold, noop


def wait_ports(ports: list[int], timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    pending = set(ports)
    while pending and time.monotonic() < deadline:
        for port in list(pending):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/ping", timeout=2).status_code == 200:
                    pending.discard(port)
            except httpx.HTTPError:
                pass
        time.sleep(1)
    if pending:
        raise SystemExit(f"ports never answered: {sorted(pending)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-compose", action="store_true")
    parser.add_argument("--runtime", choices=("zygote", "process"), default="zygote")
    args = parser.parse_args()
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    dep = Deployment("benchex", WORK / "deployment", 20000)
    dep.directory.mkdir()
    users = loadtest_users()
    dep.runtime = args.runtime
    dep.write(users, extra_yaml="hosts:\n  local: {memory_mb: 16384}\n")
    rows = []
    try:
        cold, _ = timed(lambda: (dep.converge(), dep.wait_answering(timeout=900)))
        rows.append(("cold converge, 36 bots, until every API answers", f"{cold:.1f} s"))

        noop_time, run = timed(lambda: dep.converge(verbose=True))
        rows.append(("no-op converge", f"{noop_time:.2f} s"))
        rows.append(("  commands run on the host", str(run.commands)))

        data = yaml.safe_load(users)
        data["carol"]["bots"].append({"name": "bot-13", "pairs": ["BTC/USDT"]})
        dep.write(
            yaml.safe_dump(data, default_flow_style=None, sort_keys=False),
            extra_yaml="hosts:\n  local: {memory_mb: 16384}\n",
        )
        env = {
            **os.environ,
            "BOTPOOL_LAYOUT": str(dep.layout),
            "BOTPOOL_SECRETS_DIR": str(dep.secrets.directory),
        }
        start = time.perf_counter()
        dep.converge()
        port = next(b.host_port for b in dep.plan().bots if b.key == "carol/bot-13")
        wait_ports([port])
        rows.append(("add one bot, until its API answers", f"{time.perf_counter() - start:.1f} s"))

        drift_time, drift_out = timed(
            lambda: json.loads(
                subprocess.run(
                    [str(REPO / ".venv/bin/botpool"), "drift", "inventory/local.py", "--json"],
                    cwd=REPO,
                    env=env,
                    capture_output=True,
                    text=True,
                ).stdout
            )
        )
        rows.append(
            (
                "botpool drift, 37 bots",
                f"{drift_time:.2f} s, {drift_out[0]['commands']} commands on the host",
            )
        )
        report = WORK / "checks.json"
        checks_time, _ = timed(
            lambda: subprocess.run(
                [
                    str(REPO / ".venv/bin/pytest"),
                    "checks/",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--checks-json",
                    str(report),
                ],
                cwd=REPO,
                env=env,
                capture_output=True,
            )
        )
        data = json.loads(report.read_text())
        failed = sum(t["outcome"] == "failed" for t in data["tests"])
        rows.append(
            (
                "pytest checks/, 37 bots",
                f"{checks_time:.2f} s, {len(data['tests'])} "
                f"tests ({failed} failed), {data['hosts'][0]['commands']} commands on the "
                "host, 1 connection",
            )
        )
        for test in data["tests"]:  # a check that fails is a finding: show it
            if test["outcome"] == "failed":
                rows.append(
                    ("  failed: " + test["test"].rsplit("::", 1)[-1], test["message"][:200])
                )

        pools = sorted(dep.plan().pools, key=lambda pool: pool.name)
        per_pool = {p.name: pool_memory(p.container) for p in pools}
        bots = [kib for memory in per_pool.values() for kib in memory.bots]
        rows.append(
            (
                f"PSS per bot ({args.runtime}: its own processes), mean",
                f"{sum(bots) / len(bots) / 1024:.0f} MiB (n={len(bots)})",
            )
        )
        for pool, memory in per_pool.items():
            rows.append(
                (f"PSS of pool {pool} ({len(memory.bots)} bots)", f"{memory.total / 1024:.0f} MiB")
            )
        rows.append(
            ("PSS of all pools", f"{sum(m.total for m in per_pool.values()) / 1024:.0f} MiB")
        )

        if not args.skip_compose:
            image = docker("inspect", "-f", "{{.Config.Image}}", pools[0].container).strip()
            cold_c, noop_c = compose_reference(dep, image)
            rows.append(
                (
                    "reference: docker-compose up -d, 36 services, cold (until answering)",
                    f"{cold_c:.1f} s",
                )
            )
            rows.append(("reference: docker-compose up -d, no-op", f"{noop_c:.2f} s"))
    finally:
        dep.teardown()
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
