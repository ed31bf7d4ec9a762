"""Converge semantics on the real engine: real supervisord, real freqtrade, real pyinfra.

One deployment evolves through the module, test by test (in file order), and every step
compares supervisor pids and container ids before and after. It runs the story twice side
by side, once per runtime: ann (three bots) and ben (one) have zygote pools, cid and dot
the same bots in process pools. Every step changes both sides in the same converge, and
every assertion is made for each.
"""

from __future__ import annotations

import json
import stat

import pytest

from .e2e import Deployment, container_names, docker, new_deployment, wait_for

pytestmark = pytest.mark.e2e(minutes=4)

SIDES = {"zygote": ("ann", "ben"), "process": ("cid", "dot")}  # runtime -> (main, solo) users
OTHER = {"zygote": "process", "process": "zygote"}
SOLO = "{name: solo, pairs: [SOL/USDT]}"
WHEEL = "image: {ca_bundle: /etc/ssl/certs/ca-certificates.crt, pip_packages: [wheel]}"


def users(
    *,
    stake: int = 20,
    two: bool = True,
    four: bool = False,
    solo: bool = True,
    switched: bool = False,
) -> str:
    """The layout's users at one step of the story, both sides alike."""
    text = ""
    for runtime, (main, alone) in SIDES.items():
        runtime = OTHER[runtime] if switched else runtime
        bots = ["- name: one"]
        if two:
            bots.append("- {name: two, pairs: [ETH/USDT]}")
        bots.append(f"- {{name: three, stake_amount: {stake}}}")
        if four:
            bots.append("- name: four")
        text += f"{main}:\n  runtime: {runtime}\n  bots:\n" + "".join(f"    {b}\n" for b in bots)
        if solo:
            text += f"{alone}:\n  runtime: {runtime}\n  bots:\n    - {SOLO}\n"
    return text


GATE = "upgrades: {settle_seconds: 5}\n"  # a new image: each pool gated, briefly


def write(dep: Deployment, wheel: bool = False, **step: bool | int) -> None:
    """Write one step; wheel: an extra package in the image (a new image, new containers)."""
    dep.write(users(**step), GATE)
    if wheel:
        text = dep.layout.read_text()
        dep.layout.write_text(
            text.replace("image: {ca_bundle: /etc/ssl/certs/ca-certificates.crt}", WHEEL)
        )
        assert WHEEL in dep.layout.read_text()


def pool(user: str) -> str:
    return f"{user}-pool-1"


MAINS = [main for main, _ in SIDES.values()]
RUNTIME = {pool(user): runtime for runtime, side in SIDES.items() for user in side}
ALL_POOLS = sorted(RUNTIME)


@pytest.fixture(scope="module")
def dep(tmp_path_factory) -> Deployment:
    deployment = new_deployment(tmp_path_factory.mktemp("converge"), "e2econv", 19100)
    write(deployment)
    yield deployment
    deployment.teardown()


def container_id(name: str) -> str:
    return docker("inspect", "-f", "{{.Id}}", name).strip()


def image_of(dep: Deployment, pool_name: str) -> str:
    return docker("inspect", "-f", "{{.Config.Image}}", dep.container(pool_name)).strip()


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
            timeout=120,
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


def test_a_new_image_upgrades_pools_one_at_a_time_canary_first_and_keeps_trade_history(dep):
    trades = {
        main: wait_for(
            lambda main=main: dep.api(main, "one", "trades").json()["total_trades"],
            timeout=120,
            what=f"a trade of {main}/one before the image change",
        )
        for main in MAINS
    }
    before = {p: container_id(dep.container(p)) for p in ALL_POOLS}
    old = image_of(dep, "ann-pool-1")
    write(dep, four=True, stake=25, two=False, wheel=True)  # an extra package: a new image
    run = dep.converge()
    new = image_of(dep, "ann-pool-1")
    gated = [op for op in run.operations if "recreate the pool" in op or ", gated (" in op]
    expected = []
    # one pool after another, each held to its health gate: the smallest (a solo pool) first
    for name in ["ben-pool-1", *[p for p in ALL_POOLS if p != "ben-pool-1"]]:
        bots = 3 if name in [pool(m) for m in MAINS] else 1
        programs = bots + (RUNTIME[name] == "zygote")  # a zygote pool has one more: its zygote
        expected.append(
            f"tasks/pools.py | {dep.container(name)}: upgrade from {old} to {new}, gated "
            f"({programs} programs)"
        )
    assert gated == expected, run.operations
    assert all(container_id(dep.container(p)) != cid for p, cid in before.items())
    dep.wait_answering()
    for main in MAINS:
        assert dep.api(main, "one", "trades").json()["total_trades"] >= trades[main]


def test_removing_a_users_last_bot_removes_only_its_pool(dep):
    mains = [pool(m) for m in MAINS]
    alone = [pool(a) for _, a in SIDES.values()]
    foreign = [  # not managed, but labelled as the pools about to go: never touched
        docker(
            "run",
            "-d",
            "--label",
            f"botpool.pool={name}",
            "--name",
            f"{dep.project}_foreign-{index}",
            "botpool/debian:bookworm",
            "sleep",
            "600",
        ).strip()
        for index, name in enumerate(alone)
    ]
    try:
        before = dep.pids(*mains)
        write(dep, four=True, stake=25, two=False, wheel=True, solo=False)
        dep.converge()
        for name in alone:
            assert dep.container(name) not in container_names()
            assert list((dep.root / "archive").glob(f"*/pools/{name}/bots/solo/user_data"))
        assert dep.pids(*mains) == before
        for container in foreign:
            assert docker("inspect", "-f", "{{.State.Running}}", container).strip() == "true"
    finally:
        for container in foreign:
            docker("rm", "-f", container, check=False)


def memory_limit(dep: Deployment, pool_name: str) -> int:
    return int(docker("inspect", "-f", "{{.HostConfig.Memory}}", dep.container(pool_name)))


def test_switching_the_runtime_is_one_converge_and_keeps_every_bots_data(dep):
    trades = {main: dep.api(main, "one", "trades").json()["total_trades"] for main in MAINS}
    limits = {main: memory_limit(dep, pool(main)) for main in MAINS}
    write(dep, four=True, stake=25, two=False, wheel=True, solo=False, switched=True)
    dep.converge()
    planned = {p.name: p.memory_limit_mb * 2**20 for p in dep.plan().pools}
    for runtime, (main, _) in SIDES.items():  # each side now runs the other runtime
        programs = dep.programs(pool(main))
        assert ("zygote" in programs) == (OTHER[runtime] == "zygote")
        assert all(state == "RUNNING" for state, _ in programs.values()), programs
        # the container was recreated with the new runtime's memory limit
        assert memory_limit(dep, pool(main)) == planned[pool(main)] != limits[main]
    dep.wait_answering()
    for main in MAINS:
        assert dep.api(main, "one", "trades").json()["total_trades"] >= trades[main]
    assert dep.converge().operations == []


def test_a_container_of_a_planned_name_that_botpool_did_not_create_stops_the_converge(dep):
    """A new user's pool name is taken by someone else's container: the converge fails
    naming it, leaves that container running, and touches no other pool."""
    taken = dep.container(pool("eve"))
    docker("run", "-d", "--name", taken, "botpool/debian:bookworm", "sleep", "600")
    try:
        before = dep.pids(*[pool(m) for m in MAINS])
        write(dep, four=True, stake=25, two=False, wheel=True, solo=False, switched=True)
        with dep.layout.open("a") as layout:  # users: is the layout's last section
            layout.write("  eve:\n    bots:\n      - name: one\n")
        run = dep.converge(check=False)
        assert run.returncode != 0
        assert f"a container named {taken} exists that botpool" in run.output
        assert docker("inspect", "-f", "{{.State.Running}}", taken).strip() == "true"
        assert dep.pids(*[pool(m) for m in MAINS]) == before
    finally:
        docker("rm", "-f", taken, check=False)
