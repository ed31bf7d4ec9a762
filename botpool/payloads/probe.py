"""Ask every bot of one host how it is; print one JSON line (see botpool/probe.py).

Runs in a throwaway container of the pool image, on the host's network:
`python3 -I -c SOURCE POOLS TARGETS [--call-timeout S] [--bot-deadline S] [--deadline S]`,
POOLS being the pools folder and TARGETS a JSON list of {"program", "pool", "bot", "port"}.
Standard library only.

Everything a bot can write is hostile input here: its log, its API's answers, and (before
a converge restores it) the files of its folder. So the probe reads regular files only,
never follows a symbolic link below POOLS, reads a bounded tail of each log, refuses an
oversized config, bounds every HTTP answer and every bot's time, never follows a redirect,
and prints bot-written text with its control characters replaced. A bot that trips any of
this gets a clear per-bot error; the others are still asked.
"""

from __future__ import annotations

import argparse
import base64
import errno
import json
import os
import re
import signal
import stat
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

LOG_TAIL_BYTES = 256 * 1024  # of a bot's log and of supervisord's: hours of lines
CONFIG_MAX_BYTES = 64 * 1024  # a rendered config is about 3 KiB
ANSWER_MAX_BYTES = 1024 * 1024  # one API answer
WARNING_MAX_CHARS = 300
WARNINGS_SHOWN = 5  # a bot's last warnings the dashboard shows
DEFAULT_TRADABLE_BALANCE_RATIO = 0.99  # freqtrade's own default
# freqtrade's warning about listening on 0.0.0.0 is expected in a container: skip it
EXPECTED_WARNING = "SECURITY WARNING"
NAME = re.compile(r"[a-z0-9][a-z0-9-]*\Z")  # layout names: one path component, never ..
# A bot whose notification fails logs the URL it called, and a webhook's URL can be its
# secret (a Discord webhook's token is in its path; Telegram's API URLs hold the bot token).
# The checks show a bot's last warning: with every URL, and what requests says after
# "with url:", hidden.
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+|(?<=with url: )[^\s'\"<>]+", re.I)
SHOW_CONFIG_KEYS = (
    "bot_name",
    "dry_run",
    "strategy",
    "stake_amount",
    "stake_currency",
    "exchange",
    "max_open_trades",
    "state",
)


class Unreadable(Exception):
    """A file the probe will not or cannot read, said in words a person can act on."""


class Deadline(Exception):
    """A bot (or the whole probe) used up its time."""


@dataclass(frozen=True)
class Limits:
    call_timeout: float  # one HTTP call
    bot_deadline: float  # every call to one bot
    deadline: float  # the whole probe


# --- files: regular, bounded, no symbolic link followed ----------------------------------


def open_beneath(root: Path, relative: str) -> int:
    """A read-only descriptor of root/relative, following no symbolic link below root.

    Each folder is opened relative to its parent with O_NOFOLLOW, so a bot that replaces
    its `logs` folder (or a file) with a link to / or /dev/zero is refused, not followed.
    Folders are opened O_PATH: like a path lookup, that needs search permission only.
    O_NONBLOCK: opening a FIFO must not wait for a writer.
    """
    *folders, name = relative.split("/")
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    shown = ""
    try:
        for folder in folders:
            shown += folder + "/"
            flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            inner = _open_at(folder, flags, fd, shown.rstrip("/"))
            os.close(fd)
            fd = inner
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        return _open_at(name, flags, fd, relative)
    finally:
        os.close(fd)


def _open_at(name: str, flags: int, folder_fd: int, shown: str) -> int:
    try:
        return os.open(name, flags, dir_fd=folder_fd)
    except FileNotFoundError:
        raise
    except OSError as error:
        if error.errno == errno.EACCES:
            raise Unreadable(
                f"{shown}: permission denied to uid 0 without capabilities (owner or other "
                "must allow search on each folder on the way, read on the file)"
            ) from None
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise Unreadable(f"{shown} cannot be read: {error.strerror}") from None
        try:
            kind = _kind(os.stat(name, dir_fd=folder_fd, follow_symlinks=False).st_mode)
        except OSError:
            kind = "gone"
        if kind == "a symbolic link":
            raise Unreadable(f"{shown} is a symbolic link, not followed") from None
        raise Unreadable(f"{shown} is {kind}, not a folder") from None


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISREG: "a regular file",
        stat.S_ISLNK: "a symbolic link",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISDIR: "a directory",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    return next((text for test, text in kinds.items() if test(mode)), "of an unknown kind")


def read_regular(root: Path, relative: str, limit: int, tail: bool) -> bytes:
    """At most `limit` bytes of a regular file below root: its last ones (tail) or all.

    A file bigger than the limit is an error unless tail is asked; a missing file is
    FileNotFoundError, left to the caller (a bot that never started has no log).
    """
    fd = open_beneath(root, relative)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(f"{relative} is not a regular file but {_kind(info.st_mode)}")
        if not tail and info.st_size > limit:
            raise Unreadable(f"{relative} is {info.st_size} bytes, above the {limit}-byte bound")
        start = max(0, info.st_size - limit) if tail else 0
        data = _read_at(fd, start, limit + (0 if tail else 1))
        if not tail and len(data) > limit:  # it grew after fstat
            raise Unreadable(f"{relative} is more than {limit} bytes, the bound")
        return data.split(b"\n", 1)[-1] if start else data  # drop a cut first line
    except OSError as error:
        raise Unreadable(f"{relative} cannot be read: {error.strerror}") from None
    finally:
        os.close(fd)


def _read_at(fd: int, start: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit:
        chunk = os.pread(fd, limit - size, start + size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def log_tail(root: Path, relative: str) -> list[str]:
    """The last lines of a log; none when it does not exist (yet)."""
    try:
        data = read_regular(root, relative, LOG_TAIL_BYTES, tail=True)
    except FileNotFoundError:
        return []
    return data.decode(errors="replace").splitlines()


def read_config(pools: Path, bot: str) -> dict[str, Any]:
    """A bot's own config.json (`bot` is POOL/bots/BOT), bounded and checked."""
    relative = f"{bot}/config.json"
    try:
        config = json.loads(read_regular(pools, relative, CONFIG_MAX_BYTES, tail=False))
    except FileNotFoundError:
        raise Unreadable(f"{relative} is missing") from None
    except ValueError as error:
        raise Unreadable(f"{relative} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise Unreadable(f"{relative} is not a JSON object")
    return config


def api_login(config: dict[str, Any]) -> tuple[str, str]:
    """The bot's API user and password."""
    api = config.get("api_server")
    user, password = (
        (api.get("username"), api.get("password")) if isinstance(api, dict) else ("", "")
    )
    if not (isinstance(user, str) and isinstance(password, str) and user and password):
        raise Unreadable("its config.json has no api_server username and password")
    return user, password


def tradable_balance_ratio(config: dict[str, Any]) -> float:
    """The share of the wallet freqtrade may stake (its default when absent)."""
    ratio = config.get("tradable_balance_ratio", DEFAULT_TRADABLE_BALANCE_RATIO)
    return float(ratio) if isinstance(ratio, (int, float)) else DEFAULT_TRADABLE_BALANCE_RATIO


# --- the bot's API: bounded answers, no redirect, per-call and per-bot time --------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A bot's API never redirects: following one would send its login elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def call(port: int, path: str, timeout: float, auth: tuple[str, str] | None = None) -> Any:
    """GET /api/v1/<path> on the host's loopback; its JSON object."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/{path}")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", "Basic " + token)
    with OPENER.open(request, timeout=timeout) as response:
        body = response.read(ANSWER_MAX_BYTES + 1)
    if len(body) > ANSWER_MAX_BYTES:
        raise ValueError(f"/api/v1/{path} answered more than {ANSWER_MAX_BYTES} bytes")
    answer = json.loads(body)
    if not isinstance(answer, dict):
        raise ValueError(f"/api/v1/{path} answered {type(answer).__name__}, not an object")
    return answer


@contextmanager
def time_limit(seconds: float, message: str) -> Iterator[None]:
    """Raise Deadline(message) in the block after `seconds`, whatever it waits on (SIGALRM).

    Per-call socket timeouts alone do not bound a bot that answers one byte at a time.
    """

    def expire(signum: int, frame: FrameType | None) -> None:
        raise Deadline(message)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def ask(port: int, login: tuple[str, str], timeout: float, result: dict[str, Any]) -> None:
    """The bot's API, through its published port, with the login of its own config."""
    result["ping"] = call(port, "ping", timeout).get("status") == "pong"
    config = call(port, "show_config", timeout, login)
    result["config"] = {key: config.get(key) for key in SHOW_CONFIG_KEYS}
    result["count"] = call(port, "count", timeout, login)
    result["trade_count"] = call(port, "profit", timeout, login).get("trade_count")
    result["whitelist"] = call(port, "whitelist", timeout, login).get("length")
    balance = call(port, "balance", timeout, login)
    currency = config.get("stake_currency")
    currencies = balance.get("currencies")
    stake = [
        c
        for c in (currencies if isinstance(currencies, list) else [])
        if isinstance(c, dict) and c.get("currency") == currency
    ]
    result["wallet"] = {
        "total": balance.get("total"),
        "free": stake[0].get("free") if stake else None,
    }
    result["last_process_ts"] = call(port, "health", timeout, login).get("last_process_ts")


# --- supervisord's log: exits and spawns per program -------------------------------------


@dataclass
class Supervised:
    """What supervisord's log says of each program: exit times and last spawn time."""

    exits: dict[str, list[float]] = field(default_factory=dict)
    spawned: dict[str, float] = field(default_factory=dict)
    error: str | None = None


EVENT = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ \w+ (exited: (\S+) |spawned: '([^']+)')")


def supervised(pools: Path, pool: str) -> Supervised:
    seen = Supervised()
    try:
        lines = log_tail(pools, f"{pool}/logs/supervisord.log")
    except Unreadable as error:
        seen.error = str(error)
        return seen
    for line in lines:
        match = EVENT.match(line)
        if not match:
            continue
        try:
            stamp = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        if match.group(3):
            seen.exits.setdefault(match.group(3), []).append(stamp)
        else:
            seen.spawned[match.group(4)] = stamp
    return seen


# --- one bot, then every bot ---------------------------------------------------------------


def probe_bot(
    pools: Path, target: dict[str, Any], pool: Supervised, left: float, limits: Limits
) -> dict[str, Any]:
    """One bot's report (`left`: seconds left to the probe); its errors are its own."""
    program, port = target["program"], target["port"]
    bot = f"{target['pool']}/bots/{target['bot']}"
    result: dict[str, Any] = {"port": port}
    file_errors = [pool.error] if pool.error else []
    try:
        config = read_config(pools, bot)
        result["tradable_balance_ratio"] = tradable_balance_ratio(config)
        login = api_login(config)
    except Unreadable as error:
        file_errors.append(str(error))
        result["not_asked"] = f"no API login ({error})"
    else:
        _ask_in_time(port, login, left, limits, result)
    try:
        warnings = last_warnings(log_tail(pools, f"{bot}/logs/freqtrade.log"))
    except Unreadable as error:
        file_errors.append(str(error))
        warnings = []
    result["last_warnings"] = warnings  # the dashboard's bot page
    result["last_warning"] = warnings[-1] if warnings else None  # the checks' reasons
    now = time.time()
    result["exits_last_hour"] = sum(now - t < 3600 for t in pool.exits.get(program, []))
    spawned = pool.spawned.get(program)
    result["spawned_seconds_ago"] = None if spawned is None else round(now - spawned)
    result["file_errors"] = file_errors
    return result


def _ask_in_time(
    port: int, login: tuple[str, str], left: float, limits: Limits, result: dict[str, Any]
) -> None:
    """Ask within the bot's own deadline, or what is left of the probe's if that is less."""
    if left <= 0:
        result["not_asked"] = f"the probe's {limits.deadline:g} s were used up by other bots"
        return
    if left < limits.bot_deadline:
        seconds, why = left, f"the probe's {limits.deadline:g} s ran out while asking it"
    else:
        seconds = limits.bot_deadline
        why = f"its calls took more than {seconds:g} s in all"
    try:
        with time_limit(seconds, why):
            ask(port, login, min(limits.call_timeout, seconds), result)
    except Exception as error:  # report, never crash: one silent bot must not hide others
        result["error"] = f"{type(error).__name__}: {error}"


def last_warnings(lines: list[str], count: int = WARNINGS_SHOWN) -> list[str]:
    """The log's last `count` warnings and errors, oldest first, URLs hidden, each cut."""
    warnings = [
        line
        for line in lines
        if (" - WARNING - " in line or " - ERROR - " in line) and EXPECTED_WARNING not in line
    ]
    return [URL.sub("(URL hidden)", w)[:WARNING_MAX_CHARS] for w in warnings[-count:]]


def last_warning(lines: list[str]) -> str | None:
    found = last_warnings(lines, 1)
    return found[0] if found else None


def probe(pools: Path, targets: list[dict[str, Any]], limits: Limits) -> dict[str, Any]:
    end = time.monotonic() + limits.deadline
    logs: dict[str, Supervised] = {}
    report = {}
    for target in targets:
        if target["pool"] not in logs:
            logs[target["pool"]] = supervised(pools, target["pool"])
        left = end - time.monotonic()
        report[target["program"]] = probe_bot(pools, target, logs[target["pool"]], left, limits)
    return report


def printable(value: Any) -> Any:
    """Bot-written text with control characters replaced: it ends up in a terminal."""
    if isinstance(value, str):
        return "".join(c if c.isprintable() else "?" for c in value)
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [printable(v) for v in value]
    return value


def targets(text: str) -> list[dict[str, Any]]:
    """The bots to ask, checked: names are single path components, ports are numbers."""
    try:
        items = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"targets are not JSON: {error}") from None
    if not isinstance(items, list):
        raise argparse.ArgumentTypeError("targets must be a JSON list")
    for item in items:
        names = [item.get(k) for k in ("program", "pool", "bot")] if isinstance(item, dict) else []
        if not names or not all(isinstance(n, str) and NAME.match(n) for n in names):
            raise argparse.ArgumentTypeError(f"{item!r}: program, pool and bot must be names")
        if not isinstance(item.get("port"), int):
            raise argparse.ArgumentTypeError(f"{item!r}: port must be a number")
    return items


def main() -> None:
    parser = argparse.ArgumentParser(prog="botpool-probe", description="Ask every bot.")
    parser.add_argument("pools", type=Path, help="the pools folder (read only)")
    parser.add_argument("targets", type=targets, help="JSON list of the bots to ask")
    parser.add_argument("--call-timeout", type=float, default=5.0, help="one HTTP call, s")
    parser.add_argument("--bot-deadline", type=float, default=20.0, help="one bot, s")
    parser.add_argument("--deadline", type=float, default=90.0, help="every bot, s")
    args = parser.parse_args()
    limits = Limits(args.call_timeout, args.bot_deadline, args.deadline)
    print(json.dumps(printable(probe(args.pools, args.targets, limits))), flush=True)


if __name__ == "__main__":
    main()
