"""botpool.remote without a network: which known_hosts files, which policy, which messages.
Real SSH host keys are verified against a real sshd in test_hostkeys_e2e.py."""

from __future__ import annotations

import pytest

from botpool.remote import (
    RemoteError,
    RemoteHost,
    keyscan_target,
    known_hosts_files,
    unknown_host_policy,
)


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
        host.run("true")
    docker = RemoteHost("@docker/x", "x", "layout.yaml", {})
    with pytest.raises(RemoteError, match="^@docker/x: only @local and SSH hosts can be read"):
        docker.run("true")
