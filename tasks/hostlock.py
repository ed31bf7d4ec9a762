"""The converge lock: before any task reads a host, every host of the run is locked, so two
converges of one host never act at once (botpool.hosts.hostlock: how; tasks/converge_lock.py: when).

`pyinfra --dry` takes no lock: it only says whether another converge holds one.
Host data: `botpool_lock_wait` (seconds to wait for a lock another converge holds, default 60).
"""

from pyinfra import host

from tasks import converge_lock

if converge_lock.dry_run():
    converge_lock.report(host)
else:
    converge_lock.lock_run()
