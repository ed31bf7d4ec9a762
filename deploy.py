"""Converge every host of the inventory to the layout: `pyinfra INVENTORY deploy.py`.

A table of contents: each task reads the same per-host context (plan, rendered files,
one snapshot of the host) and adds operations only for what differs.
"""

from pyinfra import local

local.include("tasks/hostlock.py")  # one converge at a time per host, locked before it is read
local.include("tasks/engine.py")  # Docker engine installed and running
local.include("tasks/image.py")  # pool image present (built or shipped)
local.include("tasks/freqtrade_check.py")  # freqtrade's checks of changed configs, in the image
local.include("tasks/network.py")  # botpool network, sandbox exchanges
local.include("tasks/moves.py")  # pools moved to another host: their data goes along
local.include("tasks/cleanup.py")  # containers and pools the layout dropped: archived
local.include("tasks/pools.py")  # pool files, containers, supervisor programs
local.include("tasks/monitoring.py")  # Prometheus, Alertmanager, exporters: one container
local.include("tasks/backups.py")  # the host's backup job (scheduled trade-database backups)
local.include("tasks/lock.py")  # the allocation lock, written once applied
