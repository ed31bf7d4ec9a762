"""Backups from the controller: take one now, pull the newest to the controller, restore one.

Every command runs on the host through botpool.hosts.remote (SSH, or @local), bounded in
time. The host's backup job (botpool/payloads/backup.py, in the container the converge runs)
takes the backups; here a backup "now" is that same program, run once in that container.

A restore touches one bot only: it holds the backup lock (no backup runs meanwhile), checks
the chosen file, stops that bot's supervisor program, moves its database (and its -wal and
-shm files) aside as `tradesv3.sqlite.before-restore-<UTC stamp>` (never deleted), puts the
backup in its place as the bot's own file, starts the program and waits until the bot's API
answers `/api/v1/ping` inside its pool.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from botpool.core import names
from botpool.core.pipeline import plan_of
from botpool.core.plan import BotPlan, Plan
from botpool.hosts.remote import RemoteError, RemoteHost

STAMP_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
SUFFIX = ".sqlite.gz"
API_WAIT = 180  # seconds a restored bot may take until its API answers
PUSH_CHUNK = 48 * 1024  # bytes a command sends: far below a shell argument's 128 KiB limit


def q(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)


@dataclass(frozen=True)
class Located:
    """A bot of the layout and the inventory host it runs on."""

    bot: BotPlan
    remote: RemoteHost
    plan: Plan

    @property
    def root(self) -> str:
        return self.plan.layout.root

    @property
    def folder(self) -> str:
        """Its backups on the host."""
        return f"{self.root}/{names.BACKUPS_DIR}/{self.bot.user}/{self.bot.name}"

    @property
    def container(self) -> str:
        return names.pool_container(self.plan.layout.project, self.bot.pool)


def locate(remotes: list[RemoteHost], key: str) -> Located:
    """The bot `USER/BOT` of the inventory's layout(s), and the host that runs it."""
    for remote in remotes:
        plan = plan_of(remote.layout)
        bot = next((b for b in plan.bots if b.key == key), None)
        if bot and bot.host == remote.layout_host:
            return Located(bot, remote, plan)
    raise RemoteError(
        f"no bot {key!r} runs on a host of this inventory: use USER/BOT as in `botpool plan`"
    )


def take(remote: RemoteHost) -> list[str]:
    """A backup of every bot of the host now, by its backup job; the job's lines."""
    plan = plan_of(remote.layout)
    job = names.backup_container(plan.layout.project)
    if not plan.hosts[remote.layout_host].bots:
        return []
    if not plan.layout.backups.enabled:
        raise RemoteError(f"{remote.name}: backups are off in the layout (backups: enabled)")
    command = (
        f'if [ -z "$(docker ps -q --filter name=^{job}$)" ]; then echo \'the backup job '
        f"{job} is not running: converge the host first' >&2; exit 1; fi; "
        + q("docker", "exec", job, "python3", "/job/backup.py", "run")
    )
    return remote.run(command, "a backup of every bot")


def stamps(located: Located) -> list[str]:
    """The bot's backups on its host, oldest first."""
    lines = located.remote.run(
        f"ls -1 {q(located.folder)} 2>/dev/null; exit 0", f"listing {located.bot.key}'s backups"
    )
    return sorted(n[: -len(SUFFIX)] for n in lines if STAMP_RE.fullmatch(n[: -len(SUFFIX)]))


def pull(remote: RemoteHost, into: Path) -> list[Path]:
    """The newest backup of every bot of the host, copied to into/<host>/<user>/<bot>/ unless
    already there; each checked against the host's sha256 and written 0600, atomically."""
    plan = plan_of(remote.layout)
    fetched = []
    for bot in plan.hosts[remote.layout_host].bots:
        located = Located(bot, remote, plan)
        have = stamps(located)
        if not have:
            continue
        target = into / remote.layout_host / bot.user / bot.name / f"{have[-1]}{SUFFIX}"
        if target.exists():
            continue
        source = f"{located.folder}/{have[-1]}{SUFFIX}"
        lines = remote.run(
            f"sha256sum {q(source)} | cut -d' ' -f1 && base64 -w0 {q(source)} && echo",
            f"pulling {bot.key}'s backup {have[-1]}",
        )
        digest, data = lines[0].strip(), base64.b64decode(lines[1])
        if hashlib.sha256(data).hexdigest() != digest:
            raise RemoteError(f"{remote.name}: {source} changed while it was pulled: pull again")
        gzip.decompress(data)  # a whole gzip file, or an error before anything is written
        write_private(target, data)
        fetched.append(target)
    return fetched


def pulled(into: Path, key: str) -> dict[str, Path]:
    """The backups of bot USER/BOT that `pull` copied into `into`, from any host (its old one
    may be gone): stamp -> file, the last host's in name order when two hold one stamp."""
    user, _, bot = key.partition("/")
    found = {}
    for path in sorted(into.glob(f"*/{user}/{bot}/*{SUFFIX}")):
        stamp = path.name[: -len(SUFFIX)]
        if STAMP_RE.fullmatch(stamp) and path.is_file() and not path.is_symlink():
            found[stamp] = path
    return found


@dataclass(frozen=True)
class Arrival:
    """A pulled backup sent to its bot's host, whole, root's and 0600, under a name beside the
    bot's backups that retention ignores (`.STAMP.push`): `restore` renames it into place under
    the backups lock. Renamed in place at once, it could be pruned before the restore took
    that lock: the host's backup job keeps only the newest backup of each hour, and a fresh
    pool's first backup is newer (seen on a VPS: "no backup STAMP of ann/one")."""

    partial: str
    target: str


def push(located: Located, source: Path, stamp: str) -> Arrival | None:
    """Send a pulled backup to the bot's (new) host, for `restore` to put in its backups folder
    as `stamp`: checked whole before it is sent, sent in bounded commands (base64, PUSH_CHUNK
    bytes each), checked against its sha256 on arrival. None when a backup with the same
    content is there already (it is left as it is)."""
    data = source.read_bytes()
    try:
        gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise RemoteError(f"{source} is not a whole backup ({exc}): pull it again") from None
    digest = hashlib.sha256(data).hexdigest()
    remote, key = located.remote, located.bot.key
    top = f"{located.root}/{names.BACKUPS_DIR}"
    target = f"{located.folder}/{stamp}{SUFFIX}"
    partial = f"{located.folder}/.{stamp}.push"
    same = f'[ "$(sha256sum < {q(target)} | cut -d" " -f1)" = {digest} ]'
    start = remote.run(
        "\n".join(
            [
                "set -e",
                f"install -d -m 0700 {q(top)} {q(f'{top}/{located.bot.user}')} {q(located.folder)}",
                f"if [ -f {q(target)} ]; then {same} && echo present && exit 0; "
                f"echo 'another backup {stamp} of {key} is on the host' >&2; exit 1; fi",
                f"rm -f {q(partial)} && (umask 077 && : > {q(partial)})",
            ]
        ),
        f"preparing to send {key}'s backup {stamp}",
    )
    if start == ["present"]:
        return None
    for offset in range(0, len(data), PUSH_CHUNK):
        chunk = base64.b64encode(data[offset : offset + PUSH_CHUNK]).decode()
        remote.run(f"printf %s {chunk} | base64 -d >> {q(partial)}", f"sending {key}'s backup")
    remote.run(
        f'[ "$(sha256sum < {q(partial)} | cut -d" " -f1)" = {digest} ] || '
        f"{{ rm -f {q(partial)}; echo '{key}: the backup arrived damaged: send it again' >&2; "
        "exit 1; }",
        f"checking {key}'s backup {stamp} on arrival",
    )
    return Arrival(partial, target)


def write_private(path: Path, data: bytes) -> None:
    """A file only its owner reads, written under a temporary name and renamed."""
    for folder in reversed([path.parent, *path.parent.parents]):
        if not folder.exists():
            folder.mkdir(mode=0o700)
    partial = path.with_name(f".{path.name}.part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(partial, path)


def restore_command(located: Located, stamp: str, now: str, arrival: Arrival | None = None) -> str:
    """The shell that restores one bot's database from one backup, on its host; a pushed one
    (arrival) is first renamed into place, under the same lock."""
    bot, root = located.bot, located.root
    data = f"{root}/pools/{bot.pool}/bots/{bot.name}/user_data"
    db = f"{data}/{names.DATABASE}"
    aside = f"{db}.before-restore-{now}"
    source = f"{located.folder}/{stamp}{SUFFIX}"
    staged = f"{root}/.staging/restore-{bot.user}-{bot.name}-{now}.sqlite"
    ctl = f"docker exec {q(located.container)} {names.SUPERVISORCTL}"
    ping = (
        "import urllib.request as u; "
        f"u.urlopen('http://127.0.0.1:{bot.container_port}/api/v1/ping', timeout=3)"
    )
    steps = [
        "set -e",
        f"exec 9>>{q(f'{root}/{names.BACKUPS_DIR}/.lock')}",
        "flock -w 600 9",  # no backup of this host meanwhile, and no retention
        *([f"mv -T {q(arrival.partial)} {q(arrival.target)}"] if arrival else []),
        f"test -f {q(source)} || {{ echo 'no backup {stamp} of {bot.key}' >&2; exit 1; }}",
        f"gzip -t {q(source)}",
        f"install -d -m 0700 {q(f'{root}/.staging')}",
        f"gzip -dc {q(source)} > {q(staged)}",
        f"chown {bot.uid}:{bot.uid} {q(staged)} && chmod 0600 {q(staged)}",
        f"{ctl} stop {q(bot.program)} >/dev/null",
        # the database and its WAL go aside together, renamed (never followed, never deleted)
        *(
            f"if [ -e {q(db + end)} ] || [ -L {q(db + end)} ]; then "
            f"mv -T {q(db + end)} {q(aside + end)}; fi"
            for end in ("", "-wal", "-shm", "-journal")
        ),
        f"mv -T {q(staged)} {q(db)}",
        f"{ctl} start {q(bot.program)} >/dev/null",
        f"for i in $(seq {API_WAIT}); do "
        f"docker exec {q(located.container)} python3 -c {q(ping)} 2>/dev/null && exit 0; "
        "sleep 1; done",
        f"echo '{bot.key} restored, but its API did not answer within {API_WAIT} s' >&2; exit 1",
    ]
    return "\n".join(steps)


def restore(located: Located, stamp: str, arrival: Arrival | None = None) -> str:
    """Restore one bot from its backup `stamp` (pushed: its arrival, put in place first); the
    name its old database was kept under."""
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    command = restore_command(located, stamp, now, arrival)
    located.remote.run(command, f"restoring {located.bot.key}")
    return f"{names.DATABASE}.before-restore-{now}"
