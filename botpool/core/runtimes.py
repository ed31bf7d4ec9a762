"""Pool runtimes: how a pool's bots get their freqtrade, and what each costs.

A runtime is one object: its memory figures (rounded up from the PSS bench/density.py
measured after 30 minutes of trading and API traffic, README "Capacity planning"), the
programs it adds to a pool (services, started before the bots, which cannot run without
them), the files it puts in the pool, and the command of each bot's program. Everything else
(plan, render, reconcile, checks) asks the object, so a third runtime is one more object
here and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from botpool.core import names
from botpool.core.templating import render_template
from botpool.payloads import zygote

FREQTRADE_ARGS = "trade --config config.json --userdir user_data"
ZYGOTE_SOCKET = "/run/zygote.sock"  # root's /run in the pool: no bot can take the name first


@dataclass(frozen=True)
class Runtime:
    """A whole `freqtrade trade` process per bot: plain and independent."""

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
        return []

    def bot_command(self) -> str:
        """The command of a bot's program (run as the bot, in its folder)."""
        return f"freqtrade {FREQTRADE_ARGS}"


@dataclass(frozen=True)
class ZygoteRuntime(Runtime):
    """One preloaded freqtrade, the pool's `zygote` program, forks every bot of the pool
    (botpool/payloads/zygote.py); each bot's program is a launcher that asks it for its bot."""

    def files(self) -> list[tuple[str, str]]:
        source = Path(zygote.__file__).read_text()
        script = f"{names.MOUNT}/runtime/zygote.py"
        program = render_template(
            "zygote.conf.j2",
            program=self.name,
            # root: it forks each bot with its launcher's uid, and serves no uid below the bots'
            command=f"python3 {script} serve {ZYGOTE_SOCKET} --min-uid {names.BOT_UID_BASE}",
            inputs_hash=hashlib.sha256(source.encode()).hexdigest()[:16],
        )
        return [("runtime/zygote.py", source), (f"programs/{self.name}.conf", program)]

    def bot_command(self) -> str:
        script = f"{names.MOUNT}/runtime/zygote.py"
        return f"python3 {script} launch {ZYGOTE_SOCKET} -- {FREQTRADE_ARGS}"


# pools of 1, 5, 10 bots measured 325, 695, 1158 MiB: planned 300, 700, 1200
ZYGOTE = ZygoteRuntime(
    "zygote", "one preloaded freqtrade forks every bot", 200, 100, services=("zygote",)
)
# pools of 1, 5, 10 bots measured 262, 1254, 2495 MiB: planned 300, 1340, 2640
PROCESS = Runtime("process", "one whole freqtrade process per bot", 40, 260)
RUNTIMES = {runtime.name: runtime for runtime in (ZYGOTE, PROCESS)}
DEFAULT = ZYGOTE
