"""Disposable "VPS" hosts for SSH tests: a bare Debian container with sshd, nothing else.

The flags are the ones that work on these machines (see ../shared/env/MACHINE-NOTES.md): no
--privileged, but enough capabilities for the Docker engine that botpool's deploy installs
inside. sshd is published on 127.0.0.1 only; a key pair is made per test session.
"""

from __future__ import annotations

import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from botpool.image import base_build_command

from .e2e import docker

IMAGE = "botpool-test/vps:bookworm"
LABEL = "botpool-test=vps"
RUN_FLAGS = [
    "--cap-add",
    "SYS_ADMIN",
    "--cap-add",
    "NET_ADMIN",
    "--cap-add",
    "MKNOD",
    "--cap-add",
    "NET_RAW",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--tmpfs",
    "/var/lib/docker:exec",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
]
DOCKERFILE = """
FROM botpool/debian:bookworm
RUN apt-get update \\
 && apt-get install -y --no-install-recommends openssh-server python3 ca-certificates \\
 && rm -rf /var/lib/apt/lists/* && mkdir -p /run/sshd /root/.ssh && chmod 700 /root/.ssh \\
 && printf 'PermitRootLogin prohibit-password\\nPasswordAuthentication no\\n' \\
      > /etc/ssh/sshd_config.d/botpool-test.conf
CMD ["/usr/sbin/sshd", "-D", "-e"]
"""


def ensure_base_image() -> None:
    """The local Debian base, as botpool's deploy builds it (debootstrap + docker import)."""
    if docker("images", "-q", "botpool/debian:bookworm").strip():
        return
    command = base_build_command()
    subprocess.run(["bash", "-c", command], check=True)


def ensure_image(workdir: Path) -> None:
    ensure_base_image()
    if docker("images", "-q", IMAGE).strip():
        return
    context = workdir / "vps-image"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(textwrap.dedent(DOCKERFILE))
    docker("build", "-q", "-t", IMAGE, str(context))


@dataclass
class Vps:
    name: str
    port: int
    key: Path

    def inventory_entry(self, botpool_host: str, layout: Path) -> str:
        data = {
            "ssh_port": self.port,
            "ssh_user": "root",
            "ssh_key": str(self.key),
            "ssh_strict_host_key_checking": "no",
            "ssh_known_hosts_file": "/dev/null",
            "botpool_host": botpool_host,
            "botpool_layout": str(layout),
        }
        return f'("127.0.0.1", {data!r})'

    def run(self, command: str) -> str:
        """Run a command inside the VPS (for assertions; deploys go over SSH)."""
        return docker("exec", self.name, "sh", "-c", command)

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)


def start_vps(workdir: Path, name: str) -> Vps:
    """A fresh bare host: sshd only. Removes any leftover of the same name first."""
    ensure_image(workdir)
    key = workdir / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    docker("rm", "-f", name, check=False)
    docker("run", "-d", "--name", name, "--label", LABEL, *RUN_FLAGS, "-p", "127.0.0.1::22", IMAGE)
    docker(
        "exec",
        name,
        "sh",
        "-c",
        f"echo '{key.with_suffix('.pub').read_text().strip()}' > /root/.ssh/authorized_keys",
    )
    port = int(docker("port", name, "22/tcp").strip().rsplit(":", 1)[1])
    return Vps(name, port, key)
