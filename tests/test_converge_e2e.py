"""Converge semantics on the real engine: real supervisord, real freqtrade, real pyinfra.

One deployment evolves through the module, test by test (in file order), and every step
compares supervisor pids and container ids before and after, with both runtimes side by side
(tests/converge_story.py). Changes that recreate pools are tests/test_recreate_e2e.py's
story, which runs beside this one.
"""

from __future__ import annotations

import json
import stat

import pytest

from botpool.core.image import LOCAL_BASE

from .converge_story import ALL_POOLS, MAINS, SIDES, container_id, pool, write
from .e2e import Deployment, docker, new_deployment, wait_for

pytestmark = pytest.mark.e2e(minutes=3.9)


@pytest.fixture(scope="module")
def dep(tmp_path_factory) -> Deployment:
    deployment = new_deployment(tmp_path_factory.mktemp("converge"), "e2econv", 19100)
    write(deployment)
    yield deployment
    deployment.teardown()


def test_cold_converge_runs_every_bot_and_each_api_answers(dep):
    dep.converge()
    dep.wait_answering()
    for runtime, (main, alone) in SIDES.items():
        assert ("zygote" in dep.programs(pool(main))) == (runtime == "zygote")
        for user, bot, stake in ((main, "three", 20), (alone, "solo", 10)):
            config = dep.api(user, bot, "show_config").json()
            assert config["bot_name"] == f"{user}-{bot}"
            assert (config["dry_run"], config["strategy"], float(config["stake_amount"])) == (
                True,
                "SandboxScalper",
                stake,
            )
            assert config["exchange"] == "binance"  # the sandbox imitates binance
        assert dep.api(main, "one", "count", auth=False).status_code == 401  # auth required
        ports = docker("port", dep.container(pool(main)))
        assert "127.0.0.1:" in ports and "0.0.0.0" not in ports
        config = dep.root / "pools" / pool(main) / "bots" / "one" / "config.json"
        assert stat.S_IMODE(config.stat().st_mode) == 0o640  # root and the bot's own group
    assert "127.0.0.1:19100" in docker("port", dep.container("ann-pool-1"))


def test_bots_trade_on_the_sandbox(dep):
    for main in MAINS:
        wait_for(
            lambda main=main: (
                dep.api(main, "one", "count").json()["current"] > 0
                or dep.api(main, "one", "profit").json()["trade_count"] > 0
            ),
            timeout=300,
            what=f"a dry-run trade on {main}/one",
        )


def test_a_second_converge_changes_nothing(dep):
    before = dep.pids(*ALL_POOLS)
    run = dep.converge()
    assert run.operations == []
    assert dep.pids(*ALL_POOLS) == before


def test_adding_a_bot_to_a_free_slot_starts_exactly_one_process(dep):
    mains = [pool(m) for m in MAINS]
    before = dep.pids(*mains)
    ids = {p: container_id(dep.container(p)) for p in mains}
    write(dep, four=True)
    dep.converge()
    after = dep.pids(*mains)
    assert set(after) - set(before) == {f"{m}-four" for m in MAINS}
    assert {k: after[k] for k in before} == before
    assert {p: container_id(dep.container(p)) for p in mains} == ids
    dep.wait_answering()


def test_changing_one_bot_restarts_only_that_bot(dep):
    before = dep.pids(*ALL_POOLS)
    write(dep, four=True, stake=25)
    run = dep.converge(args=("--diff", "-vvv"))  # the most a person could ask it to print
    after = dep.pids(*ALL_POOLS)
    assert {k for k in before if before[k] != after[k]} == {f"{m}-three" for m in MAINS}
    for main in MAINS:
        creds = dep.secrets.api_credentials(f"{main}/three")
        for secret in (creds.password, creds.jwt_secret_key, creds.ws_token):
            assert secret not in run.output
    dep.wait_answering()
    for main in MAINS:
        assert float(dep.api(main, "three", "show_config").json()["stake_amount"]) == 25


def test_removing_a_bot_archives_its_data_and_keeps_its_neighbours(dep):
    mains = [pool(m) for m in MAINS]
    databases = {
        p: dep.root / "pools" / p / "bots" / "two" / "user_data" / "tradesv3.sqlite" for p in mains
    }
    assert all(database.exists() for database in databases.values())
    before = dep.pids(*mains)
    write(dep, four=True, stake=25, two=False)
    dep.converge()
    after = dep.pids(*mains)
    assert not {f"{m}-two" for m in MAINS} & set(after)
    assert after == {k: before[k] for k in after}
    for name, database in databases.items():
        archived = list((dep.root / "archive").glob(f"*/pools/{name}/bots/two"))
        assert len(archived) == 1, archived
        assert (archived[0] / "user_data" / "tradesv3.sqlite").exists()
        assert (archived[0] / "config.json").exists() and (archived[0] / "logs").is_dir()
        assert not database.parent.exists()


def test_damage_done_by_hand_is_repaired(dep):
    mains = [pool(m) for m in MAINS]
    configs = {}
    for main in MAINS:
        directory = dep.root / "pools" / pool(main)
        (directory / "programs" / f"{main}-one.conf").unlink()
        configs[main] = config = directory / "bots" / "three" / "config.json"
        config.write_text(json.dumps(json.loads(config.read_text()) | {"stake_amount": 1}))
        dep.ctl(pool(main), "stop", f"{main}-four")
    for _, alone in SIDES.values():
        docker("rm", "-f", dep.container(pool(alone)))
    before = dep.pids(*mains)
    dep.converge()
    after = dep.pids(*mains)
    for main, alone in SIDES.values():
        assert (dep.root / "pools" / pool(main) / "programs" / f"{main}-one.conf").exists()
        assert json.loads(configs[main].read_text())["stake_amount"] == 25
        assert after[f"{main}-one"] == before[f"{main}-one"]  # its file came back; never stopped
        assert after[f"{main}-three"] != before[f"{main}-three"]  # restarted on its config
        assert dep.programs(pool(main))[f"{main}-four"][0] in ("STARTING", "RUNNING")
        assert dep.programs(pool(alone))[f"{alone}-solo"][0] == "RUNNING"
    dep.wait_answering()
    for main in MAINS:
        assert float(dep.api(main, "three", "show_config").json()["stake_amount"]) == 25
    assert dep.converge().operations == []


def test_a_container_of_a_planned_name_that_botpool_did_not_create_stops_the_converge(dep):
    """A new user's pool name is taken by someone else's container: the converge fails
    naming it, leaves that container running, and touches no other pool."""
    taken = dep.container(pool("eve"))
    docker("run", "-d", "--name", taken, LOCAL_BASE, "sleep", "600")
    try:
        before = dep.pids(*[pool(m) for m in MAINS])
        write(dep, four=True, stake=25, two=False)
        with dep.layout.open("a") as layout:  # users: is the layout's last section
            layout.write("  eve:\n    bots:\n      - name: one\n")
        run = dep.converge(check=False)
        assert run.returncode != 0
        assert f"a container named {taken} exists that botpool" in run.output
        assert docker("inspect", "-f", "{{.State.Running}}", taken).strip() == "true"
        assert dep.pids(*[pool(m) for m in MAINS]) == before
    finally:
        docker("rm", "-f", taken, check=False)
