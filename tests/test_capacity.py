"""Capacity from measurements (botpool.core.capacity, botpool.hosts.capacity): hosts projected
with measured peaks, and the fewest pool moves, each proposal planned by the real planner."""

from __future__ import annotations

import json

import pytest

from botpool.cli import main
from botpool.core.capacity import Measured, loads, over, pool_load, propose
from botpool.core.plan import MONITORING_MB, Plan, load_plan
from botpool.hosts import capacity
from botpool.hosts.remote import RemoteError, RemoteHost

# 4,000 MiB hosts, 3,488 usable: 80 % is 2,790 MiB. Planned (zygote: 200 a pool + 100 a bot):
# alice's pool 1,000, bob's 700, carol's 500; h1 1,700 + exchange 40 + monitoring 160.
LAYOUT = """
defaults:
  bot: {exchange: sandbox, strategy: SampleStrategy, stake_amount: 10, dry_run_wallet: 1000,
        pairs: [BTC/USDT]}
hosts:
  h1: {memory_mb: 4000}
  h2: {memory_mb: 4000}
users:
  alice:
    host: h1
    bots: [{name: a1}, {name: a2}, {name: a3}, {name: a4}, {name: a5}, {name: a6},
           {name: a7}, {name: a8}]
  bob:
    host: h1
    bots: [{name: b1}, {name: b2}, {name: b3}, {name: b4}, {name: b5}]
  carol:
    host: h2
    bots: [{name: c1}, {name: c2}, {name: c3}]
"""


def planned(write_layout, text: str = LAYOUT) -> Plan:
    path = write_layout(text)
    assert main(["plan", str(path)]) == 0  # the lock, as a user's repository has it
    return load_plan(path)


def measured(plan: Plan, pools: dict[str, float]) -> Measured:
    """Every bot of the given pools measured (at a figure of no consequence here)."""
    bots = {b.key: 150.0 for b in plan.bots if b.pool in pools}
    return Measured(pools, bots)


def test_hosts_under_the_threshold_need_no_move(write_layout):
    plan = planned(write_layout)
    seen = measured(plan, {"alice-pool-1": 1500, "bob-pool-1": 900, "carol-pool-1": 600})
    now = loads(plan, seen)
    assert now["h1"].mb == 1500 + 900 + 40 + MONITORING_MB
    assert over(now) == [] and propose(plan, seen).moves == ()


def test_a_host_above_gets_the_fewest_moves_then_the_fewest_bots_moved(write_layout):
    plan = planned(write_layout)
    # h1: 2,100 + 900 + 200 = 3,200 MiB, 92 %: moving either pool to h2 fixes it; bob's has
    # fewer bots
    seen = measured(plan, {"alice-pool-1": 2100, "bob-pool-1": 900, "carol-pool-1": 600})
    assert over(loads(plan, seen)) == ["h1"]
    proposal = propose(plan, seen)
    assert proposal is not None
    (move,) = proposal.moves
    assert (move.pool, move.source, move.target, move.bots) == ("bob-pool-1", "h1", "h2", 5)
    assert move.edit == "users.bob.pools: {bob-pool-1: h2}"
    assert over(proposal.after) == []
    assert proposal.after["h2"].mb == 600 + 900 + 40 + MONITORING_MB

    # the edit, made in the layout by hand, plans the pool where the proposal said
    text = LAYOUT.replace(
        "    host: h1\n    bots: [{name: b1}",
        "    pools: {bob-pool-1: h2}\n    host: h1\n    bots: [{name: b1}",
    )
    path = write_layout(text)
    assert main(["plan", str(path)]) == 0
    assert {p.name: p.host for p in load_plan(path).pools}["bob-pool-1"] == "h2"


def test_two_moves_when_one_is_not_enough(write_layout):
    text = LAYOUT.replace("h2: {memory_mb: 4000}", "h2: {memory_mb: 4000}\n  h3: {memory_mb: 4000}")
    plan = planned(
        write_layout, text + "  dave:\n    host: h1\n    bots: [{name: d1}, {name: d2}]\n"
    )
    # h1: 3 x 1,300 + 240 = 4,140 MiB; one pool leaving leaves 2,840, above 2,790: two go, to
    # two hosts (h2 cannot take both), and the two with the fewest bots (bob's 5, dave's 2)
    seen = measured(
        plan, {"alice-pool-1": 1300, "bob-pool-1": 1300, "dave-pool-1": 1300, "carol-pool-1": 600}
    )
    proposal = propose(plan, seen)
    assert proposal is not None and over(proposal.after) == []
    assert {m.pool for m in proposal.moves} == {"bob-pool-1", "dave-pool-1"}
    assert {m.target for m in proposal.moves} == {"h2", "h3"}


def test_no_moves_can_do_it_when_every_host_is_full(write_layout):
    plan = planned(write_layout)
    seen = measured(plan, {"alice-pool-1": 2600, "bob-pool-1": 2600, "carol-pool-1": 2600})
    assert propose(plan, seen) is None


def test_a_move_the_planner_refuses_is_never_proposed(write_layout):
    """h2 has the memory, but its exchange profile allows 12 bots a host and carol runs 8
    there: neither alice's 7 nor bob's 5 may join them."""
    carol = "bots: [{name: c1}, {name: c2}, {name: c3}]"
    text = (
        LAYOUT.replace(
            "defaults:", "exchanges:\n  sandbox: {sandbox: true, max_bots_per_host: 12}\ndefaults:"
        )
        .replace("{name: a7}, {name: a8}", "{name: a7}")
        .replace(
            carol,
            carol.replace("]", ", {name: c4}, {name: c5}, {name: c6}, {name: c7}, {name: c8}]"),
        )
    )
    plan = planned(write_layout, text)
    seen = measured(plan, {"alice-pool-1": 2100, "bob-pool-1": 900, "carol-pool-1": 600})
    assert over(loads(plan, seen)) == ["h1"]
    assert propose(plan, seen) is None
    # the same with the limit raised: bob's pool goes
    raised = planned(write_layout, text.replace("max_bots_per_host: 12", "max_bots_per_host: 13"))
    proposal = propose(raised, seen)
    assert proposal is not None and [m.pool for m in proposal.moves] == ["bob-pool-1"]


def test_a_pool_never_measured_and_new_bots_count_with_planned_figures(write_layout):
    plan = planned(write_layout)
    alice = next(p for p in plan.pools if p.name == "alice-pool-1")
    assert pool_load(alice, Measured({}, {})).mb == alice.projected_mb == 1000
    some = {b.key: 120.0 for b in alice.bots[:6]}  # a7, a8 added since
    load = pool_load(alice, Measured({"alice-pool-1": 1400}, some))
    assert (load.mb, load.measured, load.unmeasured_bots) == (1400 + 2 * 100, True, 2)


# --- reading the hosts ------------------------------------------------------------------------


class Answering(RemoteHost):
    """A host whose Prometheus answers what it is given (a double of the remote command)."""

    def __init__(self, name: str, layout_host: str, answers: dict | None, error: str = ""):
        super().__init__(name, layout_host, "layout.yaml", {})
        self.answers, self.error = answers, error

    def run(self, command: str, purpose: str) -> list[str]:
        assert (
            "docker exec" in command and "max_over_time(botpool_pool_memory_bytes[1d])" in command
        )
        if self.answers is None:
            raise RemoteError(f"{self.name}: unreachable during {purpose}: timed out")
        return ["@@botpool prometheus", self.error or json.dumps(self.answers)]


def vector(*items: tuple[dict[str, str], str]) -> dict:
    result = [{"metric": labels, "value": [0, value]} for labels, value in items]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


MIB = 2**20


def test_peaks_are_read_and_odd_answers_left_out(write_layout):
    plan = planned(write_layout)
    answers = {
        "pools": vector(
            ({"pool": "alice-pool-1"}, str(1500 * MIB)),
            ({"pool": "bob-pool-1"}, "NaN"),  # no sample in the window
            ({"nopool": "x"}, "5"),
            ({"pool": "carol-pool-1"}, "not a number"),
        ),
        "bots": vector(({"user": "alice", "bot": "a1"}, str(130 * MIB)), ({"bot": "a2"}, "1")),
        "history": vector(({"pool": "alice-pool-1"}, "7200"), ({"pool": "bob-pool-1"}, "+Inf")),
    }
    seen = capacity.read(Answering("vps1", "h1", answers), plan, "1d")
    assert seen.error is None
    assert seen.pools == {"alice-pool-1": 1500} and seen.bots == {"alice/a1": 130}
    assert seen.history_h == 2.0

    broken = {"pools": {"status": "error", "error": "bad"}, "bots": [], "history": "x"}
    assert capacity.read(Answering("vps1", "h1", broken), plan, "1d").pools == {}


def test_a_host_not_read_says_why_and_a_pool_seen_twice_counts_its_larger_peak(write_layout):
    plan = planned(write_layout)
    down = capacity.read(Answering("vps2", "h2", None), plan, "1d")
    assert "vps2: unreachable" in (down.error or "")
    silent = capacity.read(
        Answering("vps2", "h2", {}, error="Error: No such container"), plan, "1d"
    )
    assert "its Prometheus did not answer: Error: No such container" in (silent.error or "")
    stray = capacity.read(Answering("vps9", "h9", {}), plan, "1d")
    assert "no host 'h9'" in (stray.error or "")
    old = capacity.HostMeasure("a", "h1", pools={"bob-pool-1": 800}, bots={"bob/b1": 90})
    new = capacity.HostMeasure("b", "h2", pools={"bob-pool-1": 700}, bots={"bob/b1": 95})
    both = capacity.merged([old, new])
    assert both.pools == {"bob-pool-1": 800} and both.bots == {"bob/b1": 95}


def test_the_report_names_the_moves_as_edits_and_says_what_is_planned(write_layout):
    plan = planned(write_layout)
    readings = [
        capacity.HostMeasure(
            "vps1",
            "h1",
            pools={"alice-pool-1": 2100, "bob-pool-1": 900},
            bots={b.key: 120.0 for b in plan.bots if b.host == "h1"},
            history_h=26.0,
        ),
        capacity.HostMeasure("vps2", "h2", error="vps2: unreachable during asking Prometheus"),
    ]
    report = capacity.report(plan, readings, "1d", 0.8)
    out = capacity.text(report)
    assert "users.bob.pools: {bob-pool-1: h2}" in out
    assert "h1 92 % -> 66 %" in out
    assert "ABOVE 80 %" in out and "26.0 h" in out and "not read" in out
    assert "zygote bots: 13 measured, peak PSS 120 MiB on average" in out
    data = report.as_dict()
    assert data["moves"][0]["edit"] == "users.bob.pools: {bob-pool-1: h2}"
    assert [h["above"] for h in data["hosts"]] == [True, False]
    assert data["errors"] == ["vps2: unreachable during asking Prometheus"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--window", "1y"], "is not a window"),
        (["--window", "0d"], "is not a window"),
        (["--window", "1d;rm"], "is not a window"),
        (["--threshold", "0"], "give a whole percentage"),
        (["--threshold", "101"], "give a whole percentage"),
        (["--check"], "--measured only reads"),
        (["--lost-host", "h1"], "--measured only reads"),
    ],
)
def test_measured_arguments_are_checked_before_any_host_is_read(
    write_layout, capsys, arguments, message
):
    path = write_layout(LAYOUT)
    code = _main(["plan", str(path), "--measured", "no-such-inventory.py", *arguments])
    assert code in (1, 2) and message in capsys.readouterr().err


def test_measured_refuses_a_layout_without_monitoring(write_layout, capsys):
    path = write_layout(LAYOUT + "monitoring: {enabled: false}\n")
    assert main(["plan", str(path)]) == 0
    assert main(["plan", str(path), "--measured", "inventory/local.py"]) == 1
    assert "monitoring.enabled: false" in capsys.readouterr().err


def _main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse refuses an argument
        return int(exit_.code or 0)


def test_the_threshold_is_used(write_layout):
    plan = planned(write_layout)
    seen = measured(plan, {"alice-pool-1": 1500, "bob-pool-1": 900, "carol-pool-1": 600})
    assert over(loads(plan, seen), 0.8) == []
    assert over(loads(plan, seen), 0.5) == ["h1"]
    assert propose(plan, seen, 0.5) is not None
