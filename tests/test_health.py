"""Health findings: each silent failure is named, with the numbers a person needs."""

from __future__ import annotations

from botpool.health import Health, evaluate, parse
from botpool.layout import CheckSettings
from botpool.plan import load_plan
from botpool.snapshot import ContainerState, ProgramState, Snapshot

from .conftest import MINIMAL

NOW = 1_800_000_000.0


def healthy(plan) -> tuple[Snapshot, Health]:
    host = plan.hosts["local"]
    snap = Snapshot(
        containers={p.name: ContainerState(p.name, True, "pool", "x") for p in host.pools}
    )
    seen = Health(mem_available_mb=4000)
    for pool in host.pools:
        snap.programs[pool.name] = {"zygote": ProgramState("zygote", "RUNNING", 9, 7200)}
        seen.container_memory[pool.name] = (500.0, 4000.0)
        for b in pool.bots:
            snap.programs[pool.name][b.program] = ProgramState(b.program, "RUNNING", 10, 7200)
            seen.listening[b.host_port] = {"127.0.0.1"}
            seen.bots[b.program] = {
                "ping": True,
                "trade_count": 4,
                "exits_last_hour": 0,
                "whitelist": 1,
                "last_process_ts": NOW - 5,
                "count": {"current": 1, "max": 3},
                "wallet": {"total": 1000, "free": 990},
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


def test_stagnant_bot_is_named_with_wallet_stake_slots_whitelist_and_last_warning(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    snap, seen = healthy(plan)
    report = seen.bots["alice-one"]
    report.update(
        trade_count=0,
        count={"current": 0, "max": 3},
        wallet={"total": 100, "free": 99},
        last_warning="... WARNING - Unable to create trade for BTC/USDT: Available "
        "balance (99.0 USDT) is lower than stake amount (500 USDT)",
    )
    message = failures(plan, snap, seen)[("bot alice/one", "stagnant")]
    assert message.startswith("alice-one has run 2 h 0 min with 0 trades")
    for part in (
        "wallet 99 USDT free of 100",
        "stake 10",
        "free trade slots 3 of 3",
        "whitelist 1 pairs",
        "lower than stake amount (500 USDT)",
    ):
        assert part in message
    young = snap.programs["alice-pool-1"]["alice-one"]
    snap.programs["alice-pool-1"]["alice-one"] = ProgramState(young.name, "RUNNING", 10, 600)
    assert ("bot alice/one", "stagnant") not in failures(plan, snap, seen)  # not yet an hour


def test_crash_loop_and_stopped_program(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    snap, seen = healthy(plan)
    snap.programs["alice-pool-1"]["alice-one"] = ProgramState("alice-one", "FATAL", None, None)
    seen.bots["alice-one"]["exits_last_hour"] = 6
    found = failures(plan, snap, seen)
    assert "is FATAL and exited 6 times in the last hour" in found[("bot alice/one", "crash-loop")]
    assert found[("bot alice/one", "running")].startswith(
        "program alice-one in alice-pool-1 is FATAL"
    )
    # a bot just added is STARTING for startsecs: not a failure (BACKOFF after it would be)
    snap.programs["alice-pool-1"]["alice-one"] = ProgramState("alice-one", "STARTING", 7, 0)
    assert ("bot alice/one", "running") not in failures(plan, snap, seen)
    snap.programs["alice-pool-1"]["alice-one"] = ProgramState("alice-one", "BACKOFF", None, None)
    assert "is BACKOFF" in failures(plan, snap, seen)[("bot alice/one", "running")]


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
    seen.bots["alice-one"] = {"error": "URLError: Connection refused"}
    assert "Connection refused" in failures(plan, snap, seen)[("bot alice/one", "api")]


def test_memory_of_pools_and_host(write_layout):
    plan = load_plan(write_layout(MINIMAL))
    snap, seen = healthy(plan)
    seen.container_memory["alice-pool-1"] = (3900.0, 4000.0)
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
        "alice-pool-1|512.5MiB / 3.848GiB",
        "@@botpool probe",
        '{"alice-one": {"ping": true}}',
    ]
    seen = parse(lines)
    assert seen.listening == {9000: {"127.0.0.1"}, 9001: {"0.0.0.0"}}
    assert seen.mem_available_mb == 2000
    used, limit = seen.container_memory["alice-pool-1"]
    assert used == 512.5 and round(limit) == 3940
    assert seen.bots == {"alice-one": {"ping": True}} and seen.probe_error is None
    assert (
        parse(["@@botpool probe", "docker: no such image"]).probe_error == "docker: no such image"
    )
