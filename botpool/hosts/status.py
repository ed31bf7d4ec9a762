"""The state of every bot planned for this machine: supervisor state and what its API says.

Used by `botpool status` (the end of `make up`). Reads the host with the same snapshot
command converge uses, and asks each bot's API on 127.0.0.1 with its own credentials.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

import httpx

from botpool.core.plan import BotPlan, Plan
from botpool.core.secretstore import SecretStore
from botpool.core.snapshot import Snapshot, command, parse


@dataclass(frozen=True)
class BotStatus:
    bot: BotPlan
    state: str  # supervisor state, or "absent"
    answers: bool  # /api/v1/ping answered
    open_trades: int | None
    closed_trades: int | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.bot.host_port}"


def local_snapshot(root: str) -> Snapshot:
    out = subprocess.run(["sh", "-c", command(root)], capture_output=True, text=True, check=False)
    return parse(out.stdout.splitlines())


def bot_status(
    bot: BotPlan, container: str, snap: Snapshot, secrets: SecretStore, client: httpx.Client
) -> BotStatus:
    program = snap.programs.get(container, {}).get(bot.program)
    state = program.state if program else "absent"
    creds = secrets.api_credentials(bot.bot.key)
    auth = (creds.username, creds.password)
    base = f"http://127.0.0.1:{bot.host_port}/api/v1"
    answers, open_trades, closed = False, None, None
    try:
        answers = client.get(f"{base}/ping", auth=auth).json().get("status") == "pong"
        count = client.get(f"{base}/count", auth=auth).json()
        open_trades = int(count["current"])
        closed = int(client.get(f"{base}/profit", auth=auth).json().get("closed_trade_count", 0))
    except (httpx.HTTPError, ValueError, KeyError):
        pass
    return BotStatus(bot, state, answers, open_trades, closed)


def host_status(plan: Plan, host: str, secrets: SecretStore, wait_s: float = 0) -> list[BotStatus]:
    """Status of every bot of one host; with wait_s, poll until all answer or time runs out.
    One HTTP client for every request: each new one loads the system's CA certificates (26 ms
    of CPU here), which plain HTTP to 127.0.0.1 never uses."""
    deadline = time.monotonic() + wait_s
    with httpx.Client(timeout=3) as client:
        while True:
            snap = local_snapshot(plan.layout.root)
            rows = [
                bot_status(bot, pool.container, snap, secrets, client)
                for pool in plan.hosts[host].pools
                for bot in pool.bots
            ]
            if all(r.answers for r in rows) or time.monotonic() >= deadline:
                return rows
            time.sleep(2)
