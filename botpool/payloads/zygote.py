"""The zygote runtime: a pool imports freqtrade once, then forks one child per bot.

This file runs inside a pool container (converge copies it to /botpool/runtime/zygote.py),
standard library only until the zygote preloads. Its roles:

    python3 zygote.py serve SOCKET [--min-uid N]   the pool's zygote, program `zygote`
    python3 zygote.py run -- ARGS                  the process runtime's bot (no zygote):
        freqtrade in that very process, with the same garbage collection as a forked bot

Every bot stays its own supervisord program: its program is a small launcher
(`python3 -I -S launcher.py SOCKET -- ARGS`, botpool/payloads/launcher.py) that asks the
zygote to fork the bot, lends it its stdout/stderr (so the bot's log stays the program's
log), forwards every signal supervisord sends, and exits as the bot exits. So
`supervisorctl stop/start/restart <bot>`, autorestart and per-bot logs work unchanged.

Who runs as whom. In a pool the zygote runs as root and every launcher as its bot's own uid
(supervisord starts it through setpriv). The kernel names each launcher's uid and gid
(SO_PEERCRED), and the forked child becomes that uid and gid, with no supplementary group and
no capability, before it touches anything of its bot (directory, environment, files, code);
a child that cannot drop root exits 71 and never runs its bot. So bots cannot read or signal
each other, and one bot's key cannot block or kill another bot: a key counts per uid.
    zygote as root      socket 0666: any uid may connect; root and uids below --min-uid
                        (default 1) are refused
    zygote as a user    socket 0600, and peers of the zygote's own uid only; children keep it

Protocol: a SOCK_SEQPACKET unix socket, one JSON message each.
    launcher -> zygote  {"key", "argv", "cwd", "env"} with fds [stdin, stdout, stderr]
    zygote -> launcher  {"pid"} with fd [pidfd]     the bot runs
                        {"status"}                  the bot ended (a wait status)
                        {"error", "retry"}          nothing started (retry: ask again soon)

The hard parts, each tested in tests/test_zygote.py:
  - The launcher is not the bot's parent. The zygote reaps the bot and sends its wait
    status; the launcher exits with the same code, or dies of the same signal. Signals go
    through a pidfd, which cannot hit a recycled pid.
  - A launcher that dies (even by SIGKILL) closes its socket: the zygote kills that bot at
    once, and forks no new bot for the same (uid, key) until the old one is reaped. So a
    restart never runs two bots on one database.
  - A zygote that dies takes its bots with it (PR_SET_PDEATHSIG), and each launcher, seeing
    the socket close, kills its bot through the pidfd, waits for it to be gone and exits 75;
    supervisord restarts it and it waits for the new zygote. A launcher whose request was
    read but not answered (the zygote died between fork and pid) exits 75 at once too.
  - Code on disk newer than the zygote's (a pip upgrade, a new zygote.py): before each fork
    the zygote compares every loaded module file with what it imported; if one changed it
    refuses, exits, and supervisord restarts it, its bots with it. No bot runs stale code.
  - Per-bot environment, working directory and stdio are the launcher's, applied in the
    child; the child reseeds random generators, gets default signal handlers, a session of
    its own, and ends with logging.shutdown() and os._exit() (never the zygote's cleanup).
  - Launchers are untrusted input: every message is checked (at most 1 MiB, three fds, a
    JSON object of exactly key, argv, cwd, env with the right types) before the zygote uses
    any of it. A bad one is answered, logged in one line and costs its own connection only
    (and the fds it carried are closed); the zygote and every other bot go on.
  - Forking a process with threads is unsafe: the zygote sets thread-pool sizes to 1 and
    pyarrow's jemalloc to no background thread before importing, and refuses to serve if a
    thread still exists (counted in /proc/self/task, native threads included).
  - Sharing lasts: after preloading, every object is made immortal (Python 3.12 and 3.13:
    its reference count is never written again) and frozen out of the collector, so a bot
    that uses a preloaded object does not copy the page it lives on (immortalize()).
  - Garbage is collected: freqtrade raises the collector's thresholds to (50000, 500, 1000)
    at start, after which its oldest generation is about never collected, and every API call
    that loads trades (/balance, /trades, /stats: SQLAlchemy objects hold reference cycles)
    left its objects behind for good: a bot with 704 trades grew 2.6 MB a /balance call. So
    each child runs a full collection every --collect-every seconds (default 60) in a thread
    of its own (collect_cycles()); the frozen preloaded heap is not walked.
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
MAX_FDS = 4  # a request carries three; a fourth shows a sender that sent too many
MAX_KEY = 200
TEMPFAIL = 75  # EX_TEMPFAIL: the zygote went away (launcher.py: the same code)
CANNOT_DROP = 71  # EX_OSERR: a child could not become its launcher's uid; no bot ran
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
    # what a bot's API server imports as it starts, found by comparing a forked bot's
    # sys.modules with its zygote's (freqtrade 2026.9): about 2 MiB RSS a bot imported itself
    "anyio._backends._asyncio",
    "anyio._core._resources",
    "anyio._core._sockets",
    "anyio._core._streams",
    "anyio.abc._eventloop",
    "anyio.abc._sockets",
    "anyio.abc._subprocesses",
    "anyio.abc._testing",
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "anyio.streams.tls",
    "fastapi.telemetry._runtime",
    "pyarrow.vendored.version",
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.websockets.auto",
)
ENTRY = "freqtrade.main:main"
COLLECT_EVERY = 60.0  # seconds between a bot's full collections (the docstring says why)


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} zygote[{os.getpid()}]: {message}", flush=True)


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


def receive(sock: socket.socket) -> tuple[bytes, list[int], int]:
    """One message, the fds it carried and recvmsg's flags (b"": the peer hung up)."""
    data, fds, flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    return data, fds, flags


class BadRequest(ValueError):
    """A message that is not a launcher's request; it costs its own connection only."""


def parse_request(data: bytes, fds: list[int], flags: int) -> dict[str, Any]:
    """The request in one message, every field checked before the zygote uses any: a
    launcher is untrusted input, and one bad message must never stop the pool's bots."""
    if flags & socket.MSG_TRUNC:
        raise BadRequest(f"larger than {MAX_MESSAGE} bytes")
    if flags & socket.MSG_CTRUNC or len(fds) != 3:
        many = f"more than {MAX_FDS}" if flags & socket.MSG_CTRUNC else str(len(fds))
        raise BadRequest(f"{many} fds instead of 3 (stdin, stdout, stderr)")
    try:
        request = json.loads(data)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise BadRequest(f"not JSON: {error}") from None
    if not isinstance(request, dict) or sorted(request) != ["argv", "cwd", "env", "key"]:
        raise BadRequest("not an object of exactly key, argv, cwd, env")
    key, argv, cwd, env = request["key"], request["argv"], request["cwd"], request["env"]
    if not (isinstance(key, str) and 0 < len(key) <= MAX_KEY and key.isprintable()):
        raise BadRequest(f"key is not a printable string of 1 to {MAX_KEY} characters")
    if not (isinstance(argv, list) and all(_os_string(arg) for arg in argv)):
        raise BadRequest("argv is not a list of strings")
    if not (_os_string(cwd) and cwd.startswith("/")):
        raise BadRequest("cwd is not an absolute path")
    if not (
        isinstance(env, dict)
        and all(_os_string(k) and k and "=" not in k and _os_string(v) for k, v in env.items())
    ):
        raise BadRequest("env is not an object of NAME: string (no '=' in a name)")
    return request


def _os_string(value: object) -> bool:
    """A string the operating system takes (argument, path, environment): no NUL, and bytes
    once encoded the way os.environ and os.fsencode do."""
    if not isinstance(value, str) or "\0" in value:
        return False
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


# --- the zygote ------------------------------------------------------------------------------


class Launcher:
    """One launcher's connection, and who the kernel says it is (SO_PEERCRED, set at connect:
    a launcher cannot claim another uid)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        self.pid, self.uid, self.gid = struct.unpack("3i", creds)
        self.asked = False  # one request per connection


class Bot:
    def __init__(self, key: str, uid: int, pid: int, launcher: Launcher | None) -> None:
        self.key, self.uid, self.pid, self.launcher = key, uid, pid, launcher

    @property
    def identity(self) -> tuple[int, str]:
        """What must never run twice: a key counts per uid, so no bot can block another's."""
        return (self.uid, self.key)


def refusal(peer_uid: int, own_uid: int, min_uid: int) -> str | None:
    """Why a launcher of peer_uid may not run a bot here (None: it may).

    A root zygote runs each bot as its launcher's uid: never as root, never as a system uid
    below min_uid. An unprivileged zygote runs bots as itself: its own uid only."""
    if own_uid != 0:
        return None if peer_uid == own_uid else f"uid {peer_uid} is not the zygote's {own_uid}"
    if peer_uid == 0:
        return "root may not run a bot (a bot runs as its launcher's uid)"
    if peer_uid < min_uid:
        return f"uid {peer_uid} is below the zygote's --min-uid {min_uid}"
    return None


class Zygote:
    def __init__(
        self,
        path: str,
        entry: str,
        preload: tuple[str, ...],
        min_uid: int = 1,
        collect_every: float = 0.0,
    ) -> None:
        self.path, self.entry, self.preload, self.min_uid = path, entry, preload, min_uid
        self.collect_every = collect_every  # seconds between a child's full collections
        self.root = os.getuid() == 0  # root: each child becomes its launcher's uid
        self.bots: dict[int, Bot] = {}  # pid -> bot
        self.waiting: list[tuple[Launcher, dict[str, Any], list[int]]] = []
        self.launchers: dict[int, Launcher] = {}  # fd -> launcher
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
        immortal = immortalize()  # before freeze: the collector lists only unfrozen objects
        gc.freeze()  # preloaded objects leave the collector: children do not touch their pages
        log(
            f"preloaded {len(sys.modules)} modules in {time.monotonic() - started:.1f} s "
            f"({immortal} objects made immortal), one thread; serving {self.path}"
        )

    def listen(self) -> socket.socket:
        """The listening socket, which appears at its path only once it listens (bound
        beside it, then renamed over any socket a dead zygote left)."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fresh = f"{self.path}.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(fresh)
        # root: every bot uid must connect (0666; SO_PEERCRED decides); else the owner only
        old = os.umask(0o111 if self.root else 0o177)
        try:
            listener.bind(fresh)
        finally:
            os.umask(old)
        listener.listen(128)
        os.rename(fresh, self.path)
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
                    self._accept()
                elif fd == self.wake_r:
                    while True:
                        try:
                            os.read(self.wake_r, 512)
                        except BlockingIOError:
                            break
                    self._reap()
                elif fd in self.launchers:
                    self._receive(self.launchers[fd])
            self._start_waiting()
        return self._shutdown()

    def _stop(self, *_: Any) -> None:
        self.stopping = True

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError as error:  # out of fds, say: the peer sees its connection reset
            log(f"cannot accept a launcher: {error}")
            return
        self.launchers[conn.fileno()] = Launcher(conn)
        self.poll.register(conn, select.POLLIN)

    def _receive(self, launcher: Launcher) -> None:
        try:
            data, fds, flags = receive(launcher.conn)
        except OSError:  # reset by the peer
            data, fds, flags = b"", [], 0
        if data:
            self._request(launcher, data, fds, flags)
        else:
            _close(fds)
            self._launcher_gone(launcher)

    def _request(self, launcher: Launcher, data: bytes, fds: list[int], flags: int) -> None:
        """Queue a launcher's request, or answer why not and hang up (closing the fds it
        carried: they are the zygote's copies)."""
        why = refusal(launcher.uid, os.getuid(), self.min_uid)
        if why:  # read before the refusal: a closed socket with unread data resets the peer
            _close(fds)
            log(f"refused the launcher pid {launcher.pid} (uid {launcher.uid}): {why}")
            self._reply(launcher, {"error": f"refused: {why}", "retry": False})
            return
        try:
            if launcher.asked:
                raise BadRequest("a second message on one connection")
            message = parse_request(data, fds, flags)
        except BadRequest as error:
            _close(fds)
            log(f"bad request from pid {launcher.pid} (uid {launcher.uid}): {error}; hung up")
            self._reply(launcher, {"error": f"bad request: {error}", "retry": False})
            return
        launcher.asked = True
        identity = (launcher.uid, message["key"])
        live = [b for b in self.bots.values() if b.identity == identity and b.launcher]
        if live:
            _close(fds)
            self._reply(
                launcher,
                {"error": f"{message['key']} already runs as pid {live[0].pid}", "retry": False},
            )
            return
        self.waiting.append((launcher, message, fds))  # forked once the old one is reaped

    def _start_waiting(self) -> None:
        busy = {b.identity for b in self.bots.values()}
        for item in list(self.waiting):
            launcher, message, fds = item
            identity = (launcher.uid, message["key"])
            if identity in busy:
                continue
            self.waiting.remove(item)
            if launcher.conn.fileno() not in self.launchers:  # it left while it waited
                _close(fds)
                continue
            changed = self._changed_module()
            if changed:
                _close(fds)
                self._reply(
                    launcher,
                    {"error": f"{changed} changed on disk: zygote restarts", "retry": True},
                )
                log(f"{changed} changed on disk since the preload: exiting to reload")
                self.stopping = True
                return
            self._fork(launcher, message, fds)
            busy.add(identity)

    def _changed_module(self) -> str | None:
        for path, stamp in self.fingerprint.items():
            try:
                st = os.stat(path)
            except OSError:
                return path
            if (st.st_mtime_ns, st.st_size) != stamp:
                return path
        return None

    def _fork(self, launcher: Launcher, message: dict[str, Any], fds: list[int]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        ids = (launcher.uid, launcher.gid) if self.root else None
        pid = os.fork()
        if pid == 0:
            try:
                self._close_inherited()
                code = child(self.libc, parent, self.target, message, fds, ids, self.collect_every)
            except BaseException:  # noqa: BLE001  never return into the zygote's loop
                code = 70
            os._exit(code)
        _close(fds)
        self.bots[pid] = Bot(message["key"], launcher.uid, pid, launcher)
        try:
            pidfd = os.pidfd_open(pid)
            send(launcher.conn, {"pid": pid}, [pidfd])
            os.close(pidfd)
        except OSError:
            self._launcher_gone(launcher)
            return
        as_uid = f" (uid {launcher.uid})" if self.root else ""
        log(f"forked {message['key']} as pid {pid}{as_uid}")

    def _close_inherited(self) -> None:
        signal.set_wakeup_fd(-1)
        self.listener.close()
        for launcher in self.launchers.values():
            launcher.conn.close()
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
            if bot.launcher is not None:
                self._reply(bot.launcher, {"status": status})

    def _reply(self, launcher: Launcher, message: dict[str, Any]) -> None:
        """Send a last message, then hang up (a bot still tied to the launcher dies)."""
        with contextlib.suppress(OSError):
            send(launcher.conn, message)
        self._launcher_gone(launcher)

    def _forget(self, launcher: Launcher) -> None:
        fd = launcher.conn.fileno()
        if self.launchers.get(fd) is launcher:
            del self.launchers[fd]
            self.poll.unregister(fd)
            launcher.conn.close()

    def _launcher_gone(self, launcher: Launcher) -> None:
        """A launcher closed its socket (it exited or was killed): its bot must die with it."""
        for bot in self.bots.values():
            if bot.launcher is launcher:
                bot.launcher = None
                log(f"launcher of {bot.key} is gone: killing pid {bot.pid}")
                _kill_group(bot.pid, signal.SIGKILL)
        self._forget(launcher)

    def _shutdown(self, grace: float = 20.0) -> int:
        """Stop every bot (TERM, then KILL after grace) and leave; a launcher still waiting
        for its bot asks the next zygote."""
        for launcher, _message, queued in self.waiting:
            _close(queued)
            self._reply(launcher, {"error": "stopping: ask the next zygote", "retry": True})
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


def child(
    libc: Any,
    parent: int,
    target: Any,
    message: dict[str, Any],
    fds: list[int],
    ids: tuple[int, int] | None,
    collect_every: float = 0.0,
) -> int:
    """Become the bot: runs in the forked child and never returns into the zygote.

    ids: the launcher's (uid, gid) to become first, when the zygote runs as root.
    collect_every: seconds between full collections of the bot's garbage (0: none)."""
    import logging
    import random

    # default handlers first: the launcher's signals can reach the child once it is the
    # launcher's uid, and must never run the zygote's handlers
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    os.setsid()
    for number, fd in enumerate(fds):  # the launcher's stdio: any error below reaches its log
        os.dup2(fd, number)
        os.close(fd)
    if ids is not None:
        try:
            become(*ids)
        except OSError as error:
            say = f"zygote: cannot run {message['key']} as uid {ids[0]}: {error}"
            print(say, file=sys.stderr, flush=True)
            return CANNOT_DROP
        libc.prctl(4, 1)  # PR_SET_DUMPABLE (a uid change cleared it): /proc/<pid> is the bot's
    # PR_SET_PDEATHSIG: die with the zygote (set after become: a uid change clears it)
    libc.prctl(1, signal.SIGKILL)
    if os.getppid() != parent:  # the zygote died before prctl took effect
        return TEMPFAIL
    libc.prctl(15, message["key"].replace("/", "-").encode()[:15])  # PR_SET_NAME: for top, ps
    os.environ.clear()
    os.environ.update(message["env"])
    os.chdir(message["cwd"])
    sys.argv = ["freqtrade", *message["argv"]]
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    code = _run_bot(target, message["argv"], collect_every)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    return code


def run(argv: list[str], entry: str = ENTRY, collect_every: float = COLLECT_EVERY) -> int:
    """One bot in this very process, no zygote: the process runtime's bot program."""
    sys.argv = ["freqtrade", *argv]
    return _run_bot(_resolve(entry), argv, collect_every)


def _run_bot(target: Any, argv: list[str], collect_every: float) -> int:
    """Run the bot's entry (with the collection thread); its exit code, as freqtrade's own."""
    if collect_every > 0:
        import threading

        threading.Thread(
            target=collect_cycles, args=(collect_every,), name="botpool-gc", daemon=True
        ).start()
    try:
        target(argv)
    except SystemExit as exit_:
        if not isinstance(exit_.code, (int, type(None))):
            print(exit_.code, file=sys.stderr)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        return 1
    return 0


def collect_cycles(every: float) -> None:
    """A full collection every `every` seconds, whatever thresholds the bot sets (the module's
    docstring says why); in a child of the zygote it skips the frozen preloaded heap."""
    import gc

    while True:
        time.sleep(every)
        gc.collect()


def _seconds(text: str) -> bool:
    """A number of seconds the zygote accepts: 0 to a day (time.sleep overflows on huge ones)."""
    try:
        return 0 <= float(text) <= 86400
    except ValueError:
        return False


def become(uid: int, gid: int) -> None:
    """Turn this root process into uid and gid for good: no supplementary group, no capability
    left, root out of reach. Raises OSError when any of that does not hold."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # leaving uid 0 clears every capability
    if os.getresuid() != (uid,) * 3 or os.getresgid() != (gid,) * 3 or os.getgroups():
        raise OSError(f"still {os.getresuid()}, {os.getresgid()}, groups {os.getgroups()}")
    with open("/proc/self/status") as status:
        caps = [f.split() for f in status if f.startswith(("CapPrm:", "CapEff:", "CapAmb:"))]
    kept = [f"{name} {mask}" for name, mask in caps if int(mask, 16)]
    if len(caps) != 3 or kept:
        raise OSError(f"capabilities kept: {', '.join(kept) or 'unknown'}")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise OSError("it could become root again")


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _resolve(entry: str) -> Any:
    import importlib

    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


IMMORTAL = 0xFFFFFFFF  # _Py_IMMORTAL_REFCNT of 64-bit CPython 3.12 and 3.13 (PEP 683)


def immortalize() -> int:
    """Make every object alive now immortal; how many were made so (0: not this Python).

    A forked bot shares the zygote's pages until it writes to them, and CPython writes to an
    object each time it takes or drops a reference to it: every preloaded object a bot merely
    uses would become the bot's own copy of its page. An immortal object's reference count is
    never written (PEP 683), so its page stays shared. Only CPython 3.12 and 3.13, 64-bit,
    with the GIL mark objects so (the low 32 bits of the count set; 3.14 changed the scheme):
    elsewhere this does nothing. The objects: everything the collector tracks, what those hold
    that it does not (strings, numbers, bytes), and the keys of every dict (the collector
    visits only a dict's values). They are never freed, which is what a preloaded module's
    objects are anyway."""
    import ctypes
    import gc
    import sysconfig

    if (
        sys.implementation.name != "cpython"
        or not (3, 12) <= sys.version_info[:2] <= (3, 13)
        or sys.maxsize < 2**32
        or sysconfig.get_config_var("Py_GIL_DISABLED")
    ):
        return 0
    made = 0
    refcount = ctypes.c_ssize_t.from_address
    todo = gc.get_objects()
    while todo:
        obj = todo.pop()
        count = refcount(id(obj))
        if count.value & 0x80000000:  # immortal already (a static object, a singleton)
            continue
        count.value = IMMORTAL
        made += 1
        if gc.is_tracked(obj):  # what it holds that the collector tracks is in the list
            todo.extend(o for o in gc.get_referents(obj) if not gc.is_tracked(o))
            if issubclass(type(obj), dict):  # the collector sees a dict's values, not its keys
                todo.extend(k for k in dict.keys(obj) if not gc.is_tracked(k))
        else:  # an untracked container (a tuple of strings, say) holds untracked objects only
            todo.extend(gc.get_referents(obj))
    return made


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
        number = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(number).name}"
        except ValueError:  # a real-time signal has no name: SIGRTMIN+6 is 40
            return f"killed by signal {number}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


# --- the launcher -----------------------------------------------------------------------------


USAGE = """usage: zygote.py serve SOCKET [--min-uid N] [--entry MODULE:FUNC] [--preload M1,M2]
                        [--collect-every SECONDS]   (0: never)
       zygote.py run [--entry MODULE:FUNC] [--collect-every SECONDS] -- ARGS"""


def main(args: list[str]) -> int:
    if len(args) >= 2 and args[0] == "serve" and len(args) % 2 == 0:
        options = dict(zip(args[2::2], args[3::2], strict=True))
        unknown = set(options) - {"--min-uid", "--entry", "--preload", "--collect-every"}
        min_uid = options.get("--min-uid", "1")
        every = options.get("--collect-every", str(COLLECT_EVERY))
        if not unknown and min_uid.isdigit() and int(min_uid) > 0 and _seconds(every):
            preload = options.get("--preload")
            zygote = Zygote(
                args[1],
                options.get("--entry", ENTRY),
                tuple(p for p in preload.split(",") if p) if preload is not None else PRELOAD,
                int(min_uid),
                float(every),
            )
            return zygote.serve()
    if len(args) >= 2 and args[0] == "run" and "--" in args and args.index("--") % 2 == 1:
        split = args.index("--")
        options = dict(zip(args[1:split:2], args[2:split:2], strict=True))
        every = options.get("--collect-every", str(COLLECT_EVERY))
        if not set(options) - {"--entry", "--collect-every"} and _seconds(every):
            return run(args[split + 1 :], options.get("--entry", ENTRY), float(every))
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
