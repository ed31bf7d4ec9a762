"""Real `freqtrade trade --dry-run` processes against the sandbox exchange (a test double)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

import pytest

from botpool.payloads.sandbox.market import DEFAULT_PAIRS, Market

from .sandbox_fixtures import (
    FREQTRADE,
    PAIRS,
    STAKE_WARNING,
    Bot,
    freqtrade_config,
    running_bot,
    running_sandbox,
    stagnant_bot,  # noqa: F401 - a fixture, used by name
    wait_until,
)

pytestmark = pytest.mark.e2e(minutes=0.9)

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


def pair_lists(number_assets: int, **price_filter: float) -> list[dict[str, Any]]:
    """The dynamic pair list freqtrade users run: the top pairs by 24h quote volume, without
    the young ones, those whose tick is a big step, and those whose spread is wide."""
    return [
        {"method": "VolumePairList", "number_assets": number_assets, "sort_key": "quoteVolume"},
        {"method": "AgeFilter", "min_days_listed": 10},
        {"method": "PriceFilter", "low_price_ratio": 0.01, **price_filter},
        {"method": "SpreadFilter", "max_spread_ratio": 0.005},
    ]


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
    # filled as it was sent: a market order (a limit order the book moved away from between
    # pricing and sending waited out unfilledtimeout, and e2e trade waits timed out)
    entry = trade["orders"][0]
    assert (entry["order_type"], entry["status"]) == ("market", "closed"), entry
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


def test_freqtrades_test_pairlist_ranks_and_filters_the_fixed_market_list(tmp_path):
    # freqtrade's own pair list code, on the markets botpool's sandbox serves: every pair by
    # volume, in the list's order, but BTTC/USDT (one tick is 1.4 % of its price) and
    # SLP/USDT (a book 1 % wide).
    requests = tmp_path / "requests.log"
    with running_sandbox(requests, pairs=None) as url:
        config = freqtrade_config(tmp_path, url, pairs=(), pairlists=pair_lists(40))
        (tmp_path / "config.json").write_text(json.dumps(config))
        command = [str(FREQTRADE), "test-pairlist", "--config", str(tmp_path / "config.json")]
        command += ["--userdir", str(tmp_path), "--quote", "USDT", "BTC", "--print-json"]
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"}
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    usdt, btc = (json.loads(line) for line in result.stdout.splitlines())
    assert usdt == [
        p for p in DEFAULT_PAIRS if p.endswith("/USDT") and p not in ("BTTC/USDT", "SLP/USDT")
    ]
    assert usdt[:3] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert btc == [p for p in DEFAULT_PAIRS if p.endswith("/BTC")]
    # freqtrade's log wraps long lines at the terminal's width (COLUMNS; narrower under xdist)
    said = " ".join(result.stderr.split())
    assert "Removed BTTC/USDT from whitelist, because 1 unit is" in said, result.stderr
    assert "Removed SLP/USDT from whitelist, because spread" in said, result.stderr
    log = [line.split() for line in requests.read_text().splitlines()]
    assert {f[2] for f in log} == {"/api/v3/exchangeInfo", "/api/v3/ticker/24hr", "/api/v3/klines"}
    assert {f[4] for f in log} == {"200"}


def whitelist(bot: Bot) -> list[str]:
    response = bot.get("whitelist")
    response.raise_for_status()
    return list(response.json()["whitelist"])


def test_a_real_bot_trades_the_pairs_its_dynamic_pair_list_picked(tmp_path):
    # The top 3 by volume are BTC, ETH and SOL/USDT; a PriceFilter's max_price removes BTC
    # (about 60 000 USDT), so the bot trades ETH/USDT and SOL/USDT only.
    requests = tmp_path / "requests.log"
    with running_sandbox(requests, pairs=None, seed=SEED) as url:
        pairlists = pair_lists(3, max_price=10_000)
        config = freqtrade_config(tmp_path / "bot", url, pairs=(), pairlists=pairlists)
        with running_bot(tmp_path / "bot", config) as bot:
            picked = wait_until(lambda: whitelist(bot), 90, "a whitelist", bot)
            trades = wait_until(lambda: open_trades(bot), 90, "a dry-run trade", bot)
            methods = bot.get("whitelist").json()["method"]
    assert picked == ["ETH/USDT", "SOL/USDT"]
    assert methods == ["VolumePairList", "AgeFilter", "PriceFilter", "SpreadFilter"]
    assert {trade["pair"] for trade in trades} <= {"ETH/USDT", "SOL/USDT"}
    log = [line.split() for line in requests.read_text().splitlines()]
    assert ["/api/v3/ticker/24hr", "-"] in [f[2:4] for f in log]  # every ticker at once
    assert any(f[2] == "/api/v3/klines" and "interval=1d" in f[3] for f in log)  # AgeFilter
    assert {f[2] for f in log} <= SERVED and {f[4] for f in log} == {"200"}
