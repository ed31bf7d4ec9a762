"""Real `freqtrade trade --dry-run` processes against the sandbox exchange (a test double)."""

from __future__ import annotations

import re
import time

import pytest

from .bots import freqtrade_bot, sandbox, stagnant_overrides, wait_until

pytestmark = pytest.mark.e2e

SERVED = {
    "/api/v3/ping",
    "/api/v3/time",
    "/api/v3/exchangeInfo",
    "/api/v3/klines",
    "/api/v3/ticker/24hr",
    "/api/v3/ticker/price",
    "/api/v3/ticker/bookTicker",
    "/api/v3/depth",
}


def test_a_real_freqtrade_bot_trades_on_the_sandbox(tmp_path):
    log = tmp_path / "requests.log"
    with sandbox(log) as url, freqtrade_bot(tmp_path, url) as bot:
        started = time.monotonic()
        wait_until(
            lambda: bot.get("ping", auth=False).json()["status"] == "pong", 60, "the bot's API"
        )
        answered = time.monotonic() - started
        wait_until(
            lambda: (
                bot.get("count").json()["current"] > 0
                or bot.get("profit").json()["trade_count"] > 0
            ),
            60,
            "a dry-run trade",
        )
        traded = time.monotonic() - started
        for path in ("status", "count", "profit", "balance", "health", "show_config"):
            assert bot.get(path).status_code == 200, path
            assert bot.get(path, auth=False).status_code == 401, path
        assert bot.get("show_config").json()["dry_run"] is True
        assert bot.process.poll() is None, bot.log()[-2000:]
    paths = set(re.findall(r" GET (\S+) ", log.read_text()))
    assert paths and paths <= SERVED, paths - SERVED  # freqtrade asked for nothing unserved
    assert {"/api/v3/exchangeInfo", "/api/v3/klines", "/api/v3/depth"} <= paths
    print(
        f"ping after {answered:.1f} s, first trade after {traded:.1f} s; endpoints: {sorted(paths)}"
    )


def test_the_stagnant_bot_runs_and_answers_but_never_trades(tmp_path):
    with (
        sandbox(tmp_path / "requests.log") as url,
        freqtrade_bot(tmp_path, url, **stagnant_overrides()) as bot,
    ):
        wait_until(
            lambda: bot.get("ping", auth=False).json()["status"] == "pong", 60, "the bot's API"
        )
        wait_until(
            lambda: "lower than stake amount" in bot.log(),
            60,
            "freqtrade's warning about the stake",
        )
        assert bot.get("count").json()["current"] == 0
        assert bot.get("profit").json()["trade_count"] == 0
        assert bot.get("health").status_code == 200
        assert bot.process.poll() is None
