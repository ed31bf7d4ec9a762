"""Pool images: what to build and what to call it. Pure: no Docker, no pyinfra, no network.

An image is named by a hash of its inputs (`botpool/pool:<freqtrade version>-<12 hex>`):
same inputs, same tag, nothing is rebuilt; a new freqtrade version, base or package list
gives a new tag, hence a new container spec hash, hence each affected pool is recreated.

The CA bundle and the pip index are *build-time only*: they reach pip in a builder stage of
a multi-stage Dockerfile and the final image copies only the installed packages out of it.
So they are in none of the final image's layers, its environment or its history, and they
are not part of the tag (a rotated CA certificate must not rebuild every image).

Everything here returns values or shell text; tasks/image.py runs it on hosts (or on the
controller) and tests/harness runs it on this machine.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import botpool
from botpool import payloads
from botpool.core import names
from botpool.core.templating import render_template

if TYPE_CHECKING:  # only pool_images needs the layout; keep this module importable alone
    from botpool.core.layout import Layout

SUPERVISOR_VERSION = "4.3.0"
# uv installs freqtrade in the builder stage (pip only installs uv, in a virtualenv the final
# image does not copy): a bare host's build took 80 s instead of 103-127 (README "Dependencies")
UV_VERSION = "0.13.9"
LOCAL = "local"  # `image.base: local`: build from a Debian base made here, no registry needed
# Debian trixie: its python3 is 3.13, whose immortal objects let zygote bots share the
# preloaded heap (payloads/zygote.py immortalize; README "Density")
LOCAL_BASE = "botpool/debian:trixie"
DEBIAN_SUITE = "trixie"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
REPOSITORY = "botpool/pool"

# Build-time context files: in the builder stage only, excluded from the inputs hash.
PIP_CONF = "build-time/pip.conf"
UV_CONF = "build-time/uv.toml"
CA_BUNDLE = "build-time/ca.pem"
BUILD_TIME_FILES = (PIP_CONF, UV_CONF, CA_BUNDLE)
# Where the builder stage puts them (the Dockerfile template uses the same path).
BUILD_TIME_DIR = "/tmp/botpool-build-time"

# Image labels: `botpool.image` marks every image botpool builds (the host snapshot and
# DOCKER_STATE_COMMAND list images by it). Deliberately NOT `botpool.managed`: containers
# inherit image labels, and botpool.managed must keep meaning "a container botpool created".
IMAGE_LABEL = names.IMAGE


@dataclass(frozen=True)
class ImageSpec:
    """One pool image: its tag, how to build it, and where it starts from."""

    freqtrade_version: str
    tag: str  # botpool/pool:<version>-<first 12 hex of inputs_hash>
    inputs_hash: str  # sha256 of every build input except the build-time-only files
    base: str  # "local" or the image reference the Dockerfile starts FROM
    base_tag: str | None  # the local Debian base to make first (base "local"), else None
    files: Mapping[str, str] = field(compare=False)  # build context: relative path -> text
    role: str = "pool"  # pool | monitoring: the image's botpool.image label
    # the image this one's builder starts from, made first (a local base's image with extra
    # packages: pip adds only them to its parent's freqtrade); None: none
    parent: ImageSpec | None = None

    @property
    def build_order(self) -> list[ImageSpec]:
        """This image's parents, the first to build first, then this image."""
        return [*(self.parent.build_order if self.parent else []), self]

    @property
    def what(self) -> str:
        """How converge output names it."""
        if self.role == "pool":
            return f"pool image {self.tag} (freqtrade {self.freqtrade_version})"
        return f"{self.role} image {self.tag}"

    @property
    def dockerfile(self) -> str:
        return self.files["Dockerfile"]

    @property
    def labels(self) -> dict[str, str]:
        """Labels given at build time; kept out of the Dockerfile so they do not change the tag."""
        freqtrade = {"botpool.freqtrade": self.freqtrade_version} if self.role == "pool" else {}
        return {
            IMAGE_LABEL: self.role,
            **freqtrade,
            "botpool.inputs-hash": self.inputs_hash,
            "botpool.version": botpool.__version__,
        }

    @property
    def archive_name(self) -> str:
        """File name of this image saved with `docker save | gzip` (controller cache, uploads)."""
        return self.tag.replace("/", "_").replace(":", "_") + ".tar.gz"

    def build_command(self, directory: str) -> str:
        """Shell that builds the image from a context directory holding `files`.

        Success or not, the builder stage is pruned and the context removed afterwards: they
        are the only places the build-time CA bundle and pip settings ever were. The output
        goes to a log beside the context, shown (and kept) only when the build fails: a
        quiet build would hide why pip failed.
        """
        d = shlex.quote(directory.rstrip("/"))
        labels = " ".join(f"--label {shlex.quote(f'{k}={v}')}" for k, v in self.labels.items())
        return (
            "status=0\n"  # (`|| status=$?` and not `; status=$?`: callers may `set -e`)
            f"docker build --force-rm --tag {shlex.quote(self.tag)} {labels} {d} >{d}.log 2>&1"
            " || status=$?\n"
            "docker image prune --force --filter label=botpool.stage=builder >/dev/null\n"
            f"rm -rf {d}\n"
            f'if [ "$status" -ne 0 ]; then tail -n 60 {d}.log >&2; '
            f"echo 'the whole build log: '{d}.log >&2; exit 1; fi\n"
            f"rm -f {d}.log"
        )

    def save_command(self, path: str) -> str:
        """Shell that writes the image to a gzip archive atomically (`docker load` reads it)."""
        p = shlex.quote(path)
        return f"docker save {shlex.quote(self.tag)} | gzip -1 > {p}.part && mv -f {p}.part {p}"


@dataclass(frozen=True)
class DockerState:
    """What a host's Docker has, as far as engine and image tasks care."""

    installed: bool | None  # dockerd and docker are on the host (any package); None: not known
    engine: str | None  # server version; None when no engine answers
    images: frozenset[str] = frozenset()  # repository:tag of images botpool built

    @property
    def images_known(self) -> bool:
        """False when an engine may be there but did not answer: its images show once it runs."""
        return self.engine is not None or self.installed is False


# One command for both tasks: engine (and its client) installed?, answering?, botpool's images.
DOCKER_STATE_COMMAND = (
    "command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && echo installed; "
    "v=$(docker version --format '{{.Server.Version}}' 2>/dev/null) && echo \"engine $v\" && "
    f"docker images --filter label={IMAGE_LABEL} --format 'image {{{{.Repository}}}}:{{{{.Tag}}}}'"
    "; true"
)


def parse_docker_state(lines: Sequence[str]) -> DockerState:
    """Read the output of DOCKER_STATE_COMMAND."""
    words = [line.strip().partition(" ") for line in lines if line.strip()]
    engine = next((rest for word, _, rest in words if word == "engine" and rest), None)
    return DockerState(
        installed=any(word == "installed" for word, _, _ in words),
        engine=engine,
        images=frozenset(rest for word, _, rest in words if word == "image"),
    )


def pip_conf(ca_bundle: str | None, pip_index_url: str | None) -> str:
    """pip's configuration for the builder stage (what PIP_CERT / PIP_INDEX_URL would say)."""
    lines = ["[global]", "disable-pip-version-check = true"]
    if pip_index_url:
        lines.append(f"index-url = {pip_index_url}")
    if ca_bundle:
        lines.append(f"cert = {BUILD_TIME_DIR}/ca.pem")
    return "\n".join(lines) + "\n"


def uv_conf(pip_index_url: str | None) -> str:
    """uv's configuration for the builder stage: the same index as pip's (the CA bundle
    reaches uv as SSL_CERT_FILE, set in the Dockerfile when the bundle is not empty)."""
    return f"index-url = {json.dumps(pip_index_url)}\n" if pip_index_url else ""


def inputs_hash(files: Mapping[str, str]) -> str:
    """sha256 over the build context, build-time-only files left out.

    The Dockerfile's comment lines are left out too (Docker ignores them): rewording a
    comment must not rebuild and recreate every pool of a fleet.
    """
    digest = hashlib.sha256()
    for path in sorted(set(files) - set(BUILD_TIME_FILES)):
        text = _without_comments(files[path]) if path == "Dockerfile" else files[path]
        digest.update(f"{path}\0{len(text)}\0{text}".encode())
    return digest.hexdigest()


_DIRECTIVE = re.compile(r"#\s*(syntax|escape|check)\s*=", re.I)  # these do change the build


def _without_comments(dockerfile: str) -> str:
    return "\n".join(
        line
        for line in dockerfile.splitlines()
        if not line.lstrip().startswith("#") or _DIRECTIVE.match(line.lstrip())
    )


def image_spec(
    freqtrade_version: str,
    base: str = LOCAL,
    ca_bundle: str | None = None,
    pip_index_url: str | None = None,
    pip_packages: Sequence[str] = (),
    frequi: bool = False,
) -> ImageSpec:
    """The pool image for one freqtrade version.

    base: "local" (a Debian base made on the building machine with debootstrap) or an image
    reference to start FROM, e.g. "freqtradeorg/freqtrade:{version}" ({version} is replaced).
    ca_bundle: PEM text pip trusts during the build (TLS-intercepting proxies).
    pip_index_url: the index pip uses during the build. Neither changes the tag.
    pip_packages: extra requirements the strategies import; they change the tag. From the
    local base, pip adds them to the image without them (its parent, built first, then kept
    for the next change of the list) instead of installing freqtrade again.
    frequi: (base "local") run `freqtrade install-ui` in the builder stage, so that bots
    serve FreqUI; it downloads from GitHub at build time. The official image ships FreqUI.
    """
    local = base == LOCAL
    parent = (
        image_spec(freqtrade_version, base, ca_bundle, pip_index_url, (), frequi)
        if local and pip_packages
        else None
    )
    dockerfile = render_template(
        "Dockerfile.j2",
        freqtrade_version=freqtrade_version,
        local=local,
        parent=parent.tag if parent else None,
        base=LOCAL_BASE if local else base.replace("{version}", freqtrade_version),
        supervisor_version=SUPERVISOR_VERSION,
        uv_version=UV_VERSION,
        pip_packages=" ".join(shlex.quote(p) for p in pip_packages),
        build_time_dir=BUILD_TIME_DIR,
        frequi=frequi and local,
    )
    files = {
        "Dockerfile": dockerfile,
        # Always present (maybe empty) so the Dockerfile, hence the tag, does not depend on them.
        PIP_CONF: pip_conf(ca_bundle, pip_index_url),
        UV_CONF: uv_conf(pip_index_url),
        CA_BUNDLE: ca_bundle or "",
    }
    digest = inputs_hash(files)
    return ImageSpec(
        freqtrade_version=freqtrade_version,
        tag=f"{REPOSITORY}:{freqtrade_version}-{digest[:12]}",
        inputs_hash=digest,
        base=LOCAL if local else base.replace("{version}", freqtrade_version),
        base_tag=LOCAL_BASE if local else None,
        files=files,
        parent=parent,
    )


MONITORING_REPOSITORY = "botpool/monitoring"
# Debian trixie's packages: Prometheus 2.53, Alertmanager 0.28, node exporter 1.9,
# prometheus_client and the Docker SDK for botpool's exporter, supervisor to run all four
MONITORING_PACKAGES = (
    "prometheus",
    "prometheus-alertmanager",
    "prometheus-node-exporter",
    "python3-prometheus-client",
    "python3-docker",
    "supervisor",
)


def monitoring_image_spec() -> ImageSpec:
    """The monitoring image: Debian's own packages on the local Debian base, no registry and
    no pip (so no CA bundle or index either). Its tag hashes its Dockerfile."""
    dockerfile = render_template(
        "monitoring.Dockerfile.j2", base=LOCAL_BASE, packages=" ".join(MONITORING_PACKAGES)
    )
    files = {"Dockerfile": dockerfile}
    digest = inputs_hash(files)
    return ImageSpec(
        freqtrade_version="",
        tag=f"{MONITORING_REPOSITORY}:{DEBIAN_SUITE}-{digest[:12]}",
        inputs_hash=digest,
        base=LOCAL,
        base_tag=LOCAL_BASE,
        files=files,
        role="monitoring",
    )


def base_build_command(
    tag: str = LOCAL_BASE, suite: str = DEBIAN_SUITE, mirror: str = DEBIAN_MIRROR
) -> str:
    """Shell that makes the local Debian base image (needs root, debootstrap and Docker).

    `docker import` gives an image with no environment at all, so PATH and LANG are set here;
    the label lets the host snapshot see it like every other image botpool built.
    """
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        f"LABEL {IMAGE_LABEL}=base",
        'CMD ["/bin/bash"]',
    ]
    change_args = " ".join(f"--change {shlex.quote(c)}" for c in changes)
    return payloads.shell(
        "debian-base.sh", suite=suite, mirror=mirror, tag=tag, changes=change_args
    )


def pool_images(layout: Layout) -> dict[str, ImageSpec]:
    """One image per freqtrade version the layout uses (the default one always).

    The CA bundle is the text validation read and checked (PEM certificates only).
    """
    settings = layout.image
    ca = settings.ca_bundle_pem
    versions = {layout.freqtrade_version} | {u.freqtrade_version for u in layout.users}
    return {
        v: image_spec(
            v, settings.base, ca, settings.pip_index_url, settings.pip_packages, settings.frequi
        )
        for v in sorted(versions)
    }
