"""Images built on this machine for tests, each once (cached by tag), the way botpool builds them.

The commands come from botpool.core.image, so a test image is built exactly like the ones a
deploy builds on a host or on the controller.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from botpool.core import schema
from botpool.core.image import (
    LOCAL_BASE,
    SUPERVISOR_VERSION,
    ImageSpec,
    base_build_command,
    image_spec,
)

FREQTRADE_VERSION: str = schema.DEFAULTS["freqtrade_version"].default
# pip inside containers trusts this machine's CA bundle (MACHINE-NOTES: TLS-intercepting proxy)
CA_BUNDLE = Path(os.environ.get("BOTPOOL_TEST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
CACHE = Path(os.environ.get("BOTPOOL_TEST_CACHE", "~/.cache/botpool/images")).expanduser()


def sh(script: str, stdin: bytes | None = None) -> str:
    """Run bash on this machine; a failure raises with its stderr."""
    proc = subprocess.run(
        ["bash", "-c", "set -e\n" + script], input=stdin, capture_output=True, check=False
    )
    if proc.returncode:
        raise RuntimeError(f"{script.strip()[:300]}\n-> {proc.stderr.decode()[-3000:]}")
    return proc.stdout.decode()


def has_image(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


@contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """One builder at a time across test sessions (parallel sessions share this engine)."""
    with open(f"/tmp/botpool-test-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(tag: str, files: Mapping[str, str], command: Callable[[str], str] | None = None) -> str:
    """Build an image from a context {path: text} unless the tag exists; returns the tag.

    command: shell that builds from a context directory (default: a plain `docker build`).
    """
    with machine_lock("build"):
        if has_image(tag):
            return tag
        directory = tempfile.mkdtemp(prefix="botpool-test-build-")
        try:
            for rel, text in files.items():
                path = Path(directory) / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            sh(command(directory) if command else f"docker build -q -t {tag} {directory}")
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return tag


def ensure_base() -> str:
    """The local Debian base, made with debootstrap like a host makes it."""
    with machine_lock("base"):
        if not has_image(LOCAL_BASE):
            sh(base_build_command(LOCAL_BASE))
    return LOCAL_BASE


def ca_bundle() -> str | None:
    return CA_BUNDLE.read_text() if CA_BUNDLE.exists() else None


def pool_spec(base: str = "local", pip_packages: tuple[str, ...] = ()) -> ImageSpec:
    return image_spec(FREQTRADE_VERSION, base, ca_bundle=ca_bundle(), pip_packages=pip_packages)


def ensure_pool_image(spec: ImageSpec) -> str:
    """A pool image, built by its own build command (so with its labels and pruning)."""
    if spec.base_tag:
        ensure_base()
    for step in spec.build_order:  # its parent first
        build(step.tag, step.files, step.build_command)
    return spec.tag


def saved_archive(spec: ImageSpec) -> Path:
    """The image as `docker save | gzip`, in the controller cache tasks/image.py also uses."""
    archive = CACHE / spec.archive_name
    with machine_lock("save"):
        if not archive.exists():
            ensure_pool_image(spec)
            CACHE.mkdir(parents=True, exist_ok=True)
            sh(spec.save_command(str(archive)))
    return archive


# A stand-in for the official freqtradeorg/freqtrade image (no registry answers here), laid
# out the same way: python3 on PATH, freqtrade installed with `pip install --user` as ftuser
# (uid 1000) so it lives in ~ftuser/.local, WORKDIR /freqtrade, ENTRYPOINT ["freqtrade"].
OFFICIAL_LIKE_DOCKERFILE = """\
FROM {base}
ENV PATH=/home/ftuser/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 FT_APP_ENV=docker
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3 python3-pip python3-venv \\
      ca-certificates sudo \\
 && rm -rf /var/lib/apt/lists/* /usr/lib/python3*/EXTERNALLY-MANAGED \\
 && useradd -u 1000 -G sudo -U -m -s /bin/bash ftuser \\
 && mkdir /freqtrade && chown ftuser:ftuser /freqtrade
WORKDIR /freqtrade
COPY ca.pem /tmp/ca.pem
USER ftuser
RUN PIP_CERT=/tmp/ca.pem pip install --user --no-cache-dir freqtrade=={version}
ENTRYPOINT ["freqtrade"]
CMD ["trade"]
"""


def ensure_official_like() -> str:
    """Build the stand-in official image once; returns its tag."""
    files = {
        "Dockerfile": OFFICIAL_LIKE_DOCKERFILE.format(
            base=ensure_base(), version=FREQTRADE_VERSION
        ),
        "ca.pem": ca_bundle() or "",
    }
    digest = hashlib.sha256(files["Dockerfile"].encode()).hexdigest()[:12]
    return build(f"botpool-test/freqtrade-like:{FREQTRADE_VERSION}-{digest}", files)


# What every user of a pool image may count on, checked inside the image as one shell script.
CONTRACT = """
set -e
echo "user $(id -un) $(id -u)"
for tool in freqtrade supervisord supervisorctl python3; do command -v $tool >/dev/null; done
echo "supervisor $(supervisord --version)"
freqtrade --version | grep -q "freqtrade {version}"
python3 -c 'import freqtrade; print("imports freqtrade")'
"""


def check_contract(run_in_image: Callable[[str | None, str], str], spec: ImageSpec) -> None:
    """run_in_image(user, script) -> output: the same checks wherever the image runs (here,
    or on a VPS that built it or was shipped it)."""
    out = run_in_image(None, CONTRACT.format(version=spec.freqtrade_version))
    assert "user ftuser 1000" in out
    assert f"supervisor {SUPERVISOR_VERSION}" in out and "imports freqtrade" in out
    # also for root (supervisord) and nobody (the sandbox), whatever their HOME
    for user in ("0", "65534"):
        script = "HOME=/ python3 -c 'import freqtrade' && echo ok"
        assert run_in_image(user, script).strip() == "ok", user
