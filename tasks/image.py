"""Pool images on the host: nothing happens when their tags are there; otherwise they get there.

Which images: `host.data.botpool_image` (an ImageSpec from botpool.core.image, or a list of them);
without it, the images the layout's pools on this host need (tasks/context.py).
Whether they are there: tasks/context.docker_state, the answer tasks/engine.py decided
from (include it first), so a converged host costs no command here. An engine that was
stopped when it was read shows no images; then each image is looked for again when its
operations run (after tasks/engine.py started the engine), so a restarted host rebuilds
nothing.

How a missing image gets there, per host (`host.data.botpool_image_build`):
- `host` (default): upload the build context and `docker build` on the host. With base
  `local` the host first makes the Debian base with debootstrap (installed if missing). The
  host needs its Debian mirror and PyPI (or `pip_index_url`), or Docker Hub for an
  official base. Best for real servers: they download from nearby mirrors, in parallel,
  instead of through the controller's uplink.
- `controller`: build once on the controller (this machine, cached by tag), `docker save`
  to a gzip archive in `botpool_image_cache` (default ~/.cache/botpool/images), upload it,
  `docker load`. For hosts that reach no mirror, or many hosts next to the controller.

Other host data: `botpool_build_dir` (where build contexts and archives land on the host,
default /var/tmp/botpool-build).
"""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation
from pyinfra.operations import apt, python, server

from botpool.core.image import DockerState, ImageSpec, base_build_command
from tasks import context
from tasks.facts import ImagePresent

BUILD_MODES = ("host", "controller")


def if_missing(tag: str, known: bool) -> list[Callable[[], bool]]:
    """`_if` conditions for operations that only make sense while an image is missing.

    known: the images read before the run are the truth (the engine answered) and the
    caller only asks for missing images: no condition. Otherwise, ask when the operation runs.
    """
    return [] if known else [lambda: not host.get_fact(ImagePresent, tag=tag)]


def wanted_images() -> list[ImageSpec]:
    """The pool images this host must have, and its monitoring image."""
    given = host.data.get("botpool_image")
    if given is not None:
        return [given] if isinstance(given, ImageSpec) else list(given)
    ctx = context.for_host(host)
    versions = {pool.freqtrade_version for pool in ctx.host.pools}
    if ctx.host.exchanges:  # sandbox exchanges run from the default version's image
        versions.add(ctx.plan.layout.freqtrade_version)
    monitoring = [ctx.desired.monitoring.image] if ctx.desired.monitoring else []
    return [ctx.images[v] for v in sorted(versions)] + monitoring


@operation()
def upload_context(spec: ImageSpec, directory: str):
    """Write an image's build context into a fresh root-only directory on the host."""
    d = shlex.quote(directory)
    yield f"rm -rf {d} && install -d -m 0700 {d}"
    for sub in sorted({os.path.dirname(path) for path in spec.files} - {""}):
        yield f"install -d -m 0700 {shlex.quote(f'{directory}/{sub}')}"
    for path in sorted(spec.files):
        yield FileUploadCommand(BytesIO(spec.files[path].encode()), f"{directory}/{path}")


@operation()
def load_archive(archive: str, remote: str):
    """Upload an image archive made by `docker save | gzip` and load it into the engine."""
    r = shlex.quote(remote)
    yield f"install -d -m 0700 {shlex.quote(os.path.dirname(remote))}"
    yield FileUploadCommand(archive, remote)
    yield f"docker load --quiet --input {r} >/dev/null && rm -f {r}"


def _run_local(script: str) -> None:
    """Run shell on the controller; its stderr becomes the error a failing deploy shows."""
    proc = subprocess.run(["bash", "-c", "set -e\n" + script], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"on the controller: {proc.stderr.strip()[-3000:]}")


def _local_has(tag: str) -> bool:
    proc = subprocess.run(["docker", "image", "inspect", tag], capture_output=True)
    return proc.returncode == 0


def ensure_archive(spec: ImageSpec, archive: str) -> None:
    """Make the image's archive on the controller unless it is cached (build it if needed).

    Hosts run this in parallel (gevent): a lock file in the cache makes one of them do the
    work. It is polled because a blocking flock would stall every other host's greenlet.
    A failed build leaves its context and log in /tmp (named in the error) to look at.
    """
    path = Path(archive)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".lock", "w") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(1)
        if path.exists():
            return
        if spec.base_tag and not _local_has(spec.base_tag):
            _run_local(base_build_command(spec.base_tag))
        for step in spec.build_order:  # its parent first (kept: the next variant starts there)
            if not _local_has(step.tag):
                context_dir = tempfile.mkdtemp(prefix="botpool-build-")
                for rel, text in step.files.items():
                    file = Path(context_dir) / rel
                    file.parent.mkdir(parents=True, exist_ok=True)
                    file.write_text(text)
                _run_local(step.build_command(context_dir))
        _run_local(spec.save_command(archive))


def build_on_host(specs: list[ImageSpec], docker: DockerState, build_dir: str) -> None:
    known = docker.images_known
    for base in sorted({s.base_tag for s in specs if s.base_tag} - docker.images):
        apt.packages(
            name="Install debootstrap (to make the local Debian base image)",
            packages=["debootstrap"],
            update=True,
            no_recommends=True,
            _if=if_missing(base, known),
        )
        server.shell(
            name=f"Make the base image {base} from Debian packages (debootstrap)",
            commands=[base_build_command(base)],
            _if=if_missing(base, known),
        )
    # each image's parent first (pip adds packages to it); one already there is not built
    steps = {step.tag: step for spec in specs for step in spec.build_order}
    for spec in steps.values():
        if known and spec.tag in docker.images:
            continue  # a parent already there
        directory = f"{build_dir}/{spec.inputs_hash[:12]}"
        upload_context(
            name=f"Upload the build context of {spec.tag}",
            spec=spec,
            directory=directory,
            _if=if_missing(spec.tag, known),
        )
        server.shell(
            name=f"Build the {spec.what}",
            commands=[spec.build_command(directory)],
            _if=if_missing(spec.tag, known),
        )


def ship_from_controller(
    specs: list[ImageSpec], docker: DockerState, cache: Path, build_dir: str
) -> None:
    for spec in specs:
        archive = str(cache / spec.archive_name)
        python.call(
            name=f"Build and save {spec.tag} on the controller (unless cached)",
            function=ensure_archive,
            spec=spec,
            archive=archive,
            _if=if_missing(spec.tag, docker.images_known),
        )
        load_archive(
            name=f"Upload and load the {spec.what}",
            archive=archive,
            remote=f"{build_dir}/{spec.archive_name}",
            _if=if_missing(spec.tag, docker.images_known),
        )


docker = context.docker_state(host)
mode = host.data.get("botpool_image_build") or "host"
if mode not in BUILD_MODES:
    raise ValueError(
        f"host {host.name}: botpool_image_build must be one of {BUILD_MODES}, not {mode!r}"
    )
# with images known, only the missing ones; otherwise every one, each checked when it runs
specs = [s for s in wanted_images() if not docker.images_known or s.tag not in docker.images]
build_dir = host.data.get("botpool_build_dir") or "/var/tmp/botpool-build"
if specs and mode == "host":
    build_on_host(specs, docker, build_dir)
elif specs:
    cache = Path(host.data.get("botpool_image_cache") or "~/.cache/botpool/images").expanduser()
    ship_from_controller(specs, docker, cache, build_dir)
