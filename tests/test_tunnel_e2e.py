"""`botpool tunnel --run` over real SSH: a bare VPS (sshd in a container, reached on loopback
with its host key verified), a layout placing a bot there, and the tunnel's local port
answering with what listens on the VPS's own 127.0.0.1.

No bot runs on the VPS (converging one takes minutes and proves nothing more about the
tunnel): a small HTTP server stands in for the bot's API at the bot's host port, on the
VPS's loopback, where the bot would listen.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .e2e import REPO, VENV, Deployment, new_deployment, wait_for
from .harness.vps import Vps, start_vps, write_inventory

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.harness.vps"]  # the ssh_key fixture

BASE_PORT = 19960
USERS = "ann:\n  host: vps1\n  bots:\n    - name: one\n"
HOSTS = "hosts:\n  vps1: {memory_mb: 4096}\n"
STAND_IN = "the API of ann/one, on the VPS"


@pytest.fixture(scope="module")
def vps(ssh_key: Path) -> Iterator[Vps]:
    machine = start_vps(ssh_key)
    machine.exec(
        f"mkdir -p /srv/api && echo '{STAND_IN}' > /srv/api/index.html && "
        f"cd /srv/api && nohup python3 -m http.server {BASE_PORT} --bind 127.0.0.1 "
        ">/dev/null 2>&1 &"
    )
    yield machine
    machine.remove()


@pytest.fixture
def inventory(tmp_path: Path, vps: Vps) -> tuple[Deployment, Path]:
    dep = new_deployment(tmp_path, "e2etunnel", BASE_PORT)
    dep.write(USERS, extra_yaml=HOSTS)
    path = write_inventory(
        dep.directory / "inventory.py", [vps], botpool_host="vps1", botpool_layout=str(dep.layout)
    )
    return dep, path


def start(dep: Deployment, inventory: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(VENV / "botpool"), "tunnel", str(inventory), "--run"],
        cwd=REPO,
        env={**dep.environment(), "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def answer() -> str | None:
    try:
        return httpx.get(f"http://127.0.0.1:{BASE_PORT}/", timeout=2).text
    except httpx.HTTPError:
        return None


def test_run_forwards_each_bots_port_until_ctrl_c(inventory, vps):
    dep, path = inventory
    assert answer() is None  # nothing here before the tunnel
    tunnel = start(dep, path)
    try:
        wait_for(lambda: STAND_IN in (answer() or ""), timeout=30, what="the tunnel")
    finally:
        tunnel.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = tunnel.communicate(timeout=30)
    assert tunnel.returncode == 0, err
    assert f"#   ann/one  http://127.0.0.1:{BASE_PORT}" in out
    assert f"-L 127.0.0.1:{BASE_PORT}:127.0.0.1:{BASE_PORT}" in out
    assert f"UserKnownHostsFile={vps.known_hosts}" in out  # the host key is verified
    assert "1 tunnel(s) open; Ctrl-C closes them" in err
    assert answer() is None  # and its ssh is gone with it
    ssh = subprocess.run(["pgrep", "-f", f"127.0.0.1:{BASE_PORT}:127.0.0.1"], capture_output=True)
    assert ssh.stdout.strip() == b"", "an ssh of the tunnel outlived it"


def test_a_tunnel_that_cannot_open_ends_the_run_with_exit_1(inventory):
    dep, path = inventory
    with socket.socket() as taken:  # the local port is in use: ssh cannot forward it
        taken.bind(("127.0.0.1", BASE_PORT))
        taken.listen()
        tunnel = start(dep, path)
        out, err = tunnel.communicate(timeout=60)
    assert tunnel.returncode == 1, err
    assert "error: the tunnel to " in err and "ended (exit 255); closing the others" in err


def test_sigterm_closes_the_tunnels_too(inventory):
    dep, path = inventory
    tunnel = start(dep, path)
    try:
        wait_for(lambda: STAND_IN in (answer() or ""), timeout=30, what="the tunnel")
    finally:
        os.kill(tunnel.pid, signal.SIGTERM)
        tunnel.communicate(timeout=30)
    assert tunnel.returncode == 0
    assert answer() is None
