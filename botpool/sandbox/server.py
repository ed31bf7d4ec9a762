"""The HTTP side: the public part of Binance's spot REST API that freqtrade uses.

Served: /api/v3/ping, time, exchangeInfo, klines, ticker/24hr, ticker/price,
ticker/bookTicker, depth. Anything else gets a Binance-style JSON error, so a bot that asks
for something new fails loudly instead of trading on made-up data.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from botpool.sandbox.market import Market

INTERVALS = {
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


class ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _fmt(market: Market, value: float) -> str:
    return f"{value:.{market.decimals}f}"


class Exchange:
    """The markets and the answers to each endpoint; the clock is injectable for tests."""

    def __init__(self, markets: list[Market], clock: Callable[[], float] = time.time):
        self.markets = {m.symbol: m for m in markets}
        self.clock = clock

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def market(self, query: dict[str, str]) -> Market:
        symbol = query.get("symbol", "")
        if symbol not in self.markets:
            raise ApiError(400, -1121, "Invalid symbol.")
        return self.markets[symbol]

    def route(self, path: str, query: dict[str, str]) -> Any:
        handler = {
            "/api/v3/ping": lambda q: {},
            "/api/v3/time": lambda q: {"serverTime": self.now_ms()},
            "/api/v3/exchangeInfo": self.exchange_info,
            "/api/v3/klines": self.klines,
            "/api/v3/ticker/24hr": self.ticker_24hr,
            "/api/v3/ticker/price": self.ticker_price,
            "/api/v3/ticker/bookTicker": self.book_ticker,
            "/api/v3/depth": self.depth,
        }.get(path)
        if handler is None:
            raise ApiError(404, -1000, f"botpool sandbox exchange does not serve {path}")
        return handler(query)

    def exchange_info(self, query: dict[str, str]) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": self.now_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [self._symbol(m) for m in self.markets.values()],
        }

    @staticmethod
    def _symbol(m: Market) -> dict[str, Any]:
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
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT_LIMIT",
            ],
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
                    "minPrice": _fmt(m, m.tick),
                    "maxPrice": "10000000.00000000",
                    "tickSize": _fmt(m, m.tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": lot,
                    "maxQty": "9000000.00000000",
                    "stepSize": lot,
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "5.00000000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
        }

    def klines(self, query: dict[str, str]) -> list[list[Any]]:
        m = self.market(query)
        interval = INTERVALS.get(query.get("interval", ""))
        if interval is None:
            raise ApiError(400, -1120, "Invalid interval.")
        try:
            limit = min(int(query.get("limit", 500)), 1000)
            start = int(query["startTime"]) if "startTime" in query else None
            end = int(query["endTime"]) if "endTime" in query else None
        except ValueError:
            raise ApiError(400, -1100, "Illegal characters found in a parameter.") from None
        now = self.now_ms()
        step = interval * 1000
        last_open = min(end if end is not None else now, now) // step * step
        if start is not None:
            first_open = -(-start // step) * step
            opens = range(first_open, min(first_open + limit * step, last_open + step), step)
        else:
            opens = range(last_open - (limit - 1) * step, last_open + step, step)
        rows = []
        for open_ms in opens:
            o, h, low, c, v = m.candle(open_ms, step, now)
            rows.append(
                [
                    open_ms,
                    _fmt(m, o),
                    _fmt(m, h),
                    _fmt(m, low),
                    _fmt(m, c),
                    f"{v:.4f}",
                    open_ms + step - 1,
                    f"{v * c:.4f}",
                    100,
                    f"{v / 2:.4f}",
                    f"{v * c / 2:.4f}",
                    "0",
                ]
            )
        return rows

    def _ticker(self, m: Market) -> dict[str, Any]:
        now = self.now_ms()
        o, h, low, c, v = m.candle(now - 86_400_000, 86_400_000, now)
        bid, ask = m.book(m.step_at(now))
        return {
            "symbol": m.symbol,
            "priceChange": _fmt(m, c - o),
            "priceChangePercent": f"{(c - o) / o * 100:.3f}",
            "weightedAvgPrice": _fmt(m, c),
            "prevClosePrice": _fmt(m, o),
            "lastPrice": _fmt(m, c),
            "lastQty": "1.00000000",
            "bidPrice": _fmt(m, bid),
            "bidQty": "1000.00000000",
            "askPrice": _fmt(m, ask),
            "askQty": "1000.00000000",
            "openPrice": _fmt(m, o),
            "highPrice": _fmt(m, h),
            "lowPrice": _fmt(m, low),
            "volume": f"{v:.4f}",
            "quoteVolume": f"{v * c:.4f}",
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": 1,
            "lastId": 1000,
            "count": 1000,
        }

    def ticker_24hr(self, query: dict[str, str]) -> Any:
        if "symbol" in query:
            return self._ticker(self.market(query))
        return [self._ticker(m) for m in self.markets.values()]

    def ticker_price(self, query: dict[str, str]) -> Any:
        def one(m: Market) -> dict[str, str]:
            return {"symbol": m.symbol, "price": _fmt(m, m.price(m.step_at(self.now_ms())))}

        return (
            one(self.market(query))
            if "symbol" in query
            else [one(m) for m in self.markets.values()]
        )

    def book_ticker(self, query: dict[str, str]) -> Any:
        def one(m: Market) -> dict[str, str]:
            bid, ask = m.book(m.step_at(self.now_ms()))
            return {
                "symbol": m.symbol,
                "bidPrice": _fmt(m, bid),
                "bidQty": "1000.00000000",
                "askPrice": _fmt(m, ask),
                "askQty": "1000.00000000",
            }

        return (
            one(self.market(query))
            if "symbol" in query
            else [one(m) for m in self.markets.values()]
        )

    def depth(self, query: dict[str, str]) -> dict[str, Any]:
        m = self.market(query)
        limit = min(int(query.get("limit", 100) or 100), 5000)
        step = m.step_at(self.now_ms())
        bid, ask = m.book(step)
        return {
            "lastUpdateId": step,
            "bids": [[_fmt(m, m.on_grid(bid - i * m.tick)), "1000.00000000"] for i in range(limit)],
            "asks": [[_fmt(m, m.on_grid(ask + i * m.tick)), "1000.00000000"] for i in range(limit)],
        }


def make_handler(exchange: Exchange, log: TextIO | None) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        server_version = "botpool-sandbox"

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                status, body = 200, exchange.route(url.path, query)
            except ApiError as exc:
                status, body = exc.status, {"code": exc.code, "msg": exc.msg}
            data = json.dumps(body, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if log is not None:
                with lock:
                    log.write(
                        f"{time.strftime('%Y-%m-%dT%H:%M:%S')} GET {url.path} "
                        f"{url.query} {status}\n"
                    )
                    log.flush()

        do_POST = do_DELETE = do_PUT = do_GET  # noqa: N815 - all answered (errors, mostly)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the request log above replaces http.server's stderr lines

    return Handler


def serve(
    listen: str = "127.0.0.1",
    port: int = 0,
    pairs: list[str] | None = None,
    seed: int = 42,
    step_seconds: int = 5,
    volatility: float = 0.001,
    log: TextIO | None = sys.stderr,
    clock: Callable[[], float] = time.time,
) -> ThreadingHTTPServer:
    """Create (not start) the server; call serve_forever(), e.g. in a thread for tests."""
    from botpool.sandbox.market import DEFAULT_PAIRS

    markets = [Market(p, seed, step_seconds, volatility) for p in (pairs or DEFAULT_PAIRS)]
    server = ThreadingHTTPServer((listen, port), make_handler(Exchange(markets, clock), log))
    server.daemon_threads = True
    return server
