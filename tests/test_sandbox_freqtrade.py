"""Real `freqtrade trade --dry-run` processes against the sandbox exchange (a test double)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from botpool.sandbox.market import Market

from .sandbox_fixtures import (
    PAIRS,
    STAKE_WARNING,
    Bot,
    freqtrade_config,
    running_bot,
    running_sandbox,
    stagnant_bot,  # noqa: F401 - a fixture, used by name
    wait_until,
)

pytestmark = pytest.mark.e2e(minutes=1)

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
API = ("status", "count", "profit", "balance", "health", "show_config")
SEED = 7


def open_trades(bot: Bot) -> list[dict[str, Any]]:
    response = bot.get("status")
    response.raise_for_status()
    return list(response.json())


def test_a_real_freqtrade_bot_trades_on_the_sandbox_with_default_knobs(tmp_path):
    requests = tmp_path / "requests.log"
    with running_sandbox(requests, seed=SEED) as url:
        config = freqtrade_config(tmp_path / "bot", url)
        with running_bot(tmp_path / "bot", config) as bot:
            answered = bot.wait_for_api()
            trades = wait_until(lambda: open_trades(bot), 60, "a dry-run trade", bot)
            traded = time.monotonic() - bot.started
            for path in API:
                assert bot.get(path).status_code == 200, path
                assert bot.get(path, auth=False).status_code == 401, path
            assert bot.get("show_config").json()["dry_run"] is True
            assert bot.process.poll() is None
    trade = trades[0]
    assert trade["is_open"] and trade["pair"] in PAIRS
    tick = Market(trade["pair"], SEED).tick
    assert trade["open_rate"] / tick == pytest.approx(round(trade["open_rate"] / tick))
    log = [line.split() for line in requests.read_text().splitlines()]
    paths = {fields[2] for fields in log}
    assert paths <= SERVED, paths - SERVED  # freqtrade asked for nothing the sandbox lacks
    assert {"/api/v3/exchangeInfo", "/api/v3/klines", "/api/v3/depth"} <= paths
    assert {fields[4] for fields in log} == {"200"}  # and got an answer every time
    print(
        f"\nping after {answered:.1f} s, first trade after {traded:.1f} s; "
        f"sandbox requests: {sorted({f'{f[1]} {f[2]}' for f in log})}"
    )


def test_the_stagnant_bot_answers_its_api_but_never_trades(stagnant_bot):  # noqa: F811
    warning = wait_until(
        lambda: STAKE_WARNING.search(stagnant_bot.log()), 60, "the stake warning", stagnant_bot
    )
    assert "(500 USDT)" in warning.group(0)
    time.sleep(max(0.0, 25 - (time.monotonic() - stagnant_bot.started)))
    assert stagnant_bot.trade_count() == 0
    assert stagnant_bot.get("count").json()["current"] == 0
    for path in API:
        assert stagnant_bot.get(path).status_code == 200, path
    assert stagnant_bot.process.poll() is None
