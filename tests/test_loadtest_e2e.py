"""The old system's load test, done right: 3 users x 12 bots in six pools, every bot answering.
Zygote pools, the default runtime: a process pool imports a whole freqtrade a bot (about 3
CPU-seconds each, as the zygote's preload log says), which at this scale cost the suite's two
cores a minute and proved nothing the process pools of the checks, converge and upgrade
modules do not."""

from __future__ import annotations

import pytest
import yaml

from .e2e import REPO, new_deployment

pytestmark = pytest.mark.e2e(minutes=2.0)

RUNTIMES = {"carol": "zygote", "dave": "zygote", "erin": "zygote"}


def test_the_36_bot_example_converges_and_every_bot_answers(tmp_path):
    dep = new_deployment(tmp_path, "e2eload", 19300)
    users = yaml.safe_load((REPO / "inventory" / "loadtest.yaml").read_text())["users"]
    assert set(users) == set(RUNTIMES)
    for user, runtime in RUNTIMES.items():
        users[user] = {"runtime": runtime, **users[user]}
    dep.write(
        yaml.safe_dump(users, default_flow_style=None, sort_keys=False),
        extra_yaml="hosts:\n  local: {memory_mb: 16384}\n",
    )
    try:
        dep.converge()
        plan = dep.plan()
        assert len(plan.bots) == 36
        assert sorted((p.name, p.runtime.name, len(p.bots)) for p in plan.pools) == [
            (f"{u}-pool-{n}", RUNTIMES[u], size)
            for u in ("carol", "dave", "erin")
            for n, size in ((1, 10), (2, 2))
        ]
        for pool in plan.pools:  # each pool runs its runtime's programs, every one running
            programs = dep.programs(pool.name)
            assert ("zygote" in programs) == (pool.runtime.name == "zygote"), programs
        dep.wait_answering(timeout=600)
        for user in RUNTIMES:  # a few bots of each user
            for bot in [b for b in plan.bots if b.user == user][::5]:
                config = dep.api(bot.user, bot.name, "show_config").json()
                assert config["bot_name"] == bot.program and config["dry_run"] is True
        assert dep.converge().operations == []
    finally:
        dep.teardown()
