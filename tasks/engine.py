"""The Docker engine: installed from the distribution and running, on Debian or Ubuntu.

Decided from the host snapshot (one command): a host whose engine answers gets no operation.
Hosts without systemd (containers, some VPS images) get dockerd started in the background.
"""

from pyinfra import host
from pyinfra.operations import apt, server

from tasks import context

START_ENGINE = r"""
if docker info >/dev/null 2>&1; then exit 0; fi
if [ -d /run/systemd/system ]; then systemctl enable --now docker.service
else nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
fi
for i in $(seq 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done
echo "the Docker engine did not answer within 60 s; see /var/log/dockerd.log" >&2; exit 1
"""

ctx = context.for_host(host)

if ctx.snapshot.engine is None:
    apt.packages(
        name="Install the Docker engine (docker.io)",
        packages=["docker.io"],
        update=True,
        no_recommends=True,
    )
    server.shell(name="Start the Docker engine and wait until it answers", commands=[START_ENGINE])
