"""The Docker engine: installed and answering, on Debian or Ubuntu, with or without systemd.

Decided from one cheap command (botpool.core.image.DOCKER_STATE_COMMAND: is dockerd installed,
does the engine answer, which botpool images exist). A host whose engine answers gets no
operation at all. The answer comes from tasks/context.docker_state, read once per run, so
that tasks/image.py decides from the same answer instead of asking again.

Host data: `botpool_engine_timeout` (seconds to wait for a starting engine, default 60).
"""

from pyinfra import host
from pyinfra.operations import server

from botpool import payloads
from tasks import context

docker = context.docker_state(host)
if not docker.installed:  # False, or None (not known: apt finds out, and does nothing if so)
    # docker.io: the distribution's engine, the same package name on Debian and Ubuntu, and the
    # client where it is a package of its own (Debian 13). A host that has another engine
    # (docker-ce) has dockerd and docker, and keeps them.
    server.shell(
        name="Install the Docker engine (docker.io)",
        commands=[payloads.shell("install-engine.sh")],
    )
if docker.engine is None:
    server.shell(
        name="Start the Docker engine and wait until it answers",
        commands=[
            payloads.shell(
                "start-engine.sh", timeout=int(host.data.get("botpool_engine_timeout") or 60)
            )
        ],
    )
