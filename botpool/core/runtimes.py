"""Pool runtimes: how a pool's bots get their freqtrade, and what each costs.

A runtime is one object: its memory figures (rounded up from the PSS bench/density.py
measured after 30 minutes of trading and API traffic, README "Capacity planning"), the
programs it adds to a pool (services, started before the bots, which cannot run without
them), the files it puts in the pool, and the command of each bot's program. Everything else
(plan, render, reconcile, checks) asks the object, so a third runtime is one more object
here and nothing else.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from botpool.core import names
from botpool.core.templating import render_template
from botpool.payloads import launcher, zygote

FREQTRADE_ARGS = "trade --config config.json --userdir user_data"
ZYGOTE_SOCKET = "/run/zygote.sock"  # root's /run in the pool: no bot can take the name first
# both runtimes run their bots through zygote.py (botpool/payloads/zygote.py); a zygote pool's
# bot programs are launcher.py (botpool/payloads/launcher.py)
SCRIPT = f"{names.MOUNT}/runtime/zygote.py"
LAUNCHER = f"{names.MOUNT}/runtime/launcher.py"


@functools.cache
def _code(path: str) -> str:
    return Path(path).read_text()


def _hash(path: str) -> str:
    """Changes with a runtime file's code: restarts what runs it."""
    return hashlib.sha256(_code(path).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Runtime:
    """A whole freqtrade process per bot: plain and independent (`zygote.py run`: freqtrade's
    main in that process, with the garbage collection freqtrade's settings leave out)."""

    name: str
    doc: str
    pool_mb: int  # per pool, whatever its bots: supervisord (and the runtime's services)
    bot_mb: int  # per bot
    services: tuple[str, ...] = ()  # programs the bots need, started first

    def pool_memory_mb(self, bots: int, bot_mb: int) -> int:
        """The planned memory of a pool of `bots` bots of `bot_mb` each."""
        return self.pool_mb + bots * bot_mb

    def files(self) -> list[tuple[str, str]]:
        """(path in the pool, text) of what the runtime adds to a pool."""
        return [("runtime/zygote.py", _code(zygote.__file__))]

    def bot_command(self) -> str:
        """The command of a bot's program (run as the bot, in its folder)."""
        return f"python3 {SCRIPT} run -- {FREQTRADE_ARGS}"

    def bot_inputs(self) -> str:
        """What, besides its config and strategy, restarts a bot when it changes: the code
        each bot process runs."""
        return _hash(zygote.__file__)


@dataclass(frozen=True)
class ZygoteRuntime(Runtime):
    """One preloaded freqtrade, the pool's `zygote` program, forks every bot of the pool
    (botpool/payloads/zygote.py); each bot's program is a launcher that asks it for its bot
    (botpool/payloads/launcher.py, small: one runs beside every bot)."""

    def files(self) -> list[tuple[str, str]]:
        program = render_template(
            "zygote.conf.j2",
            program=self.name,
            # root: it forks each bot with its launcher's uid, and serves no uid below the bots'
            command=f"python3 {SCRIPT} serve {ZYGOTE_SOCKET} --min-uid {names.BOT_UID_BASE}",
            inputs_hash=_hash(zygote.__file__),
        )
        return [
            *super().files(),
            ("runtime/launcher.py", _code(launcher.__file__)),
            (f"programs/{self.name}.conf", program),
        ]

    def bot_command(self) -> str:
        # -I -S: no site-packages, no PYTHON* variables: the launcher needs neither
        return f"python3 -I -S {LAUNCHER} {ZYGOTE_SOCKET} -- {FREQTRADE_ARGS}"

    def bot_inputs(self) -> str:
        # the launcher's code (the bot itself restarts with its zygote, whose inputs differ)
        return _hash(launcher.__file__)


# pools of 1, 5, 10 bots measured 325, 695, 1158 MiB: planned 300, 700, 1200
ZYGOTE = ZygoteRuntime(
    "zygote", "one preloaded freqtrade forks every bot", 200, 100, services=("zygote",)
)
# pools of 1, 5, 10 bots measured 262, 1254, 2495 MiB: planned 300, 1340, 2640
PROCESS = Runtime("process", "one whole freqtrade process per bot", 40, 260)
RUNTIMES = {runtime.name: runtime for runtime in (ZYGOTE, PROCESS)}
DEFAULT = ZYGOTE
