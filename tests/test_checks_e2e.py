"""checks/ and `botpool drift` on the real engine: break the real thing, see the right message,
converge, see it pass again. One deployment, each runtime side by side: cat's pool forks its
bots from a zygote, dog's runs one freqtrade process a bot; every fault is done to both,
but a killed container (the zygote pool's: what it is and how it is repaired do not depend
on what runs inside).
Faults that hide nothing of each other are made at once and repaired by one converge; the
ones that would (a stopped zygote, a killed container, a stagnant bot) one at a time.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from botpool.core.image import LOCAL_BASE

from .e2e import REPO, VENV, Deployment, container_names, docker, new_deployment, wait_for

pytestmark = pytest.mark.e2e(minutes=7.4)

RUNTIMES = {"cat": "zygote", "dog": "process"}  # user -> the runtime of its pool
BOTS = "    - name: a\n    - {name: b, pairs: [ETH/USDT]}\n    - {name: stag, pairs: [SOL/USDT]}\n"
USERS = "".join(f"{u}:\n  runtime: {r}\n  bots:\n{BOTS}" for u, r in RUNTIMES.items())
POOLS = [f"{user}-pool-1" for user in RUNTIMES]
# only the stagnant bots' test lowers the threshold: with 1 minute everywhere, any bot that
# had not traded yet a minute after a restart (no entry signal on its first candles) failed
# the "every check passes" of another test
THRESHOLDS = "checks:\n  stagnant_after_minutes: 1\n"


@pytest.fixture(scope="module")
def dep(tmp_path_factory) -> Deployment:
    deployment = new_deployment(tmp_path_factory.mktemp("checks"), "e2echk", 19500)
    deployment.write(USERS)
    deployment.converge()
    deployment.wait_answering()
    yield deployment
    deployment.teardown()


def checks(dep: Deployment) -> dict[str, str]:
    """Run `pytest checks/` as a user would; failing test id -> its message."""
    return dep.checks("inventory/local.py").failures(dep.plan())


def drift(dep: Deployment, inventory: str = "inventory/local.py") -> tuple[int, str]:
    return dep.botpool("drift", inventory)


def status(dep: Deployment) -> tuple[int, str]:
    """`botpool status` as `make up` runs it: 0 every bot answers, 2 some do not, 1 error."""
    return dep.botpool("status", str(dep.layout))


def settle(dep: Deployment) -> None:
    dep.converge()
    dep.wait_answering()
    dep.pids(*POOLS)


def test_a_converged_host_passes_every_check_and_has_no_drift(dep):
    assert checks(dep) == {}
    assert (dep.directory / "checks.xml").read_text().startswith("<?xml")
    code, output = drift(dep)
    assert code == 0, output
    assert "no drift on @local" in output
    code, output = status(dep)
    assert code == 0 and output.count("RUNNING") == len(dep.plan().bots), output


WORKFLOW = REPO / ".github" / "workflows" / "drift.yml"
CI_SECRETS = {
    "BOTPOOL_MASTER_KEY": "ab" * 32,
    "BOTPOOL_SSH_KEY": "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a real key\n",
    "BOTPOOL_KNOWN_HOSTS": "vps1.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample",
}


def run_step(step: dict, cwd, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One `run:` of the workflow, as GitHub's default shell runs it (bash -e)."""
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_ci_workflow_steps_pass_against_this_machine(dep, tmp_path):
    """The scheduled GitHub Actions drift job cannot run here: run its steps instead."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["schedule"][0]["cron"] and triggers["push"]["paths"] == ["inventory/**"]
    steps = {s.get("name"): s for s in workflow["jobs"]["drift"]["steps"]}
    for step in steps.values():  # secrets reach scripts through env, never written into them
        assert "${{" not in step.get("run", ""), step["name"]
    secrets = steps["Secrets"]
    assert set(secrets["env"]) == set(CI_SECRETS)
    assert all("secrets.BOTPOOL_" in value for value in secrets["env"].values())

    # each secret unset, or blank: the step fails, names it, and writes nothing
    home, keys = tmp_path / "home", tmp_path / "ci-secrets"
    base = {"PATH": os.environ["PATH"], "HOME": str(home), "BOTPOOL_SECRETS_DIR": str(keys)}
    for name in CI_SECRETS:
        for value in (None, " \n"):
            given = {k: v for k, v in CI_SECRETS.items() if k != name}
            proc = run_step(
                secrets, tmp_path, {**base, **given, **({name: value} if value else {})}
            )
            assert proc.returncode == 1, (name, proc.stdout, proc.stderr)
            assert f"::error::not set in the repository settings: {name} " in proc.stdout
            assert not home.exists() and not keys.exists()
    proc = run_step(secrets, tmp_path, {**base, **CI_SECRETS, "BOTPOOL_MASTER_KEY": "'ab'"})
    assert proc.returncode == 1 and "is not the content of a master.key" in proc.stdout
    proc = run_step(secrets, tmp_path, {**base, **CI_SECRETS})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = {
        "BOTPOOL_MASTER_KEY": keys / "master.key",
        "BOTPOOL_SSH_KEY": home / ".ssh" / "id_ed25519",
        "BOTPOOL_KNOWN_HOSTS": home / ".ssh" / "known_hosts",
    }
    for name, path in written.items():
        assert path.read_text() == CI_SECRETS[name].rstrip("\n") + "\n", name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert CI_SECRETS["BOTPOOL_MASTER_KEY"] not in proc.stdout + proc.stderr

    # the other steps against this machine: they pass, and keep both reports
    (dep.directory / "checks").symlink_to(REPO / "checks")  # as in a checkout
    env = {
        **dep.environment(),
        "INVENTORY": str(REPO / "inventory" / "local.py"),
        "LAYOUT": str(dep.layout),
        "PATH": f"{VENV}:{os.environ['PATH']}",
    }
    outputs = {}
    for name in ("The lock file is current", "Drift", "Checks"):
        proc = run_step(steps[name], dep.directory, env)
        assert proc.returncode == 0, (name, proc.stdout[-2000:], proc.stderr[-2000:])
        outputs[name] = proc.stdout
    assert "no drift on @local" in outputs["Drift"]
    report = dep.directory / "reports" / "drift.json"
    assert json.loads(report.read_text())[0]["differences"] == []
    assert (dep.directory / "reports" / "checks.xml").exists()

    # drift: the readable table in the log, the JSON in reports/, and the step exits 2
    for user in RUNTIMES:
        dep.ctl(f"{user}-pool-1", "stop", f"{user}-b")
    proc = run_step(steps["Drift"], dep.directory, env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.startswith("HOST ")
    for user in RUNTIMES:
        assert re.search(rf"@local +bot {user}/b +stopped", proc.stdout), proc.stdout
    (host,) = json.loads(report.read_text())
    assert {d["subject"] for d in host["differences"]} == {f"bot {u}/b" for u in RUNTIMES}, host
    settle(dep)


# --- faults that do not hide each other: made at once, read once, repaired by one converge ------


@dataclass
class Broken:
    failed: dict[str, str]  # `pytest checks/`: failing test id -> its message
    drift: tuple[int, str]
    status: tuple[int, str]
    stray: str  # a container with botpool's labels that the plan does not have
    ghosts: list[Path]  # program files the plan does not have, one a pool
    passwords: list[str]  # the API passwords in the configs edited on the host


@pytest.fixture(scope="module")
def broken(dep: Deployment) -> Broken:
    """In each pool: bot a stopped, a stray program file, bot b's config edited on the host;
    and a stray container with botpool's labels. None of them hides another (a different bot,
    file or container each), so each test below reads its own in one run of the checks,
    drift and status, and one converge must repair them all."""
    stray = f"{dep.project}_stray"
    docker(
        "run",
        "-d",
        "--init",  # sleep as PID 1 would ignore the converge's SIGTERM for 45 s
        "--name",
        stray,
        "--label",
        "botpool.managed=true",
        "--label",
        f"botpool.root={dep.root}",
        "--label",
        "botpool.role=pool",
        LOCAL_BASE,
        "sleep",
        "600",
    )
    ghosts, passwords = [], []
    for user in RUNTIMES:
        pool = dep.root / "pools" / f"{user}-pool-1"
        dep.ctl(f"{user}-pool-1", "stop", f"{user}-a")
        ghost = pool / "programs" / f"{user}-ghost.conf"
        ghost.write_text(f"[program:{user}-ghost]\ncommand=sleep 1000\n")
        ghosts.append(ghost)
        config = pool / "bots" / "b" / "config.json"
        data = json.loads(config.read_text())
        data["stake_amount"] = 99
        config.write_text(json.dumps(data))
        passwords.append(data["api_server"]["password"])
    return Broken(checks(dep), drift(dep), status(dep), stray, ghosts, passwords)


def test_a_stopped_program(dep, broken):
    code, output = broken.drift
    for user in RUNTIMES:
        stopped = f"program {user}-a in {user}-pool-1 is STOPPED"
        assert stopped in broken.failed[f"test_check[@local|bot {user}/a|running]"]
        assert code == 2 and re.search(rf"bot {user}/a\s+stopped", output), output
    code, output = broken.status
    assert code == 2 and re.search(r"2 bot\(s\) do not answer: \w+-a, \w+-a;", output), output
    dep.layout.rename(dep.layout.with_suffix(".gone"))
    try:
        code, output = status(dep)
        assert code == 1 and "Traceback" not in output, output
    finally:
        dep.layout.with_suffix(".gone").rename(dep.layout)


def test_a_stray_container_with_botpool_labels(broken):
    extra = broken.failed["test_host_runs_exactly_the_plan[@local]"]
    assert f"container {broken.stray}: extra" in extra


def test_a_stray_program_file(broken):
    code, output = broken.drift
    assert code == 2 and "extra" in output
    for user in RUNTIMES:
        assert f"file pools/{user}-pool-1/programs/{user}-ghost.conf" in output


def test_a_config_edited_on_the_host(broken):
    code, output = broken.drift
    assert code == 2
    for name in POOLS:
        assert f"file pools/{name}/bots/b/config.json" in output, output
    assert output.count("stake_amount differ (values not shown)") == len(POOLS), output
    assert not [password for password in broken.passwords if password in output]
    assert "stake_amount differ" in broken.failed["test_host_runs_exactly_the_plan[@local]"]


def test_one_converge_repairs_all_of_them(dep, broken):
    settle(dep)
    assert broken.stray not in container_names()
    assert not any(ghost.exists() for ghost in broken.ghosts)
    for name in POOLS:
        config = dep.root / "pools" / name / "bots" / "b" / "config.json"
        assert json.loads(config.read_text())["stake_amount"] == 10
    assert drift(dep)[0] == 0
    assert checks(dep) == {}


# --- faults that hide others: one at a time -------------------------------------------------------


def test_a_stopped_zygote_is_named_with_every_bot_it_leaves_down(dep):
    """Only a zygote pool has a zygote (and its check: CheckRun.failures proves the process
    pool has none)."""
    dep.ctl("cat-pool-1", "stop", "zygote")  # its bots stop with it; their launchers wait for it
    failed = checks(dep)
    assert (
        "the zygote of cat-pool-1 is STOPPED" in failed["test_check[@local|pool cat-pool-1|zygote]"]
    )
    assert "does not answer" in failed["test_check[@local|bot cat/a|api]"]
    assert not [name for name in failed if "dog" in name], failed  # the other pool: untouched
    code, output = drift(dep)
    assert code == 2 and "program cat-pool-1:zygote" in output, output
    settle(dep)
    assert checks(dep) == {}


def test_a_killed_container(dep):
    """The zygote pool's: a container's state and its repair (`docker start`) are the same
    whatever runs inside it, and a process pool's bots starting again cost a freqtrade
    import each (the recreate and upgrade stories restart process pools)."""
    docker("kill", dep.container("cat-pool-1"))
    failed = checks(dep)
    stopped = f"container {dep.container('cat-pool-1')} is stopped"
    assert stopped in failed["test_check[@local|pool cat-pool-1|container]"]
    assert "does not answer" in failed["test_check[@local|bot cat/b|api]"]
    assert not [name for name in failed if "dog" in name], failed  # the other pool: untouched
    assert drift(dep)[0] == 2
    settle(dep)
    assert checks(dep) == {}


def test_a_stagnant_bot_is_named_with_its_reason(dep):
    """The stagnant-bot fixture of the sandbox issue, made on a deployed bot: a stake its
    wallet cannot cover (validation would refuse it; the host is edited behind its back)."""
    dep.write(USERS, extra_yaml=THRESHOLDS)  # read by the checks as they run: no converge
    for user in RUNTIMES:
        dep.ctl(f"{user}-pool-1", "stop", f"{user}-stag")
        bot = dep.root / "pools" / f"{user}-pool-1" / "bots" / "stag"
        data = json.loads((bot / "config.json").read_text())
        data.update(dry_run_wallet=100, stake_amount=500)
        (bot / "config.json").write_text(json.dumps(data))
        for database in (bot / "user_data").glob("tradesv3.sqlite*"):
            database.unlink()
        dep.ctl(f"{user}-pool-1", "start", f"{user}-stag")
    started = time.monotonic()
    stagnant = {user: f"test_check[@local|bot {user}/stag|stagnant]" for user in RUNTIMES}

    def findings() -> dict[str, str] | None:
        failed = checks(dep)
        found = {user: failed.get(test) or "" for user, test in stagnant.items()}
        # the reason is in the bot's log once it tried to enter: on its first candle with an
        # entry signal, which may come a candle or two after it ran a minute
        return found if all("lower than stake amount" in m for m in found.values()) else None

    # checks.stagnant_after_minutes is 1: the findings must appear once the bots ran a minute,
    # and cannot before (each `pytest checks/` run costs the cores seconds: none in vain)
    try:
        time.sleep(max(0.0, 60 - (time.monotonic() - started)))
        messages = wait_for(findings, 240, 10, "each runtime's stagnant finding, with its reason")
    finally:  # the next tests find the host as the layout says, whatever happened here
        dep.write(USERS)
        settle(dep)
    for user, message in messages.items():
        assert re.match(rf"{user}-stag has run \d+ min with 0 trades", message), message
        assert (
            "wallet 100.0 USDT free of 100.0" in message
            and "stake 500" in message
            and "free trade slots 3 of 3" in message
        )
        assert "lower than stake amount (500 USDT)" in message
    for user in RUNTIMES:  # the converge put back the stake and wallet the layout says
        config = dep.root / "pools" / f"{user}-pool-1" / "bots" / "stag" / "config.json"
        data = json.loads(config.read_text())
        assert (data["stake_amount"], data["dry_run_wallet"]) == (10, 1000), data


def test_drift_exit_codes_for_errors(dep, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("users: {alice: {bots: [{name: Bad}]}}\n")
    code, output = dep.botpool("drift", "inventory/local.py", BOTPOOL_LAYOUT=str(bad))
    assert code == 1 and "is not a valid name" in output
    unreachable = tmp_path / "unreachable.py"
    unreachable.write_text(
        "hosts = [('127.0.0.1', {'ssh_port': 1, 'botpool_host': 'local'}),"
        " ('@local', {'botpool_host': 'local'})]\n"
    )
    code, output = drift(dep, str(unreachable))
    assert code == 1 and "127.0.0.1: unreachable" in output
    assert "no drift on @local" in output  # the reachable host is still reported
