"""Stable allocation: which pool, slot and host ports each bot gets, pinned in a lock file.

The lock file (`<layout>.lock`, committed beside the layout) records every pool's host
and port block and every bot's pool and slot. `allocate` keeps every entry it can and only
places what is new, so adding, removing or reordering bots never moves another bot.

Pools move between hosts only by an explicit edit of the layout (a user's `host:` pin or
`pools:` placement). A moved pool keeps its name and slots, takes a free port block on its
new host, and records `moved_from` until a converge has carried its data there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from botpool.layout import Bot, Layout
from botpool.source import LayoutError, Problem, load

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
            "version": 1,
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


def lock_path(layout_file: str | Path) -> Path:
    return Path(layout_file).with_suffix(".lock")


def read_lock(path: Path) -> Allocation:
    """Read a lock file; a missing file is an empty allocation, a broken one an error."""
    if not path.exists():
        return Allocation()
    doc = load(path.read_text(), str(path))
    problems = list(doc.problems)
    pools: dict[str, PoolBlock] = {}
    bots: dict[str, Seat] = {}
    data = doc.data if isinstance(doc.data, dict) else {}
    try:
        for name, p in (data.get("pools") or {}).items():
            moved_from = p.get("moved_from")
            pools[name] = PoolBlock(
                name,
                str(p["user"]),
                str(p["host"]),
                int(p["first_port"]),
                int(p["size"]),
                str(moved_from) if moved_from else None,
            )
        for key, b in (data.get("bots") or {}).items():
            bots[key] = Seat(str(b["pool"]), int(b["slot"]))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        problems.append(
            Problem(
                str(path),
                1,
                "",
                f"malformed lock file ({exc!r}): restore it "
                "from git, or delete it to allocate afresh (bots may move)",
            )
        )
    seats = set()
    for key, seat in bots.items():
        pool = pools.get(seat.pool)
        user = key.split("/")[0]
        if (
            pool is None
            or pool.user != user
            or not 0 <= seat.slot < pool.size
            or (seat.pool, seat.slot) in seats
        ):
            problems.append(
                doc.problem(
                    ("bots", key),
                    "inconsistent entry (unknown pool, other "
                    "user's pool, slot out of range or taken twice): restore "
                    "the lock from git, or delete it to allocate afresh",
                )
            )
        seats.add((seat.pool, seat.slot))
    if problems:
        raise LayoutError(problems)
    return Allocation(pools, bots)


def allocate(layout: Layout, previous: Allocation) -> tuple[Allocation, list[Problem]]:
    """Keep every still-wanted bot where it is; seat new bots in their user's pools.

    A new bot takes the lowest free slot of its user's lowest-numbered pool with room; when
    all are full a new pool opens with the lowest free number and the lowest free port block
    on its host. Pools left without bots are dropped, freeing their ports.
    """
    wanted = {bot.key: bot for bot in layout.bots}
    bots = {k: s for k, s in previous.bots.items() if k in wanted}
    pools = {
        p.name: p for p in previous.pools.values() if any(s.pool == p.name for s in bots.values())
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
            moved_from = None if origin == host else origin
            pools[block.name] = PoolBlock(
                block.name, block.user, host, first, block.size, moved_from
            )
    for bot in layout.bots:
        if bot.key in bots:
            continue
        pool = _pool_with_room(bot.user, pools, bots) or _open_pool(
            layout, bot, pools, bots, problems
        )
        if pool is None:
            continue
        taken = {s.slot for s in bots.values() if s.pool == pool.name}
        bots[bot.key] = Seat(pool.name, min(set(range(pool.size)) - taken))
    return Allocation(pools, bots), problems


def _pool_with_room(
    user: str, pools: dict[str, PoolBlock], bots: dict[str, Seat]
) -> PoolBlock | None:
    used: dict[str, int] = {}
    for seat in bots.values():
        used[seat.pool] = used.get(seat.pool, 0) + 1
    for pool in sorted((p for p in pools.values() if p.user == user), key=lambda p: p.number):
        if used.get(pool.name, 0) < pool.size:
            return pool
    return None


def _open_pool(
    layout: Layout,
    bot: Bot,
    pools: dict[str, PoolBlock],
    bots: dict[str, Seat],
    problems: list[Problem],
) -> PoolBlock | None:
    size = layout.max_bots_per_pool
    number = 1
    while f"{bot.user}-pool-{number}" in pools:
        number += 1
    name = f"{bot.user}-pool-{number}"
    if not layout.hosts:  # every host was invalid: validation has said so already
        return None
    host = _placed_host(layout, bot.user, name) or _roomiest_host(layout, pools, bots)
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


def _roomiest_host(layout: Layout, pools: dict[str, PoolBlock], bots: dict[str, Seat]) -> str:
    """The host with the most memory left; ties go to the first declared."""
    load: dict[str, int] = {name: 0 for name in layout.hosts}
    runtimes = {user.name: user.runtime for user in layout.users}
    for seat in bots.values():
        pool = pools[seat.pool]
        if pool.host in load:
            load[pool.host] += layout.hosts[pool.host].bot_mb(runtimes.get(pool.user, "zygote"))
    return max(layout.hosts, key=lambda h: layout.hosts[h].usable_mb - load[h])
