"""Many hosts for real: two bare "VPS" hosts over SSH, one layout, pools placed by memory,
a pool moved with its trade history, and one host down while the other stays green.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from botpool.allocate import lock_path, read_lock

from .e2e import REPO, VENV, Deployment, new_deployment, wait_for
from .harness import images
from .harness.vps import Vps

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.harness.vps"]  # the ssh_key and vps_factory fixtures

HOSTS = "hosts:\n  h1: {memory_mb: 2048}\n  h2: {memory_mb: 2048}\n"
USERS = """
ann:
  host: h1
  bots:
    - name: one
    - {name: two, pairs: [ETH/USDT]}
bob:
  bots:
    - {name: three, pairs: [SOL/USDT]}
"""
PING = (
    'python3 -c "import urllib.request; print(urllib.request.urlopen('
    "'http://127.0.0.1:{port}/api/v1/ping', timeout=5).read().decode())\""
)
TRADES = (  # each trade as "id pair open_date": a fresh database would not repeat them
    "python3 -c \"import json, sqlite3; print(json.dumps(sorted(' '.join(map(str, r)) for r in "
    "sqlite3.connect('{db}').execute('select id, pair, open_date from trades'))))\""
)


def names(vps: Vps) -> set[str]:
    return set(vps.exec("docker ps --format '{{.Names}}'").split())


def answering(dep: Deployment, hosts: dict[str, Vps]) -> bool:
    for bot in dep.plan().bots:
        out = hosts[bot.host].exec(PING.format(port=bot.host_port), check=False)
        if '"pong"' not in out:
            return False
    return True


def trades(dep: Deployment, vps: Vps, pool: str, bot: str) -> list[str]:
    db = f"{dep.root}/pools/{pool}/bots/{bot}/user_data/tradesv3.sqlite"
    return json.loads(vps.exec(TRADES.format(db=db)))


def cli(dep: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=REPO, env=dep.environment(), capture_output=True, text=True, timeout=600
    )


def test_two_hosts_placement_move_and_one_host_down(vps_factory, tmp_path):
    images.saved_archive(images.pool_spec())  # one image build here, shipped to both hosts
    h1, h2 = vps_factory(), vps_factory()
    hosts = {"h1": h1, "h2": h2}
    dep = new_deployment(tmp_path, "multi", 9000)
    dep.write(USERS, extra_yaml=HOSTS)
    # h1/h2 in the layout are these VPSes; images go from here (no mirror needed on them)
    inventory = tmp_path / "inventory.py"
    hosts_data = [
        (v, {"botpool_host": name, "botpool_image_build": "controller"})
        for name, v in hosts.items()
    ]
    inventory.write_text(
        "hosts = "
        + repr(
            [
                (v.name, {**v.host_data(), **data, "botpool_image_cache": str(images.CACHE)})
                for v, data in hosts_data
            ]
        )
        + "\n"
    )
    dep.inventory = str(inventory)

    # converge both bare hosts at once: each gets only its own pools
    dep.converge()
    placed = {p.name: p.host for p in dep.plan().pools}
    assert placed == {"ann-pool-1": "h1", "bob-pool-1": "h2"}  # bob: the roomier host
    ann, bob = dep.container("ann-pool-1"), dep.container("bob-pool-1")
    assert ann in names(h1) and bob not in names(h1)
    assert bob in names(h2) and ann not in names(h2)
    wait_for(lambda: answering(dep, hosts), timeout=180, what="every bot's ping on its host")
    drift = cli(dep, str(VENV / "botpool"), "drift", str(inventory))
    assert drift.returncode == 0, drift.stdout + drift.stderr
    run = dep.checks(inventory)
    assert run.failures(dep.plan(), {h1.name: "h1", h2.name: "h2"}) == {}

    # ann's bots trade on h1; then the layout moves ann to h2
    before = wait_for(
        lambda: trades(dep, h1, "ann-pool-1", "one") or None,
        timeout=180,
        what="a dry-run trade of ann/one on h1",
    )
    dep.layout.write_text(dep.layout.read_text().replace("host: h1", "host: h2"))
    moving = read_lock_after_plan(dep)
    assert moving["ann-pool-1"] == ("h2", "h1")
    run = dep.converge(verbose=True)
    assert any("Move ann-pool-1 (h1 -> h2)" in op for op in run.operations), run.operations
    assert ann not in names(h1) and ann in names(h2)
    after = trades(dep, h2, "ann-pool-1", "one")
    assert set(before) <= set(after), (before, after)  # the trade history came along
    archived = h1.exec(f"ls {dep.root}/archive/*/pools").split()
    assert archived == ["ann-pool-1"]  # the old copy is archived on h1, not deleted
    assert read_lock(lock_path(dep.layout)).pools["ann-pool-1"].moved_from is None
    wait_for(lambda: answering(dep, hosts), timeout=180, what="ann's bots answering on h2")
    again = dep.converge(verbose=True)
    assert again.operations == [], again.output[-4000:]

    # one host down: drift says so (exit 1) and still reports the other host
    h1.remove()
    drift = cli(dep, str(VENV / "botpool"), "drift", str(inventory))
    out = drift.stdout + drift.stderr
    assert drift.returncode == 1, out
    assert f"{h1.name}: unreachable" in out and f"no drift on {h2.name}" in out, out
    outcomes = checks(dep, inventory)
    failed = {t for t, outcome in outcomes.items() if outcome == "failed"}
    assert failed and all(h1.name in t for t in failed), failed
    passed = [t for t, outcome in outcomes.items() if outcome == "passed" and h2.name in t]
    assert len(passed) >= 4, outcomes  # h2: reachable, as planned, and its bots checked


def checks(dep: Deployment, inventory: Path) -> dict[str, str]:
    """`pytest checks/` over the inventory: test id -> outcome."""
    return {name: outcome for name, (outcome, _) in dep.checks(inventory).tests.items()}


def read_lock_after_plan(dep: Deployment) -> dict[str, tuple[str, str | None]]:
    """`botpool plan` writes the lock; each pool's host and where it moves from."""
    proc = cli(dep, str(VENV / "botpool"), "plan", str(dep.layout))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pools = read_lock(lock_path(dep.layout)).pools
    return {name: (p.host, p.moved_from) for name, p in pools.items()}
