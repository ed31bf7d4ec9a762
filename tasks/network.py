"""The deployment's folders, the host's networks (one per user) and its sandbox exchanges
(test doubles bots reach by name).

First, the root folder, pools/ and exchanges/ go back to root if anyone else may write in
them (a host converged by an older botpool). An exchange joins the network of every user
whose bots trade on it, live: a new user never recreates it. Networks nothing uses any more
go at the end of tasks/pools.py, once the pools that left them are gone or recreated.
"""

from pyinfra import host

from tasks import context, operations, units

ctx = context.for_host(host)

if ctx.changes.mark_root:
    operations.mark_root(
        name=f"Mark {ctx.root} as botpool's (nothing is deleted in an unmarked root)",
        root=ctx.root,
        project=ctx.plan.layout.project,
    )
if ctx.changes.host_folders:
    operations.own_host_folders(
        name=f"Give {', '.join(ctx.changes.host_folders)} of {ctx.root} back to root",
        root=ctx.root,
        paths=ctx.changes.host_folders,
    )
if ctx.changes.create_networks:
    operations.create_networks(
        name=f"Create network(s) {', '.join(ctx.changes.create_networks)} (one per user)",
        names=ctx.changes.create_networks,
        root=ctx.root,
        users={pool.network: pool.user for pool in ctx.host.pools},
    )

for unit in ctx.changes.exchanges:
    units.apply(unit, ctx.root, kind="sandbox exchange")
