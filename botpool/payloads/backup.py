"""Back up every bot's trade database on its host; runs in the host's backup job container.

Standard library only: it runs in the pool image with none of botpool's dependencies.

    python3 backup.py loop   # the job: a backup of every bot now, then every interval
    python3 backup.py run    # one backup of every bot now (`botpool backup`)
    python3 backup.py copy DB  # as the bot's uid: a consistent, checked copy of DB on stdout
    python3 backup.py pre-upgrade FROM  # before an upgrade (bots stopped): every bot of the
                                        # schedule into <user>/<bot>/pre-upgrade/, tagged FROM

The schedule (`--schedule`, written by the converge, root's) lists the bots: user, bot, uid
and database path under `--pools`; and the retention. Each backup is

- taken online, while the bot writes: SQLite's backup API in one step, which reads one
  consistent snapshot (freqtrade's databases are in WAL mode, so the bot keeps writing);
- taken as the bot's own uid (`copy`, through setpriv): root never opens a file a bot can
  write or link, so a bot cannot make root copy another bot's database into its backups;
- checked with `PRAGMA integrity_check` on the copy, then gzipped and written to
  `<backups>/<user>/<bot>/<UTC stamp>.sqlite.gz`, root's 0600, atomically (a temporary file
  renamed into place), so a backup that is there is whole;
- kept by a retention that keeps the newest backup of each of the `hourly` most recent hours
  and of each of the `daily` most recent days (UTC), and removes every other backup.

A pre-upgrade backup (botpool.core.upgrade: the converge takes one of every bot of a pool
before it runs the pool on a new image, with the pool stopped) is the same copy, written to
`<backups>/<user>/<bot>/pre-upgrade/<UTC stamp>-from-<old image tag>.sqlite.gz`, outside the
retention (an upgrade's way back is kept until someone deletes it).

One run at a time per host: a run holds `<backups>/.lock` (flock), which restores take too.
A bot whose database does not exist yet (it never started) is skipped and said so.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
SUFFIX = ".sqlite.gz"
BACKUP_RE = re.compile(r"([0-9]{8}T[0-9]{6}Z)\.sqlite\.gz")
IMAGE_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # a Docker tag
PRE_UPGRADE = "pre-upgrade"  # the folder of a bot's pre-upgrade backups
SQLITE_MAGIC = b"SQLite format 3\x00"
NO_DATABASE = 3  # exit code of `copy`: the bot has no database yet
COPY_TIMEOUT = 600  # seconds one bot's copy may take


@dataclass(frozen=True)
class BotEntry:
    user: str
    bot: str
    uid: int
    database: str  # relative to the pools folder

    @property
    def key(self) -> str:
        return f"{self.user}/{self.bot}"


@dataclass(frozen=True)
class Schedule:
    interval_minutes: int
    hourly: int
    daily: int
    bots: tuple[BotEntry, ...]


def read_schedule(path: str) -> Schedule:
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    return Schedule(
        int(raw["interval_minutes"]),
        int(raw["hourly"]),
        int(raw["daily"]),
        tuple(BotEntry(b["user"], b["bot"], int(b["uid"]), b["database"]) for b in raw["bots"]),
    )


# --- retention ------------------------------------------------------------------------


def stamp_of(name: str) -> datetime | None:
    """The time a backup file was taken, from its name; None for anything else."""
    match = BACKUP_RE.fullmatch(name)
    if not match:
        return None
    return datetime.strptime(match.group(1), STAMP_FORMAT).replace(tzinfo=UTC)


def to_keep(names: Iterable[str], hourly: int, daily: int) -> set[str]:
    """The newest backup of each of the `hourly` most recent hours that have one, and of
    each of the `daily` most recent days that have one (UTC); a file can count for both."""
    stamps = sorted(((s, n) for n in names if (s := stamp_of(n))), reverse=True)
    keep: set[str] = set()
    for width, count in ((11, hourly), (8, daily)):  # "YYYYmmddTHH", "YYYYmmdd"
        buckets: set[str] = set()
        for _, name in stamps:
            bucket = name[:width]
            if bucket not in buckets and len(buckets) < count:
                buckets.add(bucket)
                keep.add(name)
    return keep


def prune(folder: str, hourly: int, daily: int) -> list[str]:
    """Remove the backups of one bot the retention does not keep; return their names.
    Files that are not backups (a temporary file of a crashed run, say) are left alone."""
    try:
        names = [n for n in os.listdir(folder) if stamp_of(n)]
    except FileNotFoundError:
        return []
    keep = to_keep(names, hourly, daily)
    removed = sorted(n for n in names if n not in keep)
    for name in removed:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(folder, name))
    return removed


# --- one bot's copy (run as the bot) ----------------------------------------------------


def copy_database(database: str, out: IO[bytes]) -> int:
    """Write a consistent, integrity-checked copy of database to out (a binary stream).

    Runs as the bot's uid. The copy goes through a private temporary folder, because
    SQLite's backup API writes a database file; what leaves is that file's bytes.
    """
    try:
        info = os.lstat(database)
    except FileNotFoundError:
        return NO_DATABASE
    if not stat.S_ISREG(info.st_mode):
        print(f"{database} is not a regular file (a link?): refused", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="botpool-backup-") as private:
        copy = os.path.join(private, "copy.sqlite")
        source = sqlite3.connect(f"file:{database}?mode=rw", uri=True, timeout=60)
        try:
            target = sqlite3.connect(copy)
            with target:
                source.backup(target)  # all pages in one step: one consistent snapshot
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            verdict = [row[0] for row in target.execute("PRAGMA integrity_check")]
            target.close()
        finally:
            source.close()
        if verdict != ["ok"]:
            print(f"integrity_check of the copy: {'; '.join(verdict)[:500]}", file=sys.stderr)
            return 1
        with open(copy, "rb") as f:
            shutil.copyfileobj(f, out)
    return 0


# --- a run over every bot (run as root) ---------------------------------------------------


def private_folder(*parts: str) -> str:
    """A folder of root's alone (and each folder on the way under the first part)."""
    path = ""
    for part in parts:
        path = os.path.join(path, part) if path else part
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    return path


@dataclass(frozen=True)
class Outcome:
    key: str
    status: str  # backed-up | no-database | failed
    detail: str
    removed: tuple[str, ...] = ()


def as_bot(uid: int) -> list[str]:
    """The prefix that runs the copy as the bot (root only; anyone else runs it as itself)."""
    if os.geteuid() != 0 or uid == 0:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]


def backup_bot(
    entry: BotEntry, pools: str, backups: str, stamp: str, tagged: str | None = None
) -> Outcome:
    """One bot's backup, written atomically, 0600; the bot's uid reads its database.
    tagged: a pre-upgrade backup from that image tag (its own folder, its own name)."""
    folder = private_folder(backups, entry.user, entry.bot, *[PRE_UPGRADE] * bool(tagged))
    name = f"{stamp}-from-{tagged}" if tagged else stamp
    final = os.path.join(folder, name + SUFFIX)
    if os.path.exists(final):
        return Outcome(entry.key, "backed-up", f"{name} already taken")
    fd, partial = tempfile.mkstemp(prefix=f".{stamp}-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as raw, tempfile.TemporaryFile() as errors:
            head, code = _copy_into(entry, os.path.join(pools, entry.database), raw, errors)
            errors.seek(0)
            said = errors.read(2000).decode(errors="replace").strip()
            raw.flush()
            os.fsync(raw.fileno())
        if code == NO_DATABASE:
            return Outcome(entry.key, "no-database", "no database yet (the bot never started)")
        if code != 0 or head != SQLITE_MAGIC:
            return Outcome(entry.key, "failed", said[:500] or f"the copy exited {code}")
        os.chmod(partial, 0o600)
        os.rename(partial, final)
        partial = ""
        return Outcome(entry.key, "backed-up", f"{name}{SUFFIX}")
    finally:
        if partial:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)


def _copy_into(
    entry: BotEntry, database: str, raw: IO[bytes], errors: IO[bytes]
) -> tuple[bytes, int]:
    """Run `copy` as the bot and gzip what it writes into raw; (its first bytes, exit code)."""
    command = [*as_bot(entry.uid), sys.executable, os.path.abspath(__file__), "copy", database]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, cwd="/")
    assert child.stdout is not None
    try:
        head = child.stdout.read(len(SQLITE_MAGIC))
        with gzip.GzipFile(fileobj=raw, mode="wb") as packed:
            packed.write(head)
            shutil.copyfileobj(child.stdout, packed)
        return head, child.wait(timeout=COPY_TIMEOUT)
    finally:
        child.stdout.close()
        if child.poll() is None:
            child.kill()
            child.wait()


@contextlib.contextmanager
def run_lock(backups: str) -> Iterator[None]:
    """One run (or restore) at a time on this host."""
    private_folder(backups)
    fd = os.open(os.path.join(backups, ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def run_once(
    schedule: Schedule, pools: str, backups: str, now: datetime | None = None
) -> list[Outcome]:
    """Back up every bot of the schedule now, then apply the retention to each."""
    stamp = (now or datetime.now(UTC)).strftime(STAMP_FORMAT)
    outcomes = []
    with run_lock(backups):
        for entry in schedule.bots:
            try:
                outcome = backup_bot(entry, pools, backups, stamp)
            except Exception as exc:  # one bot's failure never stops the others
                outcome = Outcome(entry.key, "failed", f"{type(exc).__name__}: {exc}")
            folder = os.path.join(backups, entry.user, entry.bot)
            removed = prune(folder, schedule.hourly, schedule.daily)
            outcomes.append(Outcome(outcome.key, outcome.status, outcome.detail, tuple(removed)))
    return outcomes


def pre_upgrade(schedule: Schedule, pools: str, backups: str, source: str, stamp: str) -> int:
    """A backup of every bot of the schedule, tagged with the image it ran on; no retention.
    Exit 1 if any bot's failed (a bot without a database yet has nothing to lose)."""
    if not IMAGE_TAG_RE.fullmatch(source) or not re.fullmatch(r"[0-9]{8}T[0-9]{6}Z", stamp):
        print(f"not an image tag and a UTC stamp: {source!r} {stamp!r}", file=sys.stderr)
        return 1
    outcomes = []
    with run_lock(backups):
        for entry in schedule.bots:
            try:
                outcomes.append(backup_bot(entry, pools, backups, stamp, tagged=source))
            except Exception as exc:
                outcomes.append(Outcome(entry.key, "failed", f"{type(exc).__name__}: {exc}"))
    report(outcomes)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def report(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        removed = f" (retention removed {', '.join(o.removed)})" if o.removed else ""
        print(f"{o.key} {o.status} {o.detail}{removed}", flush=True)


def loop(schedule_path: str, pools: str, backups: str) -> None:
    """The job: a run now, then one at every multiple of the interval (UTC), until SIGTERM
    (`docker stop`, as a converge recreates the job): at once while it waits, after the run
    in progress otherwise. As PID 1 it would ignore SIGTERM without a handler, and every
    stop would wait out Docker's timeout (45 s) before a kill."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while not stopping.is_set():
        schedule = read_schedule(schedule_path)
        report(run_once(schedule, pools, backups))
        period = schedule.interval_minutes * 60
        stopping.wait(period - time.time() % period)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedule", default="/job/schedule.json")
    parser.add_argument("--pools", default="/pools")
    parser.add_argument("--backups", default="/backups")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run")
    sub.add_parser("loop")
    copy = sub.add_parser("copy")
    copy.add_argument("database")
    before = sub.add_parser("pre-upgrade")
    before.add_argument("source", help="the tag of the image the bots ran on")
    before.add_argument("--stamp", default=datetime.now(UTC).strftime(STAMP_FORMAT))
    args = parser.parse_args(argv)
    if args.command == "copy":
        return copy_database(args.database, sys.stdout.buffer)
    if args.command == "pre-upgrade":
        schedule = read_schedule(args.schedule)
        return pre_upgrade(schedule, args.pools, args.backups, args.source, args.stamp)
    if args.command == "loop":
        loop(args.schedule, args.pools, args.backups)
        return 0
    outcomes = run_once(read_schedule(args.schedule), args.pools, args.backups)
    report(outcomes)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
