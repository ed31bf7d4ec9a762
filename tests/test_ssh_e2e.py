"""The same deploy.py over real SSH onto a bare Debian "VPS": engine, image, bots, from scratch."""

from __future__ import annotations

import json

import pytest

from .e2e import new_deployment
from .harness.vps import write_inventory

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.harness.vps"]  # the ssh_key and vps_factory fixtures

PING = (
    'python3 -c "import urllib.request; print(urllib.request.urlopen('
    "'http://127.0.0.1:{port}/api/v1/ping', timeout=5).read().decode())\""
)


def test_a_bare_vps_is_converged_over_ssh_from_scratch(vps_factory, tmp_path):
    vps = vps_factory()
    dep = new_deployment(tmp_path, "sshex", 9000)
    assert vps.exec("command -v dockerd docker || echo none").strip() == "none"  # bare
    dep.write(
        "ann:\n  bots:\n    - name: one\n    - {name: two, pairs: [ETH/USDT]}\n",
        extra_yaml="hosts:\n  vps1: {memory_mb: 4096}\n",
    )
    inventory = write_inventory(
        tmp_path / "inventory.py", [vps], botpool_host="vps1", botpool_layout=str(dep.layout)
    )
    dep.inventory = str(inventory)

    first = dep.converge()
    assert any("Install the Docker engine" in op for op in first.operations), first.operations
    assert any("Build the pool image" in op for op in first.operations)
    for bot in dep.plan().bots:
        answer = vps.exec(PING.format(port=bot.host_port))
        assert json.loads(answer) == {"status": "pong"}, bot.key
    names = set(vps.exec("docker ps --format '{{.Names}}'").split())
    assert names == {dep.container("ann-pool-1"), dep.exchange_container()}

    again = dep.converge(verbose=True)
    assert again.operations == [], again.output[-6000:]
    assert again.commands == 1, again.output[-3000:]  # one snapshot, nothing else
