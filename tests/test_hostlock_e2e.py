"""The converge lock for real: converges of one small deployment started at once on this
machine, one killed while it holds the lock, and --dry beside them (over SSH, where a killed
converge's lock must end with its connection: tests/test_vps_e2e.py).

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
from collections.abc import Iterator
from pathlib import Path

import pytest

from .e2e import Deployment, finish, new_deployment, read_until, start_pyinfra, wait_for

pytestmark = pytest.mark.e2e(minutes=0.8)

ONE = "lee:\n  bots:\n    - name: one\n"
TWO = ONE + "    - {name: two, pairs: [ETH/USDT]}\n"


@pytest.fixture(scope="module")
def dep(tmp_path_factory) -> Iterator[Deployment]:
    deployment = new_deployment(tmp_path_factory.mktemp("hostlock"), "e2elock", 19800)
    deployment.write(ONE)
    yield deployment
    deployment.teardown()


def lock_file(dep: Deployment) -> Path:
    return dep.root / ".converge.lock"


def holds_lock(dep: Deployment, run: subprocess.Popen[str]) -> bool:
    """Does the lock file name this run's pid (its holder wrote it: the lock is held)?"""
    path = lock_file(dep)
    return path.exists() and f"pid={run.pid}\n" in path.read_text()


def hold(dep: Deployment, deploy: str = "deploy.py") -> subprocess.Popen[str]:
    """A converge that holds the lock, waiting at the prompt with every change planned."""
    run = start_pyinfra(dep, deploy=deploy)
    wait_for(lambda: holds_lock(dep, run), timeout=120, interval=0.2, what="the lock taken")
    return run


def operations(output: str) -> list[str]:
    return [line for line in output.splitlines() if "--> Starting" in line]


def drift(dep: Deployment) -> int:
    return dep.botpool("drift", dep.inventory)[0]


def test_dry_on_a_host_never_converged_writes_nothing(dep):
    code, output = finish(start_pyinfra(dep, "--dry"))
    assert code == 0, output[-3000:]
    assert not dep.root.exists()  # not even the lock file's folder


def test_converges_at_once_wait_or_refuse_never_both_act(dep):
    first = hold(dep)
    refused = start_pyinfra(dep, "-y", "--data", "botpool_lock_wait=1")
    waiting = start_pyinfra(dep, "-y", "--data", "botpool_lock_wait=600")

    code, output = finish(refused)
    assert code == 1, output[-3000:]
    holder = f"by {getpass.getuser()} on {socket.gethostname()} (pid {first.pid}), since "
    assert f"another converge holds this host's lock ({lock_file(dep)}): `pyinfra " in output
    assert holder in output and "inventory/local.py deploy.py -vv`" in output
    assert "this converge changed nothing on any host" in output
    assert operations(output) == []

    dry, output = finish(start_pyinfra(dep, "--dry"))  # --dry neither waits nor takes the lock
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

    code, output = finish(start_pyinfra(dep, "-y", "--data", "botpool_lock_wait=20"))
    assert code == 0, output[-3000:]
    assert "waiting" not in output  # the lock went with the killed converge's connection
    assert f"(pid {killed.pid})" in output and "did not finish (it failed or was killed)" in output
    assert any("lee-two" in op for op in operations(output)), output[-3000:]
    assert drift(dep) == 0
