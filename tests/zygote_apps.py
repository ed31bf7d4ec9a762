"""Tiny programs the zygote tests fork instead of freqtrade (fast, and each shows one thing).

`run(argv)` is the zygote's entry for these tests: argv[0] names the program.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path


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
    elif name == "sleep":  # writes its pid, then waits; a SIGTERM ends it with code 3
        import signal

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
        Path(args[0]).write_text(str(os.getpid()))
        while True:
            time.sleep(0.1)
