"""The host's botpool network and its sandbox exchanges (test doubles bots reach by name)."""

from pyinfra import host
from pyinfra.operations import server

from tasks import context, operations

ctx = context.for_host(host)

if ctx.changes.create_network:
    server.shell(
        name="Create the botpool network (pools and sandbox exchanges share it)",
        commands=[
            "docker network inspect botpool >/dev/null 2>&1 || "
            "docker network create --label botpool.managed=true botpool"
        ],
    )

for unit in ctx.changes.exchanges:
    if unit.directories:
        operations.directories(
            name=f"Create {unit.directory}", root=ctx.root, paths=unit.directories
        )
    if unit.uploads:
        operations.upload(
            name=f"Write {len(unit.uploads)} file(s) of {unit.name}",
            root=ctx.root,
            uploads=unit.uploads,
        )
    if unit.container:
        operations.container(
            name=f"{unit.container.capitalize()} sandbox exchange {unit.name}",
            spec=unit.spec,
            action=unit.container,
        )
