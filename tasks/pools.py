"""Converge each pool: its files, its container, then only the supervisor programs that changed.

Pools are handled one at a time; a pool whose container is (re)created is waited for until
every bot is RUNNING before the next pool is touched.
"""

from pyinfra import host

from tasks import context, operations

ctx = context.for_host(host)

for unit in ctx.changes.pools:
    if unit.empty:
        continue
    if unit.directories:
        operations.directories(
            name=f"{unit.name}: create {len(unit.directories)} folder(s)",
            root=ctx.root,
            paths=unit.directories,
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
