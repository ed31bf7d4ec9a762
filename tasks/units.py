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

from botpool.core import upgrades
from botpool.core.plan import Plan
from botpool.core.reconcile import UnitChanges
from botpool.core.render import BACKUP_SOURCE, backup_schedule
from botpool.core.upgrades import Transition
from tasks import context, operations


def apply(
    unit: UnitChanges,
    root: str,
    kind: str,
    upgrade: Transition | None = None,
    plan: Plan | None = None,
) -> None:
    """Add the operations that carry out `unit`'s changes (kind names it in the output).

    upgrade (with its plan): the pool moves to another image; its container is replaced
    behind the health gate (botpool.core.upgrades), which also waits for its programs.
    """
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
    if upgrade and plan:
        gated(unit, upgrade, root, plan)
    elif unit.container:
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
    if unit.wait_for and not upgrade:
        operations.wait_running(
            name=f"{unit.name}: wait until its {len(unit.wait_for)} programs run",
            pool=unit.name,
            programs=unit.wait_for,
        )


def gated(unit: UnitChanges, move: Transition, root: str, plan: Plan) -> None:
    """The operation that replaces a pool's container on another image behind the gate."""
    job = f"{root}/.staging/upgrade-{move.pool}"
    script = upgrades.gate_command(
        move,
        spec_run=operations.run_commands(unit.spec),
        prepare=" && ".join(operations.folder_commands(root, unit.directories)) or "true",
        settings=plan.layout.upgrades,
        root=root,
        stamp=context.STAMP,
        job=job,
    )
    what = "downgrade" if move.downgrade else "upgrade"
    operations.upgrade_pool(
        name=f"{unit.name}: {what} from {move.source} to {move.target}, gated "
        f"({len(move.programs)} programs)",
        script=script,
        job=job,
        files={
            "backup.py": BACKUP_SOURCE.read_text(),
            "schedule.json": backup_schedule(plan, move.bots),
        },
    )
