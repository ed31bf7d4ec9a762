"""Every pyinfra fact botpool reads from a host.

A layout deploy needs one: BotpoolSnapshot (everything in one command, botpool.core.snapshot).
A deploy that names its images without a layout reads DockerStateFact instead, and an image
that was missing while the engine was silent is looked for again with ImagePresent.
"""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

from botpool.core import snapshot
from botpool.core.image import DOCKER_STATE_COMMAND, DockerState, parse_docker_state


class BotpoolSnapshot(FactBase[snapshot.Snapshot]):
    """Docker engine, botpool images, networks, containers, files and supervisor programs."""

    def command(self, root: str) -> str:
        return snapshot.command(root)

    def process(self, output: list[str]) -> snapshot.Snapshot:
        return snapshot.parse(output)

    @staticmethod
    def default() -> snapshot.Snapshot:
        return snapshot.Snapshot()


class DockerStateFact(FactBase[DockerState]):
    """Is dockerd installed, does the engine answer, which images has botpool built."""

    def command(self) -> str:
        return DOCKER_STATE_COMMAND

    def process(self, output: list[str]) -> DockerState:
        return parse_docker_state(output)

    @staticmethod
    def default() -> DockerState:
        return DockerState(installed=False, engine=None)


class ImagePresent(FactBase[bool]):
    """Does the engine have this image (asked at execution time, see tasks/image._missing)."""

    def command(self, tag: str) -> str:
        return f"docker image inspect {shlex.quote(tag)} >/dev/null 2>&1 && echo yes; true"

    def process(self, output: list[str]) -> bool:
        return "yes" in output
