"""Remove what the layout no longer wants: containers go, their data goes to the archive.

Runs before pools converge, so a port block freed here can be taken by a new pool.
Only containers labelled botpool.managed=true are ever touched.
"""

from pyinfra import host

from tasks import context, operations

ctx = context.for_host(host)

if ctx.changes.remove_containers:
    operations.remove_containers(
        name=f"Stop and remove {', '.join(ctx.changes.remove_containers)} (not in the plan)",
        names=ctx.changes.remove_containers,
    )
if ctx.changes.archive_pools:
    operations.archive(
        name=f"Archive pool data of {', '.join(ctx.changes.archive_pools)}",
        root=ctx.root,
        stamp=context.STAMP,
        paths=[f"pools/{p}" for p in ctx.changes.archive_pools],
    )
if ctx.changes.remove_directories:
    operations.remove(
        name="Remove unused sandbox exchange code",
        root=ctx.root,
        paths=ctx.changes.remove_directories,
    )
