"""Backups on the real engine: the converge runs the host's backup job; `botpool backup` takes
one of every bot while it trades on the sandbox exchange, checked and pulled; `botpool
restore` brings a bot's trades back after a bad edit, restarting that bot only; retention
removes exactly what it should. One deployment, test by test in file order."""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from botpool.core import names
from botpool.core.plan import BotPlan

from .e2e import Deployment, docker, kept_trades_in, new_deployment, wait_for

pytestmark = pytest.mark.e2e(minutes=0.8)

USERS = """
ann:
  bots:
    - name: one
    - {name: two, pairs: [ETH/USDT]}
"""
BACKUPS = "backups: {hourly: 2, daily: 1}\n"


@pytest.fixture(scope="module")
def dep(tmp_path_factory) -> Iterator[Deployment]:
    deployment = new_deployment(tmp_path_factory.mktemp("backup"), "e2ebak", 20100)
    deployment.write(USERS, BACKUPS)
    yield deployment
    deployment.teardown()


def botpool(dep: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return dep.run_botpool(*args, timeout=600)


def bot(dep: Deployment, name: str) -> BotPlan:
    (found,) = [b for b in dep.plan().bots if b.name == name]
    return found


def database(dep: Deployment, name: str) -> Path:
    b = bot(dep, name)
    return dep.root / "pools" / b.pool / "bots" / name / "user_data" / names.DATABASE


def trades(dep: Deployment, name: str) -> set[tuple[int, str, str]]:
    """The bot's trades with a fill, from its database on the host (tests/e2e.py)."""
    return kept_trades_in(database(dep, name))


def backups_of(dep: Deployment, name: str) -> list[str]:
    return sorted(os.listdir(dep.root / "backups" / "ann" / name))


def test_the_converge_runs_the_backup_job_and_a_second_changes_nothing(dep):
    dep.converge()
    dep.wait_answering()
    job = names.backup_container(dep.project)
    restart = docker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", job).strip()
    assert restart == "unless-stopped"  # it comes back with the engine, after a reboot
    assert docker("inspect", "-f", "{{.State.Running}}", job).strip() == "true"
    schedule = dep.root / "jobs" / "backup" / "schedule.json"
    assert schedule.stat().st_uid == 0 and "ann-pool-1/bots/one/user_data" in schedule.read_text()
    assert dep.converge().operations == []


def test_a_backup_taken_while_the_bot_trades_is_checked_and_pulled(dep, tmp_path_factory):
    wait_for(lambda: trades(dep, "one"), timeout=240, what="a trade of ann/one")
    pids = dep.pids("ann-pool-1")
    seen = trades(dep, "one")
    pulled = tmp_path_factory.mktemp("pulled")
    run = botpool(dep, "backup", dep.inventory, "--pull", str(pulled))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "local: ann/one backed-up" in run.stdout and "local: ann/two backed-up" in run.stdout
    assert dep.pids("ann-pool-1") == pids  # no bot stopped for it
    job = names.backup_container(dep.project)
    logs = docker("logs", job)
    assert docker("inspect", "-f", "{{.RestartCount}}", job).strip() == "0", logs
    taken = taken_in(run.stdout, "ann/one")
    assert backups_of(dep, "one")[-1] == taken
    path = dep.root / "backups" / "ann" / "one" / taken
    assert (path.stat().st_uid, path.stat().st_mode & 0o777) == (0, 0o600)
    copy = tmp_path_factory.mktemp("copy") / "copy.sqlite"
    copy.write_bytes(gzip.decompress(path.read_bytes()))
    with sqlite3.connect(copy) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert seen <= kept_trades_in(copy)
    first = pulled / "local" / "ann" / "one" / taken
    assert first.read_bytes() == path.read_bytes()
    assert (first.stat().st_mode & 0o777, first.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    written = first.stat().st_mtime_ns
    again = botpool(dep, "backup", dep.inventory, "--pull", str(pulled))
    assert again.returncode == 0, again.stdout + again.stderr
    newer = taken_in(again.stdout, "ann/one")
    assert sorted(os.listdir(first.parent)) == sorted({taken, newer})
    assert first.stat().st_mtime_ns == written  # what was there is not fetched again


def taken_in(output: str, key: str) -> str:
    """The backup file `botpool backup` reports for one bot."""
    (line,) = [x for x in output.splitlines() if x.startswith(f"local: {key} backed-up ")]
    return line.split()[3]


def test_restore_brings_the_trades_back_after_a_bad_edit_restarting_that_bot_only(dep, tmp_path):
    stamp = backups_of(dep, "one")[-1].removesuffix(".sqlite.gz")
    copy = tmp_path / "at-backup.sqlite"
    taken = dep.root / "backups" / "ann" / "one" / f"{stamp}.sqlite.gz"
    copy.write_bytes(gzip.decompress(taken.read_bytes()))
    at_backup = kept_trades_in(copy)
    assert at_backup
    with sqlite3.connect(database(dep, "one"), timeout=30) as connection:  # the bad edit
        connection.execute("delete from trades")
    assert not at_backup <= trades(dep, "one")
    listed = botpool(dep, "restore", dep.inventory, "ann/one")
    assert listed.returncode == 0 and stamp in listed.stdout, listed.stdout + listed.stderr
    missing = botpool(dep, "restore", dep.inventory, "ann/one", "--at", "20000101T000000Z")
    assert missing.returncode == 1 and "no backup 20000101T000000Z" in missing.stderr
    before = dep.pids("ann-pool-1")
    run = botpool(dep, "restore", dep.inventory, "ann/one", "--at", stamp)
    assert run.returncode == 0, run.stdout + run.stderr
    after = dep.pids("ann-pool-1")
    assert {p for p in before if before[p] != after[p]} == {"ann-one"}  # that bot only
    assert dep.api("ann", "one", "ping", auth=False).json() == {"status": "pong"}
    restored = {t for t in trades(dep, "one") if t[0] <= max(at_backup)[0]}
    assert restored == at_backup  # the same trades as at the backup
    kept = run.stdout.split("kept beside it as ")[-1].strip()
    aside = database(dep, "one").parent / kept
    assert aside.is_file() and kept.startswith("tradesv3.sqlite.before-restore-")
    assert database(dep, "one").stat().st_uid == bot(dep, "one").uid


def test_retention_removes_exactly_what_the_layout_does_not_keep(dep):
    folder = dep.root / "backups" / "ann" / "two"
    (real,) = backups_of(dep, "two")[-1:]
    planted = [
        "20251231T230000Z.sqlite.gz",  # an older day
        "20260101T100000Z.sqlite.gz",
        "20260101T105000Z.sqlite.gz",  # the newest of its hour
        "20260101T110000Z.sqlite.gz",  # the newest of the most recent planted hour
    ]
    for name in planted:
        shutil.copy2(folder / real, folder / name)
    earlier = backups_of(dep, "two")
    run = botpool(dep, "backup", dep.inventory)
    assert run.returncode == 0, run.stdout + run.stderr
    now = sorted(set(backups_of(dep, "two")) - set(earlier))
    assert len(now) == 1
    taken = [n for n in earlier if n not in planted]  # the real ones, from this test module
    # hourly 2: the new one, and the newest of the hour before it that has one; daily 1: today
    newest_hours = {n[:11] for n in taken if n[:11] != now[0][:11]}
    second = max(n for n in taken if n[:11] == max(newest_hours)) if newest_hours else planted[3]
    assert backups_of(dep, "two") == sorted([*now, second])
