"""Benchmark the dashboard: fleet page render time, and remote commands per refresh.

    .venv/bin/python bench/dashboard.py [--bots 50] [--hosts 2]

The host answers are SYNTHETIC (no host is contacted): a generated layout of N bots on H
hosts is planned for real; each host "answers" every command with what a healthy host
prints (the snapshot's and the probe's sections) and with Prometheus answers of the real
JSON shape, a full hour of points for every pool and bot series. So the figures are:

* render: the fleet page (`/`, HTML) and its JSON (`/api/fleet`) through the real Flask app,
  from readings to bytes (best of 10): what a browser waits for once the hosts were read;
* commands: how many remote commands one refresh sent to each host (counted by the same
  RemoteHost.run every reader uses), for 5 and for N bots: it must not grow with the bots.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from botpool.core.plan import load_plan
from botpool.core.secretstore import SecretStore
from botpool.dashboard import prometheus, server
from botpool.dashboard.collect import Fleet
from botpool.hosts.remote import RemoteHost

REPO = Path(__file__).resolve().parent.parent
MARK = "@@botpool "


def layout(directory: Path, bots: int, hosts: int, per_user: int = 10) -> Path:
    shutil.copytree(REPO / "inventory" / "strategies", directory / "strategies")
    lines = [
        "defaults:",
        "  bot: {exchange: sandbox, strategy: SandboxScalper, stake_amount: 10,",
        "        dry_run_wallet: 1000, timeframe: 1m, pairs: [BTC/USDT]}",
        "hosts:",
        *[f"  vps{h + 1}: {{memory_mb: 16000}}" for h in range(hosts)],
        "users:",
    ]
    for u in range(-(-bots // per_user)):
        lines += [f"  user{u:02d}:", f"    host: vps{u % hosts + 1}", "    bots:"]
        lines += [f"      - name: bot-{b:02d}" for b in range(min(per_user, bots - u * per_user))]
    path = directory / "layout.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def prometheus_answers(bots: list[Any], pools: list[Any], now: float) -> dict[str, Any]:
    """What a host's Prometheus answers for every query of the hour, points at every step."""
    seconds, step = prometheus.WINDOWS["1h"]
    end = now // step * step
    stamps = [end - seconds + i * step for i in range(seconds // step + 1)]

    def series(labels: dict[str, str], value: float) -> dict[str, Any]:
        return {"metric": labels, "values": [[t, str(value)] for t in stamps]}

    def pool_labels(p: Any) -> dict[str, str]:
        return {"host": p.host, "pool": p.name, "user": p.user, "job": "botpool"}

    def bot_labels(b: Any) -> dict[str, str]:
        return {"host": b.host, "pool": b.pool, "user": b.user, "bot": b.name, "job": "botpool"}

    def matrix(result: list[dict[str, Any]]) -> dict[str, Any]:
        return {"status": "success", "data": {"resultType": "matrix", "result": result}}

    def vector(result: list[tuple[dict[str, str], float]]) -> dict[str, Any]:
        items = [{"metric": m, "value": [now, str(v)]} for m, v in result]
        return {"status": "success", "data": {"resultType": "vector", "result": items}}

    per_pool = [series(pool_labels(p), 0.5) for p in pools]
    answers = {key: matrix(per_pool) for key in prometheus.RANGE}
    for key in ("bot_pss", "bot_profit", "bot_wallet", "bot_trades_open", "bot_trades_closed"):
        answers[key] = matrix([series(bot_labels(b), 1.0) for b in bots])
    names = ("botpool_bot_running", "botpool_bot_api_up", "botpool_bot_trades_open")
    answers["bots"] = vector([({**bot_labels(b), "__name__": n}, 1) for b in bots for n in names])
    answers["alerts"] = vector([])
    answers["host_memory_total"] = vector([({}, 16e9)])
    answers["host_memory_available"] = vector([({}, 8e9)])
    answers["host_cpu_busy"] = vector([({}, 0.2)])
    answers["restarts_1h"] = vector([(bot_labels(b), 0) for b in bots])
    return answers


class SyntheticHost(RemoteHost):
    """A host that answers every command as a healthy one would, without a connection."""

    def run(self, command: str, purpose: str) -> list[str]:
        self.commands += 1
        plan = load_plan(self.layout, SecretStore.from_env())
        host = plan.hosts[self.layout_host]
        if purpose == "the host snapshot":
            lines = []
            for pool in host.pools:
                lines += [
                    f"{MARK}containers",
                    json.dumps(
                        {
                            "name": pool.container,
                            "state": "running",
                            "role": "pool",
                            "spec_hash": "x",
                            "networks": "",
                        }
                    ),
                    f"{MARK}supervisor {pool.container}",
                    "zygote RUNNING pid 9, uptime 2:00:00",
                ]
                lines += [f"{b.program} RUNNING pid 10, uptime 2:00:00" for b in pool.bots]
            return lines
        now = time.time()
        report = {
            b.program: {"ping": True, "trade_count": 3, "count": {"current": 1, "max": 3}}
            for b in host.bots
        }
        answers = prometheus_answers(list(host.bots), list(host.pools), now)
        return [
            f"{MARK}prometheus",
            json.dumps(answers),
            f"{MARK}meminfo",
            "MemAvailable: 8000000 kB",
            f"{MARK}probe",
            json.dumps(report),
        ]


def fleet_of(path: Path, hosts: int) -> Fleet:
    remotes = [
        SyntheticHost(f"vps{h + 1}.example.com", f"vps{h + 1}", str(path), {}) for h in range(hosts)
    ]
    return Fleet(remotes, interval_s=15)


def commands_per_host(directory: Path, bots: int, hosts: int) -> list[int]:
    path = layout(directory / f"n{bots}", bots, hosts)
    return [reader.read().commands for reader in fleet_of(path, hosts).readers]


def best_of(runs: int, func: Any) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--bots", type=int, default=50)
    args.add_argument("--hosts", type=int, default=2)
    opts = args.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        os.environ["BOTPOOL_SECRETS_DIR"] = str(directory / "secrets")  # never the user's
        path = layout(directory / "n", opts.bots, opts.hosts)
        fleet = fleet_of(path, opts.hosts)
        readings = fleet.refresh()
        errors = [r.error for r in readings if r.error]
        assert not errors, errors
        client = server.create_app(fleet).test_client()
        page = client.get("/")
        assert page.status_code == 200 and page.text.count('class="bot"') == opts.bots
        html = best_of(10, lambda: client.get("/"))
        api = best_of(10, lambda: client.get("/api/fleet"))
        small = commands_per_host(directory, 5, opts.hosts)
        large = commands_per_host(directory, opts.bots, opts.hosts)
    print(f"fleet page, {opts.bots} bots on {opts.hosts} hosts (synthetic host answers):")
    print(f"  HTML  /           {html * 1000:7.1f} ms  ({len(page.data) / 1024:.0f} KiB)")
    print(f"  JSON  /api/fleet  {api * 1000:7.1f} ms")
    print(f"remote commands per refresh, per host: 5 bots {small}, {opts.bots} bots {large}")


if __name__ == "__main__":
    main()
