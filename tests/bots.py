"""Real freqtrade processes on this machine (no container), configured by botpool's renderer
and pointed at an in-process sandbox exchange. Used by the sandbox end-to-end tests and
as the reproducible stagnant bot that later checks must name.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from botpool.plan import load_plan
from botpool.render import bot_config
from botpool.sandbox import freqtrade_exchange_overrides, serve
from botpool.secrets import SecretStore

REPO = Path(__file__).resolve().parent.parent
FREQTRADE = REPO / ".venv" / "bin" / "freqtrade"

LAYOUT = """
defaults:
  strategies_dir: {strategies}
  bot: {{exchange: sandbox, strategy: SandboxScalper, timeframe: 1m, stake_amount: 10,
        dry_run_wallet: 1000, pairs: [BTC/USDT, ETH/USDT]}}
users:
  test:
    bots: [{{name: bot}}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sandbox(log_path: Path) -> Iterator[str]:
    """The sandbox exchange on 127.0.0.1, prices stepping every 2 s; yields its base URL."""
    with log_path.open("w") as log:
        server = serve(
            "127.0.0.1",
            0,
            ["BTC/USDT", "ETH/USDT"],
            seed=3,
            step_seconds=2,
            volatility=0.002,
            log=log,
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


@dataclass
class Bot:
    directory: Path
    port: int
    auth: tuple[str, str]
    process: subprocess.Popen[bytes]

    def get(self, path: str, auth: bool = True) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.port}/api/v1/{path}",
            timeout=5,
            auth=self.auth if auth else None,
        )

    def log(self) -> str:
        return (self.directory / "freqtrade.log").read_text(errors="replace")


@contextmanager
def freqtrade_bot(tmp: Path, exchange_url: str, **overrides: object) -> Iterator[Bot]:
    """A `freqtrade trade` process with a config rendered by botpool.

    overrides replace config keys after rendering: the only way to build a bot that
    validation would refuse (such as the stagnant bot below).
    """
    layout = tmp / "layout.yaml"
    layout.write_text(LAYOUT.format(strategies=REPO / "inventory" / "strategies"))
    plan = load_plan(layout)
    (planned,) = plan.bots
    secrets = SecretStore(tmp / "secrets")
    config = json.loads(bot_config(plan, planned, secrets, listen_ip="127.0.0.1"))
    port = free_port()
    config["api_server"]["listen_port"] = port
    config["exchange"].update(freqtrade_exchange_overrides(exchange_url))
    config.update(overrides)
    bot_dir = tmp / "pool" / "bots" / "bot"
    (bot_dir / "user_data").mkdir(parents=True)
    (tmp / "pool" / "strategies").symlink_to(REPO / "inventory" / "strategies")
    (bot_dir / "config.json").write_text(json.dumps(config))
    creds = secrets.api_credentials(planned.key)
    with (bot_dir / "freqtrade.log").open("wb") as log:
        process = subprocess.Popen(
            [str(FREQTRADE), "trade", "--config", "config.json", "--userdir", "user_data"],
            cwd=bot_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    bot = Bot(bot_dir, port, (creds.username, creds.password), process)
    try:
        yield bot
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def stagnant_overrides() -> dict[str, object]:
    """A bot whose stake is more than its wallet makes available: it runs, answers, never trades.

    botpool's validation refuses this layout ("could never trade"); the test bypasses it on
    purpose, to reproduce the old system's silent 0-trade bot.
    """
    return {"dry_run_wallet": 100, "stake_amount": 500}


def wait_until(predicate, timeout: float, what: str):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (httpx.HTTPError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
