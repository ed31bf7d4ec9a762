"""Tiny programs the zygote tests fork instead of freqtrade (fast, and each shows one thing).

`run(argv)` is the zygote's entry for these tests: argv[0] names the program. Everything is
imported here, at preload: a child that became a bot's uid may not read the test machine's
Python installation (under /root).

Run as a script, it is the real zygote with one step changed, to reach a moment that is
otherwise too short to hit (see PATCHES):

    python3 tests/zygote_apps.py PATCH[=ARG] serve SOCKET ...
"""

from __future__ import annotations

import gc
import json
import os
import random
import signal
import sys
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from types import ModuleType


class Node:
    me: Node


def run(argv: list[str]) -> None:
    name, args = argv[0], argv[1:]
    if name == "show":  # what the child sees: environment, directory, arguments, identity
        print(
            json.dumps(
                {
                    "cwd": os.getcwd(),
                    "env": os.environ.get("BOT_SETTING"),
                    "argv": sys.argv,
                    "pid": os.getpid(),
                    "ppid": os.getppid(),
                    "sid": os.getsid(0),
                    "ids": [os.getresuid(), os.getresgid(), os.getgroups()],
                    "random": random.random(),
                }
            ),
            flush=True,
        )
        print("to stderr", file=sys.stderr, flush=True)
    elif name == "exit":
        sys.exit(int(args[0]))
    elif name == "message":
        sys.exit("fatal: " + args[0])
    elif name == "raise":
        raise RuntimeError("boom")
    elif name == "signal":
        os.kill(os.getpid(), int(args[0]))
    elif name == "read":  # prints a file; exits 13 (EACCES) when the bot may not read it
        try:
            print(Path(args[0]).read_text(), end="", flush=True)
        except PermissionError:
            sys.exit(13)
    elif name == "cycle":  # freqtrade's collector thresholds, then garbage no threshold reaches
        gc.set_threshold(50_000, 500, 1000)
        node = Node()
        node.me = node  # a reference cycle: only a collection frees it
        ref = weakref.ref(node)
        gc.collect(1)  # a young collection while it lives moves it to the oldest generation
        del node
        time.sleep(float(args[0]))
        print(json.dumps({"collected": ref() is None}), flush=True)
    elif name == "sleep":  # writes its pid, then waits; a SIGTERM ends it with code 3
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
        Path(args[0]).write_text(str(os.getpid()))
        while True:
            time.sleep(0.1)


# --- the zygote with one step changed ---------------------------------------------------------


def hold_root(zygote: ModuleType, gate: str) -> None:
    """Each child stays root until the file `gate` exists, then becomes its launcher's uid:
    the moment a launcher holds its bot's pidfd but may not signal it yet."""
    become = zygote.become

    def held(uid: int, gid: int) -> None:
        zygote_pid = os.getppid()
        while not os.path.exists(gate) and os.getppid() == zygote_pid:  # (or the test failed)
            time.sleep(0.01)
        become(uid, gid)

    zygote.become = held


def die_before_pid(zygote: ModuleType, _: str) -> None:
    """The zygote dies right after a fork, before it sends the launcher its bot's pid."""
    send = zygote.send

    def dying(sock: object, message: dict[str, object], fds: list[int] | None = None) -> None:
        if "pid" in message:
            os._exit(9)
        send(sock, message, fds)

    zygote.send = dying


PATCHES: dict[str, Callable[[ModuleType, str], None]] = {
    "hold-root": hold_root,
    "die-before-pid": die_before_pid,
}

if __name__ == "__main__":
    from botpool.payloads import zygote as product

    patch, _, argument = sys.argv[1].partition("=")
    PATCHES[patch](product, argument)
    sys.exit(product.main(sys.argv[2:]))
