"""The zygote runtime's hard parts, with real processes: a zygote, launchers, forked children.

The children run tests/zygote_apps.py instead of freqtrade (fast, one behaviour each); the
e2e suites run real freqtrade bots under the zygote in real pools. Like a pool, the zygote
runs as root and each launcher as its bot's uid (so these tests run as root); the fixture
`zyg` also runs every test against an unprivileged zygote serving its own uid.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from botpool.payloads import launcher as launcher_py
from botpool.payloads import zygote

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "botpool" / "payloads" / "zygote.py"
LAUNCHER_FILE = REPO / "botpool" / "payloads" / "launcher.py"
APPS = REPO / "tests" / "zygote_apps.py"
BOT_A, BOT_B = 209001, 209002  # uids as a pool gives its bots: 200000 + the bot's host port
MIN_UID = 200000
# what runs as a bot's uid runs the system's python3 (standard library only, as in a pool):
# this machine's own interpreter may live where only root can reach (/root/.pyenv)
SYSTEM_PYTHON = shutil.which("python3", path="/usr/local/bin:/usr/bin") or sys.executable
LAUNCHER = [SYSTEM_PYTHON, "-I", "-S", str(LAUNCHER_FILE)]  # as a pool runs it


class Zygote:
    """A real zygote process (root unless uid says otherwise) in its own folder."""

    def __init__(
        self,
        directory: Path,
        preload: str = "json",
        uid: int = 0,
        min_uid: int | None = MIN_UID,
        patch: str | None = None,
        prefix: tuple[str, ...] = (),
        collect_every: str | None = None,
    ) -> None:
        self.directory, self.preload, self.uid, self.min_uid = directory, preload, uid, min_uid
        self.collect_every = collect_every
        self.patch, self.prefix = patch, prefix
        directory.mkdir(exist_ok=True)
        os.chown(directory, uid, uid)  # an unprivileged zygote creates its socket here
        self.socket = directory / "zygote.sock"
        self.log = directory / "zygote.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.python = SYSTEM_PYTHON if uid else sys.executable

    def start(self, wait: bool = True) -> Zygote:
        env = {**os.environ, "PYTHONPATH": f"{self.directory}:{REPO}", "PYTHONUNBUFFERED": "1"}
        self.socket.unlink(missing_ok=True)
        program = [str(APPS), self.patch] if self.patch else [str(SCRIPT)]
        options = ["--entry", "tests.zygote_apps:run", "--preload", self.preload]
        if self.min_uid is not None:
            options += ["--min-uid", str(self.min_uid)]
        if self.collect_every is not None:
            options += ["--collect-every", self.collect_every]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.prefix, self.python, *program, "serve", str(self.socket), *options],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                **as_user(self.uid),  # type: ignore[arg-type]
            )
        if wait:
            until(self.socket.exists, f"zygote socket; log: {self.text()}")
        return self

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def workdir(self, uid: int) -> Path:
        """The bot folder of uid: its own, 0700."""
        path = self.directory / f"bot-{uid}"
        path.mkdir(mode=0o700, exist_ok=True)
        os.chown(path, uid, uid)
        return path

    def launch(
        self, *args: str, key: str = "ann/b1", uid: int = BOT_A, **kw: object
    ) -> subprocess.Popen[str]:
        """A launcher running as uid in uid's bot folder, as supervisord starts one."""
        env = {**os.environ, "BOTPOOL_BOT": key, "BOT_SETTING": f"setting of {key}"}
        kw.setdefault("cwd", self.workdir(uid))
        return subprocess.Popen(
            [*LAUNCHER, str(self.socket), "--", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            **as_user(uid),
            **kw,  # type: ignore[call-overload]
        )

    def children(self) -> list[int]:
        pid = self.process.pid  # type: ignore[union-attr]
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def as_user(uid: int) -> dict[str, object]:
    """Popen arguments that run a process as uid, gid uid, no other group (setpriv's way)."""
    return {"user": uid, "group": uid, "extra_groups": []} if uid else {}


def until(condition: object, what: str, timeout: float = 30.0) -> None:
    """Wait for an event. The bound is for liveness, not speed: under a loaded machine (two
    test workers and end-to-end tests beside) a zygote serving 500 fuzzed connections took
    over 10 s to close their fds."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Running (a zombie is not; nor is a process reaped while we look)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def read_pid(path: Path) -> int:
    until(lambda: path.exists() and path.read_text(), f"{path}")
    return int(path.read_text())


def stderr_line(process: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """The next line a process writes to stderr (it must come within timeout)."""
    ready, _, _ = select.select([process.stderr], [], [], timeout)
    assert ready, "no line on stderr"
    return process.stderr.readline()  # type: ignore[union-attr]


def status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status: the kernel's word on a process's uids, gids, groups, capabilities."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {name: value.strip() for name, _, value in (line.partition(":") for line in lines)}


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder every uid may enter (pytest's tmp_path is root's alone): each zygote's socket
    and log, and each bot uid's own folder."""
    path = Path(tempfile.mkdtemp(prefix="zygote-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def root_zygote(shared: Path) -> Iterator[Zygote]:
    z = Zygote(shared / "zygote").start()
    yield z
    z.stop()


@pytest.fixture(params=["root zygote", "unprivileged zygote"])
def zyg(request: pytest.FixtureRequest, shared: Path) -> Iterator[Zygote]:
    """A pool's zygote (root, bots as their launchers' uids) or a zygote of the bots' uid."""
    uid = 0 if request.param == "root zygote" else BOT_A
    z = Zygote(shared / "zygote", uid=uid).start()
    yield z
    z.stop()


def test_the_child_gets_the_launchers_environment_directory_arguments_and_stdio(
    zyg: Zygote,
) -> None:
    seen = []
    for key in ("ann/b1", "ann/b2"):
        workdir = zyg.workdir(BOT_A) / key.replace("/", "-")
        workdir.mkdir()
        launcher = zyg.launch("show", "--flag", key=key, cwd=workdir)
        out, err = launcher.communicate(timeout=10)
        assert launcher.returncode == 0, err
        shown = json.loads(out)
        assert shown["cwd"] == str(workdir)
        assert shown["env"] == f"setting of {key}"
        assert shown["argv"] == ["freqtrade", "show", "--flag"]
        assert shown["ppid"] == zyg.process.pid  # type: ignore[union-attr]
        assert shown["sid"] == shown["pid"]  # a session of its own
        assert shown["ids"] == [[BOT_A] * 3, [BOT_A] * 3, []]
        assert err == "to stderr\n"
        seen.append(shown["random"])
    assert seen[0] != seen[1]  # reseeded: forked children do not share random sequences


@pytest.mark.parametrize(
    "args, code, stderr",
    [
        (("exit", "0"), 0, ""),
        (("exit", "7"), 7, ""),
        (("message", "bad config"), 1, "fatal: bad config"),
        (("raise",), 1, "RuntimeError: boom"),
        (("signal", str(int(signal.SIGKILL))), -signal.SIGKILL, ""),
        (("signal", str(int(signal.SIGTERM))), -signal.SIGTERM, ""),
        (("signal", str(signal.SIGRTMIN + 6)), -(signal.SIGRTMIN + 6), ""),  # has no name
    ],
)
def test_the_launcher_ends_exactly_as_its_bot_did(
    zyg: Zygote, args: tuple[str, ...], code: int, stderr: str
) -> None:
    launcher = zyg.launch(*args)
    _out, err = launcher.communicate(timeout=10)
    assert launcher.returncode == code
    assert stderr in err


def test_signals_to_the_launcher_reach_the_bot(zyg: Zygote) -> None:
    launcher = zyg.launch("sleep", "pid")
    bot = read_pid(zyg.workdir(BOT_A) / "pid")
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=10) == 3  # the bot's own SIGTERM handler chose 3
    until(lambda: not alive(bot), "the bot to end")


def test_a_killed_launcher_takes_its_bot_along_and_a_restart_never_overlaps_it(
    zyg: Zygote,
) -> None:
    first = zyg.launch("sleep", "pid1")
    old = read_pid(zyg.workdir(BOT_A) / "pid1")
    first.kill()  # SIGKILL: nothing can be forwarded
    first.wait()
    second = zyg.launch("sleep", "pid2")  # what supervisord's autorestart does
    new = read_pid(zyg.workdir(BOT_A) / "pid2")
    assert not alive(old), "the old bot still ran when its replacement started"
    assert alive(new)
    second.kill()
    second.wait()
    until(lambda: not alive(new), "the second bot to end")


def test_a_second_launcher_for_a_running_bot_is_refused(zyg: Zygote) -> None:
    first = zyg.launch("sleep", "pid")
    read_pid(zyg.workdir(BOT_A) / "pid")
    second = zyg.launch("sleep", "other")
    _out, err = second.communicate(timeout=10)
    assert second.returncode == 1
    assert "ann/b1 already runs as pid" in err
    first.terminate()
    assert first.wait(timeout=10) == 3


def test_a_crashed_zygote_takes_its_bots_and_launchers_wait_for_the_next(zyg: Zygote) -> None:
    launcher = zyg.launch("sleep", "pid")
    bot = read_pid(zyg.workdir(BOT_A) / "pid")
    zyg.process.kill()  # type: ignore[union-attr]
    assert launcher.wait(timeout=10) == zygote.TEMPFAIL
    until(lambda: not alive(bot), "the orphaned bot to die")
    waiting = zyg.launch("exit", "5")
    # it found no zygote: only then the new one starts, and only by waiting for it can the
    # launcher end as its bot did (giving up would be 75)
    assert stderr_line(waiting) == "botpool launcher: zygote not answering yet; waiting\n"
    zyg.start()
    assert waiting.wait(timeout=10) == 5


@pytest.mark.parametrize("uid", [0, BOT_A], ids=["root zygote", "unprivileged zygote"])
def test_a_zygote_dying_between_fork_and_pid_ends_the_launcher_at_once_and_the_child_too(
    shared: Path, uid: int
) -> None:
    z = Zygote(shared / "zygote", uid=uid, patch="die-before-pid").start()
    launcher = z.launch("sleep", "pid")
    assert z.process.wait(timeout=10) == 9  # type: ignore[union-attr]
    _out, err = launcher.communicate(timeout=5)  # not the 180 s it waits for a new zygote
    assert launcher.returncode == zygote.TEMPFAIL
    assert err == "botpool launcher: the zygote went away during the request\n"
    until(lambda: not forks_of(z), "the forked child to die with the zygote")


def forks_of(z: Zygote) -> list[int]:
    """Live processes forked from zygote z (their command line is the zygote's)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"serve" in args and str(z.socket).encode() in args and alive(int(pid)):
                found.append(int(pid))
    return found


def test_stopping_the_zygote_stops_its_bots_gracefully(zyg: Zygote) -> None:
    launchers = [zyg.launch("sleep", f"pid{i}", key=f"u/b{i}") for i in range(3)]
    bots = [read_pid(zyg.workdir(BOT_A) / f"pid{i}") for i in range(3)]
    zyg.process.terminate()  # type: ignore[union-attr]
    assert zyg.process.wait(timeout=30) == 0  # type: ignore[union-attr]
    assert [launcher.wait(timeout=10) for launcher in launchers] == [3, 3, 3]
    assert not any(alive(pid) for pid in bots)


# --- each bot its own uid ---------------------------------------------------------------------


def test_each_bot_runs_as_its_launchers_uid_and_gid_with_no_privilege(
    root_zygote: Zygote,
) -> None:
    launchers = {uid: root_zygote.launch("sleep", "pid", uid=uid) for uid in (BOT_A, BOT_B)}
    for uid, launcher in launchers.items():
        bot = read_pid(root_zygote.workdir(uid) / "pid")
        seen = status(bot)
        assert seen["Uid"].split() == [str(uid)] * 4  # real, effective, saved, filesystem
        assert seen["Gid"].split() == [str(uid)] * 4
        assert seen["Groups"] == ""
        assert {seen[c] for c in ("CapInh", "CapPrm", "CapEff", "CapAmb")} == {"0" * 16}
        assert Path(f"/proc/{bot}/environ").stat().st_uid == uid  # dumpable, as if exec'd
        launcher.terminate()
        assert launcher.wait(timeout=10) == 3


def test_a_bot_cannot_read_another_bots_files(root_zygote: Zygote) -> None:
    for uid in (BOT_A, BOT_B):
        secret = root_zygote.directory / f"secret-{uid}"
        secret.write_text(f"only for {uid}")
        secret.chmod(0o600)
        os.chown(secret, uid, uid)
    own = root_zygote.launch("read", str(root_zygote.directory / f"secret-{BOT_A}"), uid=BOT_A)
    assert own.communicate(timeout=10)[0] == f"only for {BOT_A}"
    other = root_zygote.launch("read", str(root_zygote.directory / f"secret-{BOT_B}"), uid=BOT_A)
    other.communicate(timeout=10)
    assert other.returncode == 13  # EACCES


@pytest.mark.parametrize(
    "uid, min_uid, why",
    [
        (0, MIN_UID, "root may not run a bot (a bot runs as its launcher's uid)"),
        (0, None, "root may not run a bot (a bot runs as its launcher's uid)"),
        (1000, MIN_UID, f"uid 1000 is below the zygote's --min-uid {MIN_UID}"),
    ],
)
def test_a_root_zygote_refuses_root_and_uids_below_min_uid_with_a_clear_error(
    shared: Path, uid: int, min_uid: int | None, why: str
) -> None:
    z = Zygote(shared / "zygote", min_uid=min_uid).start()
    try:
        launcher = z.launch("sleep", "pid", uid=uid)
        _out, err = launcher.communicate(timeout=10)
        assert launcher.returncode == 1
        assert err == f"botpool launcher: refused: {why}\n"
        assert f"refused the launcher pid {launcher.pid} (uid {uid}): {why}" in z.text()
        assert z.children() == [] and z.process.poll() is None  # type: ignore[union-attr]
    finally:
        z.stop()


@pytest.mark.parametrize("every, collected", [("0.2", True), ("0", False)])
def test_each_bot_collects_its_garbage_whatever_thresholds_it_sets(
    shared: Path, every: str, collected: bool
) -> None:
    """freqtrade's thresholds leave garbage in the oldest generation for good (zygote.py says
    why): each child collects it every --collect-every seconds; 0 (never) is the control."""
    z = Zygote(shared / "zygote", collect_every=every).start()
    try:
        launcher = z.launch("cycle", "1.5")
        out, err = launcher.communicate(timeout=10)
        assert launcher.returncode == 0, err
        assert json.loads(out) == {"collected": collected}
    finally:
        z.stop()


def run_alone(*args: str, every: str = "0.2") -> subprocess.CompletedProcess[str]:
    """The process runtime's bot program: `zygote.py run`, no zygote."""
    options = ["--entry", "tests.zygote_apps:run", "--collect-every", every]
    return subprocess.run(
        [sys.executable, str(SCRIPT), "run", *options, "--", *args],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@pytest.mark.parametrize("every, collected", [("0.2", True), ("0", False)])
def test_a_bot_run_alone_collects_its_garbage_too(every: str, collected: bool) -> None:
    done = run_alone("cycle", "1.5", every=every)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"collected": collected}


@pytest.mark.parametrize(
    "args, code, stderr",
    [(("exit", "7"), 7, ""), (("message", "bad config"), 1, "fatal: bad config")],
)
def test_a_bot_run_alone_ends_with_its_own_exit_code(
    args: tuple[str, ...], code: int, stderr: str
) -> None:
    done = run_alone(*args)
    assert done.returncode == code and stderr in done.stderr


def test_without_min_uid_a_root_zygote_serves_any_uid_but_root(shared: Path) -> None:
    z = Zygote(shared / "zygote", min_uid=None).start()
    try:
        launcher = z.launch("show", uid=1000)
        out, err = launcher.communicate(timeout=10)
        assert launcher.returncode == 0, err
        assert json.loads(out)["ids"] == [[1000] * 3, [1000] * 3, []]
    finally:
        z.stop()


@pytest.mark.parametrize(
    "uid, error",
    [
        (BOT_B, "botpool launcher: may not connect to"),  # the socket is 0600
        (0, f"botpool launcher: refused: uid 0 is not the zygote's {BOT_A}"),  # root may open it
    ],
)
def test_an_unprivileged_zygote_serves_its_own_uid_only(shared: Path, uid: int, error: str) -> None:
    z = Zygote(shared / "zygote", uid=BOT_A).start()
    try:
        assert (z.socket.stat().st_mode & 0o777, z.socket.stat().st_uid) == (0o600, BOT_A)
        launcher = z.launch("exit", "0", uid=uid)
        _out, err = launcher.communicate(timeout=10)
        assert launcher.returncode == 1
        assert err.startswith(error)
    finally:
        z.stop()


def test_a_key_counts_per_uid_so_no_bot_blocks_or_kills_another(root_zygote: Zygote) -> None:
    """Bot B sends bot A's key: it starts its own bot, and A's bot and A's restarts go on."""
    a1 = root_zygote.launch("sleep", "pid1", key="ann/b1", uid=BOT_A)
    bot_a = read_pid(root_zygote.workdir(BOT_A) / "pid1")
    b = root_zygote.launch("sleep", "pid", key="ann/b1", uid=BOT_B)
    bot_b = read_pid(root_zygote.workdir(BOT_B) / "pid")
    twin = root_zygote.launch("sleep", "twin", key="ann/b1", uid=BOT_A)  # A's own duplicate
    assert twin.wait(timeout=10) == 1
    assert f"ann/b1 already runs as pid {bot_a}" in twin.communicate()[1]
    a1.kill()  # A's restart: its old bot dies, its new one starts while B's runs on
    a1.wait()
    a2 = root_zygote.launch("sleep", "pid2", key="ann/b1", uid=BOT_A)
    read_pid(root_zygote.workdir(BOT_A) / "pid2")
    assert not alive(bot_a) and alive(bot_b)
    b.kill()  # and B's launcher going away kills B's bot only
    b.wait()
    until(lambda: not alive(bot_b), "B's bot to die with its launcher")
    a2.terminate()
    assert a2.wait(timeout=10) == 3


def test_a_zygote_that_cannot_change_uid_runs_no_bot(shared: Path) -> None:
    z = Zygote(
        shared / "zygote", prefix=("setpriv", "--bounding-set", "-setuid,-setgid", "--")
    ).start()
    try:
        launcher = z.launch("sleep", "pid")
        _out, err = launcher.communicate(timeout=10)
        assert launcher.returncode == zygote.CANNOT_DROP
        assert "zygote: cannot run ann/b1 as uid 209001: [Errno 1] Operation not permitted" in err
        assert not (z.workdir(BOT_A) / "pid").exists()
    finally:
        z.stop()


def test_a_signal_while_the_child_is_still_root_reaches_the_bot_once_it_is_not(
    shared: Path,
) -> None:
    """Right after the fork the launcher holds the pidfd of a child that has not become its
    uid yet; the kernel refuses the launcher's signals then. Here the child is held as root."""
    gate = shared / "gate"
    z = Zygote(shared / "zygote", patch=f"hold-root={gate}").start()
    try:
        launcher = z.launch("sleep", "pid")
        until(lambda: z.children(), "the child")
        (child,) = z.children()
        assert status(child)["Uid"].split()[0] == "0"
        until(lambda: catches(launcher.pid, signal.SIGTERM), "the launcher's signal handlers")
        launcher.send_signal(signal.SIGTERM)
        until(lambda: wchan(launcher.pid) == "hrtimer_nanosleep", "the launcher to retry")
        gate.touch()
        _out, err = launcher.communicate(timeout=10)
        assert launcher.returncode in (3, -signal.SIGTERM), err  # by the bot's handler, or not
        assert err == ""
        until(lambda: not alive(child), "the bot to end")
    finally:
        z.stop()


def catches(pid: int, sig: int) -> bool:
    return bool(int(status(pid)["SigCgt"], 16) & (1 << (sig - 1)))


def wchan(pid: int) -> str:
    """Where in the kernel a process waits."""
    return Path(f"/proc/{pid}/wchan").read_text()


def test_who_may_run_a_bot() -> None:
    assert zygote.refusal(BOT_A, 0, MIN_UID) is None
    assert zygote.refusal(MIN_UID, 0, MIN_UID) is None
    assert (
        zygote.refusal(MIN_UID - 1, 0, MIN_UID)
        == "uid 199999 is below the zygote's --min-uid 200000"
    )
    assert zygote.refusal(0, 0, 1) == "root may not run a bot (a bot runs as its launcher's uid)"
    assert zygote.refusal(1, 0, 1) is None
    assert zygote.refusal(BOT_A, BOT_A, MIN_UID) is None
    assert zygote.refusal(BOT_B, BOT_A, MIN_UID) == f"uid {BOT_B} is not the zygote's {BOT_A}"
    assert zygote.refusal(0, BOT_A, 1) == f"uid 0 is not the zygote's {BOT_A}"


# --- malformed messages: each costs its own connection, never the zygote -------------------

SO_SNDBUFFORCE = 32  # Linux: root may send one message larger than net.core.wmem_max
VALID = {"key": "fuzz/x", "argv": ["exit", "0"], "cwd": "/", "env": {"A": "b"}}


def encode(value: object) -> bytes:
    return json.dumps(value).encode()


def connect(zyg: Zygote, uid: int = BOT_A) -> socket.socket:
    """A raw connection to the zygote that the kernel reports as uid's (euid at connect)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    os.setegid(uid)
    os.seteuid(uid)
    try:
        sock.connect(str(zyg.socket))
    finally:
        os.seteuid(0)
        os.setegid(0)
    sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 4 * zygote.MAX_MESSAGE)
    sock.settimeout(10)
    return sock


def send_raw(sock: socket.socket, data: bytes, fds: int) -> None:
    """One message carrying `fds` fresh fds (of /dev/null); ours are closed again."""
    opened = [os.open(os.devnull, os.O_RDWR) for _ in range(fds)]
    try:
        socket.send_fds(sock, [data], opened) if opened else sock.send(data)
    finally:
        for fd in opened:
            os.close(fd)


def replies(sock: socket.socket) -> list[dict[str, object]]:
    """Everything the zygote says until it hangs up (a reset ends it too)."""
    said = []
    with contextlib.closing(sock):
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(sock, 4096, 4)
            except ConnectionResetError:
                return said
            for fd in fds:
                os.close(fd)
            if not data:
                return said
            said.append(json.loads(data))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.parametrize(
    "data, fds, why",
    [
        (b"not json", 3, "not JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"\xff\xfe{", 3, "not JSON: "),
        (b"[" * 100_000, 3, "not JSON: maximum recursion depth exceeded"),
        (encode(VALID)[:-7], 3, "not JSON: "),  # truncated
        (b"x" * (zygote.MAX_MESSAGE + 1), 3, f"larger than {zygote.MAX_MESSAGE} bytes"),
        (encode(["key", "argv"]), 3, "not an object of exactly key, argv, cwd, env"),
        (encode({**VALID, "key": None} | {"more": 1}), 3, "not an object of exactly key,"),
        (encode({k: v for k, v in VALID.items() if k != "key"}), 3, "not an object of exactly"),
        (encode({**VALID, "key": ["a"]}), 3, "key is not a printable string of 1 to 200"),
        (encode({**VALID, "key": "a\nforged log line"}), 3, "key is not a printable string"),
        (encode({**VALID, "key": "k" * 201}), 3, "key is not a printable string"),
        (encode({**VALID, "key": "\ud800"}), 3, "key is not a printable string"),
        (encode({**VALID, "argv": "exit 0"}), 3, "argv is not a list of strings"),
        (encode({**VALID, "argv": ["exit", 0]}), 3, "argv is not a list of strings"),
        (encode({**VALID, "cwd": "relative"}), 3, "cwd is not an absolute path"),
        (encode({**VALID, "cwd": "/nul\0"}), 3, "cwd is not an absolute path"),
        (encode({**VALID, "env": {"A": 1}}), 3, "env is not an object of NAME: string"),
        (encode({**VALID, "env": {"A=B": "c"}}), 3, "env is not an object of NAME: string"),
        (encode({**VALID, "env": ["A"]}), 3, "env is not an object of NAME: string"),
        (encode({**VALID, "env": {"A": "\ud800"}}), 3, "env is not an object of NAME: string"),
        (encode(VALID), 0, "0 fds instead of 3 (stdin, stdout, stderr)"),
        (encode(VALID), 2, "2 fds instead of 3 (stdin, stdout, stderr)"),
        (encode(VALID), 4, "4 fds instead of 3 (stdin, stdout, stderr)"),
        (encode(VALID), 9, "more than 4 fds instead of 3 (stdin, stdout, stderr)"),
    ],
)
def test_a_malformed_message_costs_its_connection_only(
    root_zygote: Zygote, data: bytes, fds: int, why: str
) -> None:
    before = open_fds(root_zygote.process.pid)  # type: ignore[union-attr]
    sock = connect(root_zygote)
    send_raw(sock, data, fds)
    (reply,) = replies(sock)
    assert reply["retry"] is False and str(reply["error"]).startswith(f"bad request: {why}")
    logged = [line for line in root_zygote.text().splitlines() if "bad request" in line]
    assert len(logged) == 1
    assert f"bad request from pid {os.getpid()} (uid {BOT_A}): {why}" in logged[0]
    assert logged[0].endswith("; hung up")
    assert open_fds(root_zygote.process.pid) == before  # type: ignore[union-attr]
    assert root_zygote.launch("exit", "6").wait(timeout=10) == 6  # and it still serves


def test_a_second_message_ends_its_own_connection_and_bot_only(root_zygote: Zygote) -> None:
    steady = root_zygote.launch("sleep", "pid", key="ann/steady")
    bot = read_pid(root_zygote.workdir(BOT_A) / "pid")
    sock = connect(root_zygote)
    send_raw(sock, encode({**VALID, "argv": ["sleep", "/tmp/ignored"], "cwd": "/"}), 3)
    data, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
    (pidfd,) = fds
    os.close(pidfd)
    own_bot = json.loads(data)["pid"]
    send_raw(sock, b"more", 2)  # fds where none are expected
    said = replies(sock)
    assert said[-1] == {"error": "bad request: a second message on one connection", "retry": False}
    until(lambda: not alive(own_bot), "the connection's own bot to die")
    assert alive(bot) and steady.poll() is None


# text, half of it with lone surrogates (JSON may escape them; no file or log can take them;
# st.text leaves them out)
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
texts = st.text(max_size=10) | st.lists(st.characters() | surrogates, max_size=10).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)
APPS_THAT_WAIT = {"sleep", "signal", "read"}  # a valid fuzzed request must end by itself
plausible = st.fixed_dictionaries(  # what a launcher could send
    {
        "key": st.from_regex(r"[a-z]{1,6}/[a-z0-9-]{1,6}", fullmatch=True),
        "argv": st.lists(st.sampled_from(["exit", "show", "raise", "1", "-v", ""]), max_size=3),
        "cwd": st.sampled_from(["/", "/proc", "/nonexistent"]),
        "env": st.dictionaries(st.sampled_from(["HOME", "A", "LANG"]), st.text(max_size=6)),
    }
)
GONE = object()
near_requests = plausible | st.builds(  # one field replaced, removed or added
    lambda request, field, value: {
        **{k: v for k, v in request.items() if k != field},
        **({} if value is GONE else {field: value}),
    },
    plausible,
    st.sampled_from(["key", "argv", "cwd", "env", "extra"]),
    texts | json_values | st.just(GONE),
)
payloads = st.one_of(
    st.binary(min_size=1, max_size=300),
    json_values.map(encode),
    near_requests.map(encode),
    near_requests.map(encode),  # twice: the likeliest to get far
    near_requests.map(encode).flatmap(lambda d: st.integers(1, len(d)).map(lambda n: d[:n])),
)
conversations = st.lists(  # connections, each a few messages, each with 0 to 6 fds
    st.lists(st.tuples(payloads, st.just(3) | st.integers(0, 6)), min_size=1, max_size=3),
    min_size=1,
    max_size=3,
)


def test_no_message_stops_the_zygote_or_its_bots(root_zygote: Zygote) -> None:
    """Random bytes, random JSON and near-requests, with random numbers of fds, over real
    connections: afterwards the bot that ran before runs on (same pid), the zygote has closed
    every fd it was sent, and it still serves."""
    zygote_pid = root_zygote.process.pid  # type: ignore[union-attr]
    steady = root_zygote.launch("sleep", "pid", key="ann/steady")
    bot = read_pid(root_zygote.workdir(BOT_A) / "pid")
    fds_before = open_fds(zygote_pid)

    @settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(conversations)
    @example([[(b"[" * 100_000, 3)], [(b"x" * (2 * zygote.MAX_MESSAGE), 5)], [(b"{}", 0)] * 2])
    def talk(conversations: list[list[tuple[bytes, int]]]) -> None:
        for conversation in conversations:
            sock = connect(root_zygote)
            with contextlib.suppress(OSError):  # the zygote may hang up after the first one
                for data, fds in conversation:
                    send_raw(sock, data, fds)
            replies(sock)
        assert alive(zygote_pid), f"the zygote died; log: {root_zygote.text()[-3000:]}"

    talk()
    try:  # 500 examples of forks and fds: slow on a loaded machine (CI beside a soak)
        until(lambda: open_fds(zygote_pid) == fds_before, "the zygote's fds", timeout=90)
    except AssertionError:
        raise AssertionError(
            f"the zygote kept fds: {open_fds(zygote_pid)} open, {fds_before} before; its "
            f"children {root_zygote.children()}; log: {root_zygote.text()[-2000:]}"
        ) from None
    assert alive(bot) and steady.poll() is None, "the bot that ran before was disturbed"
    assert root_zygote.launch("exit", "6").wait(timeout=10) == 6
    steady.terminate()
    assert steady.wait(timeout=10) == 3


# --- the zygote's own life ---------------------------------------------------------------------


def test_code_changed_on_disk_is_never_forked_the_zygote_reloads(shared: Path) -> None:
    z = Zygote(shared / "zygote", preload="strategy_lib")
    (z.directory / "strategy_lib.py").write_text("VERSION = 1\n")
    z.start()
    try:
        assert z.launch("exit", "0").wait(timeout=10) == 0
        (z.directory / "strategy_lib.py").write_text("VERSION = 22\n")  # an upgrade on disk
        waiting = z.launch("exit", "4")
        assert stderr_line(waiting).endswith(  # the zygote would not fork stale code
            "strategy_lib.py changed on disk: zygote restarts; waiting\n"
        )
        until(lambda: z.process.poll() is not None, "the zygote to leave")  # type: ignore[union-attr]
        assert "strategy_lib.py changed on disk since the preload: exiting to reload" in z.text()
        z.start()  # supervisord's autorestart
        assert waiting.wait(timeout=10) == 4  # it waited for the zygote with the new code
    finally:
        z.stop()


def test_a_preload_that_starts_a_thread_is_refused(shared: Path) -> None:
    z = Zygote(shared / "zygote", preload="threaded")
    (z.directory / "threaded.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True)"
        ".start()\n"
    )
    z.start(wait=False)
    assert z.process.wait(timeout=10) != 0  # type: ignore[union-attr]
    assert "2 threads after preloading threaded" in z.text()
    assert not z.socket.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "s", "--min-uid", "0"],
        ["serve", "s", "--bad", "1"],
        ["serve", "s", "--collect-every", "-1"],
        ["serve", "s", "--collect-every", "nan"],
        ["serve", "s", "--collect-every", "soon"],
        ["serve", "s", "--collect-every", "1e308"],
        ["run", "--collect-every", "-1", "--", "trade"],
        ["run", "--bad", "1", "--", "trade"],
        ["run", "--entry", "--", "trade"],
        ["run", "trade"],
    ],
)
def test_bad_zygote_arguments_print_the_usage(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert zygote.main(args) == 2
    assert capsys.readouterr().err.startswith("usage: zygote.py serve SOCKET [--min-uid N]")


@pytest.mark.parametrize("args", [[], ["s"], ["s", "trade"], ["launch", "s", "--", "trade"]])
def test_bad_launcher_arguments_print_the_usage(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert launcher_py.main(args) == 2
    assert capsys.readouterr().err == "usage: launcher.py SOCKET -- ARGS\n"


def _imported(*args: str) -> set[str]:
    """The modules a `python3 -I -S` run imports (-X importtime names each on stderr)."""
    run = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-S", "-X", "importtime", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return {line.rpartition("|")[2].strip() for line in run.stderr.splitlines() if "|" in line}


def test_the_launcher_imports_only_modules_written_in_c() -> None:
    """One launcher runs beside every bot: a pure-Python import (json pulls in re, signal and
    socket pull in enum) costs its memory once per bot. Only modules written in C (built in or
    extensions), and __future__ (a few lines, for the type checker's names), beyond what
    python3 itself loads."""
    baseline = _imported("-c", "pass")
    added = _imported(str(LAUNCHER_FILE)) - baseline
    assert added, "nothing measured: -X importtime printed nothing"
    assert "_json" in added and "_socket" in added  # (the control: what it does use)
    where = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-S", "-c", ORIGINS, *sorted(added)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    python = {n for n, origin in zip(sorted(added), where, strict=True) if origin == "python"}
    assert python == {"__future__"}


ORIGINS = """import importlib.util, sys
for name in sys.argv[1:]:
    origin = importlib.util.find_spec(name).origin
    print("C" if origin == "built-in" or origin.endswith(".so") else "python")"""


# any text, lone surrogates included: what os gives for undecodable environment bytes
TEXT = st.text(st.characters(exclude_categories=()))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(TEXT, st.one_of(TEXT, st.lists(TEXT), st.dictionaries(TEXT, TEXT))))
def test_the_launchers_json_is_json(message: dict[str, object]) -> None:
    """Its own encoder (no json module) writes what json reads, surrogates from undecodable
    environment bytes included; its decoder reads what the zygote's json writes, and JSON
    with characters beyond ASCII too (its end is counted in characters, not bytes)."""
    assert json.loads(launcher_py.encode(message)) == message
    assert launcher_py.decode(json.dumps(message).encode()) == message
    unicode = {"error": "zygote: é ∞ 🐍", "retry": True}
    assert launcher_py.decode(json.dumps(unicode, ensure_ascii=False).encode()) == unicode


@pytest.mark.parametrize("data", [b"", b"[1]", b'{"pid": 1} x', b"{", b"\xff", b"NaN", b"{}{}"])
def test_the_launcher_refuses_what_is_not_one_json_object(data: bytes) -> None:
    with pytest.raises(ValueError):
        launcher_py.decode(data)


def test_launcher_gives_up_when_no_zygote_appears(tmp_path: Path) -> None:
    started = time.monotonic()
    code = launcher_py.launch(str(tmp_path / "none.sock"), ["exit", "0"], wait=0.5)
    assert code == zygote.TEMPFAIL == launcher_py.TEMPFAIL
    assert time.monotonic() - started < 5


def test_a_stop_as_the_bot_starts_reaches_the_bot_not_the_launcher(root_zygote: Zygote) -> None:
    """supervisord may stop a launcher the moment its bot starts: the TERM must reach the bot
    (the test app exits 3 on it), never kill the launcher and leave its bot to be SIGKILLed.
    Signals are now caught before the request is sent. Before, a TERM in the moment between
    the fork and the launcher's handlers killed it: hit once by a loaded CI machine, never on
    an idle one, so this test guards the order rather than proving it every run."""
    pid_file = root_zygote.workdir(BOT_A) / "pid"
    for attempt in range(10):
        pid_file.unlink(missing_ok=True)
        launcher = root_zygote.launch("sleep", "pid")
        until(lambda: pid_file.exists() and pid_file.read_text(), "the bot's pid")
        launcher.terminate()
        assert launcher.wait(timeout=30) == 3, (attempt, launcher.stderr.read())  # type: ignore[union-attr]


def test_a_launcher_stopped_while_it_waits_for_a_zygote_ends_at_once(tmp_path: Path) -> None:
    launcher = subprocess.Popen(
        [*LAUNCHER, str(tmp_path / "none.sock"), "--", "exit", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert "waiting" in stderr_line(launcher)
    launcher.send_signal(signal.SIGWINCH)  # no terminal to resize: ignored
    launcher.terminate()
    assert launcher.wait(timeout=10) == -signal.SIGTERM
