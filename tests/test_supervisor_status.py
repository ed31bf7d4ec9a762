"""botpool/payloads/supervisor_status.py against a real supervisord (the venv's, as pools run
it) and against supervisorctl itself: the same lines, the same exit codes, the same errors."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from botpool import payloads
from botpool.core.snapshot import parse_program
from botpool.payloads.exporter import parse_status

VENV = Path(sys.executable).parent
LONG = "a-program-name-longer-than-thirty-characters"  # widens supervisorctl's name column


def reader(sock: Path | str) -> subprocess.CompletedProcess[str]:
    """The reader as pools run it: `python3 -I -S -c SOURCE`, here with the socket named."""
    argv = [sys.executable, *payloads.supervisor_status_command()[1:], str(sock)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def supervisorctl(sock: Path | str) -> subprocess.CompletedProcess[str]:
    argv = [str(VENV / "supervisorctl"), "-s", f"unix://{sock}", "status"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def same_second(text: str) -> str:
    """Both programs read the uptime a moment apart."""
    return re.sub(r"uptime \S+", "uptime H:MM:SS", text)


@pytest.fixture
def supervisord(tmp_path):
    """A supervisord with a program in each settled state: running, fatal, stopped, in a
    group, and one with a long name."""
    sock = tmp_path / "supervisor.sock"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"[unix_http_server]\nfile={sock}\nchmod=0700\n\n"
        f"[supervisord]\nnodaemon=true\nlogfile={tmp_path}/supervisord.log\n"
        f"pidfile={tmp_path}/supervisord.pid\nchildlogdir={tmp_path}\n\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
        "[program:runs]\ncommand=sleep 600\nstartsecs=0\n\n"
        "[program:dies]\ncommand=false\nstartsecs=1\nstartretries=0\n\n"
        "[program:idle]\ncommand=sleep 600\nautostart=false\n\n"
        f"[program:{LONG}]\ncommand=sleep 600\nstartsecs=0\n\n"
        "[program:one]\ncommand=sleep 600\nstartsecs=0\n\n"
        "[group:team]\nprograms=one\n"
    )
    proc = subprocess.Popen([str(VENV / "supervisord"), "-c", str(conf)])
    try:
        deadline = time.monotonic() + 30
        while True:  # settled: the socket answers and nothing is starting any more
            out = supervisorctl(sock).stdout
            if "FATAL" in out and "STARTING" not in out and "BACKOFF" not in out:
                break
            assert time.monotonic() < deadline, f"supervisord did not settle: {out}"
            time.sleep(0.1)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_reader_prints_what_supervisorctl_prints_with_its_exit_code(supervisord):
    ours, theirs = reader(supervisord), supervisorctl(supervisord)
    assert ours.stderr == ""
    assert same_second(ours.stdout) == same_second(theirs.stdout)
    assert ours.returncode == theirs.returncode == 3  # a program is not running
    states = {p.name: p.state for p in map(parse_program, ours.stdout.splitlines()) if p}
    assert states == {
        "runs": "RUNNING",
        "dies": "FATAL",
        "idle": "STOPPED",
        LONG: "RUNNING",
        "team:one": "RUNNING",
    }
    assert {n: p.state for n, p in parse_status(ours.stdout).items()} == states


def test_all_running_exits_0_as_supervisorctl_does(supervisord):
    subprocess.run(
        [str(VENV / "supervisorctl"), "-s", f"unix://{supervisord}", "remove", "dies"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [str(VENV / "supervisorctl"), "-s", f"unix://{supervisord}", "start", "idle"],
        check=True,
        capture_output=True,
    )
    ours, theirs = reader(supervisord), supervisorctl(supervisord)
    assert same_second(ours.stdout) == same_second(theirs.stdout)
    assert ours.returncode == theirs.returncode == 0


def test_a_supervisord_that_does_not_answer_is_one_line_naming_the_socket(tmp_path):
    missing = tmp_path / "missing.sock"
    refusing = tmp_path / "refusing.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(refusing))  # bound, never listening: connections are refused
    try:
        for sock, why in ((missing, "no such file"), (refusing, "refused connection")):
            ours, theirs = reader(sock), supervisorctl(sock)
            assert ours.stdout == theirs.stdout == f"unix://{sock} {why}\n"
            assert ours.returncode == theirs.returncode == 4
            assert parse_program(ours.stdout.strip()) is None  # the snapshot: an error
    finally:
        listener.close()


def waiter(sock: Path, seconds: float, *names: str) -> subprocess.CompletedProcess[str]:
    """The converge's wait for a pool's programs (tasks/operations.py wait_running)."""
    argv = [sys.executable, *payloads.supervisor_status_command()[1:], str(sock)]
    argv += ["--wait", str(seconds), *names]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_the_wait_ends_once_every_named_program_runs_or_gives_up_naming_them(supervisord, tmp_path):
    """One supervisord for both outcomes (each costs seconds to start and stop)."""
    started = time.monotonic()
    done = waiter(supervisord, 1, "runs", "dies")  # dies is FATAL: never RUNNING
    assert done.returncode == 1 and time.monotonic() - started < 20
    states = {p.name: p.state for p in map(parse_program, done.stderr.splitlines()) if p}
    assert states["dies"] == "FATAL" and states["runs"] == "RUNNING", done.stderr
    # no supervisord (not started yet, or gone): the same, naming the socket
    done = waiter(tmp_path / "missing.sock", 1, "runs")
    assert done.returncode == 1 and "missing.sock FileNotFoundError" in done.stderr

    # idle is STOPPED until this starts it, a second into the wait
    ctl = [str(VENV / "supervisorctl"), "-s", f"unix://{supervisord}"]
    later = subprocess.Popen(["sh", "-c", f"sleep 1; {' '.join(ctl)} start idle >/dev/null"])
    try:
        done = waiter(supervisord, 30, "runs", "idle", "team:one", LONG)
    finally:
        later.wait(timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    lines = reader(supervisord).stdout.splitlines()
    assert {p.name: p.state for p in map(parse_program, lines) if p}["idle"] == "RUNNING"
