"""The pool image, built here for real: it keeps the contract botpool relies on (tasks,
templates, checks), from the local Debian base and from an official-style base, and no layer
keeps a build-time setting. (A bare VPS getting engine and image: tests/test_vps_e2e.py.)
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from botpool.core.image import BUILD_TIME_DIR

from .harness import images

pytestmark = pytest.mark.e2e(minutes=0.6)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def local_run(tag: str):
    def run(user: str | None, script: str) -> str:
        return docker("run", "--rm", *(["--user", user] if user else []), tag, "sh", "-c", script)

    return run


def assert_no_build_time_settings(tag: str, tmp_path: Path) -> None:
    """No layer, no history line, no environment variable holds the build-time settings."""
    config = json.loads(docker("image", "inspect", tag))[0]["Config"]
    assert not config["Entrypoint"], config["Entrypoint"]
    assert not [e for e in config["Env"] if e.startswith("PIP_")], config["Env"]
    assert config["Labels"]["botpool.image"] == "pool" and "botpool.managed" not in config["Labels"]
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag)
    assert BUILD_TIME_DIR not in history and "BEGIN CERTIFICATE" not in history
    archive = tmp_path / "image.tar"
    subprocess.run(["docker", "save", "-o", str(archive), tag], check=True)
    leaked = []
    with tarfile.open(archive) as outer:
        for member in outer.getmembers():
            if member.name.endswith("layer.tar"):
                with tarfile.open(fileobj=outer.extractfile(member)) as layer:
                    leaked += [n for n in layer.getnames() if "botpool-build-time" in n]
    assert leaked == []


def test_the_pool_image_from_the_local_base_keeps_the_contract(tmp_path):
    spec = images.pool_spec()
    assert images.ca_bundle(), "this test builds with the machine's CA bundle, as hosts here must"
    images.ensure_pool_image(spec)
    images.check_contract(local_run(spec.tag), spec)
    assert_no_build_time_settings(spec.tag, tmp_path)


def test_the_pool_image_from_an_official_style_base_keeps_the_contract(tmp_path):
    """The production path (FROM freqtradeorg/freqtrade), on a stand-in for the official image."""
    official = images.ensure_official_like()
    # an extra package, and a pin of one freqtrade has (idna 3.18 there)
    extra = ("requests-toolbelt==1.0.0", "idna==3.6")
    spec = images.pool_spec(base=official, pip_packages=extra)
    images.ensure_pool_image(spec)
    run = local_run(spec.tag)
    images.check_contract(run, spec)
    assert_no_build_time_settings(spec.tag, tmp_path)
    # both import for every user (ftuser, root, a bot's uid), the pin before freqtrade's own;
    # what freqtrade already had (requests, for the toolbelt) was not copied again
    show = "python3 -c 'import idna, requests_toolbelt; print(idna.__version__)'"
    for user, home in ((None, "/home/ftuser"), ("0", "/"), ("209001", "/tmp")):
        assert run(user, f"HOME={home} {show}").strip() == "3.6", user
    where = "find /opt/botpool-packages -type d -name site-packages -o -name dist-packages"
    assert run(None, f"ls $({where})").split() == [
        "idna",
        "idna-3.6.dist-info",
        "requests_toolbelt",
        "requests_toolbelt-1.0.0.dist-info",
    ]
