"""The Docker engine: installed and answering, on Debian or Ubuntu, with or without systemd.

Decided from one cheap command (botpool.core.image.DOCKER_STATE_COMMAND: is dockerd installed,
does the engine answer, which botpool images exist). A host whose engine answers gets no
operation at all. The answer is kept in `host.data.botpool_docker` so that tasks/image.py
decides from the same command instead of asking again.

Where that answer comes from:
- `host.data.botpool_docker` already set (a deploy that read the host itself): used as is;
- else, in a layout deploy (deploy.py; no `host.data.botpool_image`): the host snapshot
  that tasks/context.py reads anyway (engine version and images), so no extra command;
- else (a deploy that names its images in `host.data.botpool_image`, or sets it to [] to
  get the engine alone): DockerStateFact below, one command.

Host data: `botpool_engine_timeout` (seconds to wait for a starting engine, default 60).
"""

from pyinfra import host
from pyinfra.api import FactBase
from pyinfra.operations import apt, server

from botpool.core.image import DOCKER_STATE_COMMAND, DockerState, parse_docker_state
from tasks import context


class DockerStateFact(FactBase[DockerState]):
    """Is dockerd installed, does the engine answer, which images has botpool built."""

    def command(self) -> str:
        return DOCKER_STATE_COMMAND

    def process(self, output: list[str]) -> DockerState:
        return parse_docker_state(output)

    @staticmethod
    def default() -> DockerState:
        return DockerState(installed=False, engine=None)


def start_engine_script(timeout: int) -> str:
    """Start the engine (systemd if it runs, else dockerd in the background) and wait for it.

    Without systemd nothing else will start dockerd: it is detached with setsid/nohup so it
    outlives the SSH session. A dockerd that is running but not answering yet is waited for,
    not started twice; a pid file left by a dead one (a restarted container) is removed,
    because dockerd refuses to start while it exists and its pid may belong to another process.
    """
    return f"""
if docker info >/dev/null 2>&1; then exit 0; fi
if [ -d /run/systemd/system ]; then
  systemctl enable --now docker.service
elif ! pidof dockerd >/dev/null 2>&1; then
  rm -f /var/run/docker.pid
  setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
fi
for i in $(seq {int(timeout)}); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done
echo "the Docker engine did not answer within {int(timeout)} s; the end of its log:" >&2
tail -n 20 /var/log/dockerd.log >&2 2>/dev/null || journalctl -u docker -n 20 >&2
exit 1
"""


def read_docker_state() -> DockerState:
    """What Docker on this host has: read once per run, shared through host.data."""
    state = host.data.get("botpool_docker")
    if state is None:
        if host.data.get("botpool_image") is None:
            # a layout deploy: the host snapshot it reads anyway has asked Docker already
            snap = context.for_host(host).snapshot
            # (it does not say whether a silent engine is installed: None, "not known")
            state = DockerState(
                installed=True if snap.engine else None,
                engine=snap.engine,
                images=frozenset(snap.images),
            )
        else:
            state = host.get_fact(DockerStateFact)
        host.data.botpool_docker = state
    return state


docker = read_docker_state()
if not docker.installed:  # False, or None (not known: apt finds out, and does nothing if so)
    # docker.io: the distribution's engine, the same package name on Debian and Ubuntu. A host
    # that has another engine (docker-ce) has dockerd and keeps it.
    apt.packages(
        name="Install the Docker engine (docker.io)",
        packages=["docker.io"],
        update=True,
        no_recommends=True,
    )
if docker.engine is None:
    server.shell(
        name="Start the Docker engine and wait until it answers",
        commands=[start_engine_script(host.data.get("botpool_engine_timeout") or 60)],
    )
