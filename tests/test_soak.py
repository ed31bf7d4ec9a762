"""bench/soak.py without Docker: a sample read inside the VPS becomes the right CSV row, and
the report's verdicts follow the CSV (a failure shows as FAIL, a gap as "not measured").
Also bench/pages.py's sorting of a bot's pages."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import pytest

from bench import pages, soak
from bench.soak_inside import UNEXPECTED_EXIT, stat_file
from botpool.core.render import render_pool
from tests.e2e import Deployment

ZYGOTE = "python3 /botpool/runtime/zygote.py serve /run/zygote.sock --min-uid 200000"


@pytest.fixture
def sampler(tmp_path: Path) -> soak.Sampler:
    dep = Deployment("soak", tmp_path / "deploy", 9000, monitoring="{enabled: true}")
    dep.directory.mkdir(parents=True)
    dep.write(soak.layout_users(2), extra_yaml="hosts:\n  vps: {memory_mb: 7800}\n")
    setup = soak.Setup(vps=None, volume="v", dep=dep)  # type: ignore[arg-type]
    return soak.Sampler(setup, tmp_path, every=120, started=1000.0)


def raw_sample(
    sampler: soak.Sampler, when: float, pids: tuple[int, int], exits: int = 0, cpu_s: float = 0
) -> dict[str, Any]:
    """What soak_inside.py's `sample` prints for the 2-bot pool: supervisord, the zygote, two
    launchers (pids as given) each with its forked bot (named after it by PR_SET_NAME)."""
    dep = sampler.setup.dep
    (pool,) = dep.plan().pools
    container = dep.container(pool.name)
    b0, b1 = (b.program for b in dep.plan().bots)
    launch = "python3 -I -S /botpool/runtime/launcher.py"
    rows = [
        [10, 1, "/usr/bin/python3 /usr/bin/supervisord -c /botpool/supervisord.conf", 14336, "s"],
        [11, 10, ZYGOTE, 75776, "python3"],
        [pids[0], 10, launch, 6144, "python3"],
        [pids[1], 10, launch, 6144, "python3"],
        [pids[0] + 100, 11, ZYGOTE, 102400, "u0-b0"],
        [pids[1] + 100, 11, ZYGOTE, 98304, "u0-b1"],
    ]
    return {
        "time": when,
        "containers": {container: rows, "soak_monitoring": [[90, 1, "prometheus", 204800, "p"]]},
        "supervisor": {
            container: {
                "zygote": ["RUNNING", 11],
                b0: ["RUNNING", pids[0]],
                b1: ["RUNNING", pids[1]],
            }
        },
        "exits": {container: {b0: exits} if exits else {}},
        "cgroup": {
            "usage": 3000 * 2**20,
            "inactive_file": 1000 * 2**20,
            "anon": 1800 * 2**20,
            "limit": 7800 * 2**20,
            "oom_kills": 0,
            "cpu_ns": int(cpu_s * 1e9),
        },
        "all_pss_kib": 2500 * 1024,
        "starts": {"u0/b0": 1.0, "u0/b1": 1.0},
        "alerts": [],
    }


def traffic(bot: str, errors: int = 0, trades: int = 3) -> dict[str, Any]:
    return {
        "bot": bot,
        "calls": 6,
        "errors": ["status: timed out"] * errors,
        "latencies": [0.01, 0.02, 0.03, 0.04, 0.05, 0.5],
        "trades": trades,
        "heartbeat_age": 4.0,
    }


def test_a_sample_becomes_one_row_per_host_pool_and_bot(sampler):
    row, detail = sampler.rows(raw_sample(sampler, 1060, (20, 21)), [traffic("u0/b0")])
    assert row["elapsed_min"] == "1.0" and row["bots_running"] == 2
    pool = (14336 + 75776 + 2 * 6144 + 102400 + 98304) / 1024
    assert row["pools_pss_mib"] == f"{pool:.0f}" and row["pss_per_bot_mib"] == f"{pool / 2:.1f}"
    assert row["zygotes_pss_mib"] == "74" and row["monitoring_pss_mib"] == "200"
    assert (row["vps_working_set_mib"], row["vps_available_mib"]) == ("2000", "5800")
    assert row["vps_anon_mib"] == "1800"
    assert (row["api_calls"], row["api_errors"], row["api_p50_ms"], row["api_p95_ms"]) == (
        6,
        0,
        "30",
        "500",
    )
    assert row["restarts"] == 0 and row["trades"] == 3 and row["alerts_firing"] == ""
    bots = {d["name"]: d["pss_mib"] for d in detail if d["kind"] == "bot"}
    assert bots == {"u0/b0": "106.0", "u0/b1": "102.0"}  # its fork plus its launcher


def test_restarts_exits_and_cpu_count_from_the_first_sample(sampler):
    sampler.rows(raw_sample(sampler, 1060, (20, 21), exits=2), [traffic("u0/b0")])
    row, detail = sampler.rows(
        raw_sample(sampler, 1180, (20, 31), exits=3, cpu_s=60), [traffic("u0/b1", errors=1)]
    )
    assert row["restarts"] == 1 and row["unexpected_exits"] == 1  # 2 exits before the soak
    assert row["cpu_percent"] == "25.0"  # 60 CPU-seconds in 120 s of 2 CPUs
    assert row["api_errors"] == 1 and row["trades"] == 6  # the latest count of each bot
    restarted = {d["name"]: d["restarts"] for d in detail if d["kind"] == "bot"}
    assert restarted == {"u0/b0": 0, "u0/b1": 1}


def write_csv(out: Path, rows: list[dict[str, object]]) -> None:
    with open(out / "samples.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=soak.COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    (out / "meta.json").write_text(json.dumps({"bots": 50, "hours": 2}))


def steady(minute: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "elapsed_min": minute,
        "vps_pss_mib": 5000 + minute / 6,  # 10 MiB an hour
        "vps_working_set_mib": 5500,
        "vps_anon_mib": 4000,
        "vps_limit_mib": 7800,
        "pools_pss_mib": 4800,
        "restarts": 0,
        "unexpected_exits": 0,
        "oom_kills": 0,
        "api_calls": 1000,
        "api_errors": 0,
        "alerts_firing": "",
    }
    return {**row, **changes}


def verdicts(text: str) -> dict[str, str]:
    lines = [line.split(" | ") for line in text.splitlines() if " | " in line]
    return {cells[0].strip(): cells[-1].strip() for cells in lines[1:]}


def test_a_clean_run_passes_every_criterion(tmp_path):
    write_csv(tmp_path, [steady(m, alerts_firing="Watchdog") for m in range(0, 121, 5)])
    text = soak.report(tmp_path)
    assert set(verdicts(text).values()) == {"pass"}, text
    assert "+10 MiB/h" in text and "5480 MiB at 48 h" in text, text
    assert (tmp_path / "summary.txt").read_text() == text + "\n"


@pytest.mark.parametrize("text", ["0", "-5", "100", "1e9", "nan", "inf", "ten", "5%", ""])
def test_exit_at_refuses_what_is_not_a_loss_freqtrade_takes(text):
    """A stoploss of -100 % or lower, no number: argparse prints the usage and exits 2."""
    with pytest.raises((argparse.ArgumentTypeError, ValueError)):
        soak.percent(text)


def test_exit_at_takes_a_percentage_with_the_whitespace_float_ignores():
    assert (soak.percent("99.5"), soak.percent(" 5\n")) == (99.5, 5.0)


def test_the_report_gives_the_trade_rate_and_how_trades_exit(tmp_path):
    write_csv(tmp_path, [steady(m, trades=m * 25) for m in range(0, 121, 5)])  # 3,000 in 2 h
    meta = json.loads((tmp_path / "meta.json").read_text())
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "exits": "+/-5 %"}))
    assert "trades: 3000, 30.0 a bot an hour (exits: +/-5 %)" in soak.report(tmp_path)


@pytest.mark.parametrize("exit_at", [None, 5.0])
def test_exit_at_sets_every_bots_take_profit_and_stop_loss(tmp_path, secrets, exit_at):
    """--exit-at: freqtrade's own minimal_roi and stoploss in each bot's rendered config;
    without it the strategy's own (no such key in the config)."""
    dep = Deployment("soak", tmp_path / "deploy", 9000)
    dep.directory.mkdir(parents=True)
    dep.write(soak.layout_users(3, exit_at=exit_at))
    plan = dep.plan()
    assert len(plan.bots) == 3
    for pool in plan.pools:
        files = render_pool(plan, pool, "botpool/pool:test", secrets).files
        configs = [json.loads(f.text) for f in files if f.path.endswith("/config.json")]
        assert len(configs) == 3
        for config in configs:
            if exit_at is None:
                assert "minimal_roi" not in config and "stoploss" not in config, config
            else:
                assert config["minimal_roi"] == {"0": 0.05} and config["stoploss"] == -0.05


def test_each_failure_and_gap_shows(tmp_path):
    rows = [steady(m) for m in range(0, 121, 5)]
    rows[10].update(unexpected_exits=1, oom_kills=1, api_errors=30)  # 30 of 25,000 calls
    rows[12].update(alerts_firing="BotDown(u0/b3);Watchdog")
    for r in rows:
        r["vps_working_set_mib"] = 5000 + 10 * float(str(r["elapsed_min"]))  # 600 MiB/h
    write_csv(tmp_path, rows)
    found = verdicts(soak.report(tmp_path))
    assert found == {
        "unexpected bot exits": "FAIL",
        "OOM kills (VPS and its containers)": "FAIL",
        "API errors": "FAIL",  # 0.12 %
        "VPS memory, PSS of every process: growth, 48 h": "pass",
        "VPS memory, cgroup working set: growth, 48 h": "FAIL",
        "VPS memory no swap can free (anonymous and shared): growth, 48 h": "pass",
        "alerts that fired (the Watchdog always does: the dead man's switch)": "FAIL",
    }, found

    write_csv(
        tmp_path, [steady(0, alerts_firing="n/a", api_calls=0), steady(2, alerts_firing="n/a")]
    )
    found = verdicts(soak.report(tmp_path))
    assert found["alerts that fired (the Watchdog always does: the dead man's switch)"] == (
        "not measured"
    )
    assert found["VPS memory, PSS of every process: growth, 48 h"] == "n/a"

    older = [steady(m) for m in range(0, 121, 5)]
    for r in older:
        del r["vps_anon_mib"]  # a soak.py before that column
    write_csv(tmp_path, older)
    found = verdicts(soak.report(tmp_path))
    assert found["VPS memory no swap can free (anonymous and shared): growth, 48 h"] == (
        "not measured"
    )


def test_the_inside_scripts_parsers():
    line = "2026-11-27 10:00:00,000 INFO exited: u0-b3 (exit status 1; not expected)"
    assert UNEXPECTED_EXIT.search(line).group(1) == "u0-b3"
    assert not UNEXPECTED_EXIT.search("INFO exited: u0-b3 (exit status 0; expected)")


def test_stat_files_are_read_as_numbers(tmp_path):
    path = tmp_path / "memory.oom_control"
    path.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert stat_file(path)["oom_kill"] == 2


def test_samples_are_taken_on_a_grid_from_start_to_end():
    assert list(soak.sample_times(0, 900, 120)) == [0, 120, 240, 360, 480, 600, 720, 840, 900]
    assert list(soak.sample_times(0, 240, 120)) == [0, 120, 240]


def test_a_bots_pages_are_told_apart_from_its_zygotes():
    """bench/pages.py: the zygote's very frame is shared, another frame at one of its
    addresses is a copy, an address it does not have is new."""
    zygote = {0x1000: (7, "anon"), 0x2000: (8, "heap"), 0x3000: (9, "lib")}
    bot = {0x1000: (7, "anon"), 0x2000: (42, "heap"), 0x3000: (9, "lib"), 0x9000: (43, "anon")}
    assert pages.classify(bot, zygote) == {
        ("shared", "anon"): 1,
        ("copied", "heap"): 1,
        ("shared", "lib"): 1,
        ("new", "anon"): 1,
    }


def test_per_trade_fits_each_bots_own_pss_against_its_trades(tmp_path):
    """Memory that follows trades, not the clock: the cross-section at the last sample."""
    assert soak.per_trade(tmp_path) is None  # nothing recorded yet
    bots = {"u0/b0": 10, "u0/b1": 20, "u1/b0": 40}
    detail = ["time_utc,elapsed_min,kind,name,pss_mib,restarts,exits"]
    detail += [f"t,0.0,bot,{b},60.0,0,0" for b in bots]  # an earlier sample: not used
    detail += [f"t,5.0,bot,{b},{70 + 0.25 * n},0,0" for b, n in bots.items()]
    detail.append("t,5.0,pool,u0-pool-1,900.0,0,0")
    (tmp_path / "detail.csv").write_text("\n".join(detail) + "\n")
    traffic = [{"bot": b, "trades": n - 1} for b, n in bots.items()]  # older rounds first
    traffic += [{"bot": b, "trades": n} for b, n in bots.items()] + [{"bot": "u9/b9"}]
    (tmp_path / "raw.jsonl").write_text(json.dumps({"sample": {}, "traffic": traffic}) + "\n")
    kib, base, r, count = soak.per_trade(tmp_path)
    assert (round(kib), round(base, 6), round(r, 6), count) == (256, 70.0, 1.0, 3)
