"""Take and release the converge lock of every host of a run (botpool.hosts.hostlock: what it is).

Where: pyinfra 3 reads facts while it plans (`host.get_fact` runs a command at once), so the
lock must be taken while deploy.py loads, before the first task reads a host's snapshot:
tasks/hostlock.py, deploy.py's first include, calls `lock_run`. The first host to get there
locks every host of the run, in name order, while the others wait for it: two runs that
share hosts never hold one each and wait for the other, and a pool move finds both of its
hosts locked. A host still held by another converge after `botpool_lock_wait` seconds stops
the whole run, before anything was changed anywhere.

Until when: pyinfra has no `finally` for deploys, but it always closes its connections when
the run ends (however it ends); the lock is released just before, saying "done" if the host
ended well. A killed controller closes them too, and the lock goes with them.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import click
import gevent
from gevent.lock import Semaphore
from paramiko import SSHException
from pyinfra import inventory, logger
from pyinfra.api import StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.host import Host
from pyinfra.api.state import StateStage
from pyinfra.connectors.local import LocalConnector
from pyinfra.connectors.ssh import SSHConnector
from pyinfra.connectors.util import make_unix_command_for_host

from botpool.hosts import hostlock
from tasks import context

GRACE = 30  # seconds beyond botpool_lock_wait for the holder's answer (a slow host, sudo)
PER_COMMAND = ("_get_pty", "_timeout", "_stdin", "_success_exit_codes")


class SshHolder:
    """The holder on an SSH host: a command on a channel of pyinfra's own connection."""

    def __init__(self, host: Host, command: str) -> None:
        transport = host.connector.client.get_transport()
        self.channel = transport.open_session(timeout=GRACE)
        self.channel.exec_command(command)

    def lines(self) -> Iterator[str]:
        for line in self.channel.makefile("r"):
            yield line.rstrip("\n")

    def failure(self) -> str:
        """After its output ended without the lock: exit status and stderr."""
        error = self.channel.makefile_stderr("r").read().strip()
        return f"({self.channel.recv_exit_status()}) {error}"

    def end(self, done: bool) -> None:
        if done:
            self.channel.sendall(b"done\n")
        self.channel.shutdown_write()
        self.channel.recv_exit_status()  # the holder cleared the file and let go
        self.channel.close()


class LocalHolder:
    """The holder on @local: a child process of this controller."""

    def __init__(self, command: str) -> None:
        self.process = subprocess.Popen(
            command,
            shell=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def lines(self) -> Iterator[str]:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            yield line.rstrip("\n")

    def failure(self) -> str:
        assert self.process.stderr is not None
        error = self.process.stderr.read().strip()
        return f"({self.process.wait()}) {error}"

    def end(self, done: bool) -> None:
        assert self.process.stdin is not None
        if done:
            self.process.stdin.write("done\n")
        self.process.stdin.close()
        self.process.wait()


Holder = SshHolder | LocalHolder
HOLDERS: dict[str, Holder] = {}  # inventory name -> the holder of its lock, for this run
_locking = Semaphore()
_refused: list[PyinfraError] = []


def dry_run() -> bool:
    """Is this `pyinfra --dry` (which must take no lock)? pyinfra keeps the flag to itself
    (and click's context does not reach the greenlets deploy files run in): ask its parser."""
    from pyinfra_cli.cli import cli

    try:
        parsed = cli.make_context("pyinfra", sys.argv[1:], resilient_parsing=True)
    except (click.ClickException, click.exceptions.Exit):
        return False  # not pyinfra's command line (the pyinfra API): no --dry there
    return bool(parsed.params.get("dry"))


def lock_run() -> None:
    """Lock every host of the run (once, whichever host's deploy calls first)."""
    with _locking:
        if _refused:
            raise _refused[0]
        for host in sorted(inventory.get_active_hosts(), key=lambda h: h.name):
            if host.name not in HOLDERS:
                try:
                    HOLDERS[host.name] = take(host)
                except PyinfraError as exc:
                    _refused.append(exc)
                    raise


def take(host: Host) -> Holder:
    """Start the holder on the host and wait until it holds the lock (or refuse)."""
    root = context.plan(host).layout.root
    wait = lock_wait(host)
    me = hostlock.describe_me(sys.argv, socket.gethostname(), getpass.getuser(), os.getpid())
    holder = start(host, command_for(host, hostlock.take_command(root, wait, me)))
    try:
        with gevent.Timeout(wait + GRACE):
            for kind, who in hostlock.sections(holder.lines()):
                if kind == "waiting":
                    logger.warning(hostlock.waiting_message(host.name, who, wait))
                elif kind == "previous" and who:
                    logger.warning(hostlock.stale_message(host.name, who))
                elif kind == "busy":
                    holder.end(done=False)
                    path = hostlock.lock_path(root)
                    raise PyinfraError(hostlock.held_message(host.name, path, who, wait))
                elif kind == "acquired":
                    release_before_disconnect(host, holder)
                    return holder
            failure = holder.failure()
    except gevent.Timeout:
        holder.end(done=False)
        raise PyinfraError(
            f"{host.name}: no answer about its converge lock within {wait + GRACE} s"
        ) from None
    raise PyinfraError(f"{host.name}: could not take its converge lock: {failure}")


def start(host: Host, command: str) -> Holder:
    try:
        if isinstance(host.connector, SSHConnector):
            return SshHolder(host, command)
        if isinstance(host.connector, LocalConnector):
            return LocalHolder(command)
    except (SSHException, OSError) as exc:
        raise PyinfraError(f"{host.name}: could not start its converge lock: {exc}") from None
    raise PyinfraError(f"{host.name}: botpool converges @local and SSH hosts only")


def release_before_disconnect(host: Host, holder: Holder) -> None:
    """pyinfra closes every connection when the run ends, however it ends: release first."""
    disconnect = host.connector.disconnect

    def release_then_disconnect() -> None:
        try:
            with gevent.Timeout(10):
                holder.end(done=ended_well(host))
        except (gevent.Timeout, OSError, EOFError) as exc:  # the connection is gone already
            logger.warning(f"{host.name}: converge lock released with the connection ({exc})")
        disconnect()

    host.connector.disconnect = release_then_disconnect


def ended_well(host: Host) -> bool:
    """Did this run leave the host as it planned (or untouched)?"""
    state = host.state
    return host not in state.failed_hosts and state.current_stage != StateStage.Execute


def report(host: Host) -> None:
    """--dry: say whether another converge holds the lock; take nothing."""
    root = context.plan(host).layout.root
    _, output = host.run_shell_command(
        StringCommand(hostlock.check_command(root)), _timeout=GRACE, **connector_arguments(host)
    )
    for kind, who in hostlock.sections(output.stdout_lines):
        if kind == "busy":
            logger.warning(hostlock.dry_message(host.name, who))


def lock_wait(host: Host) -> int:
    value = host.data.get("botpool_lock_wait", hostlock.DEFAULT_WAIT)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PyinfraError(
            f"{host.name}: botpool_lock_wait must be a whole number of seconds, not {value!r}"
        )
    return value


def connector_arguments(host: Host) -> dict[str, Any]:
    """sudo, su, env... as the host data and config say, the way facts run."""
    arguments, _ = pop_global_arguments(host.state, host, {})
    return {
        k: v for k, v in arguments.items() if k in CONNECTOR_ARGUMENT_KEYS and k not in PER_COMMAND
    }


def command_for(host: Host, command: str) -> str:
    """The command as pyinfra would run it on this host (sudo and all)."""
    unix = make_unix_command_for_host(
        host.state, host, StringCommand(command), **connector_arguments(host)
    )
    return str(unix.get_raw_value())
