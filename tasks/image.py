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
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import FileUploadCommand, FunctionCommand, operation
from pyinfra.operations import apt

from botpool.core.image import DockerState, ImageSpec, base_build_command
from tasks import context
from tasks.facts import ImagePresent

BUILD_MODES = ("host", "controller")


def _missing(tag: str, images: frozenset[str] | None) -> bool:
    """Whether the host lacks an image: from the images read before the run, or (None: the
    engine did not answer then) asked now, as the operation runs."""
    return tag not in images if images is not None else not host.get_fact(ImagePresent, tag=tag)


def if_missing(tag: str, images: frozenset[str] | None) -> list[Callable[[], bool]]:
    """`_if` conditions for an operation that only makes sense while an image is missing: none
    when the images read before the run are the truth (the caller only asks for missing
    images), else the question asked as the operation runs."""
    return [] if images is not None else [lambda: _missing(tag, None)]


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


def upload_context(spec: ImageSpec, directory: str) -> Iterator[str | FileUploadCommand]:
    """Commands that write an image's build context into a fresh root-only directory."""
    d = shlex.quote(directory)
    yield f"rm -rf {d} && install -d -m 0700 {d}"
    for sub in sorted({os.path.dirname(path) for path in spec.files} - {""}):
        yield f"install -d -m 0700 {shlex.quote(f'{directory}/{sub}')}"
    for path in sorted(spec.files):
        yield FileUploadCommand(BytesIO(spec.files[path].encode()), f"{directory}/{path}")


@operation()
def deliver(
    spec: ImageSpec,
    mode: str,
    steps: list[ImageSpec],
    base: str | None,
    images: frozenset[str] | None,
    build_dir: str,
    archive: str,
):
    """Get one image onto the host, the way its `botpool_image_build` says. One operation for
    both ways: a host that builds and a host that is shipped to work at the same time, not
    one after the other (pyinfra runs an operation on every host at once, operations in turn).

    host: the Debian base first when `base` is given and missing (debootstrap, installed if
    missing), then each of `steps` missing (a parent first), from its uploaded context.
    controller: `archive` made on the controller unless cached, uploaded, `docker load`ed.
    images: the host's images read before the run, or None (asked as the operation runs).
    """
    if mode == "host":
        if base and _missing(base, images):
            yield from apt.packages._inner(
                packages=["debootstrap"], update=True, no_recommends=True
            )
            yield base_build_command(base)
        for step in steps:
            if step.tag == spec.tag or _missing(step.tag, images):
                directory = f"{build_dir}/{step.inputs_hash[:12]}"
                yield from upload_context(step, directory)
                yield step.build_command(directory)
        return
    remote = shlex.quote(f"{build_dir}/{spec.archive_name}")
    yield FunctionCommand(ensure_archive, (spec, archive), {})
    yield f"install -d -m 0700 {shlex.quote(build_dir)}"
    yield FileUploadCommand(archive, f"{build_dir}/{spec.archive_name}")
    yield f"docker load --quiet --input {remote} >/dev/null && rm -f {remote}"


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


def deliver_all(specs: list[ImageSpec], docker: DockerState, mode: str) -> None:
    """One `deliver` per missing image. A parent two images share is built once, as is the
    Debian base (by the first image that needs it)."""
    images = frozenset(docker.images) if docker.images_known else None
    build_dir = host.data.get("botpool_build_dir") or "/var/tmp/botpool-build"
    cache = Path(host.data.get("botpool_image_cache") or "~/.cache/botpool/images").expanduser()
    planned: set[str] = set()  # tags an earlier `deliver` of this run makes
    for spec in specs:
        steps = [s for s in spec.build_order if s.tag not in planned]
        base = spec.base_tag if spec.base_tag not in planned else None
        planned |= {s.tag for s in steps} | ({spec.base_tag} if spec.base_tag else set())
        if mode == "host":
            made = f", its base {base} made with debootstrap if missing" if base else ""
            name = f"Build the {spec.what} on the host{made}"
        else:
            name = f"Ship the {spec.what} from the controller (built and saved there unless cached)"
        deliver(
            name=name,
            spec=spec,
            mode=mode,
            steps=steps,
            base=base,
            images=images,
            build_dir=build_dir,
            archive=str(cache / spec.archive_name),
            _if=if_missing(spec.tag, images),
        )


docker = context.docker_state(host)
mode = host.data.get("botpool_image_build") or "host"
if mode not in BUILD_MODES:
    raise ValueError(
        f"host {host.name}: botpool_image_build must be one of {BUILD_MODES}, not {mode!r}"
    )
# with images known, only the missing ones; otherwise every one, each checked when it runs
specs = [s for s in wanted_images() if not docker.images_known or s.tag not in docker.images]
if specs:
    deliver_all(specs, docker, mode)
