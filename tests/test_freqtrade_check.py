"""freqtrade's own checks of every bot config: a refusal traced back to the layout's FILE:LINE
and key, on the controller or from the check's output on a host (its Docker side:
tests/test_freqtrade_check_e2e.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources

import pytest

from botpool import payloads
from botpool.core import freqtrade_validation as validation
from botpool.core.pipeline import HostRef, desired
from botpool.core.plan import load_plan
from botpool.core.reconcile import HostChanges, Upload
from botpool.core.snapshot import Snapshot

from .conftest import MINIMAL
from .test_layout import FREQTRADE as MERGED

# what freqtrade accepts, on the same lines as test_layout's: order_types with
# stoploss_on_exchange, entry_pricing instead of protections (deprecated in a config)
FREQTRADE = MERGED.replace(
    "stoploss: market}", "stoploss: market, stoploss_on_exchange: false}"
).replace(
    "protections: [{method: CooldownPeriod, stop_duration_candles: 2}]",
    "entry_pricing: {price_side: same, use_order_book: false}",
)
assert FREQTRADE.count("\n") == MERGED.count("\n")

# FREQTRADE's lines: 8 defaults.bot.freqtrade, 9 order_types, 10 pairlists, 11 unfilledtimeout,
# 14 users.alice.freqtrade, 15 its unfilledtimeout, 16 entry_pricing, 18 bot one, 19 its
# freqtrade, 20 its pairlists, 21 bot two (no freqtrade: of its own)
WHERE = [
    # the bot's own setting
    ("one", ["pairlists", 0, "number_assets"], 20, "users.alice.bots[0].freqtrade.pairlists"),
    # a list replaces: bot one's pairlists, not the defaults' one at the same index
    ("one", ["pairlists", 0, "method"], 20, "users.alice.bots[0].freqtrade.pairlists"),
    ("two", ["pairlists", 0, "method"], 10, "defaults.bot.freqtrade.pairlists"),
    # mappings merge: each key from the level that set it
    ("one", ["unfilledtimeout", "entry"], 15, "users.alice.freqtrade.unfilledtimeout"),
    ("one", ["unfilledtimeout", "exit"], 11, "defaults.bot.freqtrade.unfilledtimeout"),
    ("two", ["entry_pricing", "price_side"], 16, "users.alice.freqtrade.entry_pricing"),
    # a key no level sets (botpool renders it), or none at all: the nearest freqtrade: mapping
    ("one", ["exchange", "pair_whitelist"], 19, "users.alice.bots[0].freqtrade"),
    ("two", ["exchange", "pair_whitelist"], 14, "users.alice.freqtrade"),
    ("two", [], 14, "users.alice.freqtrade"),
]


@pytest.mark.parametrize(("bot", "setting", "line", "key"), WHERE)
def test_a_refusal_names_the_line_and_key_that_set_the_value(write_layout, bot, setting, line, key):
    path = write_layout(FREQTRADE)
    plan = load_plan(path)
    (found,) = [b for b in plan.bots if b.name == bot]
    problem = validation.refusal_problem(plan, found, setting, "no good")
    assert (problem.file, problem.line) == (str(path), line)
    # the deepest key the layout has (a flow mapping's keys share its line)
    assert problem.path.startswith(key), problem.path
    assert f"bot alice/{bot}: " in problem.message and problem.message.endswith("no good")


def test_a_bot_without_freqtrade_settings_is_refused_at_its_own_line(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    problem = validation.refusal_problem(plan, plan.bots[0], ["max_open_trades"], "no good")
    assert (problem.line, problem.path) == (11, "users.alice.bots[0]")


def test_a_number_key_in_yaml_is_found_by_freqtrades_string_key(write_layout):
    text = FREQTRADE.replace(
        "      - name: two",
        "      - name: two\n        freqtrade:\n          minimal_roi: {0: 0.04, 30: bad}",
    )
    plan = load_plan(write_layout(text))
    problem = validation.refusal_problem(plan, plan.bots[1], ["minimal_roi", "30"], "x")
    assert (problem.line, problem.path) == (23, "users.alice.bots[1].freqtrade.minimal_roi.30")


INVALID = FREQTRADE.replace(
    "      - name: two",
    "      - name: two\n        freqtrade:\n          order_types: {entry: sideways}",
)


def test_freqtrade_itself_refuses_and_the_problem_points_at_the_layout(write_layout):
    path = write_layout(INVALID)
    (problem,) = validation.problems(load_plan(path))
    assert str(problem).startswith(
        f"{path}:23: users.alice.bots[1].freqtrade.order_types.entry: freqtrade refuses the "
        "config of bot alice/two: order_types.entry: 'sideways' is not one of"
    ), problem


def test_without_freqtrade_the_controller_checks_nothing(write_layout, monkeypatch):
    monkeypatch.setitem(sys.modules, "freqtrade", None)  # `import freqtrade` raises ImportError
    assert not validation.available()
    assert validation.problems(load_plan(write_layout(INVALID))) == []


def test_an_accepted_config_is_not_judged_again(write_layout, monkeypatch):
    plan = load_plan(write_layout(MINIMAL))
    assert validation.judge(plan) == validation.Judgement([], True)
    (mark,) = validation.accepted_folder().iterdir()
    assert mark.read_bytes() == b""  # a hash names it; no config, no secret in it
    judged = []
    monkeypatch.setattr(validation.freqtrade_check, "refusal", lambda config: judged.append(config))
    monkeypatch.setitem(sys.modules, "freqtrade", None)  # not even importable now
    assert validation.judge(plan) == validation.Judgement([], True) and judged == []
    # the same layout with a changed stake: a new config, judged anew (freqtrade gone: not here)
    changed = load_plan(write_layout(MINIMAL.replace("stake_amount: 10", "stake_amount: 11")))
    assert validation.judge(changed) == validation.Judgement([], False)


def test_a_mark_that_is_not_a_plain_file_is_no_mark_and_hangs_nothing(write_layout, monkeypatch):
    """A FIFO or a directory where a mark would be (the cache is the user's own folder, but a
    tired user's or another tool's leftovers must not stall or fool a converge)."""
    plan = load_plan(write_layout(MINIMAL))
    (bot,) = plan.bots
    folder = validation.accepted_folder()
    folder.mkdir(parents=True)
    mark = folder / validation.fingerprint(validation.placeholder_config(plan, bot))
    os.mkfifo(mark)
    assert validation.judge(plan) == validation.Judgement([], True)  # judged, not blocked
    mark.unlink()
    mark.mkdir()
    judged = []
    real = validation.freqtrade_check.refusal
    monkeypatch.setattr(
        validation.freqtrade_check, "refusal", lambda c: judged.append(c) or real(c)
    )
    assert validation.judge(plan) == validation.Judgement([], True)
    assert len(judged) == 1  # a directory is no mark: judged again


def test_a_refused_config_is_judged_and_said_again_each_time(write_layout):
    invalid = load_plan(write_layout(INVALID))
    first, second = validation.judge(invalid), validation.judge(invalid)
    assert len(first.problems) == 1 and first == second  # said again, each time


def run_check(stdin: str) -> list[str]:
    """The host's check, run here with this controller's python (freqtrade installed):
    the same script the container runs, fed the same way."""
    script = (resources.files(payloads) / "freqtrade_check.py").read_text()
    proc = subprocess.run(
        [sys.executable, "-c", script], input=stdin, capture_output=True, text=True, timeout=120
    )
    return proc.stdout.splitlines()


def test_the_hosts_check_gives_the_same_problems_as_the_controllers(write_layout):
    plan = load_plan(write_layout(INVALID))
    output = run_check(validation.check_input(plan, plan.bots))
    found = validation.read_check_output(plan, plan.bots, "botpool/pool:x", output)
    (here,) = validation.problems(plan)
    assert [str(p) for p in found] == [
        str(here).replace("freqtrade refuses", "freqtrade (in botpool/pool:x) refuses")
    ]
    valid = load_plan(write_layout(FREQTRADE, "valid.yaml"))
    output = run_check(validation.check_input(valid, valid.bots))
    assert validation.read_check_output(valid, valid.bots, "i", output) == []


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ([], "did not finish: no output"),
        (["Traceback (most recent call last):", "MemoryError"], "did not finish: Traceback"),
        (['{"botpool-freqtrade-check": "checked", "count": 1}'], "did not finish"),  # of 2
        (['{"botpool-freqtrade-check": "checked"'], "did not finish"),  # cut short
        (["[1, 2]", "null"], "did not finish"),
    ],
)
def test_a_check_that_did_not_finish_is_never_taken_for_valid(write_layout, output, expected):
    plan = load_plan(write_layout(FREQTRADE))
    (problem,) = validation.read_check_output(plan, plan.bots, "img", output)
    assert expected in problem.message and problem.file == plan.layout.file


def test_lines_about_unknown_bots_or_noise_are_ignored(write_layout):
    plan = load_plan(write_layout(FREQTRADE))
    output = [
        "WARNING freqtrade said something",
        '{"botpool-freqtrade-check": "refused", "bot": "mallory/x", "path": [], "message": "m"}',
        '{"botpool-freqtrade-check": "checked", "count": 2}',
    ]
    assert validation.read_check_output(plan, plan.bots, "img", output) == []


def test_the_check_runs_in_a_locked_down_container_and_gets_the_configs_on_stdin(write_layout):
    plan = load_plan(write_layout(INVALID))
    command = validation.check_command("botpool/pool:2026.9-abc")
    for flag in (
        "--rm -i --network none --read-only --user 65534:65534 --cap-drop ALL",
        "--security-opt no-new-privileges --memory 512m --memory-swap 512m --pids-limit 64",
        "botpool/pool:2026.9-abc timeout -k 5 120 python3 -c",
    ):
        assert flag in command
    assert command.endswith(f"2>&1 | head -c {1 << 20}")
    configs = validation.check_input(plan, plan.bots)
    assert "sideways" in configs and "sideways" not in command
    # placeholders stand in for every credential
    assert "placeholder" in configs or "x" * 32 in configs


def test_a_converge_checks_the_bots_it_would_start_anew(write_layout):
    plan = load_plan(write_layout(FREQTRADE))
    want = desired(HostRef("", "local"), plan)
    changes = want.compare(Snapshot())  # a new host: every pool is created
    (pool,) = want.pools
    assert validation.bots_to_check(want, changes) == {pool.container.image: list(plan.bots)}
    unit = changes.pools[0]
    unit.container = None  # the pool runs: only bot two's config changes
    config = next(a for a in pool.files if a.path == "bots/two/config.json")
    unit.uploads = [Upload(config, f"{unit.directory}/{config.path}")]
    assert validation.bots_to_check(want, changes) == {pool.container.image: [plan.bots[1]]}
    unit.uploads = []
    assert validation.bots_to_check(want, changes) == {}
    assert validation.bots_to_check(want, HostChanges()) == {}
