"""The sandbox exchange (a test double): deterministic, consistent, and loud about the unknown."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO
from urllib.error import HTTPError

import ccxt
import pytest

from botpool.payloads.sandbox import SANDBOX_EXCHANGE, freqtrade_exchange_overrides, serve
from botpool.payloads.sandbox.httpd import ApiError, Limits
from botpool.payloads.sandbox.market import DEFAULT_PAIRS, LISTINGS, USD_PRICES, Market
from botpool.payloads.sandbox.server import Exchange

NOW = 1_790_000_123.456  # a fixed clock: every test sees the same market
PAIRS = ("BTC/USDT", "DOGE/USDT", "ETH/BTC", "NEW/USDT")  # NEW: an asset of unknown price
EVERY_PAIR = tuple(dict.fromkeys(PAIRS + DEFAULT_PAIRS))
REPO = Path(__file__).resolve().parent.parent
SANDBOX = REPO / "botpool" / "payloads" / "sandbox"
DEFAULT_LIMITS = Limits()


def exchange(seed: int = 42, clock: float = NOW, pairs: tuple[str, ...] = PAIRS) -> Exchange:
    return Exchange([Market(p, seed) for p in pairs], clock=lambda: clock)


def klines(ex: Exchange, symbol: str, interval: str, **params: Any) -> list[list[Any]]:
    return ex.klines(
        {"symbol": symbol, "interval": interval, **{k: str(v) for k, v in params.items()}}
    )


def ohlc(row: list[Any]) -> tuple[float, float, float, float]:
    return float(row[1]), float(row[2]), float(row[3]), float(row[4])


def test_same_seed_same_prices_in_every_instance_other_seed_other_prices():
    a, b, other = exchange(), exchange(), exchange(seed=7)
    for ask in (
        lambda ex: klines(ex, "BTCUSDT", "5m", limit=50),
        lambda ex: ex.depth({"symbol": "BTCUSDT", "limit": "5"}),
        lambda ex: ex.ticker_24hr({}),
    ):
        assert ask(a) == ask(b)
        assert ask(a) != ask(other)


def test_every_pair_walks_its_own_path():
    # Pairs whose names share a long prefix once shared one price path.
    steps = (0, 1000, 123_456_789)
    paths = {
        p: Market(p).walks(0, 50) + [Market(p).walks(s, s)[0] for s in steps]
        for p in (
            "DOGE/USDT",
            "DOGE/USDC",
            "DOGE/FDUSD",
            "AVAX/USDT",
        )
    }
    assert len({tuple(path) for path in paths.values()}) == len(paths)


def test_a_range_of_steps_prices_exactly_like_each_step_alone():
    market = Market("ETH/USDT")
    first = market.step_at(int(NOW * 1000)) - 37
    assert market.prices(first, first + 80) == [market.price(s) for s in range(first, first + 81)]


@pytest.mark.parametrize("interval,minutes", [("3m", 3), ("5m", 5), ("15m", 15), ("1h", 60)])
def test_candles_of_every_timeframe_agree_with_the_minutes_inside_them(interval, minutes):
    ex = exchange()
    ones = klines(ex, "BTCUSDT", "1m", limit=1000)
    big = klines(ex, "BTCUSDT", interval, limit=3)
    for row in big[:-1]:  # the last one is still open
        inside = [c for c in ones if row[0] <= c[0] < row[0] + minutes * 60_000]
        assert len(inside) == minutes
        o, h, low, c = ohlc(row)
        assert (row[1], row[4]) == (inside[0][1], inside[-1][4])  # same open and close
        assert low <= min(o, c) <= max(o, c) <= h
        assert min(float(x[3]) for x in inside) <= low <= h <= max(float(x[2]) for x in inside)
        if minutes <= 5:  # short enough for exact extremes (5 minutes of 5-second steps)
            assert (h, low) == (max(float(x[2]) for x in inside), min(float(x[3]) for x in inside))
        # Quote volumes add up exactly; base volumes (the quote volume at each step's price,
        # on the lot grid) do for candles of exact extremes, and within 2 % beyond.
        quote_volume = sum(float(x[7]) for x in inside)  # each printed to 8 decimals
        assert float(row[7]) == pytest.approx(quote_volume, rel=1e-14, abs=minutes * 1e-8)
        assert row[8] == sum(x[8] for x in inside) == minutes * 12  # one trade a step
        volumes = sum(float(x[5]) for x in inside)
        lot = Market("BTC/USDT").lot
        if minutes <= 5:
            assert float(row[5]) == pytest.approx(volumes, abs=minutes * lot)
        else:
            assert float(row[5]) == pytest.approx(volumes, rel=0.02)


def test_daily_candles_reach_back_a_thousand_days_within_a_band():
    rows = klines(exchange(), "BTCUSDT", "1d", limit=1000)
    assert len(rows) == 1000
    assert all(b[0] - a[0] == 86_400_000 for a, b in zip(rows, rows[1:], strict=False))
    closes = [float(r[4]) for r in rows]
    assert 30_000 < min(closes) < max(closes) < 120_000  # around 60 000, never absurd
    assert len(set(closes)) > 900  # and still moving


def test_klines_end_with_the_open_candle_whose_close_is_the_ticker_price():
    ex = exchange()
    rows = klines(ex, "BTCUSDT", "1m", limit=10)
    assert len(rows) == 10
    assert rows[-1][0] == int(NOW) // 60 * 60_000  # the still-open candle
    assert rows[-1][6] == rows[-1][0] + 59_999
    ticker = ex.ticker_24hr({"symbol": "BTCUSDT"})
    assert rows[-1][4] == ticker["lastPrice"] == ex.ticker_price({"symbol": "BTCUSDT"})["price"]
    for interval in ("5m", "1h", "1d"):  # every timeframe's open candle closes at that price
        assert klines(ex, "BTCUSDT", interval, limit=1)[0][4] == ticker["lastPrice"]


def test_klines_honour_start_time_end_time_and_limit():
    ex = exchange()
    rows = klines(ex, "BTCUSDT", "1m", limit=10)
    later = klines(ex, "BTCUSDT", "1m", startTime=rows[3][0], limit=1000)
    assert later == rows[3:]
    assert klines(ex, "BTCUSDT", "1m", startTime=rows[3][0] - 1, limit=2) == rows[3:5]
    assert klines(ex, "BTCUSDT", "1m", endTime=rows[5][0], limit=3) == rows[3:6]
    assert klines(ex, "BTCUSDT", "1m", startTime=rows[2][0], endTime=rows[4][0]) == rows[2:5]
    assert klines(ex, "BTCUSDT", "1m", startTime=int(NOW * 1000) + 120_000) == []
    assert len(klines(ex, "BTCUSDT", "1m", limit=5000)) == 1000  # Binance's maximum
    assert len(klines(ex, "BTCUSDT", "1m")) == 500  # and its default


LISTED_MS = 1_499_990_400_000  # 2017-07-14T00:00Z: the sandbox's markets open then


def test_klines_before_the_listing_are_empty_and_the_work_is_bounded_by_limit(monkeypatch):
    # endTime=0 once spent a second of CPU on a thousand candles from before 1970.
    computed: list[int] = []
    candle = Market.candle

    def counted(self: Market, open_ms: int, interval_ms: int, now_ms: int) -> Any:
        computed.append(open_ms)
        return candle(self, open_ms, interval_ms, now_ms)

    monkeypatch.setattr(Market, "candle", counted)
    ex = exchange()
    started = time.monotonic()
    assert klines(ex, "BTCUSDT", "1d", endTime=0, limit=1000) == []
    assert klines(ex, "BTCUSDT", "1m", endTime=LISTED_MS - 1, limit=1000) == []
    assert klines(ex, "BTCUSDT", "1m", startTime=0, endTime=LISTED_MS - 1) == []
    assert computed == [] and time.monotonic() - started < 0.5
    # A start before the listing gets the first candles after it, as on Binance.
    rows = klines(ex, "BTCUSDT", "1h", startTime=0, limit=3)
    assert [row[0] for row in rows] == [LISTED_MS + 3_600_000 * k for k in (0, 1, 2)]
    # Nine years of minutes asked for at once: still at most `limit` candles computed.
    computed.clear()
    rows = klines(ex, "BTCUSDT", "1m", startTime=0, endTime=int(NOW * 1000), limit=1000)
    assert len(rows) == len(computed) == 1000


@pytest.mark.parametrize("name", ["startTime", "endTime", "limit"])
@pytest.mark.parametrize("value", ["-1", "1e9", "1.5", "", " 5", str(10**30), "٣"])
def test_integer_parameters_outside_binances_legal_range_are_refused(name, value):
    with pytest.raises(ApiError) as refused:
        klines(exchange(), "BTCUSDT", "1m", **{name: value})
    assert (refused.value.status, refused.value.code) == (400, -1100)
    assert f"parameter '{name}'; legal range is '^[0-9]{{1,20}}$'" in refused.value.msg


def test_times_in_the_far_future_are_clamped_to_now():
    ex, far = exchange(), 10**20 - 1  # 20 digits: legal, and absurd
    assert klines(ex, "BTCUSDT", "1m", startTime=far) == []
    assert klines(ex, "BTCUSDT", "1m", endTime=far, limit=2) == klines(ex, "BTCUSDT", "1m", limit=2)
    assert len(klines(ex, "BTCUSDT", "1m", limit=10**19)) == 1000  # clamped, like 5000


def test_every_price_sits_on_the_tick_grid():
    ex = exchange(pairs=EVERY_PAIR)
    for symbol, market in ex.markets.items():
        assert market.decimals <= 8  # as on Binance: BTTC/USDT's tick is 1.4 % of its price
        prices = [x for row in klines(ex, symbol, "1m", limit=100) for x in row[1:5]]
        prices += [x for row in klines(ex, symbol, "4h", limit=20) for x in row[1:5]]
        book = ex.depth({"symbol": symbol, "limit": "20"})
        prices += [price for price, _ in book["bids"] + book["asks"]]
        ticker = ex.ticker_24hr({"symbol": symbol})
        prices += [ticker[k] for k in ("lastPrice", "bidPrice", "askPrice", "highPrice")]
        for price in prices:
            ticks = float(price) / market.tick
            assert abs(ticks - round(ticks)) < 1e-6, (symbol, price, market.tick)
            assert len(price.split(".")[-1]) == market.decimals  # printed on the grid too


def test_ticker_book_ticker_and_order_book_agree():
    ex = exchange(pairs=EVERY_PAIR)
    for symbol in ex.markets:
        book = ex.depth({"symbol": symbol, "limit": "5"})
        ticker = ex.ticker_24hr({"symbol": symbol})
        best = ex.book_ticker({"symbol": symbol})
        assert ticker["bidPrice"] == best["bidPrice"] == book["bids"][0][0]
        assert ticker["askPrice"] == best["askPrice"] == book["asks"][0][0]
        bid, ask, last = (float(ticker[k]) for k in ("bidPrice", "askPrice", "lastPrice"))
        assert bid < last < ask
        assert len(book["bids"]) == len(book["asks"]) == 5
        assert [float(p) for p, _ in book["asks"]] == sorted(float(p) for p, _ in book["asks"])


def test_prices_hold_still_within_a_step_and_move_between_steps():
    step_start = NOW // 5 * 5
    book = exchange(clock=step_start).depth({"symbol": "BTCUSDT", "limit": "1"})
    assert exchange(clock=step_start + 4.99).depth({"symbol": "BTCUSDT", "limit": "1"}) == book
    moved = [
        exchange(clock=step_start + 5 * k).depth({"symbol": "BTCUSDT", "limit": "1"})["asks"]
        for k in range(1, 13)
    ]
    assert sum(asks != book["asks"] for asks in moved) >= 10


def test_default_volatility_lets_a_small_roi_exit_within_minutes():
    # SandboxScalper's minimal_roi of 0.2 % needs a move of about 0.4 % (fees both ways).
    market = Market("ETH/USDT")
    start = market.step_at(int(NOW * 1000))
    within_five_minutes = 0
    for window in range(100):
        prices = market.prices(start + window * 97, start + window * 97 + 60)
        within_five_minutes += max(prices) >= prices[0] * 1.004
    assert within_five_minutes >= 50
    moves = [abs(b / a - 1) for a, b in zip(prices, prices[1:], strict=False)]
    assert max(moves) < 0.01  # yet no single step jumps past a 2 % stoploss


def test_start_prices_and_filters_look_like_the_real_market():
    ex = exchange()
    assert ex.markets["ETHBTC"].start_price == pytest.approx(0.05)
    info = ex.exchange_info({})
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "DOGEUSDT", "ETHBTC", "NEWUSDT"]
    btc = info["symbols"][0]
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters.keys() >= {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"}
    assert (btc["baseAsset"], btc["quoteAsset"], btc["status"]) == ("BTC", "USDT", "TRADING")
    assert (filters["PRICE_FILTER"]["tickSize"], filters["LOT_SIZE"]["stepSize"]) == (
        "0.1",
        "0.00000100",
    )
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"  # a 10 USDT stake fits
    assert ex.exchange_info({"symbol": "ETHBTC"})["symbols"][0]["quoteAsset"] == "BTC"


def test_the_fixed_market_list_is_well_known_pairs_at_realistic_prices():
    assert 30 <= len(DEFAULT_PAIRS) <= 40 and len(set(DEFAULT_PAIRS)) == len(DEFAULT_PAIRS)
    # the old default list, which layouts and tests name, is all in it
    assert {"BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT"} < set(
        DEFAULT_PAIRS
    )
    assert {pair.split("/")[1] for pair in DEFAULT_PAIRS} == {"USDT", "BTC"}
    for pair in DEFAULT_PAIRS:
        base, quote = pair.split("/")
        assert Market(pair).start_price == USD_PRICES[base] / USD_PRICES[quote]
    info = Exchange([Market(p) for p in DEFAULT_PAIRS]).exchange_info({})
    assert [s["symbol"] for s in info["symbols"]] == sorted(
        p.replace("/", "") for p in DEFAULT_PAIRS
    )


def ranked(tickers: list[dict[str, Any]], quote: str) -> list[str]:
    """The symbols quoted in `quote`, by 24h quote volume, as a VolumePairList ranks them."""
    quoted = [t for t in tickers if t["symbol"].endswith(quote)]
    return [t["symbol"] for t in sorted(quoted, key=lambda t: -float(t["quoteVolume"]))]


@pytest.mark.parametrize("seed,volatility", [(42, 0.001), (7, 0.02)])
def test_volumes_rank_the_fixed_list_in_its_order_whatever_the_time_seed_or_volatility(
    seed, volatility
):
    markets = [Market(pair, seed, volatility=volatility) for pair in DEFAULT_PAIRS]
    for clock in (NOW, NOW + 7.3 * 3600, NOW + 400 * 86400):
        tickers = Exchange(markets, clock=lambda clock=clock: clock).ticker_24hr({})
        for quote in ("USDT", "BTC"):
            listed = [m.symbol for m in markets if m.quote == quote]
            assert ranked(tickers, quote) == listed
        for market, ticker in zip(sorted(markets, key=lambda m: m.symbol), tickers, strict=True):
            per_day = LISTINGS[market.pair].usd_volume / USD_PRICES[market.quote]
            assert float(ticker["quoteVolume"]) == pytest.approx(per_day, abs=1e-8)
    volumes = [LISTINGS[pair].usd_volume for pair in DEFAULT_PAIRS if pair.endswith("/USDT")]
    assert volumes == sorted(set(volumes), reverse=True)  # distinct: no tie to break


def test_the_24h_ticker_sums_the_candles_of_the_same_24_hours():
    now = (int(NOW) // 300 + 1) * 300 - 0.001  # the end of a 5-minute candle
    ex = exchange(clock=now, pairs=DEFAULT_PAIRS)
    for symbol in ("BTCUSDT", "PEPEUSDT", "BTTCUSDT", "SLPUSDT", "ETHBTC"):
        ticker = ex.ticker_24hr({"symbol": symbol})
        rows = klines(ex, symbol, "5m", limit=288)  # 24 hours, the last one ending now
        assert (ticker["openTime"], ticker["closeTime"]) == (rows[0][0], rows[-1][6])
        assert (ticker["openPrice"], ticker["lastPrice"]) == (rows[0][1], rows[-1][4])
        assert ticker["count"] == sum(row[8] for row in rows) == 17280  # 5-second steps
        quote_volume = sum(float(row[7]) for row in rows)  # each printed to 8 decimals
        assert float(ticker["quoteVolume"]) == pytest.approx(quote_volume, rel=1e-14, abs=288e-8)
        volume = sum(float(row[5]) for row in rows)
        assert float(ticker["volume"]) == pytest.approx(volume, rel=0.02)  # sampled, see candle()
        low, high = float(ticker["lowPrice"]), float(ticker["highPrice"])
        assert min(float(r[3]) for r in rows) <= low <= high <= max(float(r[2]) for r in rows)
        average = float(ticker["quoteVolume"]) / float(ticker["volume"])
        tick = ex.markets[symbol].tick
        assert float(ticker["weightedAvgPrice"]) == pytest.approx(average, abs=tick)


def test_books_are_a_tick_either_side_but_slps_which_is_one_percent_wide():
    ex = exchange(pairs=DEFAULT_PAIRS)
    for symbol, market in ex.markets.items():
        bid, ask = market.book(market.step_at(int(NOW * 1000)))
        if symbol == "SLPUSDT":
            assert 1 - bid / ask == pytest.approx(0.01, rel=0.01)
        else:
            assert round((ask - bid) / market.tick) == 2
        # each level is worth about 10 million USD: any dry-run order fills at the top
        usd = float(ex.depth({"symbol": symbol, "limit": "1"})["asks"][0][1]) * ask
        assert usd * USD_PRICES[market.quote] == pytest.approx(10e6, rel=0.2)


def test_malformed_pairs_are_refused():
    for pair in ("BTCUSDT", "btc/usdt", "BTC/USDT/X", ""):
        with pytest.raises(ValueError, match="BASE/QUOTE"):
            Market(pair)
    with pytest.raises(ValueError, match="share one exchange symbol"):
        Exchange([Market("AB/CDE"), Market("ABC/DE")])


@contextmanager
def running(
    log: TextIO | None = None,
    limits: Limits = DEFAULT_LIMITS,
    pairs: tuple[str, ...] | None = ("BTC/USDT", "ETH/USDT"),
) -> Iterator[int]:
    """The sandbox over HTTP on 127.0.0.1, on the fixed clock, in a thread; yields its port.
    pairs=None serves the fixed market list."""
    listed = None if pairs is None else list(pairs)
    server = serve("127.0.0.1", 0, listed, seed=1, log=log, clock=lambda: NOW, limits=limits)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def live() -> Iterator[tuple[str, io.StringIO]]:
    """The sandbox over HTTP with default limits; yields (base URL, request log)."""
    log = io.StringIO()
    with running(log) as port:
        yield f"http://127.0.0.1:{port}", log


def call(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def read_until_closed(sock: socket.socket, seconds: float) -> bytes:
    """All the server sends until it closes the connection; fails if it takes longer."""
    deadline, data = time.monotonic() + seconds, b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"still open after {seconds} s, got {data[:200]!r}") from None
        if not chunk:
            return data
        data += chunk


def parse_answer(answer: bytes) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body) of one HTTP answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {name.lower(): value for name, value in (x.split(": ", 1) for x in header_lines)}
    assert int(headers["content-length"]) == len(body), answer
    return int(status_line.split(" ")[1]), headers, json.loads(body)


def eventually(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll predicate until it holds; fail after seconds."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {seconds} s waiting for {what}"
        select.select([], [], [], 0.05)  # a pause between polls


def raw(port: int, data: bytes, seconds: float = 2) -> tuple[int, dict[str, str], Any]:
    """Send bytes as they are; the answer, which must come (and the connection close)
    within seconds: at once, long before any timeout of the server's."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        sock.sendall(data)
        return parse_answer(read_until_closed(sock, seconds))


def test_unknown_symbols_paths_and_parameters_get_binance_style_errors(live):
    base, _ = live
    invalid_symbol = (400, {"code": -1121, "msg": "Invalid symbol."})
    assert call(f"{base}/api/v3/depth?symbol=XYZUSDT") == invalid_symbol
    assert call(f"{base}/api/v3/klines?symbol=XYZUSDT&interval=1m") == invalid_symbol
    assert call(f"{base}/api/v3/ticker/24hr?symbol=XYZUSDT") == invalid_symbol
    assert call(f"{base}/api/v3/klines?interval=1m") == invalid_symbol  # no symbol at all
    assert call(f'{base}/api/v3/ticker/price?symbols=["BTCUSDT","XYZUSDT"]') == invalid_symbol
    assert call(f"{base}/api/v3/klines?symbol=BTCUSDT&interval=7m") == (
        400,
        {"code": -1120, "msg": "Invalid interval."},
    )
    status, body = call(f"{base}/api/v3/depth?symbol=BTCUSDT&limit=ten")
    assert (status, body["code"]) == (400, -1100)
    for path in ("/api/v3/account", "/"):
        status, body = call(f"{base}{path}")
        assert status == 404 and body["code"] == -1000, path
        assert f"does not serve GET {path}" in body["msg"]


def test_methods_but_get_get_405_and_bodies_413_without_waiting_for_them(live):
    base, _ = live
    # A real client posting a body reads the 405, not a connection reset.
    status, body = call(f"{base}/api/v3/order", "POST", b"symbol=BTCUSDT&side=BUY")
    assert status == 405 and "does not serve POST /api/v3/order" in body["msg"]
    port = port_of(base)
    for method in ("POST", "PUT", "DELETE", "HEAD", "OPTIONS", "BREW"):
        # a body declared and never sent: the answer comes at once all the same
        status, headers, body = raw(
            port, f"{method} /api/v3/ping HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n".encode()
        )
        assert (status, body["code"], headers["allow"]) == (405, -1000, "GET"), method
    for framing in ("Content-Length: 100000", "Content-Length: 5", "Transfer-Encoding: chunked"):
        status, _, body = raw(port, f"GET /api/v3/ping HTTP/1.1\r\n{framing}\r\n\r\n".encode())
        assert status == 413 and "query string" in body["msg"], framing
    assert raw(port, b"GET /api/v3/ping HTTP/1.1\r\nContent-Length: 0\r\n\r\n")[::2] == (200, {})


def test_after_its_answer_the_server_drains_what_the_client_still_sends(live):
    # Closing on unread bytes resets the connection (and drops what of the answer is still
    # in the send queue): the server half-closes, and discards the rest until the client
    # closes, up to linger_bytes for linger_seconds.
    head = b"POST /api/v3/order HTTP/1.1\r\nContent-Length: 30000\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port_of(live[0])), timeout=2) as sock:
        sock.sendall(head)
        assert parse_answer(read_until_closed(sock, 2))[0] == 405  # then end of file
        for _ in range(3):
            sock.sendall(bytes(10_000))  # the body the server never reads: no reset


@pytest.mark.parametrize(
    "header",
    [
        "Content-Length: abc",
        "Content-Length: -1",
        "Content-Length: 1.0",
        "Content-Length: 0x10",
        "Content-Length:",
        "Content-Length: 5, 5",
        "Content-Length: 5\r\nContent-Length: 6",
        "Content-Length: 99999999999999999999999999999999",
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
    ],
)
def test_a_malformed_content_length_gets_a_400(live, header):
    # "Content-Length: abc" once raised in the handler and answered nothing at all.
    status, _, body = raw(
        port_of(live[0]), f"GET /api/v3/ping HTTP/1.1\r\n{header}\r\n\r\n".encode()
    )
    assert (status, body["code"]) == (400, -1000) and "Content-Length" in body["msg"], header


def get(target: str, *headers: str) -> bytes:
    """A GET request for target, as bytes."""
    return "".join(f"{line}\r\n" for line in (f"GET {target} HTTP/1.1", *headers, "")).encode()


HOSTILE = {  # a request, and the status and Binance error code it must get at once
    "a query string of 20 KiB": (get("/api/v3/ping?x=" + "9" * 20_000), 414, -1000),
    "a header of 20 KiB": (get("/api/v3/ping", "X: " + "9" * 20_000), 431, -1000),
    "200 headers": (get("/api/v3/ping", *["X: 1"] * 200), 431, -1000),
    "a bad percent-escape": (get("/api/v3/depth?symbol=BTC%ZZUSDT"), 400, -1100),
    "an escape that is not UTF-8": (get("/api/v3/depth?symbol=%FF"), 400, -1100),
    "a non-ASCII symbol": (get("/api/v3/depth?symbol=%C3%89THUSDT"), 400, -1121),
    "raw UTF-8 in the request line": (get("/api/v3/depth?symbol=ÉTHUSDT"), 400, -1000),
    "a control character in the path": (get("/api/v3/\x1b[2J"), 400, -1000),
    "a limit of 10**30": (get(f"/api/v3/depth?symbol=BTCUSDT&limit={10**30}"), 400, -1100),
    "a repeated parameter": (get("/api/v3/depth?symbol=BTCUSDT&symbol=ETHUSDT"), 400, -1101),
    "symbols nested 5000 deep": (get("/api/v3/ticker/price?symbols=" + "[" * 5000), 400, -1100),
    "an HTTP/0.9 request": (b"GET /api/v3/ping\r\n", 400, -1000),
    "HTTP/2.0": (b"GET /api/v3/ping HTTP/2.0\r\n\r\n", 505, -1000),
    "a TLS handshake": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64), 400, -1000),
    "an empty request line": (b"\r\n\r\n", 400, -1000),
    "an absolute URL": (get("http://sandbox/api/v3/ping"), 400, -1000),
    "a folded header": (get("/api/v3/ping", "X: 1", "  2"), 400, -1000),
    "a header without a colon": (get("/api/v3/ping", "X 1"), 400, -1000),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_requests_get_a_clear_4xx_at_once_and_the_server_lives_on(live, case):
    data, expected_status, expected_code = HOSTILE[case]
    base, log = live
    status, _, body = raw(port_of(base), data)
    assert (status, body["code"]) == (expected_status, expected_code), body
    assert log.getvalue().splitlines()[-1].split(" ")[4] == str(status)  # logged as well
    assert call(f"{base}/api/v3/ping") == (200, {})


def test_pipelined_requests_get_one_whole_answer_then_the_connection_closes(live):
    base, log = live
    first = get("/api/v3/depth?symbol=BTCUSDT&limit=5000")  # an answer of about 280 kB
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow reader
        sock.connect(("127.0.0.1", port_of(base)))
        # 60 kB more than the server reads: closing on them would reset the connection
        # and drop the part of the answer still in the server's send queue
        sock.sendall(first + get("/api/v3/ping") * 2000)
        status, headers, body = parse_answer(read_until_closed(sock, 5))  # one whole answer
    assert (status, len(body["asks"]), headers["connection"]) == (200, 5000, "close")
    assert len(log.getvalue().splitlines()) == 1


def test_idle_and_slow_clients_hold_no_threads_and_a_request_still_answers(tmp_path):
    # 400 idle clients once made 401 threads. Here 300 hold their connections open, half of
    # them sending a header byte every half second; the server's threads stay bounded.
    with running_command_line(tmp_path) as (process, port):
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(150)]
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(150)]
        threads = []
        try:
            for sock in slow:
                sock.sendall(b"GET /api/v3/ping HTTP/1.1\r\nX-Slow: ")
            for _ in range(4):
                # the server answering or closing any of them would be a failure too
                closed, _, _ = select.select(idle + slow, [], [], 0.5)
                assert closed == []
                for sock in slow:
                    sock.sendall(b"z")
                threads.append(len(os.listdir(f"/proc/{process.pid}/task")))
            assert call(f"http://127.0.0.1:{port}/api/v3/ping") == (200, {})
            threads.append(len(os.listdir(f"/proc/{process.pid}/task")))
        finally:
            for sock in idle + slow:
                sock.close()
    assert max(threads) <= 1 + DEFAULT_LIMITS.workers, threads


def test_a_slowloris_is_cut_off_after_a_bounded_time_with_a_408():
    limits = Limits(head_seconds=1.0)
    log = io.StringIO()
    with running(log, limits) as port:
        started = time.monotonic()
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        answers: dict[socket.socket, bytes] = {}
        try:
            for sock in slow:
                sock.sendall(b"GET /api/v3/ping HTTP/1.1\r\n")
            while len(answers) < len(idle + slow):
                assert time.monotonic() - started < limits.head_seconds + 2, answers
                ready, _, _ = select.select(
                    [s for s in idle + slow if s not in answers], [], [], 0.2
                )
                for sock in ready:
                    answers[sock] = read_until_closed(sock, 1)
                for sock in slow:
                    if sock not in answers:  # a header line every 0.2 s, for ever
                        with contextlib.suppress(ConnectionError):  # cut off: read next round
                            sock.sendall(b"X: 1\r\n")
        finally:
            for sock in idle + slow:
                sock.close()
    for answer in answers.values():
        status, _, body = parse_answer(answer)
        assert (status, body["code"]) == (408, -1000)
    assert [line.split(" ")[1:5] for line in log.getvalue().splitlines()].count(
        ["GET", "/api/v3/ping", "-", "408"]
    ) == len(slow)


def test_beyond_max_connections_a_client_gets_503_at_once():
    with running(None, Limits(max_connections=4)) as port:
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                # answered before its request comes, a client that sends it reads the 503
                assert select.select([sock], [], [], 2)[0], "no answer"
                sock.sendall(get("/api/v3/ping"))
                status, _, body = parse_answer(read_until_closed(sock, 2))
            assert (status, body["code"]) == (503, -1008)
        finally:
            for sock in idle:
                sock.close()

        def answers() -> bool:  # once the server has seen them close
            return raw(port, b"GET /api/v3/ping HTTP/1.1\r\n\r\n")[0] == 200

        eventually(answers, 5, "a free connection slot")


class SlowDisk(io.StringIO):
    """A request log whose lines take 0.2 s to land, like a busy disk's."""

    def write(self, line: str) -> int:
        time.sleep(0.2)
        return super().write(line)


def test_every_request_is_in_the_log_by_the_time_its_answer_arrives():
    # The log line was written after the answer: a test reading the log could miss it.
    log = SlowDisk()
    with running(log) as port:
        for path in ("/api/v3/ping", "/api/v3/time", "/nowhere"):
            call(f"http://127.0.0.1:{port}{path}")
            assert log.getvalue().splitlines()[-1].split(" ")[2] == path


def test_the_request_log_has_one_line_per_request(live):
    base, log = live
    call(f"{base}/api/v3/depth?symbol=XYZUSDT&limit=5")
    call(f"{base}/api/v3/ping")
    call(f"{base}/api/v3/order", "POST", b"side=BUY")
    lines = [line.split(" ") for line in log.getvalue().splitlines()]
    assert [fields[1:5] for fields in lines] == [
        ["GET", "/api/v3/depth", "symbol=XYZUSDT&limit=5", "400"],
        ["GET", "/api/v3/ping", "-", "200"],
        ["POST", "/api/v3/order", "-", "405"],
    ]
    assert all(fields[0].endswith("Z") and fields[5].endswith("ms") for fields in lines)


def test_served_endpoints_answer_over_http(live):
    base, _ = live
    assert call(f"{base}/api/v3/ping") == (200, {})
    assert call(f"{base}/api/v3/time") == (200, {"serverTime": int(NOW * 1000)})
    status, tickers = call(f"{base}/api/v3/ticker/24hr")
    assert status == 200 and [t["symbol"] for t in tickers] == ["BTCUSDT", "ETHUSDT"]
    status, prices = call(f'{base}/api/v3/ticker/price?symbols=["ETHUSDT"]')
    assert status == 200 and [p["symbol"] for p in prices] == ["ETHUSDT"]
    status, best = call(f"{base}/api/v3/ticker/bookTicker?symbol=BTCUSDT")
    assert status == 200 and best["bidPrice"] == tickers[0]["bidPrice"]


LISTED_DAY = LISTED_MS // 86_400_000


def test_ccxt_parses_what_freqtrades_pair_lists_and_filters_read():
    """ccxt's own binance client, configured as freqtrade configures it, on the fixed list."""
    log = io.StringIO()
    with running(log, pairs=None) as port:
        client = ccxt.binance(
            freqtrade_exchange_overrides(f"http://127.0.0.1:{port}")["ccxt_config"]
        )
        client.load_markets()
        # freqtrade's get_tickers(): every symbol in one request, as Binance answers it
        tickers = client.fetch_tickers()
        assert log.getvalue().splitlines()[-1].split(" ")[1:5] == [
            "GET",
            "/api/v3/ticker/24hr",
            "-",
            "200",
        ]
        # AgeFilter: daily candles since the listing, 2017-07-14
        daily = client.fetch_ohlcv("SLP/USDT", "1d", since=LISTED_MS - 5 * 86_400_000, limit=20)
    assert set(tickers) == set(DEFAULT_PAIRS)
    # VolumePairList: the stake currency's tickers by quoteVolume, the fixed list's order
    for quote in ("USDT", "BTC"):
        by_volume = sorted(
            (t for t in tickers.values() if t["symbol"].endswith(f"/{quote}")),
            key=lambda t: -t["quoteVolume"],
        )
        assert [t["symbol"] for t in by_volume] == [p for p in DEFAULT_PAIRS if p.endswith(quote)]
    assert tickers["BTC/USDT"]["quoteVolume"] == 1_500_000_000
    # PriceFilter's low_price_ratio: one pip (the price precision, in TICK_SIZE mode) over
    # the last price, as freqtrade's price_get_one_pip computes it
    assert client.precisionMode == ccxt.TICK_SIZE
    pips = {s: client.markets[s]["precision"]["price"] / t["last"] for s, t in tickers.items()}
    assert {s for s, pip in pips.items() if pip > 0.01} == {"BTTC/USDT"}
    # SpreadFilter: 1 - bid / ask
    spreads = {s: 1 - t["bid"] / t["ask"] for s, t in tickers.items()}
    assert {s for s, spread in spreads.items() if spread > 0.005} == {"BTTC/USDT", "SLP/USDT"}
    for symbol, ticker in tickers.items():
        market = client.markets[symbol]
        assert ticker["bid"] < ticker["last"] < ticker["ask"]
        assert ticker["baseVolume"] > 0 and ticker["timestamp"] == int(NOW * 1000)
        assert market["active"] and market["spot"] and market["limits"]["amount"]["min"] > 0
    assert [row[0] // 86_400_000 for row in daily] == list(range(LISTED_DAY, LISTED_DAY + 20))


def test_the_readme_documents_the_fixed_market_list():
    readme = (REPO / "README.md").read_text()
    rows = re.findall(
        r"^\| ([A-Z0-9]+/[A-Z0-9]+) \| ([0-9.]+) \| ([0-9,]+) M \| ([0-9]+) \|", readme, re.M
    )
    rank: dict[str, int] = {}
    expected = []  # pair, start price, 24h volume in millions of USD, rank in its quote
    for pair in DEFAULT_PAIRS:
        market = Market(pair)
        rank[market.quote] = rank.get(market.quote, 0) + 1
        price = f"{market.start_price:.{market.decimals}f}".rstrip("0").rstrip(".")
        volume = f"{LISTINGS[pair].usd_volume / 1e6:,.0f}"
        expected.append((pair, price, volume, str(rank[market.quote])))
    assert rows == expected


def test_overrides_point_ccxt_at_the_sandbox_for_spot_only():
    overrides = freqtrade_exchange_overrides("http://botpool-sandbox:8000/")
    assert overrides["name"] == SANDBOX_EXCHANGE == "binance"
    assert overrides["enable_ws"] is False
    # freqtrade merges ccxt_config into its async client's config as well
    assert "ccxt_async_config" not in overrides
    urls = overrides["ccxt_config"]["urls"]["api"]
    assert urls == {
        "public": "http://botpool-sandbox:8000/api/v3",
        "private": "http://botpool-sandbox:8000/api/v3",
    }
    assert overrides["ccxt_config"]["options"]["fetchMarkets"] == {"types": ["spot"]}


@contextmanager
def running_command_line(
    tmp_path: Path, *options: str
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`python3 -S -m botpool.sandbox` as in its container: the sandbox's own files and a
    stub package, no site-packages; yields the process and its port, and stops it (SIGTERM)."""
    (tmp_path / "botpool").mkdir()
    (tmp_path / "botpool" / "__init__.py").write_text("")
    shutil.copytree(
        SANDBOX, tmp_path / "botpool" / "sandbox", ignore=shutil.ignore_patterns("*.md")
    )
    command = [sys.executable, "-S", "-m", "botpool.sandbox", "--port", "0", *options]
    process = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        assert "test double" in banner, banner
        yield process, int(banner.split(" on 127.0.0.1:")[1].split()[0])
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_command_line_runs_on_the_bare_standard_library_and_repeats_its_prices(tmp_path):
    options = ("--seed", "5", "--pairs", "BTC/USDT,SOL/USDT")
    with running_command_line(tmp_path, *options) as (_, port):
        end = (int(time.time()) - 3600) * 1000  # the past: the same in any process
        query = f"symbol=SOLUSDT&interval=1m&limit=30&endTime={end}"
        status, rows = call(f"http://127.0.0.1:{port}/api/v3/klines?{query}")
    assert status == 200
    here = Exchange([Market("SOL/USDT", seed=5)])
    assert rows == klines(here, "SOLUSDT", "1m", limit=30, endTime=end)


def test_sigterm_stops_the_command_line_cleanly_with_every_request_logged(tmp_path):
    log = tmp_path / "requests.log"
    paths = [f"/api/v3/depth?symbol=BTCUSDT&limit={n}" for n in range(1, 30)]
    paths += ["/api/v3/ping", "/api/v3/klines?symbol=NOPE&interval=1m", "/nowhere"]
    with running_command_line(tmp_path, "--request-log", str(log)) as (process, port):
        for path in paths:
            call(f"http://127.0.0.1:{port}{path}")
            last = log.read_text().splitlines()[-1]  # there by the time of the answer
            assert f" {path.replace('?', ' ')} " in last
        half_sent = socket.create_connection(("127.0.0.1", port))
        half_sent.sendall(b"GET /api/v3/ping HTTP/1.1\r\n")  # its head never completes
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0  # as `docker stop` will, without waiting for it
        half_sent.close()
        assert process.stderr is not None and "Traceback" not in process.stderr.read()
    logged = [line.split(" ") for line in log.read_text().splitlines()]
    assert [f"{f[2]}?{f[3]}".removesuffix("?-") for f in logged] == paths


def test_the_command_line_documents_its_knobs():
    result = subprocess.run(
        [sys.executable, "-m", "botpool.payloads.sandbox", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for knob in ("--listen", "--port", "--pairs", "--seed", "--step-seconds", "--volatility"):
        assert knob in result.stdout
    assert "--request-log" in result.stdout and "TEST DOUBLE" in result.stdout


def test_the_command_line_refuses_an_empty_pair_list_clearly():
    command = [sys.executable, "-m", "botpool.payloads.sandbox", "--port", "0", "--pairs", " , "]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no pairs to serve: give at least one, or none for the fixed list" in result.stderr
