"""The host's monitoring container (botpool.core.monitoring): its files, its container, and
a reload (SIGHUP) of Prometheus or Alertmanager when only their configuration changed.

Runs after the pools: the exporter's list of pools and file hashes describe what they now
run. When monitoring is off, tasks/cleanup.py removed the container and archived its data.
"""

from pyinfra import host

from botpool.core.monitoring import SUPERVISORCTL
from tasks import context, operations, units

ctx = context.for_host(host)
unit = ctx.changes.monitoring

if unit and not unit.empty:
    units.apply(unit, ctx.root, kind="monitoring")
    if unit.reload:
        operations.signal(
            name=f"{unit.name}: reload {', '.join(unit.reload)} (new configuration)",
            container=unit.name,
            supervisorctl=SUPERVISORCTL,
            programs=unit.reload,
        )
