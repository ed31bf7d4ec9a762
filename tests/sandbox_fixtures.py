"""Real `freqtrade trade` processes on this machine (no container) against an in-process
sandbox exchange (a test double), for end-to-end tests.

Helpers: running_sandbox() (its base URL), freqtrade_config() (a plain config dict),
running_bot() (a Bot: the process, its API, its log), wait_until().
Fixtures (import them into a test module by name): `stagnant_bot`, a bot whose stake is
more than its wallet allows: it runs and answers its API, but never trades.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from botpool.payloads.sandbox import freqtrade_exchange_overrides, serve

from .e2e import HTTP

REPO = Path(__file__).resolve().parent.parent
FREQTRADE = REPO / ".venv" / "bin" / "freqtrade"
STRATEGIES = REPO / "inventory" / "strategies"
PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")

# A bot that can never afford one stake: 500 > 100 × tradable_balance_ratio (0.99).
STAGNANT = {"dry_run_wallet": 100, "stake_amount": 500}
# What freqtrade 2026.9 logs then, on every entry signal (freqtrade/wallets.py, a warning
# from freqtradebot.py): "Unable to create trade for BTC/USDT: Available balance
# (99.0 USDT) is lower than stake amount (500 USDT)".
STAKE_WARNING = re.compile(
    r"Unable to create trade for \S+: Available balance \([\d.]+ USDT\) "
    r"is lower than stake amount \([\d.]+ USDT\)"
)

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_sandbox(
    log_path: Path, pairs: tuple[str, ...] | None = PAIRS, **knobs: Any
) -> Iterator[str]:
    """The sandbox exchange on 127.0.0.1 in a thread of this process; yields its base URL.

    pairs=None serves the fixed market list, as botpool's sandbox containers do; knobs go to
    botpool.sandbox.serve (seed, step_seconds, volatility); the request log is written to
    log_path.
    """
    with log_path.open("w") as log:
        server = serve("127.0.0.1", 0, None if pairs is None else list(pairs), log=log, **knobs)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


def freqtrade_config(
    directory: Path, exchange_url: str, pairs: tuple[str, ...] = PAIRS, **overrides: Any
) -> dict[str, Any]:
    """A dry-run freqtrade config for SandboxScalper on the sandbox at exchange_url, with its
    API on a free port of 127.0.0.1 and fresh credentials; overrides replace top-level keys."""
    config: dict[str, Any] = {
        "bot_name": directory.name,
        "initial_state": "running",
        "trading_mode": "spot",
        "dry_run": True,
        "dry_run_wallet": 1000,
        "stake_currency": "USDT",
        "stake_amount": 10,
        "tradable_balance_ratio": 0.99,
        "max_open_trades": 3,
        "timeframe": "1m",
        "strategy": "SandboxScalper",
        "strategy_path": str(STRATEGIES),
        "db_url": f"sqlite:///{directory / 'tradesv3.sqlite'}",
        # SandboxScalper's market orders need "other" side prices
        "entry_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exchange": {
            "key": "",
            "secret": "",
            "pair_whitelist": list(pairs),
            "pair_blacklist": [],
            **freqtrade_exchange_overrides(exchange_url),
        },
        "pairlists": [{"method": "StaticPairList"}],
        "api_server": {
            "enabled": True,
            "listen_ip_address": "127.0.0.1",
            "listen_port": free_port(),
            "verbosity": "error",
            "username": "tester",
            "password": secrets.token_urlsafe(16),
            "jwt_secret_key": secrets.token_hex(32),  # freqtrade refuses short ones
            "ws_token": secrets.token_urlsafe(16),
            "CORS_origins": [],
        },
        "telegram": {"enabled": False, "token": "", "chat_id": ""},
        "internals": {"process_throttle_secs": 5},
    }
    config.update(overrides)
    return config


@dataclass
class Bot:
    """A running `freqtrade trade` process and its REST API."""

    directory: Path
    config: dict[str, Any]
    process: subprocess.Popen[bytes]
    started: float  # time.monotonic() when the process was started

    @property
    def port(self) -> int:
        return int(self.config["api_server"]["listen_port"])

    def get(self, path: str, auth: bool = True) -> httpx.Response:
        api = self.config["api_server"]
        return HTTP.get(
            f"http://127.0.0.1:{self.port}/api/v1/{path}",
            auth=(api["username"], api["password"]) if auth else None,
        )

    def log(self) -> str:
        """freqtrade's log file, or its console output if it died before opening the file."""
        path = self.directory / "freqtrade.log"
        if not path.exists():
            path = self.directory / "console.log"
        return path.read_text(errors="replace")

    def wait_for_api(self, timeout: float = 60) -> float:
        """Seconds from start until /api/v1/ping answered."""

        def answers() -> bool:
            return bool(self.get("ping", auth=False).json()["status"] == "pong")

        wait_until(answers, timeout, "the bot's API", bot=self)
        return time.monotonic() - self.started

    def trade_count(self) -> int:
        """Trades ever opened, open or closed."""
        return int(self.get("profit").json()["trade_count"])


@contextmanager
def running_bot(directory: Path, config: dict[str, Any]) -> Iterator[Bot]:
    """Run `freqtrade trade` with config in directory; stop it (kill if need be) at the end."""
    (directory / "user_data").mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    # freqtrade's console output wraps lines at 80 columns; its log file does not. And
    # freqtrade configures no logging at all (no --logfile) when it sees PYTEST_VERSION,
    # which pytest sets and a child process inherits.
    command = ["trade", "--config", "config.json", "--userdir", "user_data"]
    command += ["--logfile", str(directory / "freqtrade.log")]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
    with (directory / "console.log").open("wb") as console:
        process = subprocess.Popen(
            [str(FREQTRADE), *command],
            cwd=directory,
            env=env,
            stdout=console,
            stderr=subprocess.STDOUT,
        )
    bot = Bot(directory, config, process, time.monotonic())
    try:
        yield bot
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until(predicate: Callable[[], T], timeout: float, what: str, bot: Bot | None = None) -> T:
    """Poll predicate until it returns something true; fail after timeout seconds, or at
    once, with its log, if the bot given has exited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (httpx.HTTPError, ValueError, KeyError):
            value = None  # not up yet, or not answering that yet
        if value:
            return value
        if bot is not None and bot.process.poll() is not None:
            raise AssertionError(f"freqtrade exited ({bot.process.returncode}):\n{bot.log()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


@pytest.fixture
def stagnant_bot(tmp_path: Path) -> Iterator[Bot]:
    """A running dry-run bot, API up, that can never afford a stake: it never trades.

    botpool's layout validation refuses such a bot; this builds one anyway, so that checks
    meant to catch the old system's silent 0-trade bots have a real one to catch.
    """
    with running_sandbox(tmp_path / "sandbox-requests.log") as url:
        directory = tmp_path / "stagnant-bot"
        with running_bot(directory, freqtrade_config(directory, url, **STAGNANT)) as bot:
            bot.wait_for_api()
            yield bot
