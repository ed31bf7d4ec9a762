"""Stable allocation: which pool, slot and host ports each bot gets, pinned in a lock file.

The lock file (`<layout>.lock`, committed beside the layout) records every pool's host
and port block and every bot's pool and slot. `allocate` keeps every entry it can and only
places what is new, so adding, removing or reordering bots never moves another bot.

Pools move between hosts only by an explicit edit of the layout (a user's `host:` pin or
`pools:` placement). A moved pool keeps its name and slots, takes a free port block on its
new host, and records `moved_from` until a converge has carried its data there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from botpool.core.layout import Bot, Layout
from botpool.core.runtimes import RUNTIMES
from botpool.core.schema import HOST_RE, NAME_RE
from botpool.core.source import Document, LayoutError, Problem, read

LOCK_HEADER = (
    "# Written by `botpool plan`: the pool, slot and ports of every bot. Commit it beside the\n"
    "# layout; edit the layout, not this file. It keeps bots where they are when others change.\n"
)


@dataclass(frozen=True, order=True)
class PoolBlock:
    """A pool container and the block of host ports it reserves, one per slot."""

    name: str
    user: str
    host: str
    first_port: int
    size: int
    moved_from: str | None = None  # the host whose data a converge must still carry here

    @property
    def ports(self) -> range:
        return range(self.first_port, self.first_port + self.size)

    @property
    def number(self) -> int:
        return int(self.name.rsplit("-", 1)[1])


@dataclass(frozen=True)
class Seat:
    pool: str
    slot: int


@dataclass(frozen=True)
class Allocation:
    pools: dict[str, PoolBlock] = field(default_factory=dict)
    bots: dict[str, Seat] = field(default_factory=dict)  # "user/bot" -> seat

    def to_yaml(self) -> str:
        data = {
            "version": LOCK_VERSION,
            "pools": {
                p.name: {
                    "user": p.user,
                    "host": p.host,
                    "first_port": p.first_port,
                    "size": p.size,
                    **({"moved_from": p.moved_from} if p.moved_from else {}),
                }
                for p in sorted(self.pools.values(), key=_pool_order)
            },
            "bots": {
                key: {"pool": seat.pool, "slot": seat.slot}
                for key, seat in sorted(
                    self.bots.items(),
                    key=lambda kv: (_pool_order(self.pools[kv[1].pool]), kv[1].slot),
                )
            },
        }
        return LOCK_HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def _pool_order(pool: PoolBlock) -> tuple[str, int]:
    return (pool.user, pool.number)


LOCK_VERSION = 1
MAX_POOL_SIZE = 50  # the most defaults.max_bots_per_pool allows


def lock_path(layout_file: str | Path) -> Path:
    return Path(layout_file).with_suffix(".lock")


def read_lock(path: Path, layout: Layout | None = None) -> Allocation:
    """Read a lock file as strictly as a layout; a missing file is an empty allocation.

    Every problem is reported as FILE:LINE, and an empty, unreadable or inconsistent lock is
    an error, never a silent reshuffle (two bots swapping ports). With the layout, port
    blocks must also lie inside its base_port..max_port.
    """
    if not path.exists() and not path.is_symlink():
        return Allocation()
    doc = read(path, "lock file")
    check = _LockCheck(doc, layout)
    allocation = check.allocation()
    if doc.problems or check.problems:
        raise LayoutError(doc.problems + check.problems)
    return allocation


def write_lock(path: Path, text: str) -> None:
    """Replace the lock atomically (a temporary file renamed over it), never a non-lock."""
    if path.exists() and not path.read_bytes().startswith(LOCK_HEADER.encode()[:40]):
        raise LayoutError(
            [
                Problem(
                    str(path), 1, "", "not a lock file written by botpool: refusing to replace it"
                )
            ]
        )
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


_FIX = "restore the lock file from git, or delete it to allocate afresh (bots may move)"


class _LockCheck:
    """A lock file's data -> Allocation, with every problem located."""

    def __init__(self, doc: Document, layout: Layout | None):
        self.doc = doc
        self.layout = layout
        self.problems: list[Problem] = []

    def report(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(self.doc.problem(path, f"{message}: {_FIX}"))

    def fields(self, raw: Any, path: tuple[str, ...], spec: dict[str, type]) -> dict[str, Any]:
        """A mapping with exactly the keys of spec (those ending in '?' optional), typed."""
        if not isinstance(raw, dict):
            self.report(path, "expected a mapping")
            return {}
        out = {}
        for key in raw.keys() - {k.rstrip("?") for k in spec}:
            self.report((*path, str(key)), f"unknown key {key!r}")
        for key, kind in spec.items():
            name = key.rstrip("?")
            value = raw.get(name)
            if value is None and key.endswith("?"):
                continue
            if value is None:
                self.report((*path, name), f"{name} is missing")
                return {}
            if not isinstance(value, kind) or isinstance(value, bool):
                self.report((*path, name), f"{name} must be {kind.__name__}, got {value!r}")
                return {}
            out[name] = value
        return out

    def allocation(self) -> Allocation:
        data = self.doc.data
        if data is None:
            self.report((), "the lock file is empty")
            return Allocation()
        top = self.fields(data, (), {"version": int, "pools": dict, "bots": dict})
        if not top:
            return Allocation()
        if top["version"] != LOCK_VERSION:
            self.report(
                ("version",),
                f"unknown lock version {top['version']}: this botpool reads version {LOCK_VERSION}",
            )
            return Allocation()
        pools = {}
        for name, raw in top["pools"].items():
            pool = self.pool(str(name), raw)
            if pool:
                pools[pool.name] = pool
        self.overlaps(pools)
        bots = {}
        seats: dict[tuple[str, int], str] = {}
        for key, raw in top["bots"].items():
            seat = self.seat(str(key), raw, pools)
            if seat is None:
                continue
            if (seat.pool, seat.slot) in seats:
                self.report(
                    ("bots", key),
                    f"slot {seat.slot} of {seat.pool} is also {seats[(seat.pool, seat.slot)]}'s",
                )
                continue
            seats[(seat.pool, seat.slot)] = key
            bots[key] = seat
        return Allocation(pools, bots)

    def pool(self, name: str, raw: Any) -> PoolBlock | None:
        path = ("pools", name)
        spec = {"user": str, "host": str, "first_port": int, "size": int, "moved_from?": str}
        f = self.fields(raw, path, spec)
        if not f:
            return None
        problems = len(self.problems)
        if not (
            NAME_RE.fullmatch(f["user"])
            and re.fullmatch(rf"{re.escape(f['user'])}-pool-[1-9][0-9]{{0,5}}", name)
        ):
            self.report(
                path, f"{name!r} is not a pool name of user {f['user']!r} ({f['user']}-pool-<n>)"
            )
        for key in ("host", "moved_from"):
            if key in f and not HOST_RE.fullmatch(f[key]):
                self.report((*path, key), f"{f[key]!r} is not a host name")
        if not 1 <= f["size"] <= MAX_POOL_SIZE:
            self.report((*path, "size"), f"size must be between 1 and {MAX_POOL_SIZE}")
        elif not 1024 <= f["first_port"] <= 65536 - f["size"]:
            self.report((*path, "first_port"), "the port block lies outside 1024-65535")
        elif self.layout and not (
            self.layout.base_port <= f["first_port"]
            and f["first_port"] + f["size"] - 1 <= self.layout.max_port
        ):
            self.report(
                (*path, "first_port"),
                f"ports {f['first_port']}-{f['first_port'] + f['size'] - 1} lie outside "
                f"the layout's base_port..max_port ({self.layout.base_port}-"
                f"{self.layout.max_port})",
            )
        if len(self.problems) > problems:
            return None
        return PoolBlock(
            name, f["user"], f["host"], f["first_port"], f["size"], f.get("moved_from")
        )

    def overlaps(self, pools: dict[str, PoolBlock]) -> None:
        by_host: dict[str, list[PoolBlock]] = {}
        for pool in pools.values():
            by_host.setdefault(pool.host, []).append(pool)
        for blocks in by_host.values():
            blocks.sort(key=lambda p: p.first_port)
            for before, after in zip(blocks, blocks[1:], strict=False):
                if after.first_port < before.first_port + before.size:
                    self.report(
                        ("pools", after.name),
                        f"its ports overlap those of {before.name} on host {after.host}",
                    )

    def seat(self, key: str, raw: Any, pools: dict[str, PoolBlock]) -> Seat | None:
        path = ("bots", key)
        f = self.fields(raw, path, {"pool": str, "slot": int})
        if not f:
            return None
        user, _, bot = key.partition("/")
        pool = pools.get(f["pool"])
        if not (NAME_RE.fullmatch(user) and NAME_RE.fullmatch(bot)):
            self.report(path, f"{key!r} is not USER/BOT")
        elif pool is None:
            self.report((*path, "pool"), f"no pool {f['pool']!r} in the lock")
        elif pool.user != user:
            self.report((*path, "pool"), f"{f['pool']} is {pool.user}'s pool, not {user}'s")
        elif not 0 <= f["slot"] < pool.size:
            self.report((*path, "slot"), f"slot {f['slot']} is outside 0-{pool.size - 1}")
        else:
            return Seat(f["pool"], f["slot"])
        return None


def allocate(
    layout: Layout, previous: Allocation, lost: frozenset[str] = frozenset()
) -> tuple[Allocation, list[Problem]]:
    """Keep every still-wanted bot where it is; seat new bots in their user's pools.

    A new bot takes the lowest free slot of its user's lowest-numbered pool with room; when
    all are full a new pool opens with the lowest free number and the lowest free port block
    on its host. Pools left without bots are dropped, freeing their ports. `lost`: hosts
    whose data is gone for good (`botpool plan --lost-host`): a pool leaving one carries
    nothing (it starts empty where it goes; its bots are restored from pulled backups).
    """
    wanted = {bot.key: bot for bot in layout.bots}
    bots = {k: s for k, s in previous.bots.items() if k in wanted}
    pools = {
        p.name: replace(p, moved_from=None) if p.moved_from in lost else p
        for p in previous.pools.values()
        if any(s.pool == p.name for s in bots.values())
    }
    problems: list[Problem] = []
    for block in sorted(pools.values(), key=_pool_order):  # explicit placement edits move pools
        host = _placed_host(layout, block.user, block.name)
        if host and host != block.host:
            del pools[block.name]
            first = _free_block(layout, host, block.size, pools, prefer=block.first_port)
            if first is None:
                user = next(u for u in layout.users if u.name == block.user)
                where = (user.line, f"users.{block.user}")
                problems.append(_no_block(layout, where, f"pool {block.name}", host))
                pools[block.name] = block
                continue
            # the data is where the last converged move left it
            origin = block.moved_from or block.host
            moved_from = None if origin == host or origin in lost else origin
            pools[block.name] = PoolBlock(
                block.name, block.user, host, first, block.size, moved_from
            )
    for bot in layout.bots:
        if bot.key in bots:
            continue
        full = _hosts_at_limit(layout, bot, pools, bots)
        pool = _pool_with_room(bot.user, pools, bots, full) or _open_pool(
            layout, bot, pools, bots, problems, full
        )
        if pool is None:
            continue
        taken = {s.slot for s in bots.values() if s.pool == pool.name}
        bots[bot.key] = Seat(pool.name, min(set(range(pool.size)) - taken))
    return Allocation(pools, bots), problems


def _pool_with_room(
    user: str, pools: dict[str, PoolBlock], bots: dict[str, Seat], full: set[str]
) -> PoolBlock | None:
    """The user's lowest-numbered pool with a free slot, on a host not full for the bot."""
    used: dict[str, int] = {}
    for seat in bots.values():
        used[seat.pool] = used.get(seat.pool, 0) + 1
    for pool in sorted((p for p in pools.values() if p.user == user), key=lambda p: p.number):
        if used.get(pool.name, 0) < pool.size and pool.host not in full:
            return pool
    return None


def _hosts_at_limit(
    layout: Layout, bot: Bot, pools: dict[str, PoolBlock], bots: dict[str, Seat]
) -> set[str]:
    """Hosts that already run as many bots of this bot's exchange profile as it allows
    (`max_bots_per_host`: an exchange limits requests per IP, and a host's bots share one)."""
    profile = layout.exchanges.get(bot.settings.exchange)
    if profile is None or profile.max_bots_per_host is None:
        return set()
    by_key = {b.key: b for b in layout.bots}
    count: dict[str, int] = {}
    for key, seat in bots.items():
        if key in by_key and by_key[key].settings.exchange == profile.name:
            host = pools[seat.pool].host
            count[host] = count.get(host, 0) + 1
    return {host for host, n in count.items() if n >= profile.max_bots_per_host}


def _open_pool(
    layout: Layout,
    bot: Bot,
    pools: dict[str, PoolBlock],
    bots: dict[str, Seat],
    problems: list[Problem],
    full: set[str],
) -> PoolBlock | None:
    size = layout.max_bots_per_pool
    number = 1
    while f"{bot.user}-pool-{number}" in pools:
        number += 1
    name = f"{bot.user}-pool-{number}"
    if not layout.hosts:  # every host was invalid: validation has said so already
        return None
    host = _placed_host(layout, bot.user, name) or _roomiest_host(layout, pools, bots, full)
    first = _free_block(layout, host, size, pools)
    if first is None:
        where = (bot.line, f"users.{bot.user}.bots")
        problems.append(_no_block(layout, where, f"bot {bot.name}", host))
        return None
    pool = PoolBlock(name, bot.user, host, first, size)
    pools[pool.name] = pool
    return pool


def _placed_host(layout: Layout, user_name: str, pool: str) -> str | None:
    """Where the layout explicitly puts a pool: `users.U.pools`, else `users.U.host`."""
    user = next((u for u in layout.users if u.name == user_name), None)
    if user is None:
        return None
    return user.pools.get(pool) or user.host


def _free_block(
    layout: Layout, host: str, size: int, pools: dict[str, PoolBlock], prefer: int | None = None
) -> int | None:
    """The first port of a free block of `size` ports on host: `prefer` if free, else lowest."""
    taken = sorted((p.ports for p in pools.values() if p.host == host), key=lambda r: r.start)

    def fits(first: int) -> bool:
        block = range(first, first + size)
        return (
            first >= layout.base_port
            and block.stop - 1 <= layout.max_port
            and all(block.stop <= t.start or t.stop <= block.start for t in taken)
        )

    if prefer is not None and fits(prefer):
        return prefer
    first = layout.base_port
    for block in taken:  # lowest gap that fits a whole block
        if first + size <= block.start:
            break
        first = max(first, block.stop)
    return first if fits(first) else None


def _no_block(layout: Layout, where: tuple[int, str], what: str, host: str) -> Problem:
    return Problem(
        layout.file,
        *where,
        f"no room for {what}: host {host}'s port range {layout.base_port}-"
        f"{layout.max_port} has no free block of {layout.max_bots_per_pool} ports for a "
        "pool; raise defaults.max_port, lower max_bots_per_pool, or add a host",
    )


def _roomiest_host(
    layout: Layout, pools: dict[str, PoolBlock], bots: dict[str, Seat], full: set[str]
) -> str:
    """The host with the most memory left, among those not full for the bot's exchange
    (if every host is, the roomiest: validation then says why); ties: the first declared."""
    load: dict[str, int] = {name: 0 for name in layout.hosts}
    runtime = {user.name: RUNTIMES[user.runtime] for user in layout.users}
    seated: dict[str, int] = {}
    for seat in bots.values():
        seated[seat.pool] = seated.get(seat.pool, 0) + 1
    for pool in pools.values():  # the same figure as the plan's: its runtime's pool memory
        if pool.host in load and pool.user in runtime:
            bot_mb = layout.hosts[pool.host].bot_mb(runtime[pool.user])
            load[pool.host] += runtime[pool.user].pool_memory_mb(seated.get(pool.name, 0), bot_mb)
    candidates = [h for h in layout.hosts if h not in full] or list(layout.hosts)
    return max(candidates, key=lambda h: layout.hosts[h].usable_mb - load[h])
