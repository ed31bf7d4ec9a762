"""botpool.hosts.remote without a network: which known_hosts files, which policy, which messages;
hung commands on this machine (@local). Over real SSH: test_remote_e2e.py."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pytest

from botpool.hosts.remote import (
    BoundedLocalBackend,
    CommandTimeout,
    RemoteError,
    RemoteHost,
    keyscan_target,
    known_hosts_files,
    unknown_host_policy,
)

from .conftest import MINIMAL


def test_known_hosts_files_follow_pyinfra(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = tmp_path / "ssh_config"
    config.write_text("Host vps1\n  UserKnownHostsFile ~/a_hosts /etc/b_hosts\n")
    assert known_hosts_files({}, "vps1") == [str(tmp_path / ".ssh" / "known_hosts")]
    assert known_hosts_files({"ssh_config_file": str(config)}, "vps1") == [
        str(tmp_path / "a_hosts"),
        "/etc/b_hosts",
    ]
    assert known_hosts_files({"ssh_config_file": str(config)}, "vps2") == [
        str(tmp_path / ".ssh" / "known_hosts")
    ]
    given = {"ssh_config_file": str(config), "ssh_known_hosts_file": "~/mine"}
    assert known_hosts_files(given, "vps1") == [str(tmp_path / "mine")]


def test_an_unknown_host_is_refused_unless_the_inventory_says_otherwise():
    assert unknown_host_policy({}) == "refuse"  # pyinfra's default (accept-new) is not taken
    assert unknown_host_policy({"ssh_strict_host_key_checking": "yes"}) == "refuse"
    assert unknown_host_policy({"ssh_strict_host_key_checking": "ask"}) == "refuse"
    assert unknown_host_policy({"ssh_strict_host_key_checking": "accept-new"}) == "record"
    assert unknown_host_policy({"ssh_strict_host_key_checking": "off"}) == "accept"
    assert unknown_host_policy({"ssh_strict_host_key_checking": "no"}) == "accept"
    with pytest.raises(RemoteError, match="'accept-new'"):
        unknown_host_policy({"ssh_strict_host_key_checking": ["yes"]})


def test_keyscan_hint_names_the_port():
    assert keyscan_target("[127.0.0.1]:2222") == "-p 2222 127.0.0.1"
    assert keyscan_target("vps1.example.com") == "vps1.example.com"


def test_a_wrong_setting_is_an_error_of_that_host_alone():
    host = RemoteHost("vps9", "vps9", "layout.yaml", {"ssh_strict_host_key_checking": "maybe"})
    with pytest.raises(RemoteError, match=r"^vps9: ssh_strict_host_key_checking is 'maybe'"):
        host.run("true", "anything")
    docker = RemoteHost("@docker/x", "x", "layout.yaml", {})
    with pytest.raises(RemoteError, match="^@docker/x: only @local and SSH hosts can be read"):
        docker.run("true", "anything")


def hung() -> str:
    """A command that never ends on its own, with a child; its odd duration finds them."""
    return f"sleep 600.{random.randrange(10**6):06d} & wait"


def running(command: str) -> bool:
    """Is any process of this command line (the shell or its sleep) still there, 3 s on?"""
    sleep = command.split()[1]
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        ps = subprocess.run(["pgrep", "-f", f"sleep {sleep}"], capture_output=True, text=True)
        if not ps.stdout.strip():
            return False
        time.sleep(0.1)
    return True


def test_a_hung_command_ends_in_an_error_naming_host_and_purpose():
    command = hung()
    host = RemoteHost("@local", "local", "layout.yaml", {"botpool_command_timeout": 2})
    assert host.run("echo fine", "a quick look") == ["fine"]
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        host.run(command, "the slow look")
    assert 2 <= time.monotonic() - started < 6
    assert str(caught.value) == (
        "@local: the slow look did not finish within 2 s (botpool_command_timeout); "
        "the host, its Docker engine or a bot may hang"
    )
    assert not running(command)  # `timeout` ended the command's whole process group


def test_the_reader_gives_up_even_if_the_hosts_own_bound_does_not_act():
    """A host that hangs altogether (its `timeout` frozen too): the reader's deadline."""
    command = hung()
    backend = BoundedLocalBackend(deadline=1)
    started = time.monotonic()
    with pytest.raises(CommandTimeout):
        backend.run_local(command)
    assert time.monotonic() - started < 4
    assert not running(command)  # killed with its session


def test_a_failing_command_names_its_purpose():
    host = RemoteHost("@local", "local", "layout.yaml", {})
    with pytest.raises(RemoteError, match=r"^@local: the host snapshot failed \(3\): oops$"):
        host.run("echo oops >&2; exit 3", "the host snapshot")


@pytest.mark.parametrize("value", [0, -5, "60", 2.5, True])
def test_the_command_timeout_must_be_whole_seconds(value):
    host = RemoteHost("h1", "h1", "layout.yaml", {"botpool_command_timeout": value})
    with pytest.raises(RemoteError, match="^h1: botpool_command_timeout must be a whole number"):
        host.run("true", "anything")


def test_drift_reports_a_hung_host_snapshot_and_exits_1(write_layout, secrets, tmp_path):
    """The real CLI against @local whose `docker` hangs: exit 1 in seconds, not a hang."""
    layout = write_layout(MINIMAL)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text("#!/bin/sh\nexec sleep 600\n")
    (fake / "docker").chmod(0o755)
    inventory = tmp_path / "inventory.py"
    inventory.write_text(
        f"hosts = [('@local', {{'botpool_host': 'local', 'botpool_layout': '{layout}', "
        "'botpool_command_timeout': 2})]\n"
    )
    started = time.monotonic()
    report = tmp_path / "reports" / "drift.json"
    proc = subprocess.run(
        [sys.executable, "-m", "botpool.cli", "drift", str(inventory), "--json-out", str(report)],
        env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert time.monotonic() - started < 20
    assert "error: @local: the host snapshot did not finish within 2 s" in proc.stderr
    assert "Traceback" not in proc.stderr
    (host,) = json.loads(report.read_text())  # the same reading, for CI's artifacts
    assert host["host"] == "@local" and "did not finish within 2 s" in host["error"]
