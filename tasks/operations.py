"""The few pyinfra operations botpool needs beyond pyinfra's own, each one small.

Decisions are made beforehand (botpool.reconcile); these only carry them out. Files that
hold secrets are uploaded into a root-only staging folder and moved into place, so they
are never readable by others, never half-written, and never printed (not even by --diff).
"""

from __future__ import annotations

import io
import shlex

from pyinfra.api import FileUploadCommand, StringCommand, operation

from botpool.reconcile import CONTAINER_UID, Upload
from botpool.render import ContainerSpec

SUPERVISORCTL = "supervisorctl -c /botpool/supervisord.conf"


def q(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)


@operation()
def directories(root: str, paths: list[str]):
    """Create directories owned by the container user, so bots can write their data."""
    full = [f"{root}/{p}" for p in paths]
    yield q("mkdir", "-p", *full) + " && " + q("chown", f"{CONTAINER_UID}:{CONTAINER_UID}", *full)


@operation()
def upload(root: str, uploads: list[Upload]):
    """Write rendered files atomically with their mode, owned by the container user."""
    staging = f"{root}/.staging"
    yield q("install", "-d", "-m", "0700", staging)
    for index, item in enumerate(uploads):
        temp = f"{staging}/{index}-{item.artifact.hash[:16]}"
        dest = f"{root}/{item.dest}"
        yield FileUploadCommand(
            io.BytesIO(item.artifact.text.encode()), temp, remote_temp_filename=temp
        )
        yield StringCommand(
            q("chown", f"{CONTAINER_UID}:{CONTAINER_UID}", temp),
            "&&",
            q("chmod", f"{item.artifact.mode:o}", temp),
            "&&",
            q("mkdir", "-p", dest.rsplit("/", 1)[0]),
            "&&",
            q("mv", "-f", temp, dest),
        )


@operation()
def container(spec: ContainerSpec, action: str):
    """Create, recreate, start or restart one container from its spec."""
    if action in ("recreate", "create"):
        # Replace a container of this name only if it is ours (same root label): a leftover of
        # an interrupted converge goes; anyone else's container stops the converge instead.
        name, root = shlex.quote(spec.name), shlex.quote(dict(spec.labels)["botpool.root"])
        yield (
            f"owner=$(docker inspect -f '{{{{index .Config.Labels \"botpool.root\"}}}}' {name} "
            f"2>/dev/null) || owner=none; "
            f'if [ "$owner" = {root} ]; then docker stop -t 45 {name} >/dev/null && '
            f"docker rm {name} >/dev/null; "
            f'elif [ "$owner" != none ]; then echo "a container named {spec.name} exists that '
            f'botpool (root {root}) did not create: rename or remove it" >&2; exit 1; fi'
        )
        yield q(*spec.run_args())
    elif action == "start":
        yield q("docker", "start", spec.name)
    elif action == "restart":
        yield q("docker", "restart", "-t", "45", spec.name)


@operation()
def supervisor(pool: str, update: bool, restart: list[str], start: list[str]):
    """Apply program changes inside a pool: only the named programs are touched."""
    ctl = f"docker exec {shlex.quote(pool)} {SUPERVISORCTL}"
    if update:
        yield f"{ctl} update"
    if restart:
        yield f"{ctl} restart {q(*restart)}"
    if start:
        yield f"{ctl} start {q(*start)}"


@operation()
def wait_running(pool: str, programs: list[str], timeout: int = 180):
    """Wait until every program of a pool is RUNNING, so pools are replaced one at a time."""
    want = len(programs)
    yield (
        f"for i in $(seq {timeout}); do "
        f"n=$(docker exec {shlex.quote(pool)} {SUPERVISORCTL} status 2>/dev/null "
        f"| grep -cE '^({'|'.join(programs)}) +RUNNING'); "
        f'[ "$n" -ge {want} ] && exit 0; sleep 1; done; '
        f"echo 'pool {pool}: not all of {want} programs RUNNING after {timeout}s' >&2; "
        f"docker exec {shlex.quote(pool)} {SUPERVISORCTL} status >&2; exit 1"
    )


@operation()
def archive(root: str, stamp: str, paths: list[str]):
    """Move data out of the way into archive/<UTC stamp>/<same path>; never delete it."""
    for path in paths:
        target = f"{root}/archive/{stamp}/{path.rsplit('/', 1)[0]}"
        yield q("mkdir", "-p", target) + " && " + q("mv", f"{root}/{path}", f"{target}/")


@operation()
def remove(root: str, paths: list[str]):
    """Remove files botpool rendered and no longer wants (never bot data)."""
    yield q("rm", "-rf", *[f"{root}/{p}" for p in paths])


@operation()
def remove_containers(names: list[str]):
    """Stop (gracefully: bots flush their databases) and remove botpool containers."""
    for name in names:
        yield q("docker", "stop", "-t", "45", name) + " && " + q("docker", "rm", name)
