"""Allocation is stable: edits never move a bot that stays, freed slots are reused."""

from __future__ import annotations

import dataclasses
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botpool.core.allocate import Allocation, allocate, lock_path, read_lock
from botpool.core.layout import Bot, BotSettings, Host, Layout, User
from botpool.core.plan import load_plan, make_plan
from botpool.core.source import LayoutError
from botpool.core.validate import load_layout

from .conftest import MINIMAL

SETTINGS = BotSettings(
    exchange="sandbox",
    strategy="SampleStrategy",
    pairs=("BTC/USDT",),
    stake_amount=10,
    dry_run_wallet=1000,
)


def make_layout(users: dict[str, list[str]], size: int = 3, hosts: int = 1) -> Layout:
    """A layout built directly, so that thousands of edits run in milliseconds."""
    return Layout(
        file="layout.yaml",
        freqtrade_version="2026.9",
        max_bots_per_pool=size,
        base_port=9000,
        max_port=9999,
        root="/opt/botpool",
        project="botpool",
        runtime="process",
        pool_memory_limit_mb=None,
        image=None,  # type: ignore[arg-type]
        hosts={f"h{i}": Host(f"h{i}", 64000, 512, 260, 1, {}) for i in range(hosts)},
        exchanges={},
        strategies={},
        users=tuple(
            User(u, None, "2026.9", tuple(Bot(u, b, SETTINGS, 1) for b in bots), 1, {}, "process")
            for u, bots in users.items()
        ),
    )


def seats(allocation: Allocation) -> dict[str, tuple[str, int, int, str]]:
    """bot -> (pool, slot, host port, host)."""
    out = {}
    for key, seat in allocation.bots.items():
        pool = allocation.pools[seat.pool]
        out[key] = (seat.pool, seat.slot, pool.first_port + seat.slot, pool.host)
    return out


def check_invariants(layout: Layout, allocation: Allocation) -> None:
    assert set(allocation.bots) == {b.key for b in layout.bots}
    placed = seats(allocation)
    ports = [(host, port) for _, _, port, host in placed.values()]
    assert len(set(ports)) == len(ports), "two bots share a host port"
    for key, (pool, slot, _, _) in placed.items():
        block = allocation.pools[pool]
        assert block.user == key.split("/")[0], "a pool holds another user's bot"
        assert 0 <= slot < block.size
        assert block.first_port >= 9000 and block.ports.stop - 1 <= 9999
    for host in layout.hosts:
        blocks = sorted(
            (p.ports for p in allocation.pools.values() if p.host == host), key=lambda r: r.start
        )
        assert all(a.stop <= b.start for a, b in zip(blocks, blocks[1:], strict=False))
    assert all(any(s.pool == p for s in allocation.bots.values()) for p in allocation.pools)


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "shuffle", "add_user", "remove_user"]),
        st.integers(0, 10_000),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(edits=EDITS, size=st.integers(1, 4), hosts=st.integers(1, 3))
def test_edits_never_move_a_bot_that_stays(edits, size, hosts):
    users: dict[str, list[str]] = {"alice": ["a0"], "bob": ["b0", "b1"]}
    layout = make_layout(users, size, hosts)
    allocation, problems = allocate(layout, Allocation())
    assert problems == []
    counter = 0
    for edit, pick in edits:
        rnd = random.Random(pick)
        names = sorted(users)
        if edit == "add" and names:
            counter += 1
            users[rnd.choice(names)].append(f"n{counter}")
        elif edit == "remove" and names:
            user = rnd.choice(names)
            if len(users[user]) > 1:
                users[user].pop(rnd.randrange(len(users[user])))
        elif edit == "shuffle":
            order = list(users.items())
            rnd.shuffle(order)
            users = {u: rnd.sample(b, len(b)) for u, b in order}
        elif edit == "add_user":
            counter += 1
            users[f"u{counter}"] = [f"x{counter}"]
        elif edit == "remove_user" and len(names) > 1:
            del users[rnd.choice(names)]
        before = seats(allocation)
        layout = make_layout(users, size, hosts)
        allocation, problems = allocate(layout, allocation)
        assert problems == []
        check_invariants(layout, allocation)
        after = seats(allocation)
        for key in before.keys() & after.keys():
            assert before[key] == after[key], f"{key} moved"


@settings(max_examples=200, deadline=None)
@given(removed=st.sets(st.integers(0, 9), min_size=1), added=st.integers(1, 6))
def test_freed_slots_are_reused_before_a_new_pool_opens(removed, added):
    bots = [f"b{i}" for i in range(10)]
    allocation, _ = allocate(make_layout({"alice": bots}, size=5), Allocation())
    kept = [b for i, b in enumerate(bots) if i not in removed]
    grown = kept + [f"new{i}" for i in range(added)]
    layout = make_layout({"alice": grown}, size=5)
    allocation, _ = allocate(layout, allocation)
    check_invariants(layout, allocation)
    kept_pools = {allocation.bots[f"alice/{b}"].pool for b in kept}
    free_slots = 5 * len(kept_pools) - len(kept)
    opened = set(allocation.pools) - kept_pools
    # a new pool opens exactly when the kept pools' freed slots cannot seat the newcomers
    assert bool(opened) == (added > free_slots), (opened, free_slots, added)
    seated_in_kept = sum(s.pool in kept_pools for s in allocation.bots.values())
    assert seated_in_kept == len(kept) + min(added, free_slots)  # freed slots filled first


def test_new_pool_opens_when_a_users_pools_are_full_and_takes_the_next_port_block():
    layout = make_layout({"alice": [f"b{i}" for i in range(12)], "bob": ["x"]}, size=10)
    allocation, _ = allocate(layout, Allocation())
    assert {n: (p.first_port, p.size) for n, p in allocation.pools.items()} == {
        "alice-pool-1": (9000, 10),
        "alice-pool-2": (9010, 10),
        "bob-pool-1": (9020, 10),
    }
    assert allocation.bots["alice/b11"].pool == "alice-pool-2"


def test_an_emptied_pool_frees_its_port_block_for_the_next_pool():
    first, _ = allocate(make_layout({"alice": ["a"], "bob": ["b"]}), Allocation())
    second, _ = allocate(make_layout({"bob": ["b"], "carol": ["c"]}), first)
    assert second.pools["bob-pool-1"].first_port == 9003
    assert second.pools["carol-pool-1"].first_port == 9000


def test_lock_file_round_trips_and_pins_allocation(write_layout):
    path = write_layout(MINIMAL + "      - name: two\n  bob:\n    bots:\n      - name: three\n")
    plan = load_plan(path)
    lock_path(path).write_text(plan.allocation.to_yaml())
    assert read_lock(lock_path(path)) == plan.allocation
    # bob moves above alice and alice's first bot goes: nobody else moves
    path.write_text(path.read_text().replace("      - name: one\n", ""))
    replanned = load_plan(path)
    assert replanned.allocation.bots["alice/two"] == plan.allocation.bots["alice/two"]
    assert replanned.allocation.bots["bob/three"] == plan.allocation.bots["bob/three"]


def test_a_broken_lock_file_is_an_error_not_a_silent_reshuffle(write_layout):
    path = write_layout(MINIMAL)
    lock_path(path).write_text(
        "version: 1\npools:\n  alice-pool-1: {user: alice, host: local, first_port: "
        "9000, size: 1}\nbots:\n  alice/one: {pool: alice-pool-1, slot: 4}\n"
    )
    with pytest.raises(
        LayoutError, match=re.escape(f"{lock_path(path)}:5: bots.alice/one.slot: slot 4")
    ):
        load_plan(path)


def test_plan_places_bots_on_the_roomiest_host_and_respects_pins(write_layout):
    text = (
        MINIMAL.replace(
            "users:", "hosts:\n  big: {memory_mb: 16000}\n  small: {memory_mb: 4000}\nusers:"
        )
        + "  bob:\n    host: small\n    bots:\n      - name: x\n"
    )
    plan = load_plan(write_layout(text))
    assert {p.name: p.host for p in plan.pools} == {"alice-pool-1": "big", "bob-pool-1": "small"}


def test_max_bots_per_pool_change_keeps_existing_pools(write_layout):
    path = write_layout(MINIMAL)
    lock_path(path).write_text(load_plan(path).allocation.to_yaml())
    path.write_text(
        path.read_text().replace("defaults:\n", "defaults:\n  max_bots_per_pool: 4\n")
        + "  bob:\n    bots:\n      - name: y\n"
    )
    plan = load_plan(path)
    assert (
        plan.allocation.pools["alice-pool-1"].size,
        plan.allocation.pools["bob-pool-1"].size,
    ) == (10, 4)
    assert dataclasses.astuple(plan.allocation.pools["bob-pool-1"])[3] == 9010
    assert load_layout(path).max_bots_per_pool == 4
    assert make_plan(load_layout(path), plan.allocation)[0].allocation == plan.allocation


def pinned(layout: Layout, **placement: str | dict[str, str]) -> Layout:
    """The layout with users pinned (alice="h1") or pools placed (alice={"alice-pool-2": "h1"})."""
    users = []
    for user in layout.users:
        where = placement.get(user.name)
        if isinstance(where, str):
            user = dataclasses.replace(user, host=where)
        elif where:
            user = dataclasses.replace(user, pools=where)
        users.append(user)
    return dataclasses.replace(layout, users=tuple(users))


def test_adding_a_host_moves_nothing():
    users = {"alice": [f"a{i}" for i in range(5)], "bob": ["b0"]}
    before, _ = allocate(make_layout(users, size=3, hosts=1), Allocation())
    after, problems = allocate(make_layout(users, size=3, hosts=3), before)
    assert problems == [] and after == before


def test_a_pin_moves_the_users_pools_with_their_slots_and_records_where_from():
    users = {"alice": [f"a{i}" for i in range(5)], "bob": ["b0"]}
    layout = make_layout(users, size=3, hosts=2)
    start, _ = allocate(pinned(layout, alice="h0", bob="h1"), Allocation())
    assert {p.host for p in start.pools.values() if p.user == "alice"} == {"h0"}
    # bob holds 9000-9002 on h1, so alice-pool-1 (9000 on h0) needs another block there
    moved, problems = allocate(pinned(layout, alice="h1", bob="h1"), start)
    assert problems == []
    check_invariants(layout, moved)
    assert moved.bots == start.bots  # every bot keeps its pool and slot
    for name in ("alice-pool-1", "alice-pool-2"):
        assert (moved.pools[name].host, moved.pools[name].moved_from) == ("h1", "h0")
    assert moved.pools["bob-pool-1"] == start.pools["bob-pool-1"]
    # pools move in order, each keeping its block if free on the new host, else the lowest
    assert moved.pools["alice-pool-1"].first_port == 9003  # 9000 is bob's on h1
    assert moved.pools["alice-pool-2"].first_port == 9006  # 9003 just went to pool-1
    # moved on again before any converge: the data is still on h0
    third, _ = allocate(pinned(make_layout(users, size=3, hosts=3), alice="h2"), moved)
    assert third.pools["alice-pool-1"].moved_from == "h0"
    # h2 is empty, so each pool keeps the block it had (not the lowest, 9000)
    assert [third.pools[f"alice-pool-{n}"].first_port for n in (1, 2)] == [9003, 9006]
    # and back home: nothing to carry any more
    back, _ = allocate(pinned(layout, alice="h0"), moved)
    assert back.pools["alice-pool-1"].moved_from is None


def test_pools_placement_moves_one_pool_and_places_new_ones():
    users = {"alice": [f"a{i}" for i in range(4)]}
    layout = make_layout(users, size=3, hosts=2)
    start, _ = allocate(pinned(layout, alice="h0"), Allocation())
    split, _ = allocate(pinned(layout, alice={"alice-pool-2": "h1"}), start)
    assert {n: (p.host, p.moved_from) for n, p in split.pools.items()} == {
        "alice-pool-1": ("h0", None),
        "alice-pool-2": ("h1", "h0"),
    }
    grown = dict(users, alice=users["alice"] + ["a4", "a5", "a6"])
    placed = pinned(make_layout(grown, size=3, hosts=2), alice={"alice-pool-3": "h1"})
    after, _ = allocate(placed, start)
    assert (
        after.pools["alice-pool-3"].host == "h1" and after.pools["alice-pool-3"].moved_from is None
    )


def test_a_move_round_trips_through_the_lock_file(write_layout):
    text = MINIMAL.replace(
        "users:", "hosts:\n  h0: {memory_mb: 8000}\n  h1: {memory_mb: 8000}\nusers:"
    )
    path = write_layout(text.replace("  alice:\n", "  alice:\n    host: h0\n"))
    lock_path(path).write_text(load_plan(path).allocation.to_yaml())
    path.write_text(path.read_text().replace("host: h0", "host: h1"))
    plan = load_plan(path)
    assert plan.allocation.pools["alice-pool-1"].moved_from == "h0"
    lock_path(path).write_text(plan.allocation.to_yaml())
    assert "moved_from: h0" in lock_path(path).read_text()
    assert read_lock(lock_path(path)) == plan.allocation


def converged_on_h1(write_layout):  # noqa: ANN001, ANN201
    """A layout of hosts h0 and h1 with alice's pool on h1, and its lock written."""
    hosts = "hosts:\n  h0: {memory_mb: 8000}\n  h1: {memory_mb: 8000}\nusers:"
    path = write_layout(
        MINIMAL.replace("users:", hosts).replace("  alice:\n", "  alice:\n    host: h1\n")
    )
    lock_path(path).write_text(load_plan(path).allocation.to_yaml())
    return path


def test_removing_a_host_that_still_runs_pools_is_refused(write_layout):
    path = converged_on_h1(write_layout)
    path.write_text(
        path.read_text().replace("  h1: {memory_mb: 8000}\n", "").replace("    host: h1\n", "")
    )
    removed = "pool alice-pool-1 runs on host h1, which the layout no longer declares: move it"
    with pytest.raises(LayoutError, match=re.escape(removed)):
        load_plan(path)
    # moved away, but not yet converged: the old host must stay until its data is carried
    path.write_text(path.read_text().replace("  alice:\n", "  alice:\n    host: h0\n"))
    with pytest.raises(LayoutError, match="pool alice-pool-1 is still moving from host h1"):
        load_plan(path)


def test_a_lost_hosts_pools_start_empty_where_the_layout_places_them(write_layout, capsys):
    """`botpool plan --lost-host h1`: h1 died with its data; alice's pool, placed on h0 now,
    waits for no move (a converge without h1 can run) and her bots are named to restore."""
    from botpool.cli import main

    path = converged_on_h1(write_layout)
    path.write_text(
        path.read_text().replace("  h1: {memory_mb: 8000}\n", "").replace("host: h1", "host: h0")
    )
    with pytest.raises(LayoutError, match="pool alice-pool-1 is still moving from host h1"):
        load_plan(path)
    assert main(["plan", str(path), "--lost-host", "h9"]) == 1  # a typo changes nothing
    assert "--lost-host h9: " in capsys.readouterr().err
    assert main(["plan", str(path), "--lost-host", "h1", "--check"]) == 1

    assert main(["plan", str(path), "--lost-host", "h1"]) == 0
    said = capsys.readouterr().err
    assert "alice-pool-1 starts empty on h0" in said
    assert "botpool restore INVENTORY alice/one --from DIR --at latest" in said
    block = read_lock(lock_path(path)).pools["alice-pool-1"]
    assert (block.host, block.moved_from) == ("h0", None)
    assert load_plan(path).allocation == read_lock(lock_path(path))  # and it stays so
    assert main(["plan", str(path), "--check"]) == 0


RATE_LIMITED = """
defaults:
  bot: {exchange: real, strategy: SampleStrategy, stake_amount: 10, dry_run_wallet: 1000,
        pairs: [BTC/USDT]}
hosts:
  h0: {memory_mb: 8000}
  h1: {memory_mb: 7000}
exchanges:
  real: {exchange: binance, max_bots_per_host: 2}
users:
  alice:
    bots: [{name: a}, {name: b}, {name: c}]
"""


def test_bots_of_a_rate_limited_exchange_spread_over_hosts(write_layout):
    plan = load_plan(write_layout(RATE_LIMITED))
    hosts = {b.name: b.host for b in plan.bots}
    assert hosts == {"a": "h0", "b": "h0", "c": "h1"}  # c opens alice-pool-2 on h1
    assert {h.name: h.bots_per_profile() for h in plan.hosts.values()} == {
        "h0": {"real": 2},
        "h1": {"real": 1},
    }


def test_a_pin_beyond_an_exchanges_limit_is_refused(write_layout):
    path = write_layout(RATE_LIMITED.replace("  alice:\n", "  alice:\n    host: h1\n"))
    with pytest.raises(LayoutError, match="host h1 would run 3 bots of exchange profile real"):
        load_plan(path)


def test_a_real_exchange_defaults_to_four_bots_per_host_and_the_sandbox_to_none(write_layout):
    text = RATE_LIMITED.replace("binance, max_bots_per_host: 2}", "binance}")
    layout = load_layout(write_layout(text))
    assert layout.exchanges["real"].max_bots_per_host == 4
    assert layout.exchanges["sandbox"].max_bots_per_host is None
