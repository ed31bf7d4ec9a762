"""The host's backup program (botpool/payloads/backup.py) on real SQLite files: consistent
copies while writers commit, checked, gzipped, atomic, 0600; retention removes exactly what
it should; a bot without a database is said, a link where the database belongs refused."""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botpool.core import names
from botpool.payloads import backup

WRITER = """
import sqlite3, sys, random
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("PRAGMA journal_mode=wal")
rows = int(sys.argv[2])
random.seed(int(sys.argv[3]))
while True:
    db.execute("BEGIN IMMEDIATE")
    amount = random.randint(1, 1000)
    # a transfer: the total never changes, whatever commits are seen
    db.execute("UPDATE account SET balance = balance - ? WHERE id = 1", (amount,))
    db.execute("UPDATE account SET balance = balance + ? WHERE id = 2", (amount,))
    for _ in range(rows):
        db.execute("INSERT INTO trade (amount) VALUES (?)", (amount,))
        db.execute("INSERT INTO trade (amount) VALUES (?)", (-amount,))
    db.execute("COMMIT")
"""


def make_database(path: Path) -> None:
    """A database in WAL mode, as freqtrade keeps its trades."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=wal")
    db.execute("CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER)")
    db.execute("CREATE TABLE trade (id INTEGER PRIMARY KEY, amount INTEGER)")
    db.execute("INSERT INTO account VALUES (1, 1000000), (2, 0)")
    db.commit()
    db.close()


def schedule_for(bots: list[tuple[str, str, int]], hourly: int = 24, daily: int = 14):
    return backup.Schedule(
        60,
        hourly,
        daily,
        tuple(
            backup.BotEntry(user, bot, uid, f"pool/bots/{bot}/user_data/tradesv3.sqlite")
            for user, bot, uid in bots
        ),
    )


def bot_database(pools: Path, bot: str, uid: int = 0) -> Path:
    data = pools / "pool" / "bots" / bot / "user_data"
    data.mkdir(parents=True)
    os.chown(data, uid, uid)
    os.chmod(data, 0o700)
    return data / "tradesv3.sqlite"


def restored(path: Path, into: Path) -> sqlite3.Connection:
    into.write_bytes(gzip.decompress(path.read_bytes()))
    return sqlite3.connect(into)


def rows(database: Path) -> int:
    db = sqlite3.connect(database, timeout=60)
    try:
        return int(db.execute("SELECT count(*) FROM trade").fetchone()[0])
    finally:
        db.close()


@settings(max_examples=4, deadline=None)
@given(writers=st.integers(1, 3), rows_per_commit=st.integers(1, 50), seed=st.integers(0, 99))
def test_a_backup_taken_while_writers_commit_is_one_consistent_checked_snapshot(
    tmp_path_factory, writers, rows_per_commit, seed
):
    tmp = tmp_path_factory.mktemp("concurrent")
    pools, backups = tmp / "pools", tmp / "backups"
    database = bot_database(pools, "one")
    make_database(database)
    script = tmp / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen([sys.executable, script, database, str(rows_per_commit), str(seed + i)])
        for i in range(writers)
    ]
    try:
        deadline = time.monotonic() + 30
        while rows(database) < 200:  # the writers are under way
            assert time.monotonic() < deadline, "the writers never committed"
        before = rows(database)
        (outcome,) = backup.run_once(schedule_for([("alice", "one", 0)]), str(pools), str(backups))
        after = rows(database)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert outcome.status == "backed-up", outcome
    assert after > before  # the bot kept writing while it was backed up
    (taken,) = (backups / "alice" / "one").glob("*.sqlite.gz")
    assert taken.name == outcome.detail
    copy = restored(taken, tmp / "copy.sqlite")
    assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert copy.execute("SELECT sum(balance) FROM account").fetchone() == (1000000,)
    count, total = copy.execute("SELECT count(*), coalesce(sum(amount), 0) FROM trade").fetchone()
    assert count % (2 * rows_per_commit) == 0 and total == 0  # whole transactions only
    assert before <= count <= after


def test_a_backup_is_roots_0600_gzip_in_its_bots_folder_and_leaves_no_partial_file(tmp_path):
    pools, backups = tmp_path / "pools", tmp_path / "backups"
    make_database(bot_database(pools, "one"))
    now = datetime(2026, 11, 27, 16, 5, 9, tzinfo=UTC)
    (outcome,) = backup.run_once(schedule_for([("alice", "one", 0)]), str(pools), str(backups), now)
    assert outcome == backup.Outcome("alice/one", "backed-up", "20261127T160509Z.sqlite.gz")
    assert os.listdir(backups / "alice" / "one") == ["20261127T160509Z.sqlite.gz"]
    info = (backups / "alice" / "one" / "20261127T160509Z.sqlite.gz").stat()
    assert (info.st_uid, info.st_mode & 0o777) == (0, 0o600)
    assert (backups / "alice").stat().st_mode & 0o777 == 0o700


@pytest.fixture
def open_tmp():
    """A folder that any uid may enter, as a host's pools folder (pytest's is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="botpool-backup-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_the_copy_runs_as_the_bot_so_root_never_opens_what_a_bot_can_write(open_tmp):
    if os.geteuid() != 0:
        pytest.skip("needs root, as on a host")
    pools, backups = open_tmp / "pools", open_tmp / "backups"
    database = bot_database(pools, "one", uid=209001)
    make_database(database)
    os.chown(database, 209001, 209001)
    (good,) = backup.run_once(schedule_for([("alice", "one", 209001)]), str(pools), str(backups))
    assert good.status == "backed-up", good
    # as another uid the same file cannot be read: the copy really ran as the bot
    (refused,) = backup.run_once(
        schedule_for([("alice", "one", 209002)]),
        str(pools),
        str(backups),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert refused.status == "failed" and "20260101" not in str(os.listdir(backups / "alice/one"))


def test_a_bot_without_a_database_is_skipped_and_said(tmp_path):
    pools, backups = tmp_path / "pools", tmp_path / "backups"
    bot_database(pools, "new")
    make_database(bot_database(pools, "old"))
    outcomes = backup.run_once(
        schedule_for([("alice", "new", 0), ("alice", "old", 0)]), str(pools), str(backups)
    )
    assert [(o.key, o.status) for o in outcomes] == [
        ("alice/new", "no-database"),
        ("alice/old", "backed-up"),
    ]
    assert "never started" in outcomes[0].detail
    assert os.listdir(backups / "alice" / "new") == []


@pytest.mark.parametrize("planted", ["link", "garbage"])
def test_a_link_or_a_broken_database_fails_that_bot_only_and_leaves_nothing(tmp_path, planted):
    pools, backups = tmp_path / "pools", tmp_path / "backups"
    bad = bot_database(pools, "bad")
    other = tmp_path / "other.sqlite"
    make_database(other)
    if planted == "link":
        bad.symlink_to(other)  # another bot's database, say
    else:
        bad.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    make_database(bot_database(pools, "good"))
    outcomes = backup.run_once(
        schedule_for([("alice", "bad", 0), ("alice", "good", 0)]), str(pools), str(backups)
    )
    assert [o.status for o in outcomes] == ["failed", "backed-up"]
    assert os.listdir(backups / "alice" / "bad") == []  # no backup, no partial file
    if planted == "link":
        assert "not a regular file" in outcomes[0].detail


# --- retention ------------------------------------------------------------------------


def names_every(start: datetime, step: timedelta, count: int) -> list[str]:
    return [(start + i * step).strftime(backup.STAMP_FORMAT) + backup.SUFFIX for i in range(count)]


def test_retention_keeps_the_newest_of_each_recent_hour_and_day_exactly():
    # every 20 minutes for three days: 216 backups
    taken = names_every(datetime(2026, 11, 25, 0, 0, tzinfo=UTC), timedelta(minutes=20), 216)
    keep = backup.to_keep(taken, hourly=3, daily=2)
    assert sorted(keep) == [
        "20261126T234000Z.sqlite.gz",  # the newest of the day before
        "20261127T214000Z.sqlite.gz",  # the newest of each of the last three hours
        "20261127T224000Z.sqlite.gz",
        "20261127T234000Z.sqlite.gz",  # (also the newest of its day)
    ]


def test_retention_counts_hours_and_days_that_have_backups_not_clock_hours():
    taken = [
        "20261101T100000Z.sqlite.gz",
        "20261103T080000Z.sqlite.gz",
        "20261103T083000Z.sqlite.gz",
        "20261120T235959Z.sqlite.gz",
    ]
    assert backup.to_keep(taken, hourly=2, daily=3) == {
        "20261120T235959Z.sqlite.gz",
        "20261103T083000Z.sqlite.gz",
        "20261101T100000Z.sqlite.gz",
    }
    assert backup.to_keep(taken, hourly=1, daily=0) == {"20261120T235959Z.sqlite.gz"}


def test_prune_removes_exactly_what_retention_does_not_keep_and_nothing_else(tmp_path):
    taken = names_every(datetime(2026, 11, 27, 0, 0, tzinfo=UTC), timedelta(minutes=30), 10)
    for name in [*taken, ".20261127T050000Z-x.part", "notes.txt", "20261127.sqlite.gz"]:
        (tmp_path / name).write_bytes(b"x")
    removed = backup.prune(str(tmp_path), hourly=2, daily=1)
    assert removed == [
        "20261127T000000Z.sqlite.gz",
        "20261127T003000Z.sqlite.gz",
        "20261127T010000Z.sqlite.gz",
        "20261127T013000Z.sqlite.gz",
        "20261127T020000Z.sqlite.gz",
        "20261127T023000Z.sqlite.gz",
        "20261127T030000Z.sqlite.gz",
        "20261127T040000Z.sqlite.gz",
    ]
    assert sorted(os.listdir(tmp_path)) == [
        ".20261127T050000Z-x.part",
        "20261127.sqlite.gz",
        "20261127T033000Z.sqlite.gz",
        "20261127T043000Z.sqlite.gz",
        "notes.txt",
    ]


@given(
    minutes=st.lists(st.integers(0, 60 * 24 * 30), min_size=1, max_size=60, unique=True),
    hourly=st.integers(1, 30),
    daily=st.integers(0, 30),
)
def test_retention_properties(minutes, hourly, daily):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    taken = [
        (start + timedelta(minutes=m)).strftime(backup.STAMP_FORMAT) + backup.SUFFIX
        for m in minutes
    ]
    keep = backup.to_keep(taken, hourly, daily)
    assert max(taken) in keep  # the newest is always kept
    hours = {n[:11] for n in taken}
    assert len({n[:11] for n in keep}) >= min(hourly, len(hours))
    assert len(keep) <= hourly + daily
    assert backup.to_keep(keep, hourly, daily) == keep  # a second prune removes nothing


def test_a_copy_that_fails_integrity_check_is_no_backup(tmp_path):
    pools, backups = tmp_path / "pools", tmp_path / "backups"
    database = bot_database(pools, "one")
    make_database(database)
    db = sqlite3.connect(database)
    db.execute("CREATE INDEX by_amount ON trade (amount)")
    db.executemany("INSERT INTO trade (amount) VALUES (?)", [(i,) for i in range(2000)])
    db.commit()
    db.execute("PRAGMA writable_schema=ON")  # the index's pages stay, nothing points at them
    db.execute("DELETE FROM sqlite_master WHERE name = 'by_amount'")
    db.commit()
    db.close()
    (outcome,) = backup.run_once(schedule_for([("alice", "one", 0)]), str(pools), str(backups))
    assert outcome.status == "failed" and "integrity_check" in outcome.detail, outcome
    assert os.listdir(backups / "alice" / "one") == []


# --- restore, on a real tree through @local, with a docker that records what it is asked ---

FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$BOTPOOL_FAKE_DOCKER_LOG"
"""


def test_restore_puts_the_backup_in_place_and_keeps_the_old_database_aside(
    write_layout, secrets, tmp_path, monkeypatch
):
    from botpool.core.plan import load_plan
    from botpool.hosts import backups as host_backups
    from botpool.hosts.remote import RemoteHost

    from .conftest import MINIMAL

    root = tmp_path / "root"
    path = write_layout(MINIMAL.replace("defaults:\n", f"defaults:\n  root: {root}\n"))
    plan = load_plan(path)
    (one,) = plan.bots
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text(FAKE_DOCKER)
    (fake / "docker").chmod(0o755)
    log = tmp_path / "docker.log"
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setenv("BOTPOOL_FAKE_DOCKER_LOG", str(log))
    pools = root / "pools"
    database = pools / one.pool / "bots" / one.name / "user_data" / "tradesv3.sqlite"
    database.parent.mkdir(parents=True)
    make_database(database)
    schedule = backup.Schedule(
        60, 24, 14, (backup.BotEntry(one.user, one.name, 0, str(database.relative_to(pools))),)
    )
    (taken,) = backup.run_once(schedule, str(pools), str(root / "backups"))
    db = sqlite3.connect(database)
    db.execute("DELETE FROM account")  # the bad edit
    db.commit()
    db.close()
    (database.parent / "tradesv3.sqlite-wal").write_bytes(b"stale")
    located = host_backups.Located(one, RemoteHost("@local", "local", str(path), {}), plan)
    assert host_backups.stamps(located) == [taken.detail.removesuffix(".sqlite.gz")]

    kept = host_backups.restore(located, host_backups.stamps(located)[0])

    data = database.parent
    assert sqlite3.connect(database).execute("SELECT count(*) FROM account").fetchone() == (2,)
    assert sqlite3.connect(data / kept).execute("SELECT count(*) FROM account").fetchone() == (0,)
    assert (data / f"{kept}-wal").read_bytes() == b"stale"  # its WAL went aside with it
    assert not (data / "tradesv3.sqlite-wal").exists()
    assert (database.stat().st_uid, database.stat().st_mode & 0o777) == (one.uid, 0o600)
    calls = log.read_text().splitlines()
    container = names.pool_container(plan.layout.project, one.pool)
    ctl = f"exec {container} {names.SUPERVISORCTL}"
    assert calls[:2] == [f"{ctl} stop {one.program}", f"{ctl} start {one.program}"]
    assert len(calls) == 3 and "/api/v1/ping" in calls[2]  # answered at once here

    # a backup pulled to the controller, sent back: the host's job may run its retention
    # between the push and the restore (here: keep the newest of 1 hour), and this host has a
    # newer backup; the pushed file waits where retention does not look until the restore,
    # holding the lock retention runs under, puts it in place and restores it
    pulled = tmp_path / "pulled" / "20200101T000000Z.sqlite.gz"
    pulled.parent.mkdir()
    pulled.write_bytes((root / "backups" / one.user / one.name / taken.detail).read_bytes())
    arrival = host_backups.push(located, pulled, "20200101T000000Z")
    assert arrival is not None
    assert backup.prune(str(Path(arrival.target).parent), 1, 1) == []  # nothing it could drop
    database.write_bytes(b"")  # another bad edit
    host_backups.restore(located, "20200101T000000Z", arrival)
    assert sqlite3.connect(database).execute("SELECT count(*) FROM account").fetchone() == (2,)
    assert Path(arrival.target).exists() and not Path(arrival.partial).exists()


def test_restore_refuses_a_stamp_it_does_not_have_before_touching_a_host(capsys):
    from botpool.cli import main

    assert main(["restore", "inventory/local.py", "alice/one", "--at", "yesterday"]) == 1
    assert "use a stamp from the list" in capsys.readouterr().err


def test_a_pulled_backup_is_sent_to_the_bots_new_host_checked_and_private(
    write_layout, secrets, tmp_path
):
    """`restore --from DIR`'s first half, through @local: what `pull` wrote on the controller
    arrives in the bot's backups folder on its host, whole, root's and 0600; sent again, it is
    left as it is; a different file of the same stamp, or a damaged one, is refused."""
    from botpool.core.plan import load_plan
    from botpool.hosts import backups as host_backups
    from botpool.hosts.remote import RemoteError, RemoteHost

    from .conftest import MINIMAL

    root = tmp_path / "root"
    path = write_layout(MINIMAL.replace("defaults:\n", f"defaults:\n  root: {root}\n"))
    plan = load_plan(path)
    (one,) = plan.bots
    pulled = tmp_path / "pulled"
    stamp = "20261127T120000Z"
    source = pulled / "gone-host" / one.user / one.name / f"{stamp}.sqlite.gz"
    source.parent.mkdir(parents=True)
    data = gzip.compress(os.urandom(200_000))  # several commands' worth (PUSH_CHUNK)
    source.write_bytes(data)
    (source.parent / "20261127T110000Z.sqlite.gz").symlink_to(source)  # never taken
    assert host_backups.pulled(pulled, one.key) == {stamp: source}
    located = host_backups.Located(one, RemoteHost("@local", "local", str(path), {}), plan)

    arrival = host_backups.push(located, source, stamp)

    arrived = root / "backups" / one.user / one.name / f"{stamp}.sqlite.gz"
    assert arrival is not None and arrival.target == str(arrived) and not arrived.exists()
    partial = Path(arrival.partial)  # restore renames it into place, under the backups lock
    assert partial.read_bytes() == data
    assert (partial.stat().st_uid, partial.stat().st_mode & 0o777) == (0, 0o600)
    assert partial.parent.stat().st_mode & 0o777 == 0o700
    assert host_backups.stamps(located) == []  # not one of the host's backups yet
    assert sorted(os.listdir(partial.parent)) == [partial.name]
    partial.rename(arrived)  # what restore does first (the test below runs it)
    commands = located.remote.commands
    assert host_backups.push(located, source, stamp) is None  # there: one command, no data
    assert located.remote.commands == commands + 1
    other = tmp_path / "other.sqlite.gz"
    other.write_bytes(gzip.compress(b"other"))
    with pytest.raises(RemoteError, match=f"another backup {stamp} of {one.key}"):
        host_backups.push(located, other, stamp)
    damaged = tmp_path / "damaged.sqlite.gz"
    damaged.write_bytes(data[: len(data) // 2])
    with pytest.raises(RemoteError, match="not a whole backup"):
        host_backups.push(located, damaged, "20261127T130000Z")
    assert arrived.read_bytes() == data


def test_the_job_stops_at_once_on_sigterm_as_its_containers_pid_1(tmp_path):
    """The job is its container's PID 1, which ignores SIGTERM unless it handles it: then every
    `docker stop` (a converge recreating the job) waited out the 45 s timeout. Run as PID 1 of a
    PID namespace of its own, it stops within a second of SIGTERM, with exit code 0."""
    schedule = tmp_path / "schedule.json"
    schedule.write_text(
        '{"interval_minutes": 60, "hourly": 1, "daily": 1, "bots": '
        '[{"user": "alice", "bot": "one", "uid": 0, "database": "pool/one.sqlite"}]}'
    )
    command = [sys.executable, backup.__file__, "--schedule", str(schedule)]
    command += ["--pools", str(tmp_path / "pools"), "--backups", str(tmp_path / "backups")]
    job = subprocess.Popen(
        ["unshare", "--pid", "--fork", *command, "loop"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert job.stdout is not None
        assert job.stdout.readline().startswith("alice/one no-database")  # its handler is set
        (pid_1,) = subprocess.run(
            ["pgrep", "-P", str(job.pid)], capture_output=True, text=True, check=True
        ).stdout.split()
        started = time.monotonic()
        os.kill(int(pid_1), 15)
        assert job.wait(timeout=10) == 0
        assert time.monotonic() - started < 1
    finally:
        job.kill()
        job.wait()
