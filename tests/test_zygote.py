"""The zygote runtime's hard parts, with real processes: a zygote, launchers, forked children.

The children run tests/zygote_apps.py instead of freqtrade (fast, one behaviour each); the
e2e suites run real freqtrade bots under the zygote in real pools.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from botpool import zygote

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "botpool" / "zygote.py"


class Zygote:
    def __init__(self, directory: Path, preload: str = "json") -> None:
        self.directory, self.preload = directory, preload
        self.socket = directory / "zygote.sock"
        self.log = directory / "zygote.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> Zygote:
        env = {**os.environ, "PYTHONPATH": f"{self.directory}:{REPO}", "PYTHONUNBUFFERED": "1"}
        self.socket.unlink(missing_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(SCRIPT), "serve", str(self.socket)]
                + ["--entry", "tests.zygote_apps:run", "--preload", self.preload],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        if wait:
            until(self.socket.exists, f"zygote socket; log: {self.text()}")
        return self

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def launch(self, *args: str, key: str = "ann/b1", **kw: object) -> subprocess.Popen[str]:
        env = {**os.environ, "BOTPOOL_BOT": key, "BOT_SETTING": f"setting of {key}"}
        return subprocess.Popen(
            [sys.executable, str(SCRIPT), "launch", str(self.socket), "--", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            **kw,  # type: ignore[call-overload]
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def until(condition: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    return status != "Z"


def read_pid(path: Path) -> int:
    until(lambda: path.exists() and path.read_text(), f"{path}")
    return int(path.read_text())


@pytest.fixture
def zyg(tmp_path: Path) -> Iterator[Zygote]:
    z = Zygote(tmp_path).start()
    yield z
    z.stop()


def test_the_child_gets_the_launchers_environment_directory_arguments_and_stdio(
    zyg: Zygote, tmp_path: Path
) -> None:
    seen = []
    for key in ("ann/b1", "ann/b2"):
        workdir = tmp_path / key.replace("/", "-")
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
    ],
)
def test_the_launcher_ends_exactly_as_its_bot_did(
    zyg: Zygote, args: tuple[str, ...], code: int, stderr: str
) -> None:
    launcher = zyg.launch(*args)
    _out, err = launcher.communicate(timeout=10)
    assert launcher.returncode == code
    assert stderr in err


def test_signals_to_the_launcher_reach_the_bot(zyg: Zygote, tmp_path: Path) -> None:
    launcher = zyg.launch("sleep", str(tmp_path / "pid"))
    bot = read_pid(tmp_path / "pid")
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=10) == 3  # the bot's own SIGTERM handler chose 3
    until(lambda: not alive(bot), "the bot to end")


def test_a_killed_launcher_takes_its_bot_along_and_a_restart_never_overlaps_it(
    zyg: Zygote, tmp_path: Path
) -> None:
    first = zyg.launch("sleep", str(tmp_path / "pid1"))
    old = read_pid(tmp_path / "pid1")
    first.kill()  # SIGKILL: nothing can be forwarded
    first.wait()
    second = zyg.launch("sleep", str(tmp_path / "pid2"))  # what supervisord's autorestart does
    new = read_pid(tmp_path / "pid2")
    assert not alive(old), "the old bot still ran when its replacement started"
    assert alive(new)
    second.kill()
    second.wait()
    until(lambda: not alive(new), "the second bot to end")


def test_a_second_launcher_for_a_running_bot_is_refused(zyg: Zygote, tmp_path: Path) -> None:
    first = zyg.launch("sleep", str(tmp_path / "pid"))
    read_pid(tmp_path / "pid")
    second = zyg.launch("sleep", str(tmp_path / "other"))
    _out, err = second.communicate(timeout=10)
    assert second.returncode == 1
    assert "ann/b1 already runs as pid" in err
    first.terminate()
    assert first.wait(timeout=10) == 3


def test_a_crashed_zygote_takes_its_bots_and_launchers_wait_for_the_next(
    zyg: Zygote, tmp_path: Path
) -> None:
    launcher = zyg.launch("sleep", str(tmp_path / "pid"))
    bot = read_pid(tmp_path / "pid")
    zyg.process.kill()  # type: ignore[union-attr]
    assert launcher.wait(timeout=10) == zygote.TEMPFAIL
    until(lambda: not alive(bot), "the orphaned bot to die")
    waiting = zyg.launch("exit", "5")  # started before the new zygote exists
    time.sleep(0.5)
    assert waiting.poll() is None
    zyg.start()
    assert waiting.wait(timeout=10) == 5


def test_stopping_the_zygote_stops_its_bots_gracefully(zyg: Zygote, tmp_path: Path) -> None:
    launchers = [zyg.launch("sleep", str(tmp_path / f"pid{i}"), key=f"u/b{i}") for i in range(3)]
    bots = [read_pid(tmp_path / f"pid{i}") for i in range(3)]
    zyg.process.terminate()  # type: ignore[union-attr]
    assert zyg.process.wait(timeout=30) == 0  # type: ignore[union-attr]
    assert [launcher.wait(timeout=10) for launcher in launchers] == [3, 3, 3]
    assert not any(alive(pid) for pid in bots)


def test_code_changed_on_disk_is_never_forked_the_zygote_reloads(tmp_path: Path) -> None:
    (tmp_path / "strategy_lib.py").write_text("VERSION = 1\n")
    z = Zygote(tmp_path, preload="strategy_lib").start()
    try:
        assert z.launch("exit", "0").wait(timeout=10) == 0
        (tmp_path / "strategy_lib.py").write_text("VERSION = 22\n")  # an upgrade on disk
        waiting = z.launch("exit", "4")
        until(lambda: z.process.poll() is not None, "the zygote to leave")  # type: ignore[union-attr]
        assert "strategy_lib.py changed on disk" in z.text()
        assert waiting.poll() is None  # it waits for a zygote with the new code
        z.start()  # supervisord's autorestart
        assert waiting.wait(timeout=10) == 4
    finally:
        z.stop()


def test_a_preload_that_starts_a_thread_is_refused(tmp_path: Path) -> None:
    (tmp_path / "threaded.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True)"
        ".start()\n"
    )
    z = Zygote(tmp_path, preload="threaded").start(wait=False)
    assert z.process.wait(timeout=10) != 0  # type: ignore[union-attr]
    assert "2 threads after preloading threaded" in z.text()
    assert not z.socket.exists()


def test_launcher_gives_up_when_no_zygote_appears(tmp_path: Path) -> None:
    started = time.monotonic()
    code = zygote.launch(str(tmp_path / "none.sock"), ["exit", "0"], wait=0.5)
    assert code == zygote.TEMPFAIL
    assert time.monotonic() - started < 5
