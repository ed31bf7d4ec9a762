"""A zygote pool's bot program: asks the pool's zygote to fork the bot and stands in for it.

    python3 -I -S launcher.py SOCKET -- ARGS

Converge copies this file to /botpool/runtime/launcher.py; supervisord runs one per bot, as
the bot's uid (zygote.py says how the two talk, and why). The launcher lends the bot its
environment, directory and stdio, forwards every signal supervisord sends (through a pidfd,
which cannot hit a recycled pid), and exits with the bot's code or dies of the bot's signal.
Exit 75: the zygote went away (supervisord starts the launcher again; it waits for the next).

One launcher runs beside every bot, so each module it imports costs once per bot. It imports
only modules built into the interpreter (no `json`, `socket`, `signal` or `os`, which pull in
`re`, `enum` and more), and `-I -S` skips site-packages: measured in the pool image (Python
3.13, PSS of one waiting launcher): 7.1 MiB as a role of zygote.py, 3.2 MiB as this file.
"""

from __future__ import annotations

import _json
import _signal
import _socket
import posix
import select
import sys
import time

TYPE_CHECKING = False  # (typing is imported by type checkers only)
if TYPE_CHECKING:
    from typing import Any

TEMPFAIL = 75  # EX_TEMPFAIL, as zygote.py's
FORWARDED = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")
MAX_MESSAGE = 1 << 20
USAGE = "usage: launcher.py SOCKET -- ARGS"


def say(message: object) -> None:
    print(f"botpool launcher: {message}", file=sys.stderr, flush=True)


def encode(value: Any) -> str:
    """JSON of the request (str, list and dict of them), ASCII as json.dumps writes it."""
    if isinstance(value, str):
        return _json.encode_basestring_ascii(value)
    if isinstance(value, list):
        return "[" + ",".join(encode(item) for item in value) + "]"
    return "{" + ",".join(f"{encode(k)}:{encode(v)}" for k, v in value.items()) + "}"


class _Decoding:
    """What _json's scanner reads from json.JSONDecoder: plain JSON, no hooks."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")


_scan = _json.make_scanner(_Decoding)  # type: ignore[arg-type]  # (any object with these)


def decode(data: bytes) -> dict[str, Any]:
    """The zygote's message, a JSON object (ValueError if it is not one)."""
    try:
        text = data.decode()
        value, end = _scan(text, 0)
    except (StopIteration, UnicodeDecodeError) as error:
        raise ValueError("not JSON") from error
    if end != len(text) or not isinstance(value, dict):  # (end counts characters, not bytes)
        raise ValueError("not a JSON object")
    return value


def answer(sock: _socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """The zygote's next message and its fds (None: the zygote hung up)."""
    size = _socket.CMSG_SPACE(4 * 4)
    data, ancillary, _flags, _addr = sock.recvmsg(MAX_MESSAGE, size)
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds += [int.from_bytes(payload[i : i + 4], sys.byteorder) for i in range(0, usable, 4)]
    if not data:
        for fd in fds:
            posix.close(fd)
        return None, []
    return decode(data), fds


def request(argv: list[str]) -> dict[str, Any]:
    """What the zygote needs to run the bot as this launcher would: all text as os gives it."""
    encoding = sys.getfilesystemencoding()

    def text(raw: bytes) -> str:
        return raw.decode(encoding, "surrogateescape")

    env = {text(k): text(v) for k, v in posix.environ.items()}
    return {
        "key": env.get("BOTPOOL_BOT") or posix.getcwd(),
        "argv": argv,
        "cwd": posix.getcwd(),
        "env": env,
    }


def launch(path: str, argv: list[str], wait: float = 180.0) -> int:
    """Run one bot through the zygote at path; returns (or dies) the way the bot did."""
    data = encode(request(argv)).encode()
    stdio = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
    deadline = time.monotonic() + wait
    notified = False
    # Signals are caught from the start: one that comes while the bot is being forked (it
    # may already run) is kept and forwarded once its pidfd is here, not left to kill us
    bot: dict[str, int] = {}
    pending: list[int] = []

    def forward(sig: int, _frame: Any) -> None:
        if "pidfd" in bot:
            signal_bot(bot["pidfd"], sig)
        elif sig != _signal.SIGWINCH:  # (no terminal to resize yet; the others end a process)
            pending.append(sig)

    for name in FORWARDED:
        _signal.signal(getattr(_signal, name), forward)
    while True:
        if pending:  # stopped while no bot runs: end the way the signal would have ended us
            die_of(pending[0])
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        try:
            sock.connect(path)
            sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, stdio)])
            reply, fds = answer(sock)
        except PermissionError:
            say(f"may not connect to {path}")
            return 1
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
            reply, fds = None, []  # no zygote yet, or one that left before reading the request
        else:
            if reply is None:  # it read the request and died without a word: maybe mid-fork
                # (a child it forked dies with it: PR_SET_PDEATHSIG); the next zygote is new
                say("the zygote went away during the request")
                return TEMPFAIL
        if reply is not None and "pid" in reply:
            break
        sock.close()
        if reply is not None and not reply.get("retry"):
            say(reply.get("error"))
            return 1
        if time.monotonic() > deadline:
            say(f"no zygote at {path} after {wait:.0f} s")
            return TEMPFAIL
        if not notified:
            why = reply.get("error") if reply else "not answering yet"
            say(f"zygote {why}; waiting")
            notified = True
        time.sleep(0.2)
    bot["pidfd"] = fds[0]
    while pending:
        signal_bot(bot["pidfd"], pending.pop(0))
    try:
        message, _ = answer(sock)
    except (OSError, ValueError):
        message = None
    if message is None or "status" not in message:
        # the zygote is gone (its bots die with it); make sure ours is, then let supervisord
        # start us again: we will wait for the next zygote
        forward(_signal.SIGKILL, None)
        select.select([bot["pidfd"]], [], [], 10.0)
        say("the zygote went away; the bot was stopped")
        return TEMPFAIL
    code = posix.waitstatus_to_exitcode(message["status"])
    if code < 0:  # killed by a signal: die of the same one, as the bot did
        die_of(-code)
        return 128 - code
    return code


def die_of(sig: int) -> None:
    """End this process by sig, with its default action (as the bot, or we, would have)."""
    for name in FORWARDED:
        _signal.signal(getattr(_signal, name), _signal.SIG_DFL)
    if sig not in (_signal.SIGKILL, _signal.SIGSTOP):
        _signal.signal(sig, _signal.SIG_DFL)
    posix.kill(posix.getpid(), sig)


def signal_bot(pidfd: int, sig: int, patience: float = 5.0) -> None:
    """Send sig to the bot through its pidfd. For a moment after the fork the child is still
    root (it has not become the launcher's uid yet), and the kernel refuses: try again."""
    deadline = time.monotonic() + patience
    while True:
        try:
            _signal.pidfd_send_signal(pidfd, sig)
            return
        except ProcessLookupError:  # already gone
            return
        except PermissionError:
            if time.monotonic() > deadline:
                say(f"may not signal the bot ({sig})")
                return
            time.sleep(0.005)


def main(args: list[str]) -> int:
    if len(args) >= 2 and args[1] == "--":
        return launch(args[0], args[2:])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
