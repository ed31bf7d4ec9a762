"""Remove what the layout no longer wants: containers go, their data goes to the archive.

Runs before pools converge, so a port block freed here can be taken by a new pool.
Only containers labelled botpool.managed=true are ever touched.
"""

from pyinfra import host

from botpool.core import names
from tasks import context, operations

ctx = context.for_host(host)
# pools that moved away go only once their new host has their data (tasks/moves.py)
moved = sorted(m.pool for m in context.moves() if m.source.name == host.name)
moved_containers = {pool: names.pool_container(ctx.plan.layout.project, pool) for pool in moved}
containers = [c for c in ctx.changes.remove_containers if c not in moved_containers.values()]
archive = [p for p in ctx.changes.archive_pools if p not in moved]

if containers:
    operations.remove_containers(
        name=f"Stop and remove {', '.join(containers)} (not in the plan)",
        names=containers,
    )
if archive:
    operations.archive(
        name=f"Archive pool data of {', '.join(archive)}",
        root=ctx.root,
        stamp=context.STAMP,
        paths=[f"pools/{p}" for p in archive],
    )
for pool in moved:
    operations.remove_containers(
        name=f"Remove {pool}, which moved to another host",
        names=[c for c in ctx.changes.remove_containers if c == moved_containers[pool]],
        _if=lambda pool=pool: pool in context.CARRIED,
    )
    operations.archive(
        name=f"Archive the old copy of {pool}, which moved to another host",
        root=ctx.root,
        stamp=context.STAMP,
        paths=[f"pools/{pool}"],
        _if=lambda pool=pool: pool in context.CARRIED,
    )
if ctx.changes.archive_monitoring:
    operations.archive(
        name="Archive the monitoring data (monitoring is off)",
        root=ctx.root,
        stamp=context.STAMP,
        paths=["monitoring"],
    )
if ctx.changes.remove_directories:
    operations.remove(
        name="Remove unused sandbox exchange code",
        root=ctx.root,
        paths=ctx.changes.remove_directories,
    )
