"""botpool.hosts.hostlock: the holder's bash run for real on this machine (bash, flock), its
answers parsed, and the messages. Converges racing for real: test_hostlock_e2e.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

from botpool.hosts.hostlock import (
    Holder,
    check_command,
    describe_me,
    held_message,
    lock_path,
    redact,
    sections,
    stale_message,
    take_command,
)

ME = describe_me(["/x/bin/pyinfra", "inv.py", "deploy.py", "-y"], "laptop", "ann", 4242)


def holder(root: Path, wait: int = 0, info: str = ME) -> subprocess.Popen[str]:
    return subprocess.Popen(
        take_command(str(root), wait, info),
        shell=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def answer(process: subprocess.Popen[str]) -> list[tuple[str, Holder | None]]:
    """Its sections up to `acquired` (or the end of its output)."""
    assert process.stdout is not None
    return list(sections(line.rstrip("\n") for line in process.stdout))


def test_the_lock_is_taken_held_and_released_clean(tmp_path):
    first = holder(tmp_path / "root")  # the root does not exist yet: made
    assert answer(first) == [("previous", None), ("acquired", None)]
    text = (tmp_path / "root" / ".converge.lock").read_text()
    assert text.startswith("controller=laptop\nuser=ann\npid=4242\n")
    assert "command=pyinfra inv.py deploy.py -y\nsince=20" in text

    second = holder(tmp_path / "root", wait=1)
    (waiting, seen), (busy, held) = answer(second)
    assert (waiting, busy) == ("waiting", "busy") and seen == held
    assert held is not None and (held.controller, held.user, held.pid) == ("laptop", "ann", "4242")
    assert held.host_pid.isdigit() and held.since.endswith("Z")
    assert second.wait(timeout=5) == 75

    first.communicate("done\n", timeout=5)  # ended well: nothing is left to describe
    assert (tmp_path / "root" / ".converge.lock").read_text() == ""
    third = holder(tmp_path / "root")
    assert answer(third) == [("previous", None), ("acquired", None)]
    third.communicate("done\n", timeout=5)


def test_a_holder_whose_converge_died_lets_go_and_is_named_by_the_next(tmp_path):
    first = holder(tmp_path)
    answer(first)
    second = holder(tmp_path, wait=30, info=describe_me(["pyinfra"], "ci", "bot", 7))
    assert second.stdout is not None
    assert second.stdout.readline() == "@@botpool-lock waiting\n"
    first.stdin.close()  # what a killed controller's end of the pipe or connection does
    assert first.wait(timeout=5) == 0
    (waiting, _), (previous, stale), (acquired, _) = answer(second)
    assert (previous, acquired) == ("previous", "acquired")
    assert stale is not None and (stale.controller, stale.pid) == ("laptop", "4242")
    second.communicate("done\n", timeout=5)


def test_the_dry_check_reports_a_holder_and_takes_nothing(tmp_path):
    def check(root: Path) -> str:
        return subprocess.run(
            check_command(str(root)), shell=True, capture_output=True, text=True, check=True
        ).stdout

    assert check(tmp_path / "never") == "" and not (tmp_path / "never").exists()
    first = holder(tmp_path)
    answer(first)
    ((busy, who),) = sections(check(tmp_path).splitlines())
    assert busy == "busy" and who is not None and who.pid == "4242"
    before = (tmp_path / ".converge.lock").read_text()
    first.communicate("done\n", timeout=5)
    assert check(tmp_path) == "" and before  # free: nothing said, and it held nothing


def test_secrets_on_the_command_line_are_not_described():
    argv = ["inv.py", "deploy.py", "--password", "hunter2", "--data=ssh_password=x", "-y"]
    assert redact(argv) == ["inv.py", "deploy.py", "--password", "***", "--data=***", "-y"]
    assert redact(["--ssh-key-password", "k", "--data", "a=b"]) == [
        "--ssh-key-password",
        "***",
        "--data",
        "***",
    ]
    info = describe_me(["/bin/pyinfra", "inv\nx.py", "--key-password", "k"], "c", "u", 1)
    assert "command=pyinfra inv x.py --key-password ***" in info.splitlines()


def test_the_messages_say_who_since_when_and_what_to_do():
    who = Holder(
        "laptop", "ann", "4242", "pyinfra inv.py deploy.py -y", "2026-11-27T10:00:00Z", "99"
    )
    assert held_message("vps1", lock_path("/opt/botpool"), who, 60) == (
        "vps1: another converge holds this host's lock (/opt/botpool/.converge.lock): "
        "`pyinfra inv.py deploy.py -y` by ann on laptop (pid 4242), since 2026-11-27T10:00:00Z. "
        "Waited 60 s (botpool_lock_wait); this converge changed nothing on any host. Run it "
        "again when that one has finished, or leave this host out with --limit. The lock ends "
        "with that converge's connection; if its controller is gone for good, end the holder "
        "on the host with `kill 99`"
    )
    assert stale_message("vps1", who) == (
        "vps1: the previous converge of this host (`pyinfra inv.py deploy.py -y` by ann on "
        "laptop (pid 4242), since 2026-11-27T10:00:00Z) did not finish (it failed or was "
        "killed); its lock ended with it, and this converge completes its work"
    )
