"""freqtrade's checks on the host, in the pool image, when the controller has no freqtrade.

How the controller loses freqtrade, for real: the converge runs (pyinfra, in a subprocess as
a user runs it) with a PYTHONPATH whose first folder holds a package `freqtrade` that
raises ImportError on import, so every `import freqtrade...` on the controller fails as on
a machine without it (first test: proven with the same environment), while the pool
image keeps its own freqtrade. An invalid setting must then stop the converge at the
host's check, naming the layout's FILE:LINE and key, with no container, bot or file changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from .e2e import REPO, Deployment, docker, new_deployment

pytestmark = pytest.mark.e2e(minutes=0.4)

USERS = """
fay:
  bots:
    - name: one
    - name: two
"""
REFUSED = (
    "{order_types: {entry: sideways, exit: limit, stoploss: market, stoploss_on_exchange: false}}"
)
INVALID = USERS.replace("    - name: two\n", f"    - name: two\n      freqtrade: {REFUSED}\n") + (
    # a new user too: nothing of it may appear
    "gus:\n  bots:\n    - name: new\n      freqtrade: {unfilledtimeout: {entry: 0}}\n"
)


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = new_deployment(tmp_path_factory.mktemp("ftcheck"), "e2eftchk", 20300)
    shim = deployment.directory / "no-freqtrade" / "freqtrade"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(
        'raise ImportError("freqtrade is hidden from this controller by the test")\n'
    )
    deployment.env["PYTHONPATH"] = f"{shim.parent}{os.pathsep}{REPO}"
    try:
        yield deployment
    finally:
        deployment.teardown()


def imports_freqtrade(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import freqtrade.configuration.config_validation"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_controller_has_no_freqtrade_and_validate_leaves_the_check_to_the_host(dep):
    hidden = imports_freqtrade(dep.environment())
    assert hidden.returncode == 1 and "hidden from this controller" in hidden.stderr
    assert imports_freqtrade(dict(os.environ)).returncode == 0  # the shim alone hides it
    dep.write(INVALID)
    code, out = dep.botpool("validate", str(dep.layout))
    assert code == 0 and "the converge runs its checks" in out, out


def config_hash(dep: Deployment, bot: str) -> str:
    path = dep.root / "pools" / "fay-pool-1" / "bots" / bot / "config.json"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_invalid_setting_stops_the_converge_on_the_host_with_its_line(dep):
    dep.write(USERS)
    run = dep.converge()
    check = f"freqtrade checks the config of 2 bot(s) in {image_of(dep)}"
    assert check in run.output, run.output[-4000:]  # it ran, and passed
    pool = dep.container("fay-pool-1")
    before = (docker("inspect", "-f", "{{.Id}}", pool), dep.pids(pool), config_hash(dep, "two"))

    dep.write(INVALID)
    run = dep.converge(check=False)
    assert run.returncode != 0
    lines = [line.strip() for line in dep.layout.read_text().splitlines()]
    two = lines.index(f"freqtrade: {REFUSED}") + 1
    new = lines.index("freqtrade: {unfilledtimeout: {entry: 0}}") + 1
    image = image_of(dep)
    assert (
        f"{dep.layout}:{two}: users.fay.bots[1].freqtrade.order_types.entry: freqtrade (in "
        f"{image}) refuses the config of bot fay/two: order_types.entry: 'sideways' is not one "
        "of ['limit', 'market']"
    ) in run.output, run.output[-4000:]
    assert (
        f"{dep.layout}:{new}: users.gus.bots[0].freqtrade.unfilledtimeout.entry: freqtrade (in "
        f"{image}) refuses the config of bot gus/new: unfilledtimeout.entry:"
    ) in run.output, run.output[-4000:]
    assert "2 problem(s) in the layout; nothing was changed on this host" in run.output
    assert "Traceback" not in run.output
    after = (docker("inspect", "-f", "{{.Id}}", pool), dep.pids(pool), config_hash(dep, "two"))
    assert after == before  # same container, same bot processes, same config file
    assert not docker("ps", "-aq", "--filter", f"name=^{dep.container('gus-pool-1')}$").strip()
    assert not docker("network", "ls", "-q", "--filter", f"name=^{dep.network('gus')}$").strip()
    assert not (dep.root / "pools" / "gus-pool-1").exists()


def image_of(dep: Deployment) -> str:
    return docker("inspect", "-f", "{{.Config.Image}}", dep.container("fay-pool-1")).strip()
