"""Converge each pool: its files, its container, then only the supervisor programs that changed.

Pools are handled one at a time (tasks/units.py: the order within a pool); a pool whose
container is (re)created is waited for until every bot is RUNNING before the next pool is
touched. Pools that move to another image go last, one at a time, a canary first, each
behind a health gate that rolls it back when it fails (botpool.core.upgrades); a failed
gate stops this host's converge, so the pools after it stay on their old image. Then the
images those upgrades left behind are pruned, and networks no pool uses any more removed.
"""

from pyinfra import host

from botpool.core import upgrades
from tasks import context, operations, units

ctx = context.for_host(host)
moving = upgrades.transitions(ctx.changes.pools, ctx.desired.pools, ctx.snapshot)
rollout = upgrades.rollout(
    moving,
    ctx.plan.layout.upgrades,
    ctx.snapshot.failed_upgrades,
    retry=str(host.data.get(upgrades.RETRY)).lower() in ("true", "1", "yes"),
    downgrade=str(host.data.get(upgrades.DOWNGRADE) or ""),
)
by_name = {unit.name: unit for unit in ctx.changes.pools}

for unit in ctx.changes.pools:
    if not unit.empty and unit.name not in {t.container for t in moving}:
        units.apply(unit, ctx.root, kind="pool")

for move in rollout.run:
    units.apply(by_name[move.container], ctx.root, "pool", upgrade=move, plan=ctx.plan)

if rollout.run:
    operations.prune_images(
        name="Remove pool images no container uses (the previous one stays, for a way back)",
        script=upgrades.prune_command(ctx.root, {spec.tag for spec in ctx.images.values()}),
    )

if ctx.changes.remove_networks:
    operations.remove_networks(
        name=f"Remove network(s) {', '.join(ctx.changes.remove_networks)} (no longer used)",
        names=ctx.changes.remove_networks,
    )

if rollout.held:
    operations.refuse(
        name=f"Hold the image change of {', '.join(t.pool for t, _ in rollout.held)}",
        message="\n".join(reason for _, reason in rollout.held),
    )
