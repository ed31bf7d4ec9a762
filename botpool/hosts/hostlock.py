"""The converge lock: one converge at a time on each host (and root), the rest wait or refuse.

Two converges of one host at once race: both read the same snapshot, both act on it, and
one fails half-way (Docker: "removal of container ... is already in progress"). So a
converge locks every host of its run before it reads any host's snapshot, and keeps the
locks until it ends.

The lock is a kernel lock (flock) on `<root>/.converge.lock`, held on the host by a small
bash process the converge starts over its own connection and keeps talking to. That
process lives exactly as long as the converge's connection: when the run ends, pyinfra
closes the connection (and botpool first says "done"); when the converge is killed, the
kernel closes its socket or pipe, the holder reads end-of-file and exits, and the kernel
drops the lock. So no lock outlives its converge and nothing has to expire: no clock, no
lease to tune, no stale file to clean. (The one gap: a controller that vanishes from the
network without closing its connection, a cut cable or a destroyed VM, holds the lock
until the host's sshd gives up on the connection: TCP keepalive, about two hours with
Linux defaults, sooner with sshd's ClientAliveInterval. The refusal message names the
holder's pid on the host, to end it by hand.)

The file's content only describes the holder (controller host, user, pid, command, since
when), for the messages. A holder that ends well empties it; a holder that found it
non-empty knows the previous converge of this host failed or was killed, and says so.

This module is pure: the bash, the holder's description, and the messages.
tasks/converge_lock.py runs them through pyinfra.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

LOCK_FILE = ".converge.lock"
MARK = "@@botpool-lock "
DEFAULT_WAIT = 60  # seconds a converge waits for a lock held by another (botpool_lock_wait)
SECRET_OPTIONS = ("--ssh-password", "--password", "--ssh-key-password", "--key-password")
DATA_OPTIONS = ("--data",)  # may carry anything, passwords included

# $1 lock file, $2 seconds to wait, $3 the holder's description. Sections of output:
# MARK waiting|busy|previous, the holder's description, MARK end; then MARK acquired.
TAKE = r"""
lock=$1 wait=$2 info=$3
say() { echo "@@botpool-lock $1"; awk 1 "$lock"; echo "@@botpool-lock end"; }
mkdir -p -- "$(dirname -- "$lock")" && exec 9>>"$lock" || exit 1
if ! flock -n 9; then
  say waiting
  flock -w "$wait" 9 || { say busy; exit 75; }
fi
say previous
printf '%s\nsince=%s\nhost_pid=%s\n' "$info" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$$" >"$lock"
echo "@@botpool-lock acquired"
while IFS= read -r line; do
  if [ "$line" = done ]; then : >"$lock"; exit 0; fi
done
"""

# $1 lock file: report a holder, take nothing (a shared lock for an instant, if free).
CHECK = r"""
lock=$1
[ -e "$lock" ] && exec 9<"$lock" || exit 0
flock -n -s 9 || { echo "@@botpool-lock busy"; awk 1 "$lock"; echo "@@botpool-lock end"; }
"""


def lock_path(root: str) -> str:
    return f"{root.rstrip('/')}/{LOCK_FILE}"


def take_command(root: str, wait: int, info: str) -> str:
    """The holder: takes the lock (waiting up to `wait` s), then holds it until its stdin
    says "done" (the run ended well: the description is cleared) or ends (it did not)."""
    args = (lock_path(root), str(int(wait)), info)
    return "bash -c " + " ".join(shlex.quote(a) for a in (TAKE, "botpool-lock", *args))


def check_command(root: str) -> str:
    """For --dry: is the lock held, and by whom (nothing is taken, nothing is written)."""
    return "bash -c " + " ".join(shlex.quote(a) for a in (CHECK, "botpool-lock", lock_path(root)))


def redact(argv: Sequence[str]) -> list[str]:
    """A command line fit to show to others: option values that may be secret hidden."""
    hidden = SECRET_OPTIONS + DATA_OPTIONS
    shown: list[str] = []
    hide_next = False
    for arg in argv:
        name, equals, _ = arg.partition("=")
        if hide_next:
            shown.append("***")
            hide_next = False
        elif equals and name in hidden:
            shown.append(f"{name}=***")
        else:
            shown.append(arg)
            hide_next = arg in hidden
    return shown


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a host's converge lock, as its holder wrote it into the file."""

    controller: str = "?"  # the machine the converge runs on
    user: str = "?"
    pid: str = "?"  # the converge's pid there
    command: str = "?"
    since: str = "?"  # UTC, the host's clock
    host_pid: str = "?"  # the holding bash on the host

    @classmethod
    def parse(cls, lines: Iterable[str]) -> Holder | None:
        """None for an empty file (no holder, or one that ended well)."""
        fields = dict(line.split("=", 1) for line in lines if "=" in line)
        known = {k: v for k, v in fields.items() if k in cls.__dataclass_fields__}
        return cls(**known) if known else None

    def __str__(self) -> str:
        return (
            f"`{self.command}` by {self.user} on {self.controller} (pid {self.pid}), "
            f"since {self.since}"
        )


def describe_me(argv: Sequence[str], controller: str, user: str, pid: int) -> str:
    """This converge, as the lock file will describe it (one field per line)."""
    command = " ".join([os.path.basename(argv[0]), *redact(argv[1:])]) if argv else "?"
    fields = {"controller": controller, "user": user, "pid": str(pid), "command": command}
    return "\n".join(f"{k}={' '.join(v.split())}" for k, v in fields.items())


def sections(lines: Iterable[str]) -> Iterator[tuple[str, Holder | None]]:
    """The holder's answer as (waiting|busy|previous, holder) and finally (acquired, None)."""
    kind, body = "", []
    for line in lines:
        if not line.startswith(MARK):
            body.append(line)
            continue
        word = line[len(MARK) :].strip()
        if word == "acquired":
            yield word, None
            return
        if word == "end":
            yield kind, Holder.parse(body)
        kind, body = word, []


def waiting_message(host: str, holder: Holder | None, wait: int) -> str:
    return (
        f"{host}: another converge holds this host's lock ({holder or 'holder unknown'}); "
        f"waiting up to {wait} s for it (botpool_lock_wait)"
    )


def held_message(host: str, path: str, holder: Holder | None, wait: int) -> str:
    who = holder or Holder()
    return (
        f"{host}: another converge holds this host's lock ({path}): {who}. Waited {wait} s "
        f"(botpool_lock_wait); this converge changed nothing on any host. Run it again when "
        f"that one has finished, or leave this host out with --limit. The lock ends with that "
        f"converge's connection; if its controller is gone for good, end the holder on the "
        f"host with `kill {who.host_pid}`"
    )


def stale_message(host: str, holder: Holder) -> str:
    return (
        f"{host}: the previous converge of this host ({holder}) did not finish (it failed "
        f"or was killed); its lock ended with it, and this converge completes its work"
    )


def dry_message(host: str, holder: Holder | None) -> str:
    return (
        f"{host}: another converge holds this host's lock ({holder or 'holder unknown'}): "
        f"what --dry shows may change when it ends (--dry takes no lock)"
    )
