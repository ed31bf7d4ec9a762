"""Converge each pool: its files, its container, then only the supervisor programs that changed.

Pools are handled one at a time; a pool whose container is (re)created is waited for until
every bot is RUNNING before the next pool is touched. Its folders are then prepared between
the old container's stop and the new one's start: a bot still running under its old uid
(a host converged by an older botpool) never loses its data folder while it writes in it.
Last, networks that no pool uses any more are removed.
"""

from pyinfra import host

from tasks import context, operations

ctx = context.for_host(host)

for unit in ctx.changes.pools:
    if unit.empty:
        continue
    fresh = unit.container in ("create", "recreate")
    if unit.directories and not fresh:
        operations.directories(
            name=f"{unit.name}: create or repair {len(unit.directories)} folder(s)",
            root=ctx.root,
            folders=unit.directories,
        )
    if unit.uploads:
        operations.upload(
            name=f"{unit.name}: write {', '.join(u.artifact.path for u in unit.uploads)}",
            root=ctx.root,
            uploads=unit.uploads,
        )
    if unit.removals:
        operations.remove(
            name=f"{unit.name}: remove {', '.join(unit.removals)}",
            root=ctx.root,
            paths=unit.removals,
        )
    if unit.container:
        operations.container(
            name=f"{unit.name}: {unit.container} the pool container",
            spec=unit.spec,
            action=unit.container,
            root=ctx.root,
            folders=unit.directories if fresh else [],
        )
    elif unit.supervisor_update or unit.restart or unit.start:
        what = (
            (["update programs"] if unit.supervisor_update else [])
            + [f"restart {', '.join(unit.restart)}"] * bool(unit.restart)
            + [f"start {', '.join(unit.start)}"] * bool(unit.start)
        )
        operations.supervisor(
            name=f"{unit.name}: {'; '.join(what)}",
            pool=unit.name,
            update=unit.supervisor_update,
            restart=unit.restart,
            start=unit.start,
        )
    if unit.connect or unit.disconnect:
        operations.networks(
            name=f"{unit.name}: join {', '.join(unit.connect) or 'no network'}, "
            f"leave {', '.join(unit.disconnect) or 'none'}",
            connect=unit.connect,
            disconnect=unit.disconnect,
            container=unit.name,
        )
    if unit.archive_bots:
        operations.archive(
            name=f"{unit.name}: archive removed bot(s) {', '.join(unit.archive_bots)}",
            root=ctx.root,
            stamp=context.STAMP,
            paths=[f"{unit.directory}/bots/{b}" for b in unit.archive_bots],
        )
    if unit.wait_for:
        operations.wait_running(
            name=f"{unit.name}: wait until its {len(unit.wait_for)} programs run",
            pool=unit.name,
            programs=unit.wait_for,
        )

if ctx.changes.remove_networks:
    operations.remove_networks(
        name=f"Remove network(s) {', '.join(ctx.changes.remove_networks)} (no longer used)",
        names=ctx.changes.remove_networks,
    )
