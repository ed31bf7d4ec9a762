"""The zygote runtime: a pool imports freqtrade once, then forks one child per bot.

This file runs inside a pool container (converge copies it to /botpool/runtime/zygote.py),
standard library only until the zygote preloads. It has two roles:

    python3 zygote.py serve SOCKET            the pool's zygote, supervisord program `zygote`
    python3 zygote.py launch SOCKET -- ARGS   one bot, its own supervisord program

Every bot stays its own supervisord program: its program is a small launcher that asks the
zygote to fork the bot, lends it its stdout/stderr (so the bot's log stays the program's
log), forwards every signal supervisord sends, and exits as the bot exits. So
`supervisorctl stop/start/restart <bot>`, autorestart and per-bot logs work unchanged.

Protocol: a SOCK_SEQPACKET unix socket (0600, the zygote's uid only), one JSON message each.
    launcher -> zygote  {"key", "argv", "cwd", "env"} with fds [stdin, stdout, stderr]
    zygote -> launcher  {"pid"} with fd [pidfd]     the bot runs
                        {"status"}                  the bot ended (a wait status)
                        {"error", "retry"}          nothing started (retry: ask again soon)

The hard parts, each tested in tests/test_zygote.py:
  - The launcher is not the bot's parent. The zygote reaps the bot and sends its wait
    status; the launcher exits with the same code, or dies of the same signal. Signals go
    through a pidfd, which cannot hit a recycled pid.
  - A launcher that dies (even by SIGKILL) closes its socket: the zygote kills that bot at
    once, and forks no new bot for the same key until the old one is reaped. So a restart
    never runs two bots on one database.
  - A zygote that dies takes its bots with it (PR_SET_PDEATHSIG), and each launcher, seeing
    the socket close, kills its bot through the pidfd, waits for it to be gone and exits 75;
    supervisord restarts it and it waits for the new zygote.
  - Code on disk newer than the zygote's (a pip upgrade, a new zygote.py): before each fork
    the zygote compares every loaded module file with what it imported; if one changed it
    refuses, exits, and supervisord restarts it, its bots with it. No bot runs stale code.
  - Per-bot environment, working directory and stdio are the launcher's, applied in the
    child; the child reseeds random generators, gets default signal handlers, a session of
    its own, and ends with logging.shutdown() and os._exit() (never the zygote's cleanup).
  - Forking a process with threads is unsafe: the zygote sets thread-pool sizes to 1 and
    pyarrow's jemalloc to no background thread before importing, and refuses to serve if a
    thread still exists (counted in /proc/self/task, native threads included).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from typing import Any

MAX_MESSAGE = 1 << 20
TEMPFAIL = 75  # EX_TEMPFAIL: the zygote went away; supervisord restarts the launcher
FORWARDED = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")
SINGLE_THREADED = {
    # set before any import: libraries size their thread pools when they load
    "JE_ARROW_MALLOC_CONF": "background_thread:false",  # pyarrow (pandas imports it)
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "NUMEXPR_MAX_THREADS": "1",
}
PRELOAD = (
    "numpy",
    "pandas",
    "talib.abstract",
    "ccxt",
    "ccxt.async_support",
    "sqlalchemy",
    "fastapi",
    "uvicorn",
    "freqtrade.main",
    "freqtrade.commands.trade_commands",
    "freqtrade.worker",
    "freqtrade.freqtradebot",
    "freqtrade.rpc.api_server.webserver",
    "freqtrade.rpc.api_server.api_v1",
    # what `freqtrade trade` imports later (python3 -X importtime, freqtrade 2026.9): each
    # module a child imports itself is private memory, once per bot
    "sqlite3",
    "sqlalchemy.dialects.sqlite",
    "jwt",
    "uvloop",
    "h11",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.websockets_sansio_impl",
    "pyarrow.pandas_compat",
    "freqtrade.exchange.check_exchange",
    "freqtrade.rpc.api_server.api_analysis",
    "freqtrade.rpc.api_server.api_auth",
    "freqtrade.rpc.api_server.api_background_tasks",
    "freqtrade.rpc.api_server.api_backtest",
    "freqtrade.rpc.api_server.api_download_data",
    "freqtrade.rpc.api_server.api_pair_history",
    "freqtrade.rpc.api_server.api_trading",
    "freqtrade.rpc.api_server.api_webserver",
    "freqtrade.rpc.api_server.api_ws",
    "freqtrade.rpc.api_server.web_ui",
)
ENTRY = "freqtrade.main:main"


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} zygote[{os.getpid()}]: {message}", flush=True)


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


def receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the fds it carried; (None, []) when the peer is gone."""
    try:
        data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 4)
    except (ConnectionResetError, BrokenPipeError):
        return None, []
    if not data:
        _close(fds)
        return None, []
    return json.loads(data), fds


# --- the zygote ------------------------------------------------------------------------------


class Bot:
    def __init__(self, key: str, pid: int, conn: socket.socket | None) -> None:
        self.key, self.pid, self.conn = key, pid, conn


class Zygote:
    def __init__(self, path: str, entry: str, preload: tuple[str, ...]) -> None:
        self.path, self.entry, self.preload = path, entry, preload
        self.bots: dict[int, Bot] = {}  # pid -> bot
        self.waiting: list[tuple[socket.socket, dict[str, Any], list[int]]] = []
        self.conns: dict[int, socket.socket] = {}  # fd -> launcher connection
        self.fingerprint: dict[str, tuple[int, int]] = {}
        self.stopping = False

    # -- start --

    def load(self) -> None:
        for key, value in SINGLE_THREADED.items():
            os.environ.setdefault(key, value)
        started = time.monotonic()
        import ctypes
        import gc
        import importlib
        import logging  # noqa: F401  (the child shuts it down)
        import random  # noqa: F401

        self.libc = ctypes.CDLL(None, use_errno=True)
        missing = []
        for name in self.preload:
            try:
                importlib.import_module(name)
            except ImportError:  # another freqtrade version: its bots import what they need
                missing.append(name)
        if missing:
            log(f"not preloaded (not installed): {', '.join(missing)}")
        self.target = _resolve(self.entry)
        threads = len(os.listdir("/proc/self/task"))
        if threads != 1:
            raise SystemExit(
                f"zygote: {threads} threads after preloading {', '.join(self.preload)}; "
                "forking would copy a process whose other threads are gone. Find the import "
                "that starts a thread (see /proc/<pid>/task) and keep it out of the preload"
            )
        self.fingerprint = _fingerprint()
        gc.collect()
        gc.freeze()  # preloaded objects leave the collector: children do not touch their pages
        log(
            f"preloaded {len(sys.modules)} modules in {time.monotonic() - started:.1f} s, "
            f"one thread; serving {self.path}"
        )

    def listen(self) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a socket left by a zygote that died
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        old = os.umask(0o177)
        try:
            listener.bind(self.path)
        finally:
            os.umask(old)
        listener.listen(128)
        return listener

    # -- run --

    def serve(self) -> int:
        self.load()
        self.listener = self.listen()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.poll = select.poll()
        self.poll.register(self.listener, select.POLLIN)
        self.poll.register(self.wake_r, select.POLLIN)
        while not self.stopping:
            for fd, _events in self.poll.poll():
                if fd == self.listener.fileno():
                    conn, _ = self.listener.accept()
                    if self._peer_uid(conn) != os.getuid():
                        conn.close()
                        continue
                    self.conns[conn.fileno()] = conn
                    self.poll.register(conn, select.POLLIN)
                elif fd == self.wake_r:
                    while True:
                        try:
                            os.read(self.wake_r, 512)
                        except BlockingIOError:
                            break
                    self._reap()
                elif fd in self.conns:
                    conn = self.conns[fd]
                    message, fds = receive(conn)
                    if message is None:
                        self._launcher_gone(conn)
                    else:
                        self._request(conn, message, fds)
            self._start_waiting()
        return self._shutdown()

    def _stop(self, *_: Any) -> None:
        self.stopping = True

    @staticmethod
    def _peer_uid(conn: socket.socket) -> int:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return int(struct.unpack("3i", creds)[1])

    def _request(self, conn: socket.socket, message: dict[str, Any], fds: list[int]) -> None:
        if len(fds) != 3 or not isinstance(message.get("argv"), list):
            _close(fds)
            self._reply(conn, {"error": "bad request: want argv and three fds", "retry": False})
            return
        live = [b for b in self.bots.values() if b.key == message["key"] and b.conn is not None]
        if live:
            _close(fds)
            self._reply(
                conn,
                {"error": f"{message['key']} already runs as pid {live[0].pid}", "retry": False},
            )
            return
        self.waiting.append((conn, message, fds))  # forked once the old one is reaped

    def _start_waiting(self) -> None:
        busy = {b.key for b in self.bots.values()}
        for item in list(self.waiting):
            conn, message, fds = item
            if message["key"] in busy:
                continue
            self.waiting.remove(item)
            if conn.fileno() not in self.conns:  # the launcher left while it waited
                _close(fds)
                continue
            changed = self._changed_module()
            if changed:
                _close(fds)
                self._reply(
                    conn,
                    {"error": f"{changed} changed on disk: zygote restarts", "retry": True},
                )
                log(f"{changed} changed on disk since the preload: exiting to reload")
                self.stopping = True
                return
            self._fork(conn, message, fds)
            busy.add(message["key"])

    def _changed_module(self) -> str | None:
        for path, stamp in self.fingerprint.items():
            try:
                st = os.stat(path)
            except OSError:
                return path
            if (st.st_mtime_ns, st.st_size) != stamp:
                return path
        return None

    def _fork(self, conn: socket.socket, message: dict[str, Any], fds: list[int]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                self._close_inherited()
                code = child(self.libc, parent, self.target, message, fds)
            except BaseException:  # noqa: BLE001  never return into the zygote's loop
                code = 70
            os._exit(code)
        _close(fds)
        self.bots[pid] = Bot(message["key"], pid, conn)
        try:
            pidfd = os.pidfd_open(pid)
            send(conn, {"pid": pid}, [pidfd])
            os.close(pidfd)
        except OSError:
            self._launcher_gone(conn)
            return
        log(f"forked {message['key']} as pid {pid}")

    def _close_inherited(self) -> None:
        signal.set_wakeup_fd(-1)
        self.listener.close()
        for conn in self.conns.values():
            conn.close()
        for _conn, _message, queued in self.waiting:
            _close(queued)
        os.close(self.wake_r)
        os.close(self.wake_w)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            bot = self.bots.pop(pid, None)
            if bot is None:
                continue
            log(f"{bot.key} (pid {pid}) ended: {_describe(status)}")
            if bot.conn is not None:
                self._reply(bot.conn, {"status": status})

    def _reply(self, conn: socket.socket, message: dict[str, Any]) -> None:
        """Send a last message, then hang up."""
        with contextlib.suppress(OSError):
            send(conn, message)
        self._forget(conn)

    def _forget(self, conn: socket.socket) -> None:
        fd = conn.fileno()
        if fd in self.conns:
            del self.conns[fd]
            self.poll.unregister(fd)
            conn.close()

    def _launcher_gone(self, conn: socket.socket) -> None:
        """A launcher closed its socket (it exited or was killed): its bot must die with it."""
        for bot in self.bots.values():
            if bot.conn is conn:
                bot.conn = None
                log(f"launcher of {bot.key} is gone: killing pid {bot.pid}")
                _kill_group(bot.pid, signal.SIGKILL)
        self._forget(conn)

    def _shutdown(self, grace: float = 20.0) -> int:
        """Stop every bot (TERM, then KILL after grace) and leave."""
        for _conn, _message, queued in self.waiting:
            _close(queued)
        for bot in self.bots.values():
            _kill_group(bot.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.bots and time.monotonic() < deadline:
            time.sleep(0.1)
            self._reap()
        for bot in self.bots.values():
            _kill_group(bot.pid, signal.SIGKILL)
        while self.bots:
            time.sleep(0.05)
            self._reap()
        self.listener.close()
        log("stopped")
        return 0


def child(libc: Any, parent: int, target: Any, message: dict[str, Any], fds: list[int]) -> int:
    """Become the bot: runs in the forked child and never returns into the zygote."""
    import logging
    import random

    os.setsid()
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the zygote
    if os.getppid() != parent:  # the zygote died before prctl took effect
        return TEMPFAIL
    libc.prctl(15, message["key"].replace("/", "-").encode()[:15])  # PR_SET_NAME: for top, ps
    for number, fd in enumerate(fds):
        os.dup2(fd, number)
        os.close(fd)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update(message["env"])
    os.chdir(message["cwd"])
    sys.argv = ["freqtrade", *message["argv"]]
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    code: int
    try:
        target(message["argv"])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if not isinstance(exit_.code, (int, type(None))):
            print(exit_.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    return code


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _resolve(entry: str) -> Any:
    import importlib

    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


def _fingerprint() -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file the zygote has imported, this file included."""
    stamps = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        stamps[path] = (st.st_mtime_ns, st.st_size)
    return stamps


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the bot leads its own session: its helpers die too
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


# --- the launcher -----------------------------------------------------------------------------


def launch(path: str, argv: list[str], wait: float = 180.0) -> int:
    """Run one bot through the zygote at path; returns (or dies) the way the bot did."""
    request = {
        "key": os.environ.get("BOTPOOL_BOT") or os.getcwd(),
        "argv": argv,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
    }
    deadline = time.monotonic() + wait
    notified = False
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(path)
            send(sock, request, [0, 1, 2])
            reply, fds = receive(sock)
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
            reply, fds = None, []
        if reply is not None and "pid" in reply:
            break
        sock.close()
        if reply is not None and not reply.get("retry"):
            print(f"botpool launcher: {reply.get('error')}", file=sys.stderr, flush=True)
            return 1
        if time.monotonic() > deadline:
            print(f"botpool launcher: no zygote at {path} after {wait:.0f} s", file=sys.stderr)
            return TEMPFAIL
        if not notified:
            why = reply.get("error") if reply else "not answering yet"
            print(f"botpool launcher: zygote {why}; waiting", file=sys.stderr, flush=True)
            notified = True
        time.sleep(0.2)
    pidfd = fds[0]

    def forward(sig: int, _frame: Any) -> None:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, sig)

    for name in FORWARDED:
        signal.signal(getattr(signal, name), forward)
    message, _ = receive(sock)
    if message is None or "status" not in message:
        # the zygote is gone (its bots die with it); make sure ours is, then let supervisord
        # start us again: we will wait for the next zygote
        forward(signal.SIGKILL, None)
        select.select([pidfd], [], [], 10.0)
        print("botpool launcher: the zygote went away; the bot was stopped", file=sys.stderr)
        return TEMPFAIL
    code = os.waitstatus_to_exitcode(message["status"])
    if code < 0:  # killed by a signal: die of the same one, as the bot did
        for name in FORWARDED:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        if -code not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


def main(args: list[str]) -> int:
    if len(args) >= 2 and args[0] == "serve":
        options = dict(zip(args[2::2], args[3::2], strict=False))
        preload = options.get("--preload")
        zygote = Zygote(
            args[1],
            options.get("--entry", ENTRY),
            tuple(p for p in preload.split(",") if p) if preload is not None else PRELOAD,
        )
        return zygote.serve()
    if len(args) >= 3 and args[0] == "launch" and "--" in args:
        return launch(args[1], args[args.index("--") + 1 :])
    print(
        "usage: zygote.py serve SOCKET [--entry MODULE:FUNC] [--preload M1,M2]\n"
        "       zygote.py launch SOCKET -- ARGS",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    # run as a file: its folder must not shadow the modules bots import (botpool/ holds a
    # secrets.py, which numpy would find instead of the standard library's)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.exit(main(sys.argv[1:]))
