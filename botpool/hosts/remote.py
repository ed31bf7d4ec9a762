"""Read the hosts of a pyinfra inventory with testinfra: pyinfra changes hosts, testinfra reads.

The inventory is loaded by pyinfra's own loader, so `botpool drift` and `pytest checks/`
see exactly the hosts, SSH settings and layout mapping (`botpool_host`, `botpool_layout`)
that `pyinfra INVENTORY deploy.py` converges. Each host gets one testinfra connection
(`local://` for @local, `paramiko://` over SSH), reused by every command; botpool reads a
host in two or three commands, whatever its number of bots.

SSH host keys are verified the way pyinfra verifies them, from the same host data
(`ssh_known_hosts_file`, else ssh_config's UserKnownHostsFile, else ~/.ssh/known_hosts): a
changed key is always refused. Only the default differs: pyinfra accepts a new host and
records its key (`accept-new`), a reader refuses it unless the inventory sets
`ssh_strict_host_key_checking` itself, because a reader that trusts any key can be shown a
green fleet by an impostor. A converge records the key first, so `pyinfra ...` then
`botpool drift ...` works.

Every command has a time bound (`botpool_command_timeout` host data, default 300 s: a probe
of 50 bots that all hang their API takes 50 x 5 s). It is enforced twice: on the host, by
`timeout`, so that nothing botpool started keeps running there; and here, a little later, so
that a host whose connection hangs cannot hang the reader. Either way the reader gets a
RemoteError naming the host and what the command was for.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paramiko
import testinfra.host
from pyinfra.api.state import State
from pyinfra.connectors.sshuserclient.client import get_ssh_config
from pyinfra.context import ctx_state
from testinfra.backend.base import CommandResult
from testinfra.backend.local import LocalBackend
from testinfra.backend.paramiko import ParamikoBackend

from botpool.core.pipeline import host_ref
from botpool.hosts import InventoryError

CONNECT_TIMEOUT = 10  # seconds: TCP connect, SSH banner, authentication
COMMAND_TIMEOUT = 300  # seconds per command, unless botpool_command_timeout says otherwise
GRACE = 15  # seconds the reader waits beyond the host's own bound before it gives up
KNOWN_HOSTS = "~/.ssh/known_hosts"
# ssh_strict_host_key_checking -> what a reader does with a host whose key it does not know
POLICIES = {
    "yes": "refuse",
    "ask": "refuse",
    "accept-new": "record",
    "no": "accept",
    "off": "accept",
}


class RemoteError(Exception):
    pass


class CommandTimeout(Exception):
    """A command's output did not end in time (raised by the backends below)."""


@dataclass
class RemoteHost:
    """One inventory host: its names, its layout, and read-only commands through testinfra."""

    name: str  # as in the inventory
    layout_host: str  # as in the layout's hosts:
    layout: str
    data: dict[str, Any] = field(repr=False)  # its pyinfra host data
    commands: int = 0

    @functools.cached_property
    def host(self) -> testinfra.host.Host:
        """Made on first use, so that a host whose settings are wrong is an error of its own."""
        return testinfra_host(self.name, self.data, self.timeout)

    @property
    def timeout(self) -> int:
        """Seconds a command may take on this host (`botpool_command_timeout`)."""
        value = self.data.get("botpool_command_timeout", COMMAND_TIMEOUT)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RemoteError(
                f"{self.name}: botpool_command_timeout must be a whole number of seconds, "
                f"not {value!r}"
            )
        return value

    def run(self, command: str, purpose: str) -> list[str]:
        """Run a shell command; its stdout lines. RemoteError if unreachable, failing or
        not done within the host's timeout (`purpose` says what for, in that error)."""
        self.commands += 1
        timeout = self.timeout
        late = RemoteError(
            f"{self.name}: {purpose} did not finish within {timeout} s "
            f"(botpool_command_timeout); the host, its Docker engine or a bot may hang"
        )
        started = time.monotonic()
        try:
            result = self.host.run(bounded(command, timeout))
        except CommandTimeout:
            raise late from None
        except RemoteError as exc:  # a host key refused, a setting wrong: for this host
            raise RemoteError(f"{self.name}: {exc}") from None
        except Exception as exc:  # paramiko/socket errors: the host is unreachable
            raise RemoteError(f"{self.name}: unreachable during {purpose}: {exc}") from None
        if result.rc in (124, 137) and time.monotonic() - started >= timeout:
            raise late  # ended by `timeout` on the host
        if result.rc != 0:
            raise RemoteError(
                f"{self.name}: {purpose} failed ({result.rc}): {result.stderr.strip()[:500]}"
            )
        return list(result.stdout.splitlines())


def bounded(command: str, seconds: int) -> str:
    """The command, ended on the host after `seconds` (TERM, then KILL 10 s later), with
    everything it started: `timeout` runs it in a process group of its own."""
    return f"timeout --kill-after=10 {seconds} sh -c {shlex.quote(command)}"


# --- host keys ------------------------------------------------------------------------


def fingerprint(key: paramiko.PKey) -> str:
    """As OpenSSH shows it: `ssh-ed25519 SHA256:...`."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


def known_hosts_entry(address: str, port: int) -> str:
    """The name a host's key is filed under in known_hosts (as ssh and paramiko file it)."""
    return address if port == 22 else f"[{address}]:{port}"


def known_hosts_files(data: dict[str, Any], address: str) -> list[str]:
    """Where the host's key is looked up, in pyinfra's order of precedence."""
    if data.get("ssh_known_hosts_file"):
        return [os.path.expanduser(str(data["ssh_known_hosts_file"]))]
    config = get_ssh_config(data.get("ssh_config_file"))
    files = config.lookup(address).get("userknownhostsfile") if config else None
    if files:
        return [os.path.expanduser(f) for f in files.split()]
    return [os.path.expanduser(KNOWN_HOSTS)]


def unknown_host_policy(data: dict[str, Any]) -> str:
    """refuse (the default), record (accept-new) or accept (no/off) a host with no known key."""
    value = data.get("ssh_strict_host_key_checking")
    if value is None:
        return "refuse"
    if not isinstance(value, str) or value not in POLICIES:
        raise RemoteError(
            f"ssh_strict_host_key_checking is {value!r}; use one of "
            f"{', '.join(repr(p) for p in POLICIES)}"
        )
    return POLICIES[value]


class UnknownHostPolicy(paramiko.MissingHostKeyPolicy):
    """What to do when the host's key is in none of the known_hosts files."""

    _record_lock = threading.Lock()  # hosts are read in parallel threads

    def __init__(self, setting: str | None, files: list[str]) -> None:
        self.setting = setting  # ssh_strict_host_key_checking, as the inventory says it
        self.policy = unknown_host_policy({"ssh_strict_host_key_checking": setting})
        self.files = files

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        if self.policy == "refuse":
            raise RemoteError(
                f"its SSH host key is not known: {hostname} is in none of "
                f"{', '.join(self.files)}, so botpool cannot tell it from an impostor; refused. "
                f"Record the key: converge the host once with pyinfra (its default, "
                f"accept-new, records it), or check that the host's key is {fingerprint(key)} "
                f"and add it with `ssh-keyscan {keyscan_target(hostname)} >> {self.files[0]}`; "
                f"or set ssh_strict_host_key_checking: 'accept-new' in its host data to trust "
                f"a new host on first use"
            )
        if self.policy == "record":
            self.record(hostname, key)
            print(
                f"warning: {hostname}: new SSH host key {fingerprint(key)} recorded in "
                f"{self.files[0]} (ssh_strict_host_key_checking: accept-new)",
                file=sys.stderr,
            )
        else:
            print(
                f"warning: {hostname}: SSH host key {fingerprint(key)} NOT verified "
                f"(ssh_strict_host_key_checking: {self.setting})",
                file=sys.stderr,
            )

    def record(self, hostname: str, key: Any) -> None:
        """Append the key to the first known_hosts file, as ssh and pyinfra do."""
        path = self.files[0]
        line = paramiko.hostkeys.HostKeyEntry([hostname], key).to_line() or ""
        with self._record_lock:
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as known_hosts:
                known_hosts.write(line)


def keyscan_target(entry: str) -> str:
    """`[host]:port` -> `-p port host`, for the ssh-keyscan hint."""
    if entry.startswith("["):
        address, _, port = entry[1:].partition("]:")
        return f"-p {port} {address}"
    return entry


def changed_key_error(
    entry: str, files: list[str], exc: paramiko.BadHostKeyException
) -> RemoteError:
    holding = [f for f in files if os.path.exists(f) and _lookup(f, entry)] or files
    return RemoteError(
        f"its SSH host key has CHANGED: {entry} offers {fingerprint(exc.key)}, but "
        f"{', '.join(holding)} records {fingerprint(exc.expected_key)} for it. It may be an "
        f"impostor (or the host was reinstalled); refused. If you know why the key changed, "
        f"remove the old one with `ssh-keygen -R '{entry}' -f {holding[0]}` and record the "
        f"new one after checking its fingerprint"
    )


def _lookup(path: str, entry: str) -> bool:
    keys = paramiko.HostKeys()
    try:
        keys.load(path)
    except OSError:
        return False
    return keys.lookup(entry) is not None


class BoundedLocalBackend(LocalBackend):  # type: ignore[misc]
    """testinfra's local backend, with a deadline on every command."""

    def __init__(self, deadline: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.deadline = deadline

    def run_local(self, command: str, *args: str) -> CommandResult:
        """As testinfra runs it, in a session of its own, killed whole when late."""
        cmd = self.encode(self.quote(command, *args))
        proc = subprocess.Popen(
            cmd,
            shell=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=self.deadline)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise CommandTimeout() from None
        finally:
            for pipe in (proc.stdout, proc.stderr):  # a child that left the group keeps them
                if pipe:
                    pipe.close()
        return self.result(proc.returncode, cmd, stdout, stderr)


class VerifiedParamikoBackend(ParamikoBackend):  # type: ignore[misc]
    """testinfra's paramiko backend, with the host key verified before anything is sent,
    and a deadline on every command."""

    def __init__(
        self,
        hostspec: str,
        files: list[str],
        policy: UnknownHostPolicy,
        deadline: float,
        **kwargs: Any,
    ):
        super().__init__(hostspec, **kwargs)
        self.known_hosts = files
        self.policy = policy
        self.deadline = deadline

    def _exec_command(self, command: bytes) -> tuple[int, bytes, bytes]:
        transport = self.client.get_transport()
        assert transport is not None
        channel = transport.open_session(timeout=self.timeout)
        try:
            if self.get_pty:
                channel.get_pty()
            channel.exec_command(command)
            return collect(channel, time.monotonic() + self.deadline)
        finally:
            channel.close()

    @functools.cached_property
    def client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        cfg: dict[str, Any] = {
            "hostname": self.host.name,
            "port": int(self.host.port) if self.host.port else 22,
            "username": self.host.user,
            "timeout": self.timeout,
            "banner_timeout": self.timeout,
            "auth_timeout": self.timeout,
        }
        config_path = self.ssh_config or os.path.expanduser("~/.ssh/config")
        if os.path.exists(config_path):
            config = paramiko.SSHConfig.from_path(config_path)
            self._load_ssh_config(client, cfg, config, os.path.dirname(config_path))
        if self.ssh_identity_file:
            cfg["key_filename"] = self.ssh_identity_file
        for path in self.known_hosts:
            if os.path.exists(path):
                client.get_host_keys().load(path)
        client.set_missing_host_key_policy(self.policy)
        entry = known_hosts_entry(cfg["hostname"], cfg["port"])
        try:
            client.connect(**cfg)
        except paramiko.BadHostKeyException as exc:
            raise changed_key_error(entry, self.known_hosts, exc) from None
        return client


def collect(channel: paramiko.Channel, deadline: float) -> tuple[int, bytes, bytes]:
    """Exit status, stdout and stderr of a command, both streams read as they come (so that
    neither fills its window and stalls the other); CommandTimeout past the deadline."""
    stdout, stderr = bytearray(), bytearray()
    while True:
        while channel.recv_ready():
            stdout += channel.recv(65536)
        while channel.recv_stderr_ready():
            stderr += channel.recv_stderr(65536)
        drained = not channel.recv_ready() and not channel.recv_stderr_ready()
        if channel.exit_status_ready() and drained:
            return channel.recv_exit_status(), bytes(stdout), bytes(stderr)
        left = deadline - time.monotonic()
        if left <= 0:
            raise CommandTimeout()
        select.select([channel], [], [], min(left, 1.0))


def testinfra_host(name: str, data: dict[str, Any], timeout: int) -> testinfra.host.Host:
    """The testinfra host for a pyinfra inventory entry (no connection is made yet)."""
    sudo = bool(data.get("_sudo"))
    if name == "@local":
        backend: Any = BoundedLocalBackend(timeout + GRACE, sudo=sudo)
    elif name.startswith("@"):
        raise RemoteError("only @local and SSH hosts can be read")
    else:
        user = data.get("ssh_user")
        address = data.get("ssh_hostname") or name
        port = data.get("ssh_port") or 22
        files = known_hosts_files(data, address)
        backend = VerifiedParamikoBackend(
            f"{user + '@' if user else ''}{address}:{port}",
            files=files,
            policy=UnknownHostPolicy(data.get("ssh_strict_host_key_checking"), files),
            deadline=timeout + GRACE,
            sudo=sudo,
            timeout=CONNECT_TIMEOUT,
            ssh_config=data.get("ssh_config_file"),
            ssh_identity_file=os.path.expanduser(data["ssh_key"]) if data.get("ssh_key") else None,
        )
    host = testinfra.host.Host(backend)
    backend.set_host(host)
    return host


def inventory_hosts(path: str) -> list[RemoteHost]:
    """Every host of a pyinfra inventory file (no connection is made yet).

    pyinfra runs the file as Python, so anything may go wrong in it; the error names the file
    and, when Python knows it, the line. A missing file or one without hosts is an error too:
    pyinfra would take a mistyped path for a host name."""
    if not os.path.isfile(path):
        raise InventoryError(f"{path}: no such inventory file (e.g. inventory/local.py)")
    if not path.endswith(".py"):
        raise InventoryError(
            f"{path}: an inventory is a pyinfra Python file (e.g. inventory/local.py)"
        )
    from pyinfra_cli.inventory import make_inventory  # (importing pyinfra_cli patches gevent)

    ctx_state.set(State())  # pyinfra's inventory loader expects a current state
    try:
        inventory = make_inventory(path)
    except Exception as exc:
        raise InventoryError(
            f"{path}{_line_of(exc, path)}: cannot read the inventory: {_reason(exc)}"
        ) from None
    hosts = []
    for host in inventory:
        data = dict(host.data.dict())
        ref = host_ref(host.name, data)
        hosts.append(RemoteHost(host.name, ref.host, ref.layout, data))
    if not hosts:
        raise InventoryError(f"{path}: the inventory lists no hosts, so there is nothing to read")
    return hosts


def _reason(exc: BaseException) -> str:
    """What went wrong, even when the exception cannot say it (pyinfra's wrappers of an
    error in an inventory file fail in their own str())."""
    cause = exc.__cause__ or exc.__context__
    for err in (exc, cause):
        if isinstance(err, SyntaxError):
            return f"SyntaxError: {err.msg}"
    try:
        text = str(exc)
    except Exception:
        text = ""
    return text or (f"{type(cause).__name__}: {cause}" if cause else type(exc).__name__)


def _line_of(exc: BaseException, path: str) -> str:
    """':LINE' of the inventory file where the error arose, if Python recorded it."""
    for err in (exc, exc.__cause__, exc.__context__):
        if isinstance(err, SyntaxError) and err.lineno:
            return f":{err.lineno}"
        tb = err.__traceback__ if err else None
        line = None
        while tb:
            if os.path.abspath(tb.tb_frame.f_code.co_filename) == os.path.abspath(path):
                line = tb.tb_lineno
            tb = tb.tb_next
        if line:
            return f":{line}"
    return ""
