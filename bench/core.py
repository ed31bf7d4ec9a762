"""Benchmark the pure core on a generated 1,000-bot layout: validate, plan, render.

    .venv/bin/python bench/core.py [--bots 1000]

Prints the wall time of each stage (best of 5 runs) and their sum. Target: under 1 s together.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from botpool.core.allocate import Allocation
from botpool.core.plan import make_plan
from botpool.core.render import render_host
from botpool.core.secretstore import SecretStore
from botpool.core.validate import load_layout

REPO = Path(__file__).resolve().parent.parent
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT"]


def generate(directory: Path, bots: int, per_user: int = 25) -> Path:
    shutil.copytree(REPO / "inventory" / "strategies", directory / "strategies")
    hosts = max(1, bots * 300 // 60000 + 1)
    lines = [
        "defaults:",
        "  max_port: 29999",
        "  bot:",
        "    exchange: sandbox",
        "    strategy: SandboxScalper",
        "    stake_amount: 10",
        "    dry_run_wallet: 1000",
        "    timeframe: 1m",
        "monitoring: {base_port: 30000}",  # above the bots' ports (9000-29999)
        "hosts:",
    ]
    lines += [f"  host{h}: {{memory_mb: 64000}}" for h in range(hosts)]
    lines.append("users:")
    for u in range(-(-bots // per_user)):
        lines += [f"  user{u:03d}:", "    bots:"]
        for b in range(min(per_user, bots - u * per_user)):
            lines.append(
                f"      - {{name: bot-{b:02d}, pairs: [{PAIRS[b % len(PAIRS)]}], "
                f"stake_amount: {10 + b % 5}}}"
            )
    path = directory / "layout.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def best_of(runs: int, func):  # noqa: ANN001, ANN201 - tiny helper
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bots", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = generate(Path(tmp), args.bots)
        secrets = SecretStore(Path(tmp) / "secrets")
        t_validate, layout = best_of(5, lambda: load_layout(path))
        t_plan, (plan, problems) = best_of(5, lambda: make_plan(layout, Allocation()))
        assert not problems, problems[:3]
        images = {layout.freqtrade_version: "botpool/pool:bench"}

        def render_all() -> int:
            files = 0
            for host in plan.hosts.values():
                pools, exchanges = render_host(plan, host, images, secrets)
                files += sum(len(p.files) for p in pools) + sum(len(e.files) for e in exchanges)
            return files

        t_render, files = best_of(5, render_all)
    print(
        f"layout: {len(layout.bots)} bots, {len(layout.users)} users, {len(plan.pools)} pools, "
        f"{len(plan.hosts)} hosts, {files} rendered files"
    )
    print(f"{'stage':<10}{'seconds':>10}")
    for stage, seconds in (("validate", t_validate), ("plan", t_plan), ("render", t_render)):
        print(f"{stage:<10}{seconds:>10.3f}")
    total = t_validate + t_plan + t_render
    print(f"{'total':<10}{total:>10.3f}  (target < 1 s: {'met' if total < 1 else 'NOT met'})")


if __name__ == "__main__":
    main()
