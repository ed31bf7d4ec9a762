"""The host snapshot: one shell command, parsed without guessing."""

from __future__ import annotations

import json
import subprocess

from botpool.core.snapshot import parse, parse_program


def test_supervisor_status_lines_are_parsed():
    running = parse_program(
        "alice-one                        RUNNING   pid 42, uptime 1 day, 2:03:04"
    )
    assert (running.name, running.state, running.pid, running.uptime_s) == (
        "alice-one",
        "RUNNING",
        42,
        86400 + 7384,
    )
    fatal = parse_program("alice-two                        FATAL     Exited too quickly")
    assert (fatal.state, fatal.pid) == ("FATAL", None)
    assert parse_program("unix:///tmp/supervisor.sock no such file") is None


def test_the_command_reads_files_modes_and_directories_of_a_real_tree(tmp_path):
    from botpool.core import snapshot

    bot = tmp_path / "pools" / "p-pool-1" / "bots" / "b"
    (bot / "user_data").mkdir(parents=True)
    (bot / "config.json").write_text("{}")
    (bot / "config.json").chmod(0o600)
    (bot / "user_data" / "tradesv3.sqlite").write_text("data is never hashed")
    out = subprocess.run(
        ["sh", "-c", snapshot.command(str(tmp_path))], capture_output=True, text=True, check=True
    ).stdout
    snap = parse(out.splitlines())
    state = snap.files["pools/p-pool-1/bots/b/config.json"]
    assert state.mode == 0o600 and state.sha256.startswith("44136fa3")
    assert "pools/p-pool-1/bots/b/user_data" in snap.directories
    assert not any("tradesv3" in path for path in snap.files)


def container_line(name: str, state: str, role: str, spec_hash: str, networks: str) -> str:
    """One line as `docker ps --format` prints it with the snapshot's template (JSON)."""
    return json.dumps(
        {"name": name, "state": state, "role": role, "spec_hash": spec_hash, "networks": networks}
    )


def test_only_a_running_container_is_parsed_as_running():
    """`docker ps -a` states: only `running` is running (paused, restarting and the rest
    are not answering bots)."""
    lines = ["@@botpool containers"] + [
        container_line(f"c-{state}", state, "pool", f"hash-{state}", "")
        for state in ("running", "exited", "created", "paused", "restarting", "dead")
    ]
    containers = parse(lines).containers
    assert {name: c.running for name, c in containers.items()} == {
        "c-running": True,
        "c-exited": False,
        "c-created": False,
        "c-paused": False,
        "c-restarting": False,
        "c-dead": False,
    }
    assert (containers["c-exited"].role, containers["c-exited"].spec_hash) == (
        "pool",
        "hash-exited",
    )


# `supervisorctl status` lines of every state, as supervisor 4.3 prints them
STATUS_LINES = {
    "RUNNING": ("a   RUNNING   pid 42, uptime 0:01:05", 42, 65),
    "STARTING": ("a   STARTING  ", None, None),
    "BACKOFF": ("a   BACKOFF   Exited too quickly (process log may have details)", None, None),
    "STOPPED": ("a   STOPPED   Nov 27 01:02 PM", None, None),
    "STOPPING": ("a   STOPPING  ", None, None),
    "EXITED": ("a   EXITED    Nov 27 01:02 PM", None, None),
    "FATAL": ("a   FATAL     Exited too quickly (process log may have details)", None, None),
    "UNKNOWN": ("a   UNKNOWN   ", None, None),
}


def test_supervisorctl_lines_of_every_state():
    for state, (line, pid, uptime) in STATUS_LINES.items():
        program = parse_program(line)
        assert program is not None, line
        assert (program.name, program.state, program.pid, program.uptime_s) == (
            "a",
            state,
            pid,
            uptime,
        ), line
    status = ["@@botpool supervisor p-pool-1", *(line for line, _, _ in STATUS_LINES.values())]
    status[1:] = [line.replace("a ", f"a{i} ", 1) for i, line in enumerate(status[1:])]
    snap = parse(status)
    assert [p.state for p in snap.programs["p-pool-1"].values()] == list(STATUS_LINES)
    assert snap.supervisor_errors == {}
    error = parse(["@@botpool supervisor p-pool-1", "unix:///tmp/supervisor.sock refused"])
    assert error.supervisor_errors == {"p-pool-1": "unix:///tmp/supervisor.sock refused"}


def test_uptime_with_days():
    """supervisor prints a timedelta: `H:MM:SS`, `1 day, H:MM:SS`, `N days, H:MM:SS`."""
    for text, seconds in (
        ("0:00:09", 9),
        ("23:59:59", 86399),
        ("1 day, 0:00:00", 86400),
        ("12 days, 1:02:03", 12 * 86400 + 3723),
    ):
        assert parse_program(f"a RUNNING pid 1, uptime {text}").uptime_s == seconds, text


def test_the_command_reads_owners_groups_and_links_of_files_and_folders(tmp_path):
    """What root reads must be root's: the snapshot sees owner, group and mode of every file
    and folder, and a link planted where a file belongs."""
    import os

    from botpool.core import snapshot

    bot = tmp_path / "pools" / "p-pool-1" / "bots" / "b"
    (bot / "user_data").mkdir(parents=True)
    (bot / "config.json").write_text("{}")
    os.chown(bot / "config.json", 0, 209003)
    (bot / "config.json").chmod(0o640)
    os.chown(bot / "user_data", 209003, 209003)
    (bot / "user_data").chmod(0o700)
    programs = tmp_path / "pools" / "p-pool-1" / "programs"
    programs.mkdir()
    (programs / "evil.conf").symlink_to(bot / "user_data" / "x.conf")
    out = subprocess.run(
        ["sh", "-c", snapshot.command(str(tmp_path))], capture_output=True, text=True, check=True
    ).stdout
    snap = parse(out.splitlines())
    config = snap.files["pools/p-pool-1/bots/b/config.json"]
    assert (config.uid, config.gid, config.mode, config.regular) == (0, 209003, 0o640, True)
    data = snap.directories["pools/p-pool-1/bots/b/user_data"]
    assert (data.uid, data.gid, data.mode) == (209003, 209003, 0o700)
    link = snap.files["pools/p-pool-1/programs/evil.conf"]
    assert not link.regular and link.sha256 == ""
    os.chown(tmp_path / "pools", 1000, 1000)
    snap = parse(
        subprocess.run(
            ["sh", "-c", snapshot.command(str(tmp_path))], capture_output=True, text=True
        ).stdout.splitlines()
    )
    assert snap.host_folders.get("pools"), snap.host_folders
    assert snap.host_folders["pools"].uid == 1000 and snap.host_folders["."].uid == 0


def test_networks_and_who_is_on_them_are_parsed():
    lines = [
        "@@botpool networks",
        "botpool-ann",
        "botpool",
        "@@botpool network-users",
        "ann-pool-1|botpool-ann",
        "botpool-exchange-x|botpool-ann,botpool-ben",
        "alice-pool-1|botpool",
        "unrelated|bridge",
        "@@botpool containers",
        container_line("ann-pool-1", "running", "pool", "abc", "botpool-ann"),
        container_line(
            "botpool-exchange-x", "exited", "exchange", "def", "botpool-ann,botpool-ben"
        ),
    ]
    snap = parse(lines)
    assert snap.networks == {"botpool-ann", "botpool"}
    assert snap.network_users == {
        "botpool-ann": {"ann-pool-1", "botpool-exchange-x"},
        "botpool": {"alice-pool-1"},
    }
    exchange = snap.containers["botpool-exchange-x"]
    assert exchange.networks == {"botpool-ann", "botpool-ben"} and not exchange.running


def test_only_this_roots_networks_and_the_old_shared_one_are_seen(tmp_path):
    """Another root's networks are not ours to remove; a stand-in docker prints them all."""
    from botpool.core import snapshot

    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'case "$1 $2" in\n'
        '  "network ls") printf "%s\\n" "botpool-ann|/srv/a" "botpool-ann2|/srv/a b" '
        '"botpool-ben|/srv/other" "botpool|" "botpool-old|" ;;\n'
        "esac\n"
    )
    fake.chmod(0o755)
    script = f"PATH={fake.parent}:$PATH\n" + snapshot.command("/srv/a")
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert parse(out.stdout.splitlines()).networks == {"botpool-ann", "botpool"}
