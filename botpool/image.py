"""Pool images: what to build, named by a hash of their inputs. Pure.

Same inputs, same tag: nothing is rebuilt. A new freqtrade version (or Dockerfile) gives a
new tag, hence a new container spec hash, hence each affected pool is recreated.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path

from botpool.layout import ImageSettings, Layout
from botpool.render import render_template

SUPERVISOR_VERSION = "4.3.0"
LOCAL_BASE = "botpool/debian:bookworm"  # debootstrap + docker import, where no registry answers
DEBIAN_MIRROR = "http://deb.debian.org/debian"


def base_build_command(tag: str = LOCAL_BASE, mirror: str = DEBIAN_MIRROR) -> str:
    """Shell that builds the local Debian base image (needs debootstrap and root)."""
    return f"""
set -e
rootfs=$(mktemp -d /var/tmp/botpool-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase bookworm "$rootfs" {shlex.quote(mirror)} >/dev/null
tar -C "$rootfs" -c . | docker import --change 'LABEL botpool.image=base' - {shlex.quote(tag)}
"""


@dataclass(frozen=True)
class ImageSpec:
    freqtrade_version: str
    tag: str  # botpool/pool:<version>-<12 hex of the inputs hash>
    base_tag: str | None  # the local Debian base to build first, if any
    dockerfile: str
    ca_bundle: str  # build-time only; not part of the image's identity
    pip_index_url: str | None

    def context(self) -> dict[str, str]:
        """The build context: file name -> text."""
        return {"Dockerfile": self.dockerfile, "extra-ca.crt": self.ca_bundle}

    def build_args(self) -> list[str]:
        return ["--build-arg", f"PIP_INDEX_URL={self.pip_index_url}"] if self.pip_index_url else []


def image_spec(settings: ImageSettings, freqtrade_version: str, ca_bundle: str = "") -> ImageSpec:
    local = settings.base == "local"
    dockerfile = render_template(
        "Dockerfile.j2",
        freqtrade_version=freqtrade_version,
        local_base=local,
        base_tag=LOCAL_BASE,
        base=settings.base.replace("{version}", freqtrade_version),
        supervisor_version=SUPERVISOR_VERSION,
        pip_packages=" ".join(shlex.quote(p) for p in settings.pip_packages),
    )
    digest = hashlib.sha256(dockerfile.encode()).hexdigest()[:12]
    return ImageSpec(
        freqtrade_version,
        f"botpool/pool:{freqtrade_version}-{digest}",
        LOCAL_BASE if local else None,
        dockerfile,
        ca_bundle,
        settings.pip_index_url,
    )


def pool_images(layout: Layout) -> dict[str, ImageSpec]:
    """One image per freqtrade version the layout uses (the default one always)."""
    ca = ""
    if layout.image.ca_bundle:
        ca = (Path(layout.file).parent / layout.image.ca_bundle).expanduser().read_text()
    versions = {layout.freqtrade_version} | {u.freqtrade_version for u in layout.users}
    return {v: image_spec(layout.image, v, ca) for v in sorted(versions)}
