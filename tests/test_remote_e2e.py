"""Reading hosts over real SSH, a bare "VPS": `botpool drift` and `pytest checks/` verify host
keys (known, unknown, or known as another key: an impostor at the host's address), and a
command that hangs, or a host that freezes, ends in an error instead of a hang."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from botpool.hosts.remote import RemoteError, RemoteHost

from .e2e import REPO, VENV, Deployment, docker, new_deployment, wait_for
from .harness.vps import Vps, run_pyinfra, start_vps, write_inventory

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.harness.vps"]  # the ssh_key fixture

USERS = "ann:\n  bots:\n    - name: one\n"
HOSTS = "hosts:\n  vps1: {memory_mb: 4096}\n"


@pytest.fixture(scope="module")
def vps(ssh_key: Path) -> Iterator[Vps]:
    """One bare VPS for the module: nothing here changes it, only how it is reached."""
    machine = start_vps(ssh_key)
    yield machine
    machine.remove()


@pytest.fixture
def dep(tmp_path: Path) -> Deployment:
    """A layout placing one bot on the VPS (never converged: drift has something to say)."""
    deployment = new_deployment(tmp_path, "keys", 9000)
    deployment.write(USERS, extra_yaml=HOSTS)
    return deployment


def inventory(dep: Deployment, vps: Vps, **data: object) -> Path:
    return write_inventory(
        dep.directory / "inventory.py",
        [vps],
        botpool_host="vps1",
        botpool_layout=str(dep.layout),
        **data,
    )


def drift(dep: Deployment, inventory: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [str(VENV / "botpool"), "drift", str(inventory)],
        cwd=REPO,
        env=dep.environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


def reachable(dep: Deployment, inventory: Path, vps: Vps) -> dict[str, str]:
    """`pytest checks/`: the outcome and message of the host's reachability test."""
    test = f"test_host_is_reachable_and_its_layout_is_valid[{vps.name}]"
    (found,) = [t for t in dep.checks(inventory) if t["test"].endswith(test)]
    return found


def fingerprint(public_key: str, directory: Path) -> str:
    """`SHA256:...` of a `type base64` public key, as ssh-keygen shows it."""
    path = directory / "key.pub"
    path.write_text(public_key + "\n")
    out = subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True)
    return out.stdout.split()[1]


def test_a_host_whose_key_is_known_is_read(dep, vps):
    inv = inventory(dep, vps)  # the harness wrote the VPS's own keys, strict checking
    code, output = drift(dep, inv)
    assert code == 2, output  # read: the bot planned there is missing
    assert "ann-pool-1" in output and "error" not in output, output
    assert reachable(dep, inv, vps)["outcome"] == "passed"


def test_an_unknown_host_is_refused_until_a_converge_records_its_key(dep, vps, tmp_path):
    known_hosts = tmp_path / "known_hosts"  # empty: as a controller that never saw the host
    known_hosts.write_text("")
    inv = inventory(
        dep, vps, ssh_known_hosts_file=str(known_hosts), ssh_strict_host_key_checking=None
    )
    code, output = drift(dep, inv)
    assert code == 1, output
    (key,) = [k for k in vps.host_keys() if k.startswith("ssh-ed25519")]
    assert f"error: {vps.name}: its SSH host key is not known: {vps.known_hosts_entry}" in output
    assert fingerprint(key, tmp_path) in output  # what to compare before trusting it
    assert f"ssh-keyscan -p {vps.port} 127.0.0.1 >> {known_hosts}" in output
    assert "Traceback" not in output
    check = reachable(dep, inv, vps)
    assert check["outcome"] == "failed" and "host key is not known" in check["message"], check
    assert known_hosts.read_text() == ""  # a reader never trusts on its own

    # pyinfra's own default (accept-new) records the key on first contact; then drift reads
    run = run_pyinfra(inv, "exec", "--", "true")
    assert run.returncode == 0, run.output[-3000:]
    assert vps.known_hosts_entry in known_hosts.read_text()
    code, output = drift(dep, inv)
    assert code == 2 and "ann-pool-1" in output, output


def test_an_impostor_at_the_hosts_address_is_refused_whatever_the_setting(dep, vps, tmp_path):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")],
        check=True,
    )
    other = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    known_hosts = tmp_path / "known_hosts"  # the address is known, with another key
    known_hosts.write_text(f"{vps.known_hosts_entry} {other}\n")
    (real,) = [k for k in vps.host_keys() if k.startswith("ssh-ed25519")]
    for setting in ("yes", "accept-new", "off"):
        inv = inventory(
            dep, vps, ssh_known_hosts_file=str(known_hosts), ssh_strict_host_key_checking=setting
        )
        code, output = drift(dep, inv)
        assert code == 1, (setting, output)
        assert f"error: {vps.name}: its SSH host key has CHANGED: {vps.known_hosts_entry}" in output
        assert fingerprint(real, tmp_path) in output and fingerprint(other, tmp_path) in output
        assert f"ssh-keygen -R '{vps.known_hosts_entry}' -f {known_hosts}" in output
        assert "ann-pool-1" not in output, output  # nothing read from the impostor
        check = reachable(dep, inv, vps)
        assert check["outcome"] == "failed" and "CHANGED" in check["message"], check
    assert known_hosts.read_text() == f"{vps.known_hosts_entry} {other}\n"


def test_an_unknown_host_is_read_when_the_inventory_opts_in(dep, vps, tmp_path):
    known_hosts = tmp_path / "ssh" / "known_hosts"  # not there yet: accept-new makes it
    inv = inventory(
        dep, vps, ssh_known_hosts_file=str(known_hosts), ssh_strict_host_key_checking="accept-new"
    )
    code, output = drift(dep, inv)
    assert code == 2, output
    assert "new SSH host key ssh-ed25519 SHA256:" in output and str(known_hosts) in output
    assert known_hosts.read_text().startswith(f"{vps.known_hosts_entry} ssh-ed25519 ")
    assert oct(known_hosts.stat().st_mode & 0o777) == "0o600"

    known_hosts.unlink()  # off: read, with a warning, and nothing recorded
    inv = inventory(
        dep, vps, ssh_known_hosts_file=str(known_hosts), ssh_strict_host_key_checking="off"
    )
    code, output = drift(dep, inv)
    assert code == 2 and "NOT verified (ssh_strict_host_key_checking: off)" in output, output
    assert not known_hosts.exists()

    inv = inventory(dep, vps, ssh_strict_host_key_checking="maybe")
    code, output = drift(dep, inv)
    assert code == 1 and f"{vps.name}: ssh_strict_host_key_checking is 'maybe'" in output, output


def reader(vps: Vps, timeout: int) -> RemoteHost:
    data = {**vps.host_data(), "botpool_command_timeout": timeout}
    return RemoteHost(vps.name, "vps1", "unused", data)


def pids(vps: Vps, sleep: str) -> list[str]:
    """Processes in the VPS whose command line holds `sleep <sleep>` (never this pgrep's sh)."""
    return vps.exec(f"pgrep -f '[s]leep {sleep}' || true").split()


def test_a_hung_command_ends_in_an_error_and_nothing_of_it_keeps_running(vps):
    sleep = f"600.{random.randrange(10**6):06d}"
    host = reader(vps, timeout=2)
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        host.run(f"sleep {sleep} & wait", "the slow look")
    assert 2 <= time.monotonic() - started < 8
    assert str(caught.value).startswith(
        f"{vps.name}: the slow look did not finish within 2 s (botpool_command_timeout)"
    )
    wait_for(lambda: not pids(vps, sleep), timeout=5, interval=0.2, what="the sleep to end")
    assert host.run("echo again", "a quick look") == ["again"]  # the connection still serves


def test_the_reader_gives_up_when_the_hosts_own_bound_cannot_act(vps):
    """The command stops its `timeout` (as a frozen host would): the reader's deadline."""
    sleep = f"600.{random.randrange(10**6):06d}"
    host = reader(vps, timeout=2)
    started = time.monotonic()
    try:
        with pytest.raises(RemoteError, match="the frozen look did not finish within 2 s"):
            host.run(f"kill -STOP $PPID; sleep {sleep}", "the frozen look")
        assert 2 + 15 <= time.monotonic() - started < 2 + 15 + 5  # the bound, then the grace
    finally:
        vps.exec(f"kill -9 {' '.join(pids(vps, sleep))} 2>/dev/null || true")


def test_a_frozen_host_does_not_hang_the_reader(vps):
    host = reader(vps, timeout=2)
    assert host.run("echo hello", "a first look") == ["hello"]  # connected
    docker("pause", vps.name)  # sshd stops answering, the connection stays open
    try:
        started = time.monotonic()
        with pytest.raises(RemoteError) as caught:
            host.run("echo hello", "the second look")
        assert time.monotonic() - started < 10 + 5  # the connect timeout
        assert str(caught.value).startswith(f"{vps.name}: unreachable during the second look: "), (
            caught.value
        )
    finally:
        docker("unpause", vps.name)
