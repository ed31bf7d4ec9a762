"""Converge each pool: its files, its container, then only the supervisor programs that changed.

Pools are handled one at a time (tasks/units.py: the order within a pool); a pool whose
container is (re)created is waited for until every bot is RUNNING before the next pool is
touched. Last, networks that no pool uses any more are removed.
"""

from pyinfra import host

from tasks import context, operations, units

ctx = context.for_host(host)

for unit in ctx.changes.pools:
    if not unit.empty:
        units.apply(unit, ctx.root, kind="pool")

if ctx.changes.remove_networks:
    operations.remove_networks(
        name=f"Remove network(s) {', '.join(ctx.changes.remove_networks)} (no longer used)",
        names=ctx.changes.remove_networks,
    )
