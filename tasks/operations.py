"""The few pyinfra operations botpool needs beyond pyinfra's own, each one small.

Decisions are made beforehand (botpool.core.reconcile); these only carry them out. Files that
hold secrets are uploaded into a root-only staging folder and moved into place, so they
are never readable by others, never half-written, and never printed (not even by --diff).
"""

from __future__ import annotations

import io
import os
import posixpath
import shlex
import sys
import tempfile
from collections.abc import Callable

from pyinfra.api import FileUploadCommand, FunctionCommand, StringCommand, operation
from pyinfra.api.host import Host

from botpool import payloads
from botpool.core.names import MANAGED, ROOT, ROOT_MARKER, SUPERVISORCTL, USER
from botpool.core.reconcile import Folder, Upload
from botpool.core.render import ContainerSpec
from botpool.core.source import Problem

SUDO_ARGUMENTS = ("_sudo", "_sudo_user", "_su_user", "_use_sudo_password")


def q(*words: str) -> str:
    return " ".join(shlex.quote(w) for w in words)


def folder_commands(root: str, folders: list[Folder]) -> list[str]:
    """Shell that gives each folder its planned owner, group and mode, creating it if needed.

    A link where a folder belongs is never botpool's: it goes (a bot of an older botpool
    could plant one, to make root write elsewhere). What the folder holds may have been
    written by someone else (data moved in from another host, where the bot had another
    uid; a host of an older botpool): a tree (a bot's data, the logs) goes wholly to its
    owner, and a folder of root's loses the links in it (in its whole tree, for the logs).
    On a new, empty folder all this costs nothing.
    """
    commands = []
    for folder in folders:
        d, spec = f"{root}/{folder.dest}", folder.directory
        command = f"{{ [ ! -L {q(d)} ] || rm -f {q(d)}; }} && " + q(
            "install", "-d", "-o", str(spec.uid), "-g", str(spec.gid), "-m", f"{spec.mode:o}", d
        )
        if spec.tree:
            command += " && " + q("chown", "-hR", f"{spec.uid}:{spec.gid}", d)
        if spec.uid == 0:
            depth = [] if spec.tree else ["-maxdepth", "1"]
            command += " && " + q("find", d, "-mindepth", "1", *depth, "-type", "l", "-delete")
        commands.append(command)
    return commands


@operation()
def own_host_folders(root: str, paths: list[str]):
    """The deployment's root, pools/ and exchanges/ go back to root, writable by root only
    (links followed: an operator may have put them on another disk)."""
    full = [f"{root}/{p}" for p in paths]
    yield q("chown", "0:0", *full) + " && " + q("chmod", "go-w", *full)


@operation()
def mark_root(root: str, project: str):
    """botpool's marker in the root: only a marked root has anything deleted or archived."""
    marker = f"{root}/{ROOT_MARKER}"
    text = f"botpool converges this folder (project {project}); do not delete this file\n"
    yield q("install", "-d", "-m", "0755", root) + " && " + f"printf %s {q(text)} > {q(marker)}"


@operation()
def directories(root: str, folders: list[Folder]):
    """Create folders, or give them back their planned owner, group and mode."""
    yield from folder_commands(root, folders)


@operation()
def upload(root: str, uploads: list[Upload]):
    """Write rendered files atomically with their owner, group and mode (root's, but for a
    bot's config: root:<bot's group> 0640)."""
    staging = f"{root}/.staging"
    yield q("install", "-d", "-m", "0700", staging)
    for index, item in enumerate(uploads):
        temp = f"{staging}/{index}-{item.artifact.hash[:16]}"
        dest = f"{root}/{item.dest}"
        yield FileUploadCommand(
            io.BytesIO(item.artifact.text.encode()), temp, remote_temp_filename=temp
        )
        yield StringCommand(
            q("chown", f"{item.artifact.uid}:{item.artifact.gid}", temp),
            "&&",
            q("chmod", f"{item.artifact.mode:o}", temp),
            "&&",
            q("mkdir", "-p", dest.rsplit("/", 1)[0]),
            "&&",
            q("mv", "-f", temp, dest),
        )


@operation()
def container(
    spec: ContainerSpec, action: str, root: str = "", folders: list[Folder] | None = None
):
    """Create, recreate, start or restart one container from its spec.

    folders are prepared once the old container has stopped and before the new one starts:
    a bot of the old container must not lose its data folder while it still writes in it.
    """
    if action in ("recreate", "create"):
        # Replace a container of this name only if it is ours (same root label): a leftover of
        # an interrupted converge goes; anyone else's container stops the converge instead.
        name, ours = shlex.quote(spec.name), shlex.quote(dict(spec.labels)[ROOT])
        yield (
            f"owner=$(docker inspect -f '{{{{index .Config.Labels \"{ROOT}\"}}}}' {name} "
            f"2>/dev/null) || owner=none; "
            f'if [ "$owner" = {ours} ]; then docker stop -t 45 {name} >/dev/null && '
            f"docker rm {name} >/dev/null; "
            f'elif [ "$owner" != none ]; then echo "a container named {spec.name} exists that '
            f'botpool (root {ours}) did not create: rename or remove it" >&2; exit 1; fi'
        )
        yield from folder_commands(root, folders or [])
        yield q(*spec.run_args())
        for network in spec.networks[1:]:
            yield q("docker", "network", "connect", network, spec.name)
    elif action == "start":
        yield q("docker", "start", spec.name)
    elif action == "restart":
        yield q("docker", "restart", "-t", "45", spec.name)


def run_commands(spec: ContainerSpec) -> str:
    """Shell that creates a container from its spec and joins its other networks."""
    joins = [q("docker", "network", "connect", n, spec.name) for n in spec.networks[1:]]
    return " && ".join([q(*spec.run_args()), *joins])


@operation()
def upgrade_pool(script: str, job: str, files: dict[str, str]):
    """Move a pool to another image behind its health gate (botpool/payloads/upgrade.sh),
    with the backup payload and the pool's schedule in `job` for its pre-upgrade backup
    (readable by the bots' uids, which read their databases; nothing secret in them)."""
    yield q("rm", "-rf", job) + " && " + q("install", "-d", "-m", "0755", job)
    for name, text in sorted(files.items()):
        yield FileUploadCommand(io.BytesIO(text.encode()), f"{job}/{name}")
        yield q("chmod", "0644", f"{job}/{name}")
    yield script
    yield q("rm", "-rf", job)


@operation()
def prune_images(script: str):
    """Remove pool images nothing uses any more, but the way back (upgrade.prune_command)."""
    yield script


@operation()
def refuse(message: str):
    """Stop this host's converge with a message (what it holds back, and how to go on)."""
    yield f"echo {q(message)} >&2; exit 1"


@operation()
def networks(connect: list[str], disconnect: list[str], container: str):
    """A kept container joins and leaves networks live (a sandbox exchange gains a user)."""
    for network in connect:
        yield q("docker", "network", "connect", network, container)
    for network in disconnect:
        yield q("docker", "network", "disconnect", network, container)


@operation()
def create_networks(names: list[str], root: str, users: dict[str, str]):
    """Create each user's network, labelled with its root; one of that name that another
    root (or someone else) made stops the converge instead of being shared."""
    for name in names:
        labels = ["--label", f"{MANAGED}=true", "--label", f"{ROOT}={root}"]
        if name in users:
            labels += ["--label", f"{USER}={users[name]}"]
        yield (
            f"owner=$(docker network inspect -f '{{{{index .Labels \"{ROOT}\"}}}}' "
            f"{q(name)} 2>/dev/null) || owner=none; "
            f'if [ "$owner" = none ]; then {q("docker", "network", "create", *labels, name)} '
            ">/dev/null; "
            f'elif [ "$owner" != {q(root)} ]; then echo "a network named {name} exists that '
            f'botpool (root {root}) did not create: rename or remove it" >&2; exit 1; fi'
        )


@operation()
def remove_networks(names: list[str]):
    """Remove networks nothing plans any more, each only once no container (of any root,
    running or not) is on it: another deployment may still use the old shared one. One
    already gone (removed by hand, or by another deployment's converge at the same time)
    is what was wanted."""
    for name in names:
        yield (
            f'if [ -z "$(docker ps -aq --filter network={q(name)})" ]; then '
            f"docker network rm {q(name)} >/dev/null 2>&1 "
            f"|| ! docker network inspect {q(name)} >/dev/null 2>&1; fi"
        )


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
def signal(container: str, supervisorctl: str, programs: list[str], name: str = "HUP"):
    """Send a signal to programs under a container's supervisord (HUP: re-read config)."""
    yield f"docker exec {shlex.quote(container)} {supervisorctl} signal {name} {q(*programs)}"


@operation()
def wait_running(pool: str, programs: list[str], timeout: int = 180):
    """Wait until every program of a pool is RUNNING, so pools are replaced one at a time."""
    status = f"docker exec {shlex.quote(pool)} {q(*payloads.supervisor_status_command())}"
    yield (  # one exec that waits inside the pool (supervisor_status.py --wait)
        f"{status} --wait {timeout} {q(*programs)} || {{ "
        f"echo 'pool {pool}: not all of {len(programs)} programs RUNNING within {timeout}s' >&2; "
        "exit 1; }"
    )


@operation()
def archive(root: str, stamp: str, paths: list[str]):
    """Move data out of the way into archive/<UTC stamp>/<same path>; never delete it."""
    for path in paths:
        target = f"{root}/archive/{stamp}/{posixpath.dirname(path)}".rstrip("/")
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


def _moving(root: str, pool: str) -> str:
    return f"{root}/.staging/move-{pool}.tar.gz"


@operation()
def pack_pools(root: str, pools: list[tuple[str, str]]):
    """Stop moving pools (bots flush their databases) and pack their directories."""
    for pool, container in pools:
        archive = _moving(root, pool)
        yield (
            f"docker stop -t 45 {q(container)} >/dev/null 2>&1; "
            + q("install", "-d", "-m", "0700", f"{root}/.staging")
            + " && "
            + q("tar", "-C", f"{root}/pools", "--numeric-owner", "-czf", archive, pool)
        )


def _fetch(source: Host, remote: str, local: str) -> None:
    """Download a packed pool from its old host to the controller (0600), then delete it there."""
    sudo = {k: v for k, v in source.data.dict().items() if k in SUDO_ARGUMENTS and v}
    fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    if not source.get_file(remote, local, **sudo):
        raise RuntimeError(f"could not download {remote} from {source.name}")
    source.run_shell_command(StringCommand("rm", "-f", remote), **sudo)


def _done(carried: set[str], pool: str, local: str) -> None:
    os.unlink(local)
    carried.add(pool)


@operation()
def receive_pools(root: str, moves: list[tuple[str, Host]], carried: set[str]):
    """Bring packed pools from their old hosts and unpack them where they will run."""
    for pool, source in moves:
        archive = _moving(root, pool)
        local = os.path.join(tempfile.gettempdir(), f"botpool-move-{os.getpid()}-{pool}.tar.gz")
        yield FunctionCommand(_fetch, (source, archive, local), {})
        yield q("install", "-d", "-m", "0700", f"{root}/.staging")
        yield FileUploadCommand(local, archive, remote_temp_filename=archive + ".part")
        unpacked = f"{root}/.staging/move-{pool}"
        yield " && ".join(
            [
                q("test", "!", "-e", f"{root}/pools/{pool}"),  # never over data already there
                q("rm", "-rf", unpacked),
                q("install", "-d", "-m", "0700", unpacked),
                q("tar", "-C", unpacked, "--numeric-owner", "-xzpf", archive),
                q("mkdir", "-p", f"{root}/pools"),
                q("mv", f"{unpacked}/{pool}", f"{root}/pools/{pool}"),
                q("rm", "-rf", unpacked, archive),
            ]
        )
        yield FunctionCommand(_done, (carried, pool, local), {})


Verdict = Callable[[list[str]], list[Problem]]


@operation()
def freqtrade_check(command: str, configs: str, verdict: Verdict, timeout: int):
    """Run freqtrade's checks of bot configs on the host (command: one throwaway container,
    configs on its stdin, never in an argument); verdict turns its output into problems.
    Any problem fails the host here, before a pool or bot of it is touched."""
    yield FunctionCommand(_freqtrade_check, (command, configs, verdict, timeout), {})


def _freqtrade_check(
    state: object, host: Host, command: str, configs: str, verdict: Verdict, timeout: int
) -> bool:
    sudo = {k: v for k, v in host.data.dict().items() if k in SUDO_ARGUMENTS and v}
    _, output = host.run_shell_command(
        StringCommand(command), _stdin=configs, _timeout=timeout, **sudo
    )
    problems = verdict(output.stdout_lines)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(
            f"{host.name}: {len(problems)} problem(s) in the layout; nothing was changed "
            "on this host",
            file=sys.stderr,
        )
    return not problems
