"""The host's backup job: its program, its schedule and the container that runs it.

Last, once the pools run: the job backs up every bot of the host at once when it starts.
The container restarts with the Docker engine (`--restart unless-stopped`), so the schedule
survives reboots on hosts with or without systemd, and needs nothing else on the host (no
cron, no Python). A changed program or schedule recreates the job, never a pool.
"""

from pyinfra import host

from tasks import context, units

ctx = context.for_host(host)

for unit in ctx.changes.jobs:
    units.apply(unit, ctx.root, kind="backup job")
