"""The sandbox exchange: a TEST DOUBLE of a crypto exchange, so real freqtrade bots trade
offline against synthetic, deterministic prices (see README "The sandbox exchange").

It speaks the public part of Binance's spot REST API; bots in dry-run mode need nothing
else. Standard library only: it runs in a container that has none of botpool's packages.
"""

from __future__ import annotations

from typing import Any

from botpool.sandbox.server import serve

SANDBOX_EXCHANGE = "binance"  # the ccxt exchange the sandbox imitates

__all__ = ["SANDBOX_EXCHANGE", "freqtrade_exchange_overrides", "serve"]


def freqtrade_exchange_overrides(base_url: str) -> dict[str, Any]:
    """Keys to merge into a bot's freqtrade `exchange` section to trade on the sandbox."""
    ccxt = {
        "urls": {"api": {"public": f"{base_url}/api/v3"}},
        # without this, ccxt also loads futures markets from Binance's other hosts
        "options": {"fetchMarkets": {"types": ["spot"]}},
    }
    return {
        "name": SANDBOX_EXCHANGE,
        "ccxt_config": ccxt,
        "ccxt_async_config": ccxt,
        "enable_ws": False,  # the sandbox has no websocket; polling REST is enough
    }
