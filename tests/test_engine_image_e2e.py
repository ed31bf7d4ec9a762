"""The Docker engine and the pool image, for real: images built here, bare VPS hosts over SSH.

- the pool image keeps the contract botpool relies on (tasks, templates, checks), from the
  local Debian base and from an official-style base;
- tasks/engine.py + tasks/image.py turn a bare VPS into a host that runs the pool image, in
  both ways an image gets there (built on the host, shipped from the controller), and a
  second run changes nothing and costs one remote command.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tarfile
from pathlib import Path

import pytest

from botpool.core.image import BUILD_TIME_DIR, SUPERVISOR_VERSION, ImageSpec

from .harness import images
from .harness.vps import run_pyinfra

pytestmark = pytest.mark.e2e
pytest_plugins = ["tests.harness.vps"]  # the ssh_key and vps_factory fixtures

DEPLOY = "tests/harness/engine_image_deploy.py"
# What every user of a pool image may count on, checked inside the image as one shell script.
CONTRACT = """
set -e
echo "user $(id -un) $(id -u)"
for tool in freqtrade supervisord supervisorctl python3; do command -v $tool >/dev/null; done
echo "supervisor $(supervisord --version)"
freqtrade --version | grep -q "freqtrade {version}"
python3 -c 'import freqtrade; print("imports freqtrade")'
"""


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def check_contract(run_in_image, spec: ImageSpec) -> None:
    """run_in_image(user, script) -> output: the same checks wherever the image runs."""
    out = run_in_image(None, CONTRACT.format(version=spec.freqtrade_version))
    assert "user ftuser 1000" in out
    assert f"supervisor {SUPERVISOR_VERSION}" in out and "imports freqtrade" in out
    # also for root (supervisord) and nobody (the sandbox), whatever their HOME
    for user in ("0", "65534"):
        script = "HOME=/ python3 -c 'import freqtrade' && echo ok"
        assert run_in_image(user, script).strip() == "ok", user


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
    check_contract(local_run(spec.tag), spec)
    assert_no_build_time_settings(spec.tag, tmp_path)


def test_the_pool_image_from_an_official_style_base_keeps_the_contract(tmp_path):
    """The production path (FROM freqtradeorg/freqtrade), on a stand-in for the official image."""
    official = images.ensure_official_like()
    spec = images.pool_spec(base=official, pip_packages=("requests-toolbelt==1.0.0",))
    images.ensure_pool_image(spec)
    run = local_run(spec.tag)
    check_contract(run, spec)
    assert_no_build_time_settings(spec.tag, tmp_path)
    # the extra package imports for every user; what freqtrade already had was not copied again
    for user in (None, "0"):
        run(user, "HOME=/ python3 -c 'import requests_toolbelt'")
    assert run(
        None, "ls $(cat /usr/local/lib/python3*/*-packages/botpool-packages.pth)"
    ).split() == [
        "requests_toolbelt",
        "requests_toolbelt-1.0.0.dist-info",
    ]


@pytest.mark.parametrize("build", ["controller", "host"])
def test_a_bare_vps_gets_the_engine_and_the_pool_image_over_ssh(vps_factory, tmp_path, build):
    spec = images.pool_spec()
    if build == "controller":
        images.saved_archive(spec)  # built and saved once per machine, like a controller does
    vps = vps_factory()
    assert vps.exec("command -v dockerd docker || echo none").strip() == "none"  # bare
    inventory = vps.write_inventory(
        tmp_path / "inventory.py", botpool_image_build=build, botpool_image_cache=str(images.CACHE)
    )

    first = run_pyinfra(inventory, DEPLOY)
    assert first.returncode == 0, first.output[-4000:]
    assert first.changed == first.operations  # a bare host: everything had to be done
    assert first.operations[:2] == [
        "tasks/engine.py | Install the Docker engine (docker.io)",
        "tasks/engine.py | Start the Docker engine and wait until it answers",
    ]
    image_ops = [op for op in first.operations if op.startswith("tasks/image.py")]
    if build == "controller":
        assert image_ops[-1] == f"tasks/image.py | Upload and load the pool image {spec.tag}"
    else:
        assert any("(debootstrap)" in op for op in image_ops)
        assert image_ops[-1].startswith(f"tasks/image.py | Build the pool image {spec.tag}")

    def run_in_vps(user: str | None, script: str) -> str:
        as_user = f"--user {user}" if user else ""
        return vps.exec(f"docker run --rm {as_user} {spec.tag} sh -c {shlex.quote(script)}")

    check_contract(run_in_vps, spec)
    assert vps.exec("ls -A /var/tmp/botpool-build").strip() == ""  # contexts and archives gone

    again = run_pyinfra(inventory, DEPLOY)
    assert again.returncode == 0 and again.operations == [], again.output[-4000:]
    assert again.commands == 1, again.output  # one fact: engine answers, image present

    # an engine that stopped (a rebooted host without systemd) is started, not reinstalled
    vps.exec(
        "kill $(cat /var/run/docker.pid); while [ -e /var/run/docker.pid ]; do sleep 0.2; done"
    )
    restart = run_pyinfra(inventory, DEPLOY)
    assert restart.returncode == 0, restart.output[-4000:]
    assert restart.changed == [
        "tasks/engine.py | Start the Docker engine and wait until it answers"
    ]
    assert spec.tag in vps.exec("docker images --format '{{.Repository}}:{{.Tag}}'")
