"""Pools that moved to another host in the layout take their data with them.

Three steps per moving pool, in this order across all hosts of the run: the old host
stops the pool and packs its directory (trade databases, logs, configs); the new host
receives it through the controller and unpacks it where the pool will run; then
tasks/cleanup.py on the old host archives the old copy, but only if the new host has it.
Every host calls the same operations in the same order (with nothing to do on most), so
pyinfra runs them as one step each and the old host never archives before the new host
received. A converge that stops half-way repeats the move: the new host still has no data.
"""

from pyinfra import host

from botpool.core import names
from tasks import context, operations

moves = context.moves()
if moves:
    what = ", ".join(str(m) for m in moves)
    ctx = context.for_host(host)
    operations.pack_pools(
        name=f"Move {what}: stop and pack on the old host",
        root=ctx.root,
        pools=[
            (m.pool, names.pool_container(ctx.plan.layout.project, m.pool))
            for m in moves
            if m.source.name == host.name
        ],
    )
    operations.receive_pools(
        name=f"Move {what}: carry to the new host",
        root=ctx.root,
        moves=[(m.pool, m.source) for m in moves if m.target.name == host.name],
        carried=context.CARRIED,
    )
