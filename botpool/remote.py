"""Reach the hosts of a pyinfra inventory to read them: one connection per host, reused.

`botpool drift` and the `checks/` suite use this, so they read exactly the hosts that
`pyinfra INVENTORY deploy.py` converges, with the same SSH settings, sudo and layout
mapping (`botpool_host`, `botpool_layout`). Unlike deploy, nothing here changes a host.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyinfra.api.command import StringCommand
from pyinfra.api.config import Config
from pyinfra.api.connect import connect_all, disconnect_all
from pyinfra.api.state import State
from pyinfra.context import ctx_config, ctx_inventory, ctx_state
from pyinfra_cli.inventory import make_inventory

DEFAULT_LAYOUT = "inventory/layout.yaml"


class RemoteError(Exception):
    pass


@dataclass
class RemoteHost:
    """One inventory host: its names, its layout, and a way to run read-only commands."""

    name: str  # as in the inventory
    layout_host: str  # as in the layout's hosts:
    layout: str
    reachable: bool
    _host: Any = None
    commands: int = 0

    def run(self, command: str) -> list[str]:
        """Run a shell command on the host; its stdout lines, or RemoteError."""
        if not self.reachable:
            raise RemoteError(f"{self.name}: unreachable")
        self.commands += 1
        sudo = bool(self._host.data.get("_sudo"))
        ok, output = self._host.run_shell_command(
            StringCommand(command), print_output=False, _sudo=sudo
        )
        if not ok:
            raise RemoteError(f"{self.name}: command failed: {' '.join(output.stderr_lines)[:500]}")
        return list(output.stdout_lines)


@contextmanager
def open_inventory(path: str) -> Iterator[list[RemoteHost]]:
    """Connect to every host of a pyinfra inventory (in parallel); unreachable ones are marked."""
    state = State()
    ctx_state.set(state)
    inventory = make_inventory(path)
    config = Config()
    ctx_inventory.set(inventory)
    ctx_config.set(config)
    state.init(inventory, config)
    connect_all(state)
    try:
        hosts = []
        for host in inventory:
            layout = (
                os.environ.get("BOTPOOL_LAYOUT")
                or host.data.get("botpool_layout")
                or DEFAULT_LAYOUT
            )
            hosts.append(
                RemoteHost(
                    host.name,
                    host.data.get("botpool_host") or host.name,
                    layout,
                    host.connected,
                    host,
                )
            )
        yield hosts
    finally:
        disconnect_all(state)
