"""A disposable "VPS in a container": bare Debian with sshd, reached over real SSH on loopback.

Bare means what a fresh rented server has: sshd, python3, sudo and a working apt, and no
Docker engine; the deploy under test must install that itself. The run flags are the ones
that let an engine run inside on these machines (see shared/env/MACHINE-NOTES.md): no
--privileged, a few capabilities instead. sshd is published on 127.0.0.1 only, and tests
log in with an ed25519 key made for the test session.

Each VPS makes its own SSH host keys when it starts. They are read from inside it (not over
the network) into a known_hosts file of its own, which its inventory data points at with
strict checking: a test host is reached the way a production host should be, key verified.

Use from a test module (tests/test_vps_e2e.py does):

    pytest_plugins = ["tests.harness.vps"]  # the ssh_key fixture

    def test_something(ssh_key, tmp_path):
        remove_orphans()
        vps = start_vps(ssh_key)
        try:
            inventory = vps.write_inventory(tmp_path / "inventory.py", botpool_image_build="host")
            # run `pyinfra <inventory> deploy.py -y`, then look inside with vps.exec("...")
        finally:
            vps.remove()

Every container carries the label botpool-test=vps and the pid of the test process that
made it: remove_orphans() removes those whose test process died.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .images import build, ensure_base

REPO = Path(__file__).resolve().parents[2]
LABEL = "botpool-test=vps"
PID_LABEL = "botpool-test.pid"
RUN_FLAGS = (
    *("--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN"),
    *("--cap-add", "MKNOD", "--cap-add", "NET_RAW"),
    # a real server's root has every capability; the monitoring container needs this one
    # (reading other uids' smaps_rollup), and an inner engine can only give what it has
    *("--cap-add", "SYS_PTRACE"),
    *("--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"),
    *("-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"),
)
# the inner engine's storage: overlay2 cannot stack on the outer overlay filesystem. A tmpfs
# by default (fast, gone with the container); its pages count against a memory limit, so a
# VPS with one (bench/soak.py) gives a named volume instead, as a real disk would be
TMPFS_STORAGE = ("--tmpfs", "/var/lib/docker:exec")
# SetEnv: what a container cannot do that a real server can. /proc/sys is read-only in a
# container, so the inner engine (Debian 13's Docker 26) cannot turn IPv6 off on its
# containers' interfaces and refuses to start them, unless told to go on: the engine started
# over SSH (botpool/payloads/start-engine.sh) inherits this from the session.
DOCKERFILE = """\
FROM {base}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends openssh-server python3 sudo ca-certificates \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh \\
 && printf 'PermitRootLogin prohibit-password\\nPasswordAuthentication no\\n%s\\n' \\
      'SetEnv DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1' > /etc/ssh/sshd_config.d/botpool-test.conf \\
 && rm -f /etc/ssh/ssh_host_*
EXPOSE 22
# host keys of its own, made when it starts, like a freshly installed server
CMD ["/bin/sh", "-c", "ssh-keygen -A && exec /usr/sbin/sshd -D -e"]
"""


def docker(*args: str, stdin: bytes | None = None, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], input=stdin, capture_output=True, check=False)
    if check and proc.returncode:
        raise RuntimeError(f"docker {' '.join(args[:4])}: {proc.stderr.decode().strip()}")
    return proc.stdout.decode()


def ensure_vps_image() -> str:
    """The bare VPS image, built once; its tag follows its Dockerfile."""
    dockerfile = DOCKERFILE.format(base=ensure_base())
    digest = hashlib.sha256(dockerfile.encode()).hexdigest()[:12]
    return build(f"botpool-test/vps:{digest}", {"Dockerfile": dockerfile})


@dataclass(frozen=True)
class Vps:
    """One running VPS container and how to reach it."""

    name: str  # the container name, also the host's name in inventories
    port: int  # sshd, published on 127.0.0.1
    key: Path  # private key that root accepts
    known_hosts: Path  # this VPS's host keys, as `[127.0.0.1]:port type key` lines
    hostname: str = "127.0.0.1"
    user: str = "root"

    def host_data(self) -> dict[str, Any]:
        """pyinfra SSH connector data for this VPS: its host key is known and verified."""
        return {
            "ssh_hostname": self.hostname,
            "ssh_port": self.port,
            "ssh_user": self.user,
            "ssh_key": str(self.key),
            "ssh_allow_agent": False,
            "ssh_look_for_keys": False,
            "ssh_strict_host_key_checking": "yes",
            "ssh_known_hosts_file": str(self.known_hosts),
        }

    @property
    def known_hosts_entry(self) -> str:
        """The name its keys are filed under in known_hosts."""
        return f"[{self.hostname}]:{self.port}"

    def host_keys(self) -> list[str]:
        """Its public host keys (`type base64`), read inside the container."""
        out = self.exec("cat /etc/ssh/ssh_host_*_key.pub")
        return [" ".join(line.split()[:2]) for line in out.splitlines() if line.strip()]

    def write_inventory(self, path: Path, **data: Any) -> Path:
        """A pyinfra inventory with this VPS alone; data values must be Python literals."""
        return write_inventory(path, [self], **data)

    def exec(self, command: str, check: bool = True, user: str | None = None) -> str:
        """Run shell inside the VPS, outside SSH (to look at results, never to deploy)."""
        return docker(
            "exec", *(["--user", user] if user else []), self.name, "sh", "-c", command, check=check
        )

    def remove(self) -> None:
        docker("rm", "--force", "--volumes", self.name, check=False)


def write_inventory(
    path: Path, vpses: Sequence[Vps] | Mapping[Vps, Mapping[str, Any]], **data: Any
) -> Path:
    """A pyinfra inventory file listing VPSes by name, each with its SSH data plus `data`
    and, when vpses maps each to some, its own (a key given as None is left out: pyinfra's
    and botpool's defaults apply)."""
    own = vpses if isinstance(vpses, Mapping) else {v: {} for v in vpses}
    hosts = [
        (v.name, {k: x for k, x in {**v.host_data(), **data, **extra}.items() if x is not None})
        for v, extra in own.items()
    ]
    path.write_text(
        f'"""VPS test hosts (written by tests/harness/vps.py)."""\n\nhosts = {hosts!r}\n'
    )
    return path


@dataclass(frozen=True)
class PyinfraRun:
    """The result of one `pyinfra` CLI run (verbose, so that remote commands are listed)."""

    output: str
    returncode: int
    seconds: float

    @property
    def operations(self) -> list[str]:
        """Names of the operations that ran (a converged host runs none)."""
        return re.findall(r"^--> Starting (?:run once )?operation: (.+?) *$", self.output, re.M)

    @property
    def changed(self) -> list[str]:
        """Names of the operations that changed something on some host (not "No changes")."""
        return changed_operations(self.output)

    @property
    def commands(self) -> int:
        """How many commands ran on hosts, facts included."""
        return len(re.findall(r"^\[[^]]+\] >>> ", self.output, re.M))


def changed_operations(output: str, host: str | None = None) -> list[str]:
    """Names of the operations a verbose pyinfra run says changed something (not "No
    changes"), on any host or on the one named."""
    name = re.escape(host) if host else r"[^]]+"
    changed = []
    for block in re.split(r"^--> ", output, flags=re.M):
        started = re.match(r"Starting (?:run once )?operation: (.+?) *$", block, re.M)
        if started and re.search(rf"^\s*\[{name}\] Success", block, re.M):
            changed.append(started.group(1))
    return changed


def run_pyinfra(inventory: Path, *deploy: str, timeout: float = 1200) -> PyinfraRun:
    """`pyinfra INVENTORY DEPLOY... -y -vv` from the repository root, as a user runs it."""
    started = time.monotonic()
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "pyinfra"), str(inventory), *deploy, "-y", "-vv"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PyinfraRun(proc.stdout + proc.stderr, proc.returncode, time.monotonic() - started)


def new_key(directory: Path) -> Path:
    key = directory / "id_ed25519"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "botpool-test", "-f", str(key)],
            check=True,
        )
    return key


def wait_for_sshd(port: int, timeout: float = 30) -> None:
    """Until sshd on 127.0.0.1:port sends its banner."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                if conn.recv(8).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"sshd on 127.0.0.1:{port} did not answer within {timeout}s")
        time.sleep(0.2)


def start_vps(
    key: Path,
    name: str | None = None,
    run_flags: Sequence[str] = (),
    docker_volume: str | None = None,
) -> Vps:
    """Start a fresh bare VPS that accepts `key` for root; its host keys go to a known_hosts
    file beside `key`.

    run_flags: more `docker run` flags (a memory or CPU limit, labels). docker_volume: a named
    volume for the inner engine's /var/lib/docker instead of a tmpfs (the caller removes it).
    """
    image = ensure_vps_image()
    name = name or f"botpool-test-vps-{uuid.uuid4().hex[:8]}"
    labels = ("--label", LABEL, "--label", f"{PID_LABEL}={os.getpid()}")
    storage = ("-v", f"{docker_volume}:/var/lib/docker") if docker_volume else TMPFS_STORAGE
    flags = (*labels, *RUN_FLAGS, *storage, *run_flags)
    docker("run", "--detach", "--name", name, *flags, "-p", "127.0.0.1::22", image)
    try:
        public = key.with_suffix(".pub").read_bytes()
        docker("exec", "-i", name, "sh", "-c", "cat > /root/.ssh/authorized_keys", stdin=public)
        port = int(docker("port", name, "22/tcp").split()[0].rsplit(":", 1)[1])
        wait_for_sshd(port)
        vps = Vps(name, port, key, key.parent / f"known_hosts-{name}")
        entries = [f"{vps.known_hosts_entry} {k}\n" for k in vps.host_keys()]
        vps.known_hosts.write_text("".join(entries))
    except BaseException:
        docker("rm", "--force", "--volumes", name, check=False)
        raise
    return vps


def remove_orphans() -> list[str]:
    """Remove VPS containers whose test process is gone (a session that was killed)."""
    lines = docker(
        "ps",
        "-a",
        "--filter",
        f"label={LABEL}",
        "--format",
        f'{{{{.Names}}}} {{{{.Label "{PID_LABEL}"}}}}',
    ).splitlines()
    orphans = [
        name
        for name, _, pid in (line.partition(" ") for line in lines)
        if pid.isdigit() and not _alive(int(pid))
    ]
    for name in orphans:
        docker("rm", "--force", "--volumes", name, check=False)
    return orphans


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ed25519 key pair for this test session (private key path; `.pub` beside it)."""
    return new_key(tmp_path_factory.mktemp("ssh"))
