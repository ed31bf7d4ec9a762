"""Health findings: each silent failure is named, with the numbers a person needs."""

from __future__ import annotations

from datetime import UTC, datetime

from botpool.core.health import STARTING_GRACE_SECONDS, STARTSECS, Health, evaluate, parse
from botpool.core.layout import BackupSettings, CheckSettings
from botpool.core.plan import load_plan
from botpool.core.snapshot import ContainerState, ProgramState, Snapshot

from .conftest import MINIMAL

NOW = 1_800_000_000.0


def healthy(plan) -> tuple[Snapshot, Health]:
    host = plan.hosts["local"]
    snap = Snapshot(
        containers={p.container: ContainerState(p.container, True, "pool", "x") for p in host.pools}
    )
    seen = Health(mem_available_mb=4000)
    for pool in host.pools:
        snap.programs[pool.container] = {"zygote": ProgramState("zygote", "RUNNING", 9, 7200)}
        seen.container_memory[pool.container] = (500.0, 4000.0)
        for b in pool.bots:
            snap.programs[pool.container][b.program] = ProgramState(b.program, "RUNNING", 10, 7200)
            seen.listening[b.host_port] = {"127.0.0.1"}
            seen.bots[b.program] = {
                "ping": True,
                "trade_count": 4,
                "exits_last_hour": 0,
                "whitelist": 1,
                "last_process_ts": NOW - 5,
                "count": {"current": 1, "max": 3},
                "wallet": {"total": 1000, "free": 990},
                "tradable_balance_ratio": 0.99,
                "spawned_seconds_ago": 7200,
                "file_errors": [],
                "config": {
                    "bot_name": b.program,
                    "dry_run": True,
                    "strategy": "SampleStrategy",
                    "stake_amount": "10",
                },
            }
    return snap, seen


def failures(plan, snap, seen, limits: CheckSettings | None = None) -> dict[tuple[str, str], str]:
    found = evaluate(plan.hosts["local"], snap, seen, limits or CheckSettings(), now=NOW)
    return {(f.subject, f.check): f.message for f in found if not f.ok}


def test_a_healthy_host_passes_every_check(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    assert failures(plan, *healthy(plan)) == {}


def bot_state(snap: Snapshot, state: str, uptime: int | None = 7200) -> None:
    pid = 10 if state in ("RUNNING", "STOPPING") else None
    snap.programs["botpool_alice-pool-1"]["alice-one"] = ProgramState(
        "alice-one", state, pid, uptime
    )


def test_more_exits_than_max_exits_per_hour_is_a_crash_loop_even_when_running(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    snap, seen = healthy(plan)
    limit = CheckSettings().max_exits_per_hour
    seen.bots["alice-one"]["exits_last_hour"] = limit
    assert ("bot alice/one", "crash-loop") not in failures(plan, snap, seen)
    seen.bots["alice-one"]["exits_last_hour"] = limit + 1
    assert failures(plan, snap, seen)[("bot alice/one", "crash-loop")].startswith(
        f"alice-one is RUNNING and exited {limit + 1} times in the last hour "
        f"(checks.max_exits_per_hour: {limit})"
    )


def test_fatal_and_backoff_are_down_and_looping_whatever_the_exit_count(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    snap, seen = healthy(plan)
    seen.bots["alice-one"]["last_warning"] = "... ERROR - Could not load markets"
    for state in ("FATAL", "BACKOFF"):
        bot_state(snap, state, None)
        found = failures(plan, snap, seen)
        assert found[("bot alice/one", "running")] == (
            f"program alice-one in alice-pool-1 is {state}; "
            "last warning: ... ERROR - Could not load markets"
        )
        assert f"is {state} and exited 0 times" in found[("bot alice/one", "crash-loop")]
    for state in ("STOPPED", "EXITED", "STOPPING", "UNKNOWN"):
        bot_state(snap, state, None)
        assert f"is {state}" in failures(plan, snap, seen)[("bot alice/one", "running")]
    del snap.programs["botpool_alice-pool-1"]["alice-one"]
    assert "is absent" in failures(plan, snap, seen)[("bot alice/one", "running")]


def test_starting_passes_for_its_first_seconds_but_not_for_long(write_layout):
    """supervisorctl shows no time for STARTING: the probe's spawn time from supervisord's
    log says how long it has been starting."""
    plan = load_plan(write_layout(MINIMAL))
    snap, seen = healthy(plan)
    bot_state(snap, "STARTING", None)
    report = seen.bots["alice-one"]
    for seconds in (0, 3, STARTING_GRACE_SECONDS):
        report["spawned_seconds_ago"] = seconds
        assert ("bot alice/one", "running") not in failures(plan, snap, seen), seconds
    report["spawned_seconds_ago"] = STARTING_GRACE_SECONDS + 1
    assert failures(plan, snap, seen)[("bot alice/one", "running")] == (
        f"program alice-one in alice-pool-1 is STARTING for {STARTING_GRACE_SECONDS + 1} s "
        f"(it should be RUNNING after {STARTSECS} s)"
    )
    report["spawned_seconds_ago"] = None
    found = failures(plan, snap, seen)
    assert "STARTING since an unknown time" in found[("bot alice/one", "running")]


def test_stagnant_after_exactly_stagnant_after_minutes_with_0_trades(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    snap, seen = healthy(plan)
    seen.bots["alice-one"]["trade_count"] = 0
    limit = CheckSettings().stagnant_after_minutes * 60
    bot_state(snap, "RUNNING", limit - 1)
    assert ("bot alice/one", "stagnant") not in failures(plan, snap, seen)
    bot_state(snap, "RUNNING", limit)
    assert failures(plan, snap, seen)[("bot alice/one", "stagnant")].startswith(
        "alice-one has run 1 h 0 min with 0 trades (checks.stagnant_after_minutes: 60)"
    )
    seen.bots["alice-one"]["trade_count"] = 1
    assert ("bot alice/one", "stagnant") not in failures(plan, snap, seen)


def test_stagnant_bot_is_named_with_its_real_stake_against_wallet_x_ratio(write_layout):
    """The figures are the bot's (show_config, balance, its config file), not the plan's
    stake 10 and ratio 0.99: a config edited on the host is what the bot trades with."""
    plan = load_plan(write_layout(MINIMAL))
    snap, seen = healthy(plan)
    report = seen.bots["alice-one"]
    report.update(
        trade_count=0,
        count={"current": 0, "max": 3},
        wallet={"total": 100, "free": 99},
        tradable_balance_ratio=0.5,
        last_warning="... WARNING - Unable to create trade for BTC/USDT: Available "
        "balance (50.0 USDT) is lower than stake amount (500 USDT)",
    )
    report["config"]["stake_amount"] = "500"

    def stagnant() -> str:
        return failures(plan, snap, seen)[("bot alice/one", "stagnant")]

    assert stagnant() == (
        "alice-one has run 2 h 0 min with 0 trades (checks.stagnant_after_minutes: 60): "
        "wallet 99 USDT free of 100, stake 500 USDT is more than the 50 USDT it may use "
        "(wallet 100 x tradable_balance_ratio 0.5), free trade slots 3 of 3, whitelist 1 "
        "pairs; last warning: ... WARNING - Unable to create trade for BTC/USDT: Available "
        "balance (50.0 USDT) is lower than stake amount (500 USDT)"
    )
    # freqtrade trades when the stake equals what it may use; a cent more, it cannot
    report["config"]["stake_amount"] = "50"
    assert "stake 50 USDT fits in the 50 USDT it may use" in stagnant()
    report["config"]["stake_amount"] = "50.01"
    assert "stake 50.01 USDT is more than the 50 USDT it may use" in stagnant()
    report.pop("tradable_balance_ratio")  # no ratio reported: the plan's
    assert "the 99 USDT it may use (wallet 100 x tradable_balance_ratio 0.99)" in stagnant()
    report["config"]["stake_amount"] = "unlimited"  # freqtrade allows it: no comparison
    assert "wallet 99 USDT free of 100, stake unlimited USDT, free trade slots" in stagnant()


def test_silent_api_wrong_config_stale_heartbeat_and_public_port(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    snap, seen = healthy(plan)
    seen.bots["alice-one"]["config"]["stake_amount"] = "25"
    seen.bots["alice-one"]["last_process_ts"] = NOW - 3600
    seen.listening[9000] = {"0.0.0.0"}
    found = failures(plan, snap, seen)
    assert found[("bot alice/one", "config")].startswith(
        "show_config differs from the plan in stake_amount"
    )
    assert "last ran 1 h 0 min ago" in found[("bot alice/one", "heartbeat")]
    assert "listens on ['0.0.0.0']" in found[("bot alice/one", "port")]
    seen.bots["alice-one"] = {"error": "URLError: Connection refused", "file_errors": []}
    assert failures(plan, snap, seen)[("bot alice/one", "api")] == (
        "the API at 127.0.0.1:9000 does not answer: URLError: Connection refused"
    )


def test_a_bot_not_asked_and_files_the_probe_refused(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    snap, seen = healthy(plan)
    refused = "alice-pool-1/bots/one/config.json is not a regular file but a FIFO"
    seen.bots["alice-one"] = {"not_asked": f"no API login ({refused})", "file_errors": [refused]}
    found = failures(plan, snap, seen)
    assert found[("bot alice/one", "api")] == (
        f"the API at 127.0.0.1:9000 was not asked: no API login ({refused})"
    )
    assert found[("bot alice/one", "files")].startswith(
        f"the probe could not read the files of alice-one: {refused}. It reads regular files "
        "only and follows no symbolic link"
    )
    seen.bots = {}  # the probe itself failed: nothing is known, nothing passes
    seen.probe_error = "docker: no such image"
    found = failures(plan, snap, seen)
    assert "does not answer: docker: no such image" in found[("bot alice/one", "api")]
    assert "files of alice-one: docker: no such image" in found[("bot alice/one", "files")]


def test_memory_of_pools_and_host(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    snap, seen = healthy(plan)
    seen.container_memory["botpool_alice-pool-1"] = (3900.0, 4000.0)
    seen.mem_available_mb = 100
    found = failures(plan, snap, seen)
    assert (
        "uses 3900 MiB of its 4000 MiB limit (98% > 90%" in found[("pool alice-pool-1", "memory")]
    )
    assert "has 100 MiB available" in found[("host local", "memory")]


def test_parse_reads_sockets_memory_stats_and_the_probe():
    lines = [
        "@@botpool listening",
        "  sl  local_address rem_address   st",
        "   0: 0100007F:2328 00000000:0000 0A 00000000:00000000",
        "   1: 00000000:2329 00000000:0000 0A 00000000:00000000",
        "   2: 0100007F:232A 0100007F:9999 01 00000000:00000000",
        "@@botpool meminfo",
        "MemAvailable:    2048000 kB",
        "@@botpool stats",
        "botpool_alice-pool-1|512.5MiB / 3.848GiB",
        "@@botpool probe",
        '{"alice-one": {"ping": true}}',
    ]
    seen = parse(lines)
    assert seen.listening == {9000: {"127.0.0.1"}, 9001: {"0.0.0.0"}}
    assert seen.mem_available_mb == 2000
    used, limit = seen.container_memory["botpool_alice-pool-1"]
    assert used == 512.5 and round(limit) == 3940
    assert seen.bots == {"alice-one": {"ping": True}} and seen.probe_error is None
    assert (
        parse(["@@botpool probe", "docker: no such image"]).probe_error == "docker: no such image"
    )


def backup_findings(plan, seen, uptime: int | None = 7200, interval: int = 60):
    snap, _ = healthy(plan)
    snap.programs["botpool_alice-pool-1"]["alice-one"] = ProgramState(
        "alice-one", "RUNNING", 10, uptime
    )
    settings = BackupSettings(interval_minutes=interval)
    found = evaluate(plan.hosts["local"], snap, seen, CheckSettings(), now=NOW, backups=settings)
    return {f.subject: f for f in found if f.check == "backup"}


def test_a_bot_whose_newest_backup_is_older_than_two_intervals_is_reported(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    stamp = datetime.fromtimestamp(NOW - 2 * 3600 - 60, UTC).strftime("%Y%m%dT%H%M%SZ")
    fresh = datetime.fromtimestamp(NOW - 3000, UTC).strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "@@botpool backups",
        f"./alice/one/{stamp}.sqlite.gz",
        "./alice/one/pre-upgrade",  # not a file of the schedule: ignored
        f"./alice/one/.{fresh}-x.part",  # a copy not finished: no backup
    ]
    (stale,) = backup_findings(plan, parse(lines)).values()
    assert not stale.ok
    assert "alice/one last good backup is 2 h 1 min old; the schedule allows 2 h 0 min" in (
        stale.message
    )
    (good,) = backup_findings(plan, parse([*lines, f"./alice/one/{fresh}.sqlite.gz"])).values()
    assert good.ok
    # a short interval is a short allowance
    (short,) = backup_findings(
        plan, parse([*lines, f"./alice/one/{fresh}.sqlite.gz"]), interval=10
    ).values()
    assert not short.ok


def test_a_bot_without_a_backup_passes_only_while_it_is_new(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    (young,) = backup_findings(plan, parse(["@@botpool backups"]), uptime=600).values()
    assert young.ok
    (old,) = backup_findings(plan, parse(["@@botpool backups"]), uptime=3 * 3600).values()
    assert not old.ok and "alice/one has no backup and has run 3 h 0 min" in old.message
    (stopped,) = backup_findings(plan, parse(["@@botpool backups"]), uptime=None).values()
    assert stopped.ok  # its `running` check fails; how old it is, nobody knows


def test_no_backup_check_when_backups_are_off(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    snap, seen = healthy(plan)
    off = BackupSettings(enabled=False)
    found = evaluate(plan.hosts["local"], snap, seen, CheckSettings(), now=NOW, backups=off)
    assert not [f for f in found if f.check == "backup"]
