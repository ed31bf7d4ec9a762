"""Converge semantics on the real engine: real supervisord, real freqtrade, real pyinfra.

One deployment evolves through the module, test by test (in file order), and every step
compares supervisor pids and container ids before and after.
"""

from __future__ import annotations

import json
import stat

import pytest

from .e2e import Deployment, container_names, docker, new_deployment, wait_for

pytestmark = pytest.mark.e2e

USERS = """
ann:
  bots:
    - name: one
    - name: two
      pairs: [ETH/USDT]
    - name: three
      stake_amount: 20
ben:
  bots:
    - name: solo
      pairs: [SOL/USDT]
"""
CURRENT = (
    USERS.replace("    - name: two\n      pairs: [ETH/USDT]\n", "")
    .replace("stake_amount: 20", "stake_amount: 25")
    .replace("      stake_amount: 25\n", "      stake_amount: 25\n    - name: four\n")
)


@pytest.fixture(scope="module", params=["zygote", "process"])
def dep(tmp_path_factory, request) -> Deployment:
    """The same story under each runtime (every test runs twice, one deployment at a time)."""
    deployment = new_deployment(tmp_path_factory.mktemp("converge"), "e2econv", 19100)
    deployment.runtime = request.param
    deployment.write(USERS)
    yield deployment
    deployment.teardown()


def container_id(name: str) -> str:
    return docker("inspect", "-f", "{{.Id}}", name).strip()


def test_cold_converge_runs_every_bot_and_each_api_answers(dep):
    dep.converge()
    dep.wait_answering()
    for user, bot, stake in (("ann", "three", 20), ("ben", "solo", 10)):
        config = dep.api(user, bot, "show_config").json()
        assert config["bot_name"] == f"{user}-{bot}"
        assert (config["dry_run"], config["strategy"], float(config["stake_amount"])) == (
            True,
            "SandboxScalper",
            stake,
        )
        assert config["exchange"] == "binance"  # the sandbox imitates binance
    assert dep.api("ann", "one", "count", auth=False).status_code == 401  # auth required
    ports = docker("port", dep.container("ann-pool-1"))
    assert "127.0.0.1:19100" in ports and "0.0.0.0" not in ports
    config = dep.root / "pools" / "ann-pool-1" / "bots" / "one" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640  # root and the bot's own group


def test_bots_trade_on_the_sandbox(dep):
    wait_for(
        lambda: (
            dep.api("ann", "one", "count").json()["current"] > 0
            or dep.api("ann", "one", "profit").json()["trade_count"] > 0
        ),
        timeout=120,
        what="a dry-run trade on ann/one",
    )


def test_a_second_converge_changes_nothing(dep):
    before = dep.pids("ann-pool-1", "ben-pool-1")
    run = dep.converge()
    assert run.operations == []
    assert dep.pids("ann-pool-1", "ben-pool-1") == before


def test_adding_a_bot_to_a_free_slot_starts_exactly_one_process(dep):
    before, cid = dep.pids("ann-pool-1"), container_id(dep.container("ann-pool-1"))
    dep.write(
        USERS.replace("      stake_amount: 20\n", "      stake_amount: 20\n    - name: four\n")
    )
    dep.converge()
    after = dep.pids("ann-pool-1")
    assert set(after) - set(before) == {"ann-four"}
    assert {k: after[k] for k in before} == before
    assert container_id(dep.container("ann-pool-1")) == cid
    dep.wait_answering()


def test_changing_one_bot_restarts_only_that_bot(dep):
    before = dep.pids("ann-pool-1", "ben-pool-1")
    dep.write(
        USERS.replace("stake_amount: 20", "stake_amount: 25").replace(
            "      stake_amount: 25\n", "      stake_amount: 25\n    - name: four\n"
        )
    )
    run = dep.converge(args=("--diff", "-vvv"))  # the most a person could ask it to print
    after = dep.pids("ann-pool-1", "ben-pool-1")
    assert {k for k in before if before[k] != after[k]} == {"ann-three"}
    creds = dep.secrets.api_credentials("ann/three")
    for secret in (creds.password, creds.jwt_secret_key, creds.ws_token):
        assert secret not in run.output
    dep.wait_answering()
    assert float(dep.api("ann", "three", "show_config").json()["stake_amount"]) == 25


def test_removing_a_bot_archives_its_data_and_keeps_its_neighbours(dep):
    database = dep.root / "pools" / "ann-pool-1" / "bots" / "two" / "user_data" / "tradesv3.sqlite"
    assert database.exists()
    before = dep.pids("ann-pool-1")
    dep.write(CURRENT)
    dep.converge()
    after = dep.pids("ann-pool-1")
    assert "ann-two" not in after
    assert {k: after[k] for k in after} == {k: before[k] for k in after}
    archived = list((dep.root / "archive").glob("*/pools/ann-pool-1/bots/two"))
    assert len(archived) == 1, archived
    assert (archived[0] / "user_data" / "tradesv3.sqlite").exists()
    assert (archived[0] / "config.json").exists() and (archived[0] / "logs").is_dir()
    assert not database.parent.exists()


def test_damage_done_by_hand_is_repaired(dep):
    pool = dep.root / "pools" / "ann-pool-1"
    (pool / "programs" / "ann-one.conf").unlink()
    config = pool / "bots" / "three" / "config.json"
    edited = json.loads(config.read_text()) | {"stake_amount": 1}
    config.write_text(json.dumps(edited))
    dep.ctl("ann-pool-1", "stop", "ann-four")
    docker("rm", "-f", dep.container("ben-pool-1"))
    before = dep.pids("ann-pool-1")
    dep.converge()
    after = dep.pids("ann-pool-1")
    assert (pool / "programs" / "ann-one.conf").exists()
    assert json.loads(config.read_text())["stake_amount"] == 25
    assert after["ann-one"] == before["ann-one"]  # its file came back; it never stopped
    assert after["ann-three"] != before["ann-three"]  # restarted on the restored config
    assert dep.programs("ann-pool-1")["ann-four"][0] in ("STARTING", "RUNNING")
    assert dep.programs("ben-pool-1")["ben-solo"][0] == "RUNNING"
    dep.wait_answering()
    assert float(dep.api("ann", "three", "show_config").json()["stake_amount"]) == 25
    assert dep.converge().operations == []


def test_a_new_image_recreates_pools_one_at_a_time_and_keeps_trade_history(dep):
    trades = wait_for(
        lambda: dep.api("ann", "one", "trades").json()["total_trades"],
        timeout=120,
        what="a trade before the image change",
    )
    before = {pool: container_id(dep.container(pool)) for pool in ("ann-pool-1", "ben-pool-1")}
    dep.write(CURRENT)  # any change to the image (here an extra package) means new containers
    text = dep.layout.read_text().replace(
        "image: {ca_bundle: /etc/ssl/certs/ca-certificates.crt}",
        "image: {ca_bundle: /etc/ssl/certs/ca-certificates.crt, pip_packages: [wheel]}",
    )
    dep.layout.write_text(text)
    run = dep.converge()
    recreated = [op for op in run.operations if "recreate the pool" in op or "wait until" in op]
    zygote = dep.runtime == "zygote"  # a zygote pool has one more program: its zygote
    assert recreated == [
        "tasks/pools.py | ann-pool-1: recreate the pool container",
        f"tasks/pools.py | ann-pool-1: wait until its {3 + zygote} programs run",
        "tasks/pools.py | ben-pool-1: recreate the pool container",
        f"tasks/pools.py | ben-pool-1: wait until its {1 + zygote} programs run",
    ], run.operations
    assert all(container_id(dep.container(p)) != cid for p, cid in before.items())
    dep.wait_answering()
    assert dep.api("ann", "one", "trades").json()["total_trades"] >= trades


def test_removing_a_users_last_bot_removes_only_its_pool(dep):
    foreign = docker(
        "run",
        "-d",
        "--label",
        "botpool.pool=ben-pool-1",
        "--name",
        f"{dep.project}_foreign",
        "botpool/debian:bookworm",
        "sleep",
        "600",
    ).strip()
    try:
        before = dep.pids("ann-pool-1")
        text = dep.layout.read_text()
        dep.layout.write_text(text[: text.index("  ben:")])
        dep.converge()
        assert dep.container("ben-pool-1") not in container_names()
        assert list((dep.root / "archive").glob("*/pools/ben-pool-1/bots/solo/user_data"))
        assert dep.pids("ann-pool-1") == before
        assert docker("inspect", "-f", "{{.State.Running}}", foreign).strip() == "true"
    finally:
        docker("rm", "-f", foreign, check=False)


def test_switching_the_runtime_is_one_converge_and_keeps_every_bots_data(dep):
    trades = dep.api("ann", "one", "trades").json()["total_trades"]
    other = {"zygote": "process", "process": "zygote"}[dep.runtime]
    text = dep.layout.read_text()
    dep.layout.write_text(text.replace(f"runtime: {dep.runtime}", f"runtime: {other}", 1))
    dep.runtime = other
    dep.converge()
    programs = dep.programs("ann-pool-1")
    assert ("zygote" in programs) == (other == "zygote")
    assert all(state == "RUNNING" for state, _ in programs.values()), programs
    dep.wait_answering()
    assert dep.api("ann", "one", "trades").json()["total_trades"] >= trades
    assert dep.converge().operations == []
