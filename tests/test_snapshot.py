"""The host snapshot: one shell command, parsed without guessing."""

from __future__ import annotations

import subprocess

from botpool.snapshot import parse, parse_program


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
    from botpool import snapshot

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
