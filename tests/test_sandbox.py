"""The sandbox exchange (a test double): deterministic, consistent, and loud about the unknown."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Iterator
from urllib.error import HTTPError

import pytest

from botpool.sandbox import freqtrade_exchange_overrides, serve
from botpool.sandbox.market import Market
from botpool.sandbox.server import Exchange

NOW = 1_790_000_000.0  # a fixed clock: every test sees the same market


def exchange(seed: int = 42, clock: float = NOW) -> Exchange:
    markets = [Market(p, seed, 5, 0.001) for p in ("BTC/USDT", "DOGE/USDT", "NEW/USDT")]
    return Exchange(markets, clock=lambda: clock)


def test_same_seed_same_prices_other_seed_other_prices():
    a, b, c = exchange(), exchange(), exchange(seed=7)
    query = {"symbol": "BTCUSDT", "interval": "5m", "limit": "50"}
    assert a.klines(query) == b.klines(query)
    assert a.klines(query) != c.klines(query)


def test_candles_of_every_timeframe_agree_on_open_and_close():
    ex = exchange()
    ones = ex.klines({"symbol": "BTCUSDT", "interval": "1m", "limit": "15"})
    fives = ex.klines({"symbol": "BTCUSDT", "interval": "5m", "limit": "3"})
    for five in fives[:-1]:  # the last one is still open
        inside = [c for c in ones if five[0] <= c[0] < five[0] + 300_000]
        assert len(inside) == 5
        assert five[1] == inside[0][1] and five[4] == inside[-1][4]
        o, h, low, c = (float(x) for x in five[1:5])
        assert low <= min(o, c) <= max(o, c) <= h


def test_klines_end_with_the_open_candle_and_honour_start_time():
    ex = exchange()
    rows = ex.klines({"symbol": "BTCUSDT", "interval": "1m", "limit": "10"})
    assert len(rows) == 10
    assert rows[-1][0] == int(NOW) // 60 * 60 * 1000  # the still-open candle
    start = rows[3][0]
    later = ex.klines(
        {"symbol": "BTCUSDT", "interval": "1m", "startTime": str(start), "limit": "1000"}
    )
    assert [r[0] for r in later] == [r[0] for r in rows[3:]]
    assert later == rows[3:]


def test_prices_sit_on_the_tick_grid_and_ticker_agrees_with_the_book():
    ex = exchange()
    for symbol in ("BTCUSDT", "DOGEUSDT", "NEWUSDT"):
        market = ex.markets[symbol]
        book = ex.depth({"symbol": symbol, "limit": "5"})
        ticker = ex.ticker_24hr({"symbol": symbol})
        assert ticker["bidPrice"] == book["bids"][0][0] and ticker["askPrice"] == book["asks"][0][0]
        for price, _ in book["bids"] + book["asks"]:
            ticks = float(price) / market.tick
            assert abs(ticks - round(ticks)) < 1e-6, (symbol, price, market.tick)
        assert float(book["asks"][0][0]) > float(book["bids"][0][0])


def test_prices_hold_still_within_a_step_and_move_between_steps():
    book = exchange(clock=NOW).depth({"symbol": "BTCUSDT", "limit": "1"})
    assert exchange(clock=NOW + 1).depth({"symbol": "BTCUSDT", "limit": "1"}) == book
    moved = [
        exchange(clock=NOW + 5 * k).depth({"symbol": "BTCUSDT", "limit": "1"})["asks"]
        for k in range(1, 20)
    ]
    assert any(asks != book["asks"] for asks in moved)


def test_volatility_is_enough_for_a_small_roi_within_minutes():
    market = Market("ETH/USDT", 42, 5, 0.001)
    start = market.step_at(int(NOW * 1000))
    hits = 0
    for offset in range(0, 2000, 50):  # 40 windows of 10 minutes
        base = market.price(start + offset)
        window = [market.price(start + offset + k) for k in range(120)]
        hits += max(window) >= base * 1.003
    assert hits >= 20  # most 10-minute windows reach +0.3 %


def test_exchange_info_lists_the_filters_freqtrade_needs():
    info = exchange().exchange_info({})
    symbol = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    assert {f["filterType"] for f in symbol["filters"]} >= {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"}
    assert (symbol["baseAsset"], symbol["quoteAsset"], symbol["status"]) == (
        "BTC",
        "USDT",
        "TRADING",
    )


@pytest.fixture
def live() -> Iterator[tuple[str, io.StringIO]]:
    log = io.StringIO()
    server = serve("127.0.0.1", 0, ["BTC/USDT"], seed=1, log=log)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", log
    server.shutdown()


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())


def test_unknown_symbols_and_paths_get_exchange_style_errors(live):
    base, log = live
    assert get(f"{base}/api/v3/depth?symbol=XYZUSDT") == (
        400,
        {"code": -1121, "msg": "Invalid symbol."},
    )
    status, body = get(f"{base}/api/v3/order")
    assert status == 404 and body["code"] == -1000 and "does not serve" in body["msg"]
    assert get(f"{base}/api/v3/ping") == (200, {})
    lines = log.getvalue().splitlines()
    assert lines[0].endswith("GET /api/v3/depth symbol=XYZUSDT 400")
    assert lines[-1].endswith("GET /api/v3/ping  200")


def test_overrides_point_ccxt_at_the_sandbox_for_spot_only():
    overrides = freqtrade_exchange_overrides("http://botpool-exchange-sandbox:8000")
    assert overrides["name"] == "binance" and overrides["enable_ws"] is False
    for key in ("ccxt_config", "ccxt_async_config"):
        assert overrides[key]["urls"]["api"]["public"] == (
            "http://botpool-exchange-sandbox:8000/api/v3"
        )
        assert overrides[key]["options"]["fetchMarkets"] == {"types": ["spot"]}
