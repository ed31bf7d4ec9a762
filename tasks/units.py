"""One pool or sandbox exchange (a botpool.core.reconcile.UnitChanges): its changes, applied in
one order for both, by tasks/pools.py and tasks/network.py.

Files first (folders, uploads, removals); then the container: a (re)created one gets its
folders between the old container's stop and the new one's start, so a bot still running
under its old uid (a host converged by an older botpool) never loses its data folder while it
writes in it; a kept one gets only the supervisor programs that changed. Then networks,
archives of removed bots, and a wait until every program runs (so pools are replaced one at
a time).
"""

from __future__ import annotations

from botpool.core.reconcile import UnitChanges
from tasks import context, operations


def apply(unit: UnitChanges, root: str, kind: str) -> None:
    """Add the operations that carry out `unit`'s changes (kind names it in the output)."""
    fresh = unit.container in ("create", "recreate")
    if unit.directories and not fresh:
        operations.directories(
            name=f"{unit.name}: create or repair {len(unit.directories)} folder(s)",
            root=root,
            folders=unit.directories,
        )
    if unit.uploads:
        operations.upload(
            name=f"{unit.name}: write {', '.join(u.artifact.path for u in unit.uploads)}",
            root=root,
            uploads=unit.uploads,
        )
    if unit.removals:
        operations.remove(
            name=f"{unit.name}: remove {', '.join(unit.removals)}",
            root=root,
            paths=unit.removals,
        )
    if unit.container:
        operations.container(
            name=f"{unit.name}: {unit.container} the {kind} container",
            spec=unit.spec,
            action=unit.container,
            root=root,
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
            root=root,
            stamp=context.STAMP,
            paths=[f"{unit.directory}/bots/{b}" for b in unit.archive_bots],
        )
    if unit.wait_for:
        operations.wait_running(
            name=f"{unit.name}: wait until its {len(unit.wait_for)} programs run",
            pool=unit.name,
            programs=unit.wait_for,
        )
