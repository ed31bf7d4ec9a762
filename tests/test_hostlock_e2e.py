"""The converge lock for real: converges of one small deployment started at once on this
machine, one killed while it holds the lock, and --dry beside them; and over SSH, where a
killed converge's lock must end with its connection.

A converge started without -y stops at pyinfra's "Press enter to execute..." once it has
planned, holding its lock: the tests use that pause (a person reading the changes) to hold
a lock for as long as they need, without sleeping.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .e2e import REPO, VENV, Deployment, new_deployment, wait_for
from .harness.vps import write_inventory

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.harness.vps"]  # the ssh_key and vps_factory fixtures

ONE = "lee:\n  bots:\n    - name: one\n"
TWO = ONE + "    - {name: two, pairs: [ETH/USDT]}\n"


@pytest.fixture(scope="module")
def dep(tmp_path_factory) -> Iterator[Deployment]:
    deployment = new_deployment(tmp_path_factory.mktemp("hostlock"), "e2elock", 19800)
    deployment.write(ONE)
    yield deployment
    deployment.teardown()


def start(dep: Deployment, *args: str, deploy: str = "deploy.py") -> subprocess.Popen[str]:
    """`pyinfra INVENTORY DEPLOY -vv ARGS` in the background (stdin: a pipe)."""
    return subprocess.Popen(
        [str(VENV / "pyinfra"), dep.inventory, deploy, "-vv", *args],
        cwd=REPO,
        env=dep.environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(run: subprocess.Popen[str], confirm: bool = False, seen: str = "") -> tuple[int, str]:
    """Its exit code and output (pressing enter first, if it waits at the prompt)."""
    output, _ = run.communicate("\n" if confirm else None, timeout=600)
    return run.returncode, seen + output


def read_until(run: subprocess.Popen[str], text: str, timeout: float = 120) -> str:
    """Its output up to the line holding `text` (which it prints before it blocks)."""
    assert run.stdout is not None
    seen, deadline = "", time.monotonic() + timeout
    while text not in seen:
        line = run.stdout.readline()
        assert line and time.monotonic() < deadline, f"no {text!r} in:\n{seen[-3000:]}"
        seen += line
    return seen


def lock_file(dep: Deployment) -> Path:
    return dep.root / ".converge.lock"


def holds_lock(dep: Deployment, run: subprocess.Popen[str]) -> bool:
    """Does the lock file name this run's pid (its holder wrote it: the lock is held)?"""
    path = lock_file(dep)
    return path.exists() and f"pid={run.pid}\n" in path.read_text()


def hold(dep: Deployment, deploy: str = "deploy.py") -> subprocess.Popen[str]:
    """A converge that holds the lock, waiting at the prompt with every change planned."""
    run = start(dep, deploy=deploy)
    wait_for(lambda: holds_lock(dep, run), timeout=120, interval=0.2, what="the lock taken")
    return run


def operations(output: str) -> list[str]:
    return [line for line in output.splitlines() if "--> Starting" in line]


def drift(dep: Deployment) -> int:
    proc = subprocess.run(
        [str(VENV / "botpool"), "drift", dep.inventory],
        cwd=REPO,
        env=dep.environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode


def test_dry_on_a_host_never_converged_writes_nothing(dep):
    code, output = finish(start(dep, "--dry"))
    assert code == 0, output[-3000:]
    assert not dep.root.exists()  # not even the lock file's folder


def test_converges_at_once_wait_or_refuse_never_both_act(dep):
    first = hold(dep)
    refused = start(dep, "-y", "--data", "botpool_lock_wait=1")
    waiting = start(dep, "-y", "--data", "botpool_lock_wait=600")

    code, output = finish(refused)
    assert code == 1, output[-3000:]
    holder = f"by {getpass.getuser()} on {socket.gethostname()} (pid {first.pid}), since "
    assert f"another converge holds this host's lock ({lock_file(dep)}): `pyinfra " in output
    assert holder in output and "inventory/local.py deploy.py -vv`" in output
    assert "this converge changed nothing on any host" in output
    assert operations(output) == []

    dry, output = finish(start(dep, "--dry"))  # --dry neither waits nor takes the lock
    assert dry == 0 and f"(pid {first.pid})" in output and "--dry takes no lock" in output
    assert holds_lock(dep, first)

    seen = read_until(waiting, "waiting up to 600 s")  # it asked while the first held it
    assert f"(pid {first.pid})" in seen
    code, output = finish(first, confirm=True)
    assert code == 0, output[-3000:]
    assert any("create the pool container" in op for op in operations(output)), output[-3000:]

    code, output = finish(waiting, seen=seen)
    assert code == 0, output[-3000:]
    assert operations(output) == []  # it read the host after the first had converged it
    assert drift(dep) == 0
    assert lock_file(dep).read_text() == ""  # both ended well: no holder described


def test_a_killed_converge_does_not_block_the_next(dep):
    dep.write(TWO)  # work for the converge that will be killed
    killed = hold(dep)
    os.kill(killed.pid, signal.SIGKILL)  # the controller dies; its lock holder is left behind
    killed.wait(timeout=30)

    code, output = finish(start(dep, "-y", "--data", "botpool_lock_wait=20"))
    assert code == 0, output[-3000:]
    assert "waiting" not in output  # the lock went with the killed converge's connection
    assert f"(pid {killed.pid})" in output and "did not finish (it failed or was killed)" in output
    assert any("lee-two" in op for op in operations(output)), output[-3000:]
    assert drift(dep) == 0


def test_over_ssh_a_killed_converges_lock_ends_with_its_connection(vps_factory, tmp_path):
    """On a bare VPS, with a deploy that only locks (tests/harness/lock_deploy.py)."""
    vps = vps_factory()
    dep = new_deployment(tmp_path, "sshlock", 9000)
    dep.write(ONE, extra_yaml="hosts:\n  vps1: {memory_mb: 4096}\n")
    dep.inventory = str(write_inventory(tmp_path / "inventory.py", [vps], botpool_host="vps1"))
    lock_deploy = "tests/harness/lock_deploy.py"
    text = lambda: vps.exec(f"cat {lock_file(dep)} 2>/dev/null || true")  # noqa: E731

    first = start(dep, deploy=lock_deploy)
    wait_for(lambda: f"pid={first.pid}\n" in text(), timeout=120, interval=0.2, what="lock")
    code, output = finish(start(dep, "-y", "--data", "botpool_lock_wait=1", deploy=lock_deploy))
    assert code == 1 and f"(pid {first.pid})" in output, output[-3000:]
    assert "Say hello" not in output.split("Preparing operation files")[-1]

    os.kill(first.pid, signal.SIGKILL)  # its SSH connection drops with it
    first.wait(timeout=30)
    code, output = finish(start(dep, "-y", "--data", "botpool_lock_wait=30", deploy=lock_deploy))
    assert code == 0, output[-3000:]
    assert f"(pid {first.pid})" in output and "did not finish (it failed or was killed)" in output
    assert text() == ""  # this one ended well: its holder cleared the description
    assert vps.exec("pgrep -f '[b]otpool-lock' || true").strip() == ""  # no holder left
