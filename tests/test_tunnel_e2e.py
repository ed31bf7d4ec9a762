"""`botpool tunnel` and FreqUI against a converged deployment on this machine, over real SSH.

The layout's bots run on its second host, `local` (this machine), so `botpool tunnel` gives
them local ports one port range above their own (bot port + 1000): the tunnel and the bots
listen side by side. The SSH server is a test double for a VPS's sshd: the bare-VPS test
image (tests/harness/vps.py) on the host's network, listening on 127.0.0.1 only, with its
host key verified. So `ssh -L 127.0.0.1:P+1000:127.0.0.1:P` really forwards to the bot's
API, as it would on a VPS, and nothing leaves this machine.

FreqUI is played by what a browser does when FreqUI logs into a bot: a CORS preflight from
its origin, then a login with the credentials `botpool credentials --json` prints.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .e2e import REPO, VENV, Deployment, docker, new_deployment, wait_for
from .harness.vps import LABEL, PID_LABEL, Vps, ensure_vps_image, wait_for_sshd, write_inventory

pytestmark = pytest.mark.e2e(minutes=0.5)
pytest_plugins = ["tests.harness.vps"]  # the ssh_key fixture

# the tunnel's local ports are the bots' + WIDTH: 21800 and up, clear of every other module's
# (at 19200, they were 20200 and up: the recreate module's bots, when the two ran at once)
BASE_PORT = 20800
WIDTH = 1000  # the port range of a host (max_port - base_port + 1, by default)
USERS = "tia:\n  host: local\n  bots:\n    - name: one\n    - name: two\n"
HOSTS = "hosts:\n  elsewhere: {memory_mb: 2048}\n  local: {memory_mb: 8192}\n"
FRONTEND = "http://127.0.0.1:8686"  # where the person opens FreqUI


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = new_deployment(tmp_path_factory.mktemp("tunnel"), "e2etunnel", BASE_PORT)
    deployment.write(USERS, extra_yaml=HOSTS)
    text = deployment.layout.read_text()
    deployment.layout.write_text(
        text.replace("defaults:\n", f"defaults:\n  frequi_origins: [{FRONTEND}]\n", 1)
    )
    try:
        deployment.converge()
        deployment.wait_answering()
        yield deployment
    finally:
        deployment.teardown()


@pytest.fixture(scope="module")
def gateway(ssh_key: Path) -> Iterator[Vps]:
    """sshd on this machine's 127.0.0.1 (a free port), accepting the test key for root."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    name = f"botpool-test-gateway-{port}"
    docker("rm", "--force", name, check=False)
    start = f"ssh-keygen -A && exec /usr/sbin/sshd -D -e -p {port} -o ListenAddress=127.0.0.1"
    docker(
        *("run", "--detach", "--name", name, "--network", "host"),
        *("--label", LABEL, "--label", f"{PID_LABEL}={os.getpid()}"),
        *(ensure_vps_image(), "/bin/sh", "-c", start),
    )
    try:
        public = ssh_key.with_suffix(".pub").read_text().strip()
        docker("exec", name, "sh", "-c", f"echo '{public}' > /root/.ssh/authorized_keys")
        wait_for_sshd(port)
        vps = Vps(name, port, ssh_key, ssh_key.parent / f"known_hosts-{name}")
        vps.known_hosts.write_text("".join(f"[127.0.0.1]:{port} {k}\n" for k in vps.host_keys()))
        yield vps
    finally:
        docker("rm", "--force", name, check=False)


@pytest.fixture(scope="module")
def inventory(dep: Deployment, gateway: Vps) -> Path:
    path = dep.directory / "inventory.py"
    return write_inventory(path, [gateway], botpool_host="local", botpool_layout=str(dep.layout))


def botpool(dep: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return dep.run_botpool(*args, timeout=120)


def start(dep: Deployment, argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv,
        cwd=REPO,
        env=dep.environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ports(dep: Deployment) -> dict[str, tuple[int, int]]:
    """Each bot's port on its host and its port here, through the tunnel."""
    return {b.key: (b.host_port, b.host_port + WIDTH) for b in dep.plan().bots}


def ping(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v1/ping", timeout=2).json() == {
            "status": "pong"
        }
    except (httpx.HTTPError, ValueError):
        return False


def test_the_printed_ssh_line_forwards_every_bot_to_the_url_it_names(dep, inventory, gateway):
    run = botpool(dep, "tunnel", str(inventory))
    assert run.returncode == 0, run.stderr
    (command,) = [line for line in run.stdout.splitlines() if not line.startswith("#")]
    for key, (remote, here) in ports(dep).items():
        assert f"-L 127.0.0.1:{here}:127.0.0.1:{remote}" in command
        assert f"#   {key}  http://127.0.0.1:{here}" in run.stdout
        assert not ping(here)  # nothing there before the tunnel
    assert f"UserKnownHostsFile={gateway.known_hosts}" in command  # the host key is verified
    ssh = start(dep, shlex.split(command))  # pasted into a shell, as the output invites
    try:
        for _, here in ports(dep).values():
            wait_for(lambda here=here: ping(here), timeout=30, what=f"the bot at {here}")
    finally:
        ssh.terminate()
        ssh.communicate(timeout=30)


def test_run_lets_frequi_log_into_every_bot_until_ctrl_c(dep, inventory):
    logins = botpool(dep, "credentials", str(dep.layout), "tia", "--json")
    assert logins.returncode == 0, logins.stderr
    tunnel = start(dep, [str(VENV / "botpool"), "tunnel", str(inventory), "--run"])
    try:
        for login in json.loads(logins.stdout):
            port = int(login["url"].rsplit(":", 1)[1])
            wait_for(lambda port=port: ping(port), timeout=30, what=f"the tunnel to {port}")
            assert_frequi_logs_in(login["url"], login["username"], login["password"])
    finally:
        tunnel.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = tunnel.communicate(timeout=30)
    assert tunnel.returncode == 0, err
    assert "1 tunnel(s) open; Ctrl-C closes them" in err
    assert not any(ping(here) for _, here in ports(dep).values())  # its ssh is gone with it


def assert_frequi_logs_in(url: str, username: str, password: str) -> None:
    """What a browser does for FreqUI opened at FRONTEND: the preflight passes for that origin
    (and only that one), then the login answers with a token."""

    def preflight(origin: str) -> httpx.Response:
        headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        return httpx.options(f"{url}/api/v1/token/login", headers=headers, timeout=5)

    allowed = preflight(FRONTEND)
    assert allowed.headers.get("access-control-allow-origin") == FRONTEND
    assert allowed.headers.get("access-control-allow-credentials") == "true"
    assert "access-control-allow-origin" not in preflight("http://127.0.0.1:8666").headers
    login = httpx.post(
        f"{url}/api/v1/token/login",
        auth=(username, password),
        headers={"Origin": FRONTEND},
        timeout=5,
    )
    assert login.status_code == 200 and login.json()["access_token"], login.text
    assert login.headers.get("access-control-allow-origin") == FRONTEND


def test_a_tunnel_that_cannot_open_ends_the_run_with_exit_1(dep, inventory, gateway):
    _, here = ports(dep)["tia/one"]
    with socket.socket() as taken:  # the local port is in use: ssh cannot forward it
        taken.bind(("127.0.0.1", here))
        taken.listen()
        tunnel = start(dep, [str(VENV / "botpool"), "tunnel", str(inventory), "--run"])
        _, err = tunnel.communicate(timeout=60)
    assert tunnel.returncode == 1, err
    assert err.endswith(
        f"error: the tunnel to {gateway.name} ended (exit 255); closing the others\n"
    )
