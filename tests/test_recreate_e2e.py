"""Converges that remove or recreate pools, on the real engine: a user's last bot removed
(only its pool goes), the runtime switched (one converge, new memory limit, every bot's data
kept). One deployment evolves through the module in file order, both runtimes side by side
(tests/converge_story.py); it runs beside test_converge_e2e.py's, so the two stories take
half the time one took. A new image recreating every pool (gated, canary first, trades
kept) is tests/test_upgrade_e2e.py's story, both runtimes there too.
"""

from __future__ import annotations

import pytest

from botpool.core.image import LOCAL_BASE

from .converge_story import (
    MAINS,
    OTHER,
    SIDES,
    memory_limit,
    pool,
    write,
)
from .e2e import Deployment, container_names, docker, new_deployment, wait_for

pytestmark = pytest.mark.e2e(minutes=2.4)


@pytest.fixture(scope="module")
def dep(tmp_path_factory) -> Deployment:
    deployment = new_deployment(tmp_path_factory.mktemp("recreate"), "e2erec", 20200)
    write(deployment, four=True, two=False)  # three bots in each main pool, as the other story
    deployment.converge()
    deployment.wait_answering()
    yield deployment
    deployment.teardown()


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
            LOCAL_BASE,
            "sleep",
            "600",
        ).strip()
        for index, name in enumerate(alone)
    ]
    try:
        before = dep.pids(*mains)
        write(dep, four=True, two=False, solo=False)
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


def test_switching_the_runtime_is_one_converge_and_keeps_every_bots_data(dep):
    trades = {
        main: wait_for(
            lambda main=main: dep.kept_trades(main, "one"),
            timeout=300,
            what=f"a filled trade of {main}/one before the switch",
            then=lambda main=main: dep.log_tail(main, "one"),
        )
        for main in MAINS
    }
    limits = {main: memory_limit(dep, pool(main)) for main in MAINS}
    write(dep, four=True, two=False, solo=False, switched=True)
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
        assert dep.kept_trades(main, "one") >= trades[main]
    assert dep.converge().operations == []
