"""The old system's load test, done right: 3 users x 12 bots, every bot answering."""

from __future__ import annotations

import pytest
import yaml

from .e2e import REPO, new_deployment

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("runtime", ["zygote", "process"])
def test_the_36_bot_example_converges_and_every_bot_answers(tmp_path, runtime):
    dep = new_deployment(tmp_path, "e2eload", 19300)
    dep.runtime = runtime
    users = yaml.safe_load((REPO / "inventory" / "loadtest.yaml").read_text())["users"]
    dep.write(
        yaml.safe_dump(users, default_flow_style=None, sort_keys=False),
        extra_yaml="hosts:\n  local: {memory_mb: 16384}\n",
    )
    try:
        dep.converge()
        plan = dep.plan()
        assert len(plan.bots) == 36
        assert sorted((p.name, len(p.bots)) for p in plan.pools) == [
            (f"{u}-pool-{n}", size)
            for u in ("carol", "dave", "erin")
            for n, size in ((1, 10), (2, 2))
        ]
        dep.wait_answering(timeout=600)
        for bot in plan.bots[::7]:
            config = dep.api(bot.user, bot.name, "show_config").json()
            assert config["bot_name"] == bot.program and config["dry_run"] is True
        assert dep.converge().operations == []
    finally:
        dep.teardown()
