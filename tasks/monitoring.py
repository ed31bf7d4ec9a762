"""The host's monitoring container (botpool.core.monitoring): its files, its container, and
a reload (SIGHUP) of Prometheus or Alertmanager when only their configuration changed.

Runs after the pools: the exporter's list of pools and file hashes describe what they now
run. When monitoring is off, tasks/cleanup.py removed the container and archived its data.
"""

from pyinfra import host

from botpool.core.monitoring import SUPERVISORCTL
from tasks import context, operations

ctx = context.for_host(host)
unit = ctx.changes.monitoring

if unit and not unit.empty:
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
    if unit.container:
        operations.container(
            name=f"{unit.name}: {unit.container} the monitoring container",
            spec=unit.spec,
            action=unit.container,
            root=ctx.root,
            folders=unit.directories if fresh else [],
        )
    if unit.reload:
        operations.signal(
            name=f"{unit.name}: reload {', '.join(unit.reload)} (new configuration)",
            container=unit.name,
            supervisorctl=SUPERVISORCTL,
            programs=unit.reload,
        )
