"""The REAL probe script (botpool/payloads/probe.py) on a hostile pools tree.

It runs with python3 exactly as in its container (the source passed with -c), against a
test double of freqtrade's API, and its real output goes through health.parse and
health.evaluate: the findings are what `pytest checks/` would show. Each file a bot can
spoil (a FIFO, a link to /dev/zero, a linked folder, a huge log, an oversized or missing
config, a directory) and each API that hangs gives a clear per-bot finding, and the
probe ends in bounded time and memory.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from botpool.core.health import STARTING_GRACE_SECONDS, evaluate, parse
from botpool.core.layout import CheckSettings
from botpool.core.plan import load_plan
from botpool.core.snapshot import ContainerState, ProgramState, Snapshot
from botpool.hosts import probe

from .freqtrade_double import FreqtradeDouble

POOL = "alice-pool-1"
LOGIN = ("alice-user", "alice-secret")
HOSTILE = ["fifo", "zero", "linked", "huge", "folder", "missing", "big", "hung", "slow"]
LAYOUT = """
defaults:
  bot:
    exchange: sandbox
    strategy: SampleStrategy
    stake_amount: 10
    dry_run_wallet: 1000
    pairs: [BTC/USDT]
users:
  alice:
    bots:
""" + "".join(f"      - name: {name}\n" for name in ["good", *HOSTILE])
MEMORY = 512 * 2**20  # address space of the probe: a whole huge log would not fit
FAST = ["--call-timeout", "1", "--bot-deadline", "2", "--deadline", "30"]


def stamp(seconds_ago: float) -> str:
    """A supervisord log timestamp, in local time as supervisord writes it."""
    return time.strftime("%Y-%m-%d %H:%M:%S,123", time.localtime(time.time() - seconds_ago))


def write_bot(pools: Path, name: str, ratio: float = 0.99) -> Path:
    folder = pools / POOL / "bots" / name
    (folder / "logs").mkdir(parents=True)
    config = {
        "bot_name": f"alice-{name}",
        "tradable_balance_ratio": ratio,
        "api_server": {"username": LOGIN[0], "password": LOGIN[1]},
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def hostile_tree(pools: Path) -> None:
    """One bot per way a bot can spoil the files the probe reads."""
    good = write_bot(pools, "good", ratio=0.5)
    (good / "logs" / "freqtrade.log").write_text(
        "2026-11-27 10:00:00,000 - freqtrade - WARNING - Unable to create trade for "
        "BTC/USDT: Available balance (99.0 USDT) is lower than stake amount (500 USDT)\n"
        "2026-11-27 10:00:01,000 - freqtrade - WARNING - SECURITY WARNING - listening on "
        "0.0.0.0\n2026-11-27 10:00:02,000 - freqtrade - INFO - Bot heartbeat\n"
    )
    for name in HOSTILE:
        write_bot(pools, name)
    os.mkfifo(pools / POOL / "bots" / "fifo" / "logs" / "freqtrade.log")
    (pools / POOL / "bots" / "zero" / "logs" / "freqtrade.log").symlink_to("/dev/zero")
    linked = pools / POOL / "bots" / "linked"
    (linked / "logs").rmdir()
    (linked / "logs").symlink_to("/var/log")  # a folder out of the bot's own
    with open(pools / POOL / "bots" / "huge" / "logs" / "freqtrade.log", "wb") as log:
        log.truncate(2**30)  # 1 GiB (sparse), then the line that matters
        log.seek(2**30)
        log.write(b"\n2026-11-27 10:00:00,000 - freqtrade - ERROR - the last line of a huge log\n")
    folder = pools / POOL / "bots" / "folder" / "config.json"
    folder.unlink()
    folder.mkdir()
    (pools / POOL / "bots" / "missing" / "config.json").unlink()
    (pools / POOL / "bots" / "big" / "config.json").write_text(" " * 2**20 + "{}")
    supervisord = pools / POOL / "logs"
    supervisord.mkdir()
    (supervisord / "supervisord.log").write_text(
        f"{stamp(7200)} WARN exited: alice-good (exit status 1; not expected)\n"
        + "".join(
            f"{stamp(60 * n)} WARN exited: alice-good (exit status 1; not expected)\n"
            f"{stamp(60 * n - 1)} INFO spawned: 'alice-good' with pid {100 + n}\n"
            for n in (40, 30, 20, 10)
        )
    )


def run_probe(pools: Path, targets: list[dict[str, object]], *options: str) -> tuple[str, float]:
    """The probe source run as in its container: python3 -I -c SOURCE POOLS TARGETS."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe.PROBE, str(pools), json.dumps(targets), *options],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY)),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, time.monotonic() - start


@pytest.fixture
def hostile(write_layout, tmp_path):
    """The plan, the doubles (one per bot) and the tree; closed afterwards."""
    plan = load_plan(write_layout(LAYOUT))
    pools = tmp_path / "pools"
    hostile_tree(pools)
    behaviours = {"hung": "hang", "slow": "trickle"}
    doubles = {
        b.program: FreqtradeDouble(b.program, LOGIN, behaviours.get(b.name, "answer"), 0)
        for b in plan.hosts["local"].bots
    }
    yield plan, pools, doubles
    for double in doubles.values():
        double.close()


def judge(plan, stdout: str, state: str = "RUNNING") -> dict[tuple[str, str], str]:
    """The probe's real output through health: failed (subject, check) -> message."""
    host = plan.hosts["local"]
    snap = Snapshot(
        containers={p.container: ContainerState(p.container, True, "pool", "x") for p in host.pools}
    )
    programs = {b.program: ProgramState(b.program, state, 10, 7200) for b in host.bots}
    snap.programs[host.pools[0].container] = programs
    seen = parse([f"{probe.MARK}probe", *stdout.splitlines()])
    seen.mem_available_mb = 4000
    for bot in host.bots:
        seen.listening[bot.host_port] = {"127.0.0.1"}
    found = evaluate(host, snap, seen, CheckSettings(), now=time.time())
    return {(f.subject, f.check): f.message for f in found if not f.ok}


def targets_of(plan, doubles) -> list[dict[str, object]]:
    return [
        {"program": b.program, "pool": b.pool, "bot": b.name, "port": doubles[b.program].port}
        for b in plan.hosts["local"].bots
    ]


def test_every_hostile_file_and_api_gives_its_bot_a_clear_error_in_bounded_time(hostile):
    plan, pools, doubles = hostile
    stdout, seconds = run_probe(pools, targets_of(plan, doubles), *FAST)
    assert seconds < 15  # a hung (1 s) and a trickling (2 s) API, not a hang
    failed = judge(plan, stdout)
    files = {name: failed.get((f"bot alice/{name}", "files"), "") for name in HOSTILE}
    bot = f"{POOL}/bots"
    assert f"{bot}/fifo/logs/freqtrade.log is not a regular file but a FIFO" in files["fifo"]
    assert f"{bot}/zero/logs/freqtrade.log is a symbolic link, not followed" in files["zero"]
    assert f"{bot}/linked/logs is a symbolic link, not followed" in files["linked"]
    assert f"{bot}/folder/config.json is not a regular file but a directory" in files["folder"]
    assert f"{bot}/missing/config.json is missing" in files["missing"]
    assert (
        f"{bot}/big/config.json is {2**20 + 2} bytes, above the 65536-byte bound" in (files["big"])
    )
    for name in ("huge", "hung", "slow"):  # their files are fine
        assert not files[name]
    for name in ("folder", "missing", "big"):
        assert "was not asked: no API login (" in failed[(f"bot alice/{name}", "api")]
    assert "timed out" in failed[("bot alice/hung", "api")]
    assert "Deadline: its calls took more than 2 s in all" in failed[("bot alice/slow", "api")]
    for name in ("fifo", "zero", "linked", "huge"):  # a spoiled log spoils no API call
        assert ("bot alice/" + name, "api") not in failed
    report = json.loads(stdout)
    assert report["alice-huge"]["last_warning"].endswith("ERROR - the last line of a huge log")


def test_a_good_bot_read_for_real_warnings_exits_and_stake_figures(hostile):
    plan, pools, doubles = hostile
    stdout, _ = run_probe(pools, targets_of(plan, doubles)[:1], *FAST)  # alice-good
    failed = judge(plan, stdout)
    good = {check: message for (subject, check), message in failed.items() if "good" in subject}
    assert set(good) == {"crash-loop", "stagnant"}  # api, files, config, heartbeat pass
    # 4 exits within the hour (one more two hours ago does not count): above 3
    assert "is RUNNING and exited 4 times in the last hour" in good["crash-loop"]
    # the last warning, not freqtrade's expected SECURITY WARNING logged after it
    assert good["crash-loop"].endswith("is lower than stake amount (500 USDT)")
    # the ratio read from the bot's own config (0.5), the wallet from its API
    assert (
        "wallet 1000.0 USDT free of 1000.0, stake 10 USDT fits in the 500 USDT it may use "
        "(wallet 1000 x tradable_balance_ratio 0.5)" in good["stagnant"]
    )
    assert json.loads(stdout)["alice-good"]["spawned_seconds_ago"] in range(599, 603)


def test_starting_is_judged_by_the_spawn_time_in_supervisords_log(hostile, tmp_path):
    plan, pools, doubles = hostile
    log = pools / POOL / "logs" / "supervisord.log"
    targets = targets_of(plan, doubles)[:1]  # alice-good
    log.write_text(f"{stamp(3)} INFO spawned: 'alice-good' with pid 7\n")
    assert ("bot alice/good", "running") not in judge(
        plan, run_probe(pools, targets)[0], "STARTING"
    )
    age = STARTING_GRACE_SECONDS + 30
    log.write_text(f"{stamp(age)} INFO spawned: 'alice-good' with pid 7\n")
    message = judge(plan, run_probe(pools, targets)[0], "STARTING")[("bot alice/good", "running")]
    seconds = re.match(rf"program alice-good in {POOL} is STARTING for (\d+) s", message)
    assert seconds and age <= int(seconds.group(1)) <= age + 2, message


def test_the_whole_probe_has_a_deadline_and_a_spoiled_supervisord_log_is_named(hostile):
    plan, pools, doubles = hostile
    log = pools / POOL / "logs" / "supervisord.log"
    log.unlink()
    os.mkfifo(log)
    hung = [t for t in targets_of(plan, doubles) if t["program"] in ("alice-hung", "alice-slow")]
    stdout, seconds = run_probe(pools, hung, "--call-timeout", "5", "--deadline", "1")
    assert seconds < 10
    failed = judge(plan, stdout)
    assert "the probe's 1 s ran out while asking it" in failed[("bot alice/hung", "api")]
    assert failed[("bot alice/slow", "api")].endswith(
        "was not asked: the probe's 1 s were used up by other bots"
    )
    assert (
        f"{POOL}/logs/supervisord.log is not a regular file but a FIFO"
        in (failed[("bot alice/slow", "files")])
    )


def test_targets_must_be_plain_names():
    for bad in ('[{"program": "a", "pool": "..", "bot": "b", "port": 1}]', "{}", "not json"):
        done = subprocess.run(
            [sys.executable, "-I", "-c", probe.PROBE, "/nonexistent", bad],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2 and "botpool-probe: error: argument targets" in done.stderr


def fake_docker(tmp_path: Path, run: str) -> dict[str, str]:
    """A test double of the docker CLI: `run` does RUN, every call is recorded."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\0" "$@" > {tmp_path}/docker-$1.args\n'
        f'if [ "$1" = run ]; then {run}; fi\n'
    )
    docker.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


TARGETS: list[dict[str, object]] = [{"program": "a-b", "pool": "a-pool-1", "bot": "b", "port": 1}]


def test_the_probe_container_is_confined_and_gets_the_script_intact(tmp_path):
    env = fake_docker(tmp_path, "echo '{}'")
    out = subprocess.run(
        ["sh", "-c", probe.run_probe("/srv/bp", "botpool/pool:x", TARGETS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert out == "{}\n"
    args = (tmp_path / "docker-run.args").read_text().split("\0")
    line = " ".join(args[: args.index("botpool/pool:x")])
    for flag in (
        "--rm",
        "--pull never",
        "--network host",
        "--user 0:0",
        "--cap-drop ALL",
        "--security-opt no-new-privileges",
        "--read-only",
        "--memory 128m",
        "--memory-swap 128m",
        "--pids-limit 16",
        "--cpus 1",
        "-v /srv/bp/pools:/pools:ro",
    ):
        assert f" {flag} " in f" {line} ", flag
    command = args[args.index("botpool/pool:x") + 1 :]
    assert command[:3] == ["python3", "-I", "-c"]
    assert command[3] == probe.PROBE  # the source, quoted intact
    assert command[4:6] == ["/pools", json.dumps(TARGETS)]


def test_the_pools_memory_is_read_beside_the_probe_and_of_the_named_pools_only(tmp_path):
    """`docker stats` (two samples a second apart) runs while the probe runs. The double's
    probe answers only if stats has begun by the time it has waited for it, and stats only if
    the probe has begun: run one after the other, one of them would print nothing."""
    answer = json.dumps({"a-b": {"ping": True}})
    env = fake_docker(
        tmp_path,
        f"touch {tmp_path}/ran; {wait_for_file(tmp_path / 'stats-began')}; "
        f"[ -e {tmp_path}/stats-began ] && echo {shlex.quote(answer)}",
    )
    docker = tmp_path / "bin" / "docker"
    docker.write_text(
        docker.read_text()
        + f'if [ "$1" = stats ]; then touch {tmp_path}/stats-began; '
        + f"{wait_for_file(tmp_path / 'ran')}; [ -e {tmp_path}/ran ] && "
        + 'for c in "$@"; do case $c in *pool*) echo "$c|100MiB / 1GiB";; esac; done; fi\n'
    )
    pools = ["p_a-pool-1", "p_b-pool-1"]
    out = subprocess.run(
        ["sh", "-c", probe.command("/srv/bp", "img", TARGETS, pools)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    health = parse(out.splitlines())
    assert health.container_memory == {name: (100.0, 1024.0) for name in pools}, out
    assert health.bots == {"a-b": {"ping": True}}, out
    args = (tmp_path / "docker-stats.args").read_text().split("\0")
    assert args[:2] == ["stats", "--no-stream"] and args[-3:] == [*pools, ""]
    # no pool running: no stats at all (named, a missing container makes it print nothing)
    (tmp_path / "docker-stats.args").unlink()
    subprocess.run(["sh", "-c", probe.command("/srv/bp", "img", [], [])], env=env, timeout=30)
    assert not (tmp_path / "docker-stats.args").exists()


def wait_for_file(path: Path) -> str:
    """Shell: wait up to 10 s for path to exist."""
    return f"i=0; while [ ! -e {path} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done"


def test_a_probe_past_its_wall_clock_ends_with_a_clear_error_and_its_container_removed(
    tmp_path,
):
    env = fake_docker(tmp_path, "exec sleep 60")
    start = time.monotonic()
    out = subprocess.run(
        ["sh", "-c", probe.run_probe("/srv/bp", "img", TARGETS, wall_clock_s=1)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert time.monotonic() - start < 10
    assert parse([f"{probe.MARK}probe", *out.splitlines()]).probe_error == (
        "the probe did not finish within 1 s: the host or its Docker engine is too slow"
    )
    name = (tmp_path / "docker-run.args").read_text().split("\0")
    removed = (tmp_path / "docker-rm.args").read_text().split("\0")
    assert removed[:3] == ["rm", "-f", name[name.index("--name") + 1]]


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(), reason="root")
def test_as_root_without_capabilities_it_reads_root_owned_0640_configs_and_says_what_it_cannot(
    tmp_path,
):
    """As in its container (--user 0:0 --cap-drop ALL): root reads what root owns, and
    nothing it has no owner or other permission for."""
    pools, bot_uid = tmp_path / "pools", 200001
    tmp_path.chmod(0o755)
    for name in ("owned", "closed"):
        folder = write_bot(pools, name)
        os.chown(folder / "config.json", 0, bot_uid)  # the bot's group reads it, root owns it
        (folder / "config.json").chmod(0o640)
        os.chown(folder, 0 if name == "owned" else bot_uid, bot_uid)
        folder.chmod(0o750)
        (folder / "logs" / "freqtrade.log").write_text("... - WARNING - root wrote this\n")
        os.chown(folder / "logs", bot_uid, bot_uid)
        (folder / "logs").chmod(0o711)  # search, no listing: enough for the probe
    double = FreqtradeDouble("alice-owned", LOGIN)
    try:
        targets = [
            {"program": f"alice-{n}", "pool": POOL, "bot": n, "port": double.port}
            for n in ("owned", "closed")
        ]
        done = subprocess.run(
            ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--", sys.executable, "-I"]
            + ["-c", probe.PROBE, str(pools), json.dumps(targets)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        double.close()
    report = json.loads(done.stdout)
    owned, closed = report["alice-owned"], report["alice-closed"]
    assert owned["ping"] is True and owned["file_errors"] == []
    assert owned["last_warning"] == "... - WARNING - root wrote this"
    denied = "permission denied to uid 0 without capabilities (owner or other must allow"
    assert [error.split(": ", 1)[0] for error in closed["file_errors"]] == [
        f"{POOL}/bots/closed/config.json",
        f"{POOL}/bots/closed/logs",
    ]
    assert all(error.split(": ", 1)[1].startswith(denied) for error in closed["file_errors"])


def test_a_failed_notifications_url_never_reaches_the_last_warning():
    """freqtrade logs the URL of a webhook it could not call; a Discord webhook's URL is its
    secret, and the checks print a bot's last warning."""
    from botpool.payloads.probe import last_warning, last_warnings

    lines = [
        "2026-11-27 10:00:00,000 - freqtrade.rpc.webhook - WARNING - Could not call webhook "
        "url. Exception: HTTPSConnectionPool(host='discord.com', port=443): Max retries "
        "exceeded with url: /api/webhooks/123/SECRETTOKEN?wait=1 (Caused by NewConnectionError"
        "('<urllib3.connection.HTTPSConnection object>: Failed to establish a new connection'))",
        "2026-11-27 10:00:01,000 - telegram.ext - ERROR - Error while getting Updates: "
        "https://api.telegram.org/bot123:SECRETBOTTOKEN/getUpdates answered 409",
    ]
    assert "SECRETTOKEN" not in last_warning(lines[:1])
    assert "with url: (URL hidden) (Caused by NewConnectionError" in last_warning(lines[:1])
    assert last_warning(lines).endswith("Updates: (URL hidden) answered 409")
    shown = last_warnings([*lines, "2026-11-27 10:00:02,000 - freqtrade - INFO - Bot heartbeat"])
    assert shown == [last_warning(lines[:1]), last_warning(lines)]  # oldest first
    assert not any("SECRET" in w for w in shown)
    assert last_warnings(lines * 5, 3) == last_warnings(lines, 2)[-1:] + last_warnings(lines, 2)
