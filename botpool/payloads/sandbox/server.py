"""The exchange's side: the public part of Binance's spot REST API that freqtrade uses.

Served (GET): /api/v3/ping, time, exchangeInfo, klines, ticker/24hr, ticker/price,
ticker/bookTicker, depth. Anything else, and any unknown symbol or bad parameter, gets a
Binance-style JSON error with a 4xx status, so a bot that asks for something new fails
loudly instead of trading on made-up data. The HTTP side, and its bounds, is httpd.py.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from .httpd import ApiError, HttpServer, Limits
from .market import (
    DEFAULT_PAIRS,
    DEFAULT_SEED,
    DEFAULT_STEP_SECONDS,
    DEFAULT_VOLATILITY,
    Candle,
    Market,
)

INTERVALS = {  # Binance's kline intervals, in seconds
    "1s": 1,
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "8h": 28800,
    "12h": 43200,
    "1d": 86400,
    "3d": 259200,
    "1w": 604800,
}
# The sandbox's markets open on 2017-07-14T00:00Z, the day Binance did: no candle opens
# before, so a time range reaching back to 1970 costs nothing.
LISTED_MS = 1_499_990_400_000
DIGITS = re.compile("^[0-9]{1,20}$", re.ASCII)  # Binance's legal range for integers


def _int(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    """An integer parameter in Binance's legal range (1 to 20 digits), clamped to [low, high]
    like Binance does for `limit`."""
    text = query.get(name, str(default))
    if not DIGITS.fullmatch(text):
        raise ApiError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '{DIGITS.pattern}'.",
        )
    return min(max(int(text), low), high)


class Exchange:
    """The markets and the answer to each endpoint; the clock is injectable for tests."""

    def __init__(self, markets: list[Market], clock: Callable[[], float] = time.time):
        # In the order of their symbols, not of their volumes: a pair list that ranks them
        # does so by volume, not by the order it got them in.
        self.markets = {m.symbol: m for m in sorted(markets, key=lambda m: m.symbol)}
        if len(self.markets) != len(markets):
            raise ValueError("two pairs share one exchange symbol")
        self.clock = clock
        self.routes: dict[str, Callable[[dict[str, str]], Any]] = {
            "/api/v3/ping": lambda query: {},
            "/api/v3/time": lambda query: {"serverTime": self.now_ms()},
            "/api/v3/exchangeInfo": self.exchange_info,
            "/api/v3/klines": self.klines,
            "/api/v3/ticker/24hr": self.ticker_24hr,
            "/api/v3/ticker/price": self.ticker_price,
            "/api/v3/ticker/bookTicker": self.book_ticker,
            "/api/v3/depth": self.depth,
        }

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def route(self, path: str, query: dict[str, str]) -> Any:
        """The JSON answer to a GET; raises ApiError for anything not served."""
        handler = self.routes.get(path)
        if handler is None:
            raise ApiError(404, -1000, f"botpool sandbox exchange does not serve GET {path}")
        return handler(query)

    def market(self, query: dict[str, str]) -> Market:
        symbol = query.get("symbol", "")
        if symbol not in self.markets:
            raise ApiError(400, -1121, "Invalid symbol.")
        return self.markets[symbol]

    def selected(self, query: dict[str, str]) -> list[Market] | Market:
        """`symbol=X` selects one market, `symbols=["X","Y"]` a list, neither all of them."""
        if "symbol" in query:
            return self.market(query)
        if "symbols" not in query:
            return list(self.markets.values())
        try:
            symbols = json.loads(query["symbols"])
        except (ValueError, RecursionError):  # RecursionError: [[[[... nested too deep
            raise ApiError(400, -1100, "Illegal characters found in parameter 'symbols'.") from None
        if not isinstance(symbols, list):
            raise ApiError(400, -1100, "Illegal characters found in parameter 'symbols'.")
        return [self.market({"symbol": str(s)}) for s in symbols]

    def exchange_info(self, query: dict[str, str]) -> dict[str, Any]:
        chosen = self.selected(query)
        return {
            "timezone": "UTC",
            "serverTime": self.now_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [
                _symbol_info(m) for m in (chosen if isinstance(chosen, list) else [chosen])
            ],
        }

    def klines(self, query: dict[str, str]) -> list[list[Any]]:
        """Candles oldest first; the last one may still be open, as on Binance."""
        m = self.market(query)
        seconds = INTERVALS.get(query.get("interval", ""))
        if seconds is None:
            raise ApiError(400, -1120, "Invalid interval.")
        limit = _int(query, "limit", 500, 1, 1000)
        now = self.now_ms()
        step = seconds * 1000
        listed = -(-LISTED_MS // step) * step  # the first candle opening at or after it
        last_open = _int(query, "endTime", now, 0, now) // step * step
        if "startTime" in query:
            start = _int(query, "startTime", 0, 0, now + step)
            first_open = max(-(-start // step) * step, listed)  # the first opening from start
        else:
            first_open = max(last_open - (limit - 1) * step, listed)
        # limit bounds the work, whatever the range: never more than `limit` candles computed
        opens = range(first_open, min(first_open + limit * step, last_open + step), step)
        rows = []
        for open_ms in opens:
            c = m.candle(open_ms, step, now)
            rows.append(
                [
                    open_ms,
                    _price(m, c.open),
                    _price(m, c.high),
                    _price(m, c.low),
                    _price(m, c.close),
                    _number(c.volume),
                    open_ms + step - 1,
                    _number(c.quote_volume),
                    c.steps,  # one trade a step
                    _number(c.volume / 2),  # as much bought as sold
                    _number(c.quote_volume / 2),
                    "0",
                ]
            )
        return rows

    def ticker_24hr(self, query: dict[str, str]) -> Any:
        now = self.now_ms()
        chosen = self.selected(query)
        if isinstance(chosen, list):
            return [self._ticker(m, now) for m in chosen]
        return self._ticker(chosen, now)

    def _ticker(self, m: Market, now: int) -> dict[str, Any]:
        """Binance's rolling 24h statistics: the steps of the last 24 hours, as a candle."""
        day = m.last_day(now)
        bid, ask = m.book(m.step_at(now))
        return {
            "symbol": m.symbol,
            "priceChange": _price(m, day.close - day.open),
            "priceChangePercent": f"{(day.close - day.open) / day.open * 100:.3f}",
            "weightedAvgPrice": _price(m, m.on_grid(_vwap(day))),
            "prevClosePrice": _price(m, day.open),
            "lastPrice": _price(m, day.close),
            "lastQty": f"{m.lot:.8f}",
            "bidPrice": _price(m, bid),
            "bidQty": _number(m.book_quantity),
            "askPrice": _price(m, ask),
            "askQty": _number(m.book_quantity),
            "openPrice": _price(m, day.open),
            "highPrice": _price(m, day.high),
            "lowPrice": _price(m, day.low),
            "volume": _number(day.volume),
            "quoteVolume": _number(day.quote_volume),
            "openTime": (m.step_at(now) - day.steps + 1) * m.step_seconds * 1000,
            "closeTime": now,
            "firstId": m.step_at(now) - day.steps + 1,  # one trade a step, numbered by step
            "lastId": m.step_at(now),
            "count": day.steps,
        }

    def ticker_price(self, query: dict[str, str]) -> Any:
        now = self.now_ms()

        def one(m: Market) -> dict[str, str]:
            return {"symbol": m.symbol, "price": _price(m, m.price(m.step_at(now)))}

        chosen = self.selected(query)
        return [one(m) for m in chosen] if isinstance(chosen, list) else one(chosen)

    def book_ticker(self, query: dict[str, str]) -> Any:
        now = self.now_ms()

        def one(m: Market) -> dict[str, str]:
            bid, ask = m.book(m.step_at(now))
            return {
                "symbol": m.symbol,
                "bidPrice": _price(m, bid),
                "bidQty": _number(m.book_quantity),
                "askPrice": _price(m, ask),
                "askQty": _number(m.book_quantity),
            }

        chosen = self.selected(query)
        return [one(m) for m in chosen] if isinstance(chosen, list) else one(chosen)

    def depth(self, query: dict[str, str]) -> dict[str, Any]:
        """An order book one tick apart on both sides, its top equal to the ticker's."""
        m = self.market(query)
        limit = _int(query, "limit", 100, 1, 5000)
        step = m.step_at(self.now_ms())
        bid, ask = m.book(step)
        levels = min(limit, round(bid / m.tick))  # bids stop at the lowest price, one tick
        quantity = _number(m.book_quantity)
        return {
            "lastUpdateId": step,  # changes exactly when the prices do
            "bids": [[_price(m, bid - i * m.tick), quantity] for i in range(levels)],
            "asks": [[_price(m, ask + i * m.tick), quantity] for i in range(limit)],
        }


def _number(value: float) -> str:
    """A quantity with 8 decimals, as Binance writes them; digits beyond the 15 significant
    ones a float holds are zeros, not noise (891059027.77777800, not ...77777779)."""
    shown = max(0, min(8, 15 - len(str(int(abs(value))))))
    return f"{value:.{shown}f}" + ("" if shown else ".") + "0" * (8 - shown)


def _vwap(c: Candle) -> float:
    """The volume-weighted average price: quote volume over base volume, as Binance's."""
    return c.quote_volume / c.volume if c.volume else c.close


def _price(m: Market, value: float) -> str:
    return f"{value:.{m.decimals}f}"


def _symbol_info(m: Market) -> dict[str, Any]:
    """One entry of exchangeInfo's `symbols`: what ccxt needs to build the market."""
    lot = f"{m.lot:.8f}"
    return {
        "symbol": m.symbol,
        "status": "TRADING",
        "baseAsset": m.base,
        "baseAssetPrecision": 8,
        "quoteAsset": m.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _price(m, m.tick),
                "maxPrice": "10000000.00000000",
                "tickSize": _price(m, m.tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": lot,
                "maxQty": "9000000.00000000",
                "stepSize": lot,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": f"{m.min_notional:.8f}",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
    }


def serve(
    listen: str = "127.0.0.1",
    port: int = 0,
    pairs: list[str] | None = None,
    seed: int = DEFAULT_SEED,
    step_seconds: int = DEFAULT_STEP_SECONDS,
    volatility: float = DEFAULT_VOLATILITY,
    log: TextIO | None = sys.stderr,
    clock: Callable[[], float] = time.time,
    limits: Limits | None = None,
) -> HttpServer:
    """Create and bind (not start) the sandbox exchange's HTTP server.

    pairs: the markets to list; None lists the fixed market list, DEFAULT_PAIRS.
    Call serve_forever() on it, in a thread for tests (port 0 picks a free port: read it
    from server.server_address[1]); shutdown() stops it. `log` gets one line per request;
    `limits` bound what clients can make it hold (httpd.Limits, whose defaults it takes).
    """
    limits = limits or Limits()
    if pairs is not None and not pairs:
        raise ValueError("no pairs to serve: give at least one, or none for the fixed list")
    markets = [Market(p, seed, step_seconds, volatility) for p in (pairs or DEFAULT_PAIRS)]
    exchange = Exchange(markets, clock)
    sock = socket.create_server((listen, port), backlog=limits.max_connections)
    return HttpServer(sock, exchange.route, log, limits)
