"""Read the hosts of a pyinfra inventory with testinfra: pyinfra changes hosts, testinfra reads.

The inventory is loaded by pyinfra's own loader, so `botpool drift` and `pytest checks/`
see exactly the hosts, SSH settings and layout mapping (`botpool_host`, `botpool_layout`)
that `pyinfra INVENTORY deploy.py` converges. Each host gets one testinfra connection
(`local://` for @local, `paramiko://` over SSH), reused by every command; botpool reads a
host in two or three commands, whatever its number of bots.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import testinfra
from pyinfra.api.state import State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

DEFAULT_LAYOUT = "inventory/layout.yaml"


class RemoteError(Exception):
    pass


@dataclass
class RemoteHost:
    """One inventory host: its names, its layout, and read-only commands through testinfra."""

    name: str  # as in the inventory
    layout_host: str  # as in the layout's hosts:
    layout: str
    host: Any = field(repr=False)  # testinfra.host.Host
    commands: int = 0

    def run(self, command: str) -> list[str]:
        """Run a shell command; its stdout lines. RemoteError if unreachable or failing."""
        self.commands += 1
        try:
            result = self.host.run(command)
        except Exception as exc:  # paramiko/socket errors: the host is unreachable
            raise RemoteError(f"{self.name}: unreachable: {exc}") from None
        if result.rc != 0:
            raise RemoteError(
                f"{self.name}: command failed ({result.rc}): {result.stderr.strip()[:500]}"
            )
        return list(result.stdout.splitlines())


def testinfra_spec(name: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The testinfra host spec for a pyinfra inventory entry."""
    sudo = bool(data.get("_sudo"))
    if name == "@local":
        return "local://", {"sudo": sudo}
    if name.startswith("@"):
        raise RemoteError(f"{name}: only @local and SSH hosts can be read")
    user = data.get("ssh_user")
    address = data.get("ssh_hostname") or name
    port = data.get("ssh_port") or 22
    spec = f"paramiko://{user + '@' if user else ''}{address}:{port}"
    options: dict[str, Any] = {"sudo": sudo, "timeout": 10}
    if data.get("ssh_key"):
        options["ssh_identity_file"] = os.path.expanduser(data["ssh_key"])
    return spec, options


def inventory_hosts(path: str) -> list[RemoteHost]:
    """Every host of a pyinfra inventory file (no connection is made yet)."""
    ctx_state.set(State())  # pyinfra's inventory loader expects a current state
    hosts = []
    for host in make_inventory(path):
        data = dict(host.data.dict())
        spec, options = testinfra_spec(host.name, data)
        layout = os.environ.get("BOTPOOL_LAYOUT") or data.get("botpool_layout") or DEFAULT_LAYOUT
        hosts.append(
            RemoteHost(
                host.name,
                data.get("botpool_host") or host.name,
                layout,
                testinfra.get_host(spec, **options),
            )
        )
    return hosts
