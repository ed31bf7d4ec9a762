"""The shell payloads (botpool/payloads/*.sh) run for real, with stand-ins on PATH for the
programs that need root or an engine (doubles: docker, dockerd, pidof), and pass shellcheck."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from botpool import payloads

SCRIPTS = sorted((Path(payloads.__file__).parent).glob("*.sh"))


def stand_ins(tmp_path: Path, alone: bool = False, **programs: str) -> dict[str, str]:
    """PATH with the stand-ins first; alone: nothing else on it (this machine's own docker
    must not be found)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir(exist_ok=True)
    for name, body in programs.items():
        (bin_ / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_ / name).chmod(0o755)
    return {"PATH": str(bin_) if alone else f"{bin_}:/usr/bin:/bin", "STATE": str(tmp_path)}


def run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=30
    )


def test_every_shell_payload_passes_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed: `make lint` installs it")
    assert SCRIPTS, "no shell payloads found"
    proc = subprocess.run(["shellcheck", "-s", "sh", *map(str, SCRIPTS)], capture_output=True)
    assert proc.returncode == 0, proc.stdout.decode()


def test_a_silent_engine_is_started_once_and_waited_for(tmp_path):
    env = stand_ins(
        tmp_path,
        docker='test -f "$STATE/up"',
        pidof="exit 1",  # no dockerd running
        setsid='echo started >> "$STATE/starts"; touch "$STATE/up"',
    )
    proc = run(payloads.shell("start-engine.sh", timeout=5), env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "starts").read_text() == "started\n"


def test_an_engine_that_answers_is_left_alone(tmp_path):
    env = stand_ins(tmp_path, docker="exit 0", setsid='touch "$STATE/started"')
    assert run(payloads.shell("start-engine.sh", timeout=5), env).returncode == 0
    assert not (tmp_path / "started").exists()


def test_a_starting_engine_is_waited_for_not_started_twice(tmp_path):
    env = stand_ins(
        tmp_path,
        docker='n=$(cat "$STATE/n" 2>/dev/null || echo 0); echo $((n + 1)) > "$STATE/n"; '
        '[ "$n" -ge 2 ]',
        pidof="exit 0",  # a dockerd is there, not answering yet
        setsid='touch "$STATE/started"',
    )
    assert run(payloads.shell("start-engine.sh", timeout=10), env).returncode == 0
    assert not (tmp_path / "started").exists()


def test_an_engine_that_never_answers_fails_with_a_reason(tmp_path):
    env = stand_ins(tmp_path, docker="exit 1", pidof="exit 0")
    proc = run(payloads.shell("start-engine.sh", timeout=1), env)
    assert proc.returncode == 1
    assert "the Docker engine did not answer within 1 s" in proc.stderr


def test_a_script_without_its_input_stops_before_doing_anything(tmp_path):
    env = stand_ins(tmp_path, docker='touch "$STATE/asked"')
    proc = run(payloads.shell("start-engine.sh"), env)
    assert proc.returncode != 0 and "seconds to wait for the engine" in proc.stderr
    assert not (tmp_path / "asked").exists()


def test_inputs_are_quoted_and_names_checked():
    assert payloads.shell("start-engine.sh", timeout="1; rm -rf /").startswith(
        "timeout='1; rm -rf /'\n"
    )
    with pytest.raises(ValueError, match="not a shell variable name"):
        payloads.shell("start-engine.sh", **{"PATH=x": 1})


@pytest.mark.parametrize("client_in_engine_package", [True, False], ids=["debian12", "debian13"])
def test_the_engine_is_installed_with_its_client(tmp_path, client_in_engine_package):
    """Debian 13's docker.io only recommends docker-cli, the client: it is installed when the
    engine's package did not bring a `docker`."""
    bin_ = tmp_path / "bin"
    client = f'printf "#!/bin/sh\\n" > {bin_}/docker; /bin/chmod +x {bin_}/docker'
    brings = client if client_in_engine_package else ":"
    env = stand_ins(
        tmp_path,
        alone=True,
        **{
            "apt-get": f'echo "$*" >> "$STATE/apt"; case "$*" in *docker.io*) {brings};; '
            f"*docker-cli*) {client};; esac"
        },
    )
    proc = run(payloads.shell("install-engine.sh"), env)
    assert proc.returncode == 0, proc.stderr
    installs = [line for line in (tmp_path / "apt").read_text().splitlines() if "install" in line]
    expected = ["docker.io"] + ([] if client_in_engine_package else ["docker-cli"])
    assert [line.split()[-1] for line in installs] == expected
    assert all("--no-install-recommends" in line for line in installs)


def test_an_engine_without_its_client_is_said_at_once(tmp_path):
    env = stand_ins(tmp_path, alone=True, setsid='touch "$STATE/started"')
    proc = run(payloads.shell("start-engine.sh", timeout=30), env)
    assert proc.returncode == 1 and "no docker client on this host" in proc.stderr
    assert not (tmp_path / "started").exists()
