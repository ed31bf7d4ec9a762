"""The sandbox exchange: a TEST DOUBLE of a crypto exchange, so that real
`freqtrade trade --dry-run` bots run and trade offline, on synthetic prices.

It imitates the public part of Binance's spot REST API (all a dry-run spot bot asks for)
and serves deterministic prices: the price of a pair at a time step is a pure function of
(seed, pair, step), so every timeframe's candles, the ticker and the order book agree,
and a restart serves the same history. Prices sit on each pair's tick grid and change in
steps of a few seconds, so freqtrade's dry-run orders fill. Each market trades a fixed
value a day, so freqtrade's VolumePairList ranks them in a stable order, and its tickers,
daily candles and tick sizes serve AgeFilter, PriceFilter and SpreadFilter too.

Knobs (command line, `python3 -m botpool.sandbox --help`, or serve()'s arguments):
  --listen ADDRESS        address to listen on (default 127.0.0.1; 0.0.0.0 in a container)
  --port PORT             TCP port (default 8000; 0 picks a free one)
  --pairs A/B,C/D         pairs to list (default: the fixed market list, DEFAULT_PAIRS:
                          36 pairs, each with its own 24h volume, so that dynamic pair
                          lists rank them in one documented order; see market.LISTINGS)
  --seed N                same seed, same prices (default 42)
  --step-seconds N        prices change every N seconds (default 5)
  --volatility X          about the std of one step's relative move (default 0.001,
                          about 0.4 % a minute and 3 % an hour)
  --request-log PATH      one line per request: time, method, path, query, status,
                          duration ('-', the default, is stderr)

Whatever its clients do, it holds a bounded number of threads, connections and bytes, and
waits on a client for a bounded time (httpd.Limits; serve()'s `limits`).

Standard library only: it runs in a container whose Python has none of botpool's packages.
"""

from __future__ import annotations

from typing import Any

from .market import DEFAULT_PAIRS
from .server import serve

SANDBOX_EXCHANGE = "binance"  # the ccxt exchange id the sandbox imitates

__all__ = ["DEFAULT_PAIRS", "SANDBOX_EXCHANGE", "freqtrade_exchange_overrides", "serve"]


def freqtrade_exchange_overrides(base_url: str) -> dict[str, Any]:
    """Keys to merge into a freqtrade config's `exchange` section, for a bot that trades on
    the sandbox at base_url (e.g. "http://botpool-sandbox:8000")."""
    spot_api = f"{base_url.rstrip('/')}/api/v3"
    return {
        "name": SANDBOX_EXCHANGE,
        # freqtrade merges ccxt_config into both its sync and its async ccxt clients, so no
        # ccxt_async_config is needed. "private" is redirected too: an order that reached
        # the sandbox by mistake gets a loud error instead of going to the real exchange.
        "ccxt_config": {
            "urls": {"api": {"public": spot_api, "private": spot_api}},
            # without this, ccxt also loads futures markets from Binance's other hosts
            "options": {"fetchMarkets": {"types": ["spot"]}},
        },
        "enable_ws": False,  # the sandbox has no websocket; REST polling is enough
    }
