"""The same deploy.py over real SSH onto a bare Debian "VPS": engine, image, bots, from scratch."""

from __future__ import annotations

import json

import pytest

from .e2e import new_deployment
from .vps import start_vps

pytestmark = pytest.mark.e2e

PING = (
    'python3 -c "import urllib.request; print(urllib.request.urlopen('
    "'http://127.0.0.1:{port}/api/v1/ping', timeout=5).read().decode())\""
)


def test_a_bare_vps_is_converged_over_ssh_from_scratch(tmp_path):
    vps = start_vps(tmp_path, "botpool-test-vps1")
    dep = new_deployment(tmp_path, "sshex", 9000)
    try:
        assert "docker" not in vps.run("ls /usr/bin /usr/sbin")  # bare: no engine yet
        dep.write(
            "ann:\n  bots:\n    - name: one\n    - {name: two, pairs: [ETH/USDT]}\n",
            extra_yaml="hosts:\n  vps1: {memory_mb: 4096}\n",
        )
        inventory = tmp_path / "inventory.py"
        inventory.write_text(f"hosts = [{vps.inventory_entry('vps1', dep.layout)}]\n")
        dep.inventory = str(inventory)

        first = dep.converge()
        assert any("Install the Docker engine" in op for op in first.operations), first.operations
        assert any("Build the pool image" in op for op in first.operations)
        for bot in dep.plan().bots:
            answer = vps.run(PING.format(port=bot.host_port))
            assert json.loads(answer) == {"status": "pong"}, bot.key
        names = set(vps.run("docker ps --format '{{.Names}}'").split())
        assert names == {"ann-pool-1", "botpool-exchange-sshex"}

        again = dep.converge(verbose=True)
        assert again.operations == [], again.output[-6000:]
        assert again.commands == 1, again.output[-3000:]  # one snapshot, nothing else
    finally:
        vps.remove()
