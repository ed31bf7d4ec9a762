"""The host's backup job: its program, its schedule and the container that runs it.

Last, once the pools run: the job backs up every bot of the host at once when it starts.
The container restarts with the Docker engine (`--restart unless-stopped`), so the schedule
survives reboots on hosts with or without systemd, and needs nothing else on the host (no
cron, no Python). A changed program or schedule recreates the job, never a pool.
"""

from pyinfra import host

from tasks import context, operations

ctx = context.for_host(host)

for unit in ctx.changes.jobs:
    if unit.directories:
        operations.directories(
            name=f"Create or repair the folders of {unit.name}",
            root=ctx.root,
            folders=unit.directories,
        )
    if unit.uploads:
        operations.upload(
            name=f"Write {', '.join(u.artifact.path for u in unit.uploads)} of {unit.name}",
            root=ctx.root,
            uploads=unit.uploads,
        )
    if unit.container:
        operations.container(
            name=f"{unit.container.capitalize()} the backup job {unit.name}",
            spec=unit.spec,
            action=unit.container,
            root=ctx.root,
        )
