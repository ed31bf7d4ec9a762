"""pyinfra facts botpool reads from a host: everything in one command (botpool.core.snapshot)."""

from __future__ import annotations

from pyinfra.api import FactBase

from botpool.core import snapshot


class BotpoolSnapshot(FactBase[snapshot.Snapshot]):
    """Docker engine, botpool images, networks, containers, files and supervisor programs."""

    def command(self, root: str) -> str:
        return snapshot.command(root)

    def process(self, output: list[str]) -> snapshot.Snapshot:
        return snapshot.parse(output)

    @staticmethod
    def default() -> snapshot.Snapshot:
        return snapshot.Snapshot()
