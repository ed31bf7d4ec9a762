"""SandboxScalper: enters often and exits on a small ROI, so that demos and tests see trades
open within seconds and close within minutes on the sandbox exchange (a test double).
Not a strategy for real money.
"""

from freqtrade.strategy import IStrategy
from pandas import DataFrame


class SandboxScalper(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1m"
    # Take 0.2 % (after fees) at once, break even after 10 minutes: the sandbox's default
    # volatility moves prices about 0.4 % a minute, so trades rarely last long.
    minimal_roi = {"0": 0.002, "10": 0.0}
    stoploss = -0.02
    # Market orders: a dry-run limit order at the top of the book fills only if the book has
    # not moved between freqtrade's pricing and its order (a new price step, 2 s in tests,
    # can fall between them), and one the market walks away from waits out unfilledtimeout
    # (10 minutes). Market orders fill at once, at the book's price when they are sent.
    # They need entry_pricing and exit_pricing price_side "other", botpool's default.
    order_types = {
        "entry": "market",
        "exit": "market",
        "stoploss": "market",
        "stoploss_on_exchange": False,
    }

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # Enter on every candle: a bot enters whenever a trade slot and a pair are free, on
        # its first loop. A condition on the prices, however loose, has its dry spells: "buy
        # unless the last candle closed at a 20-candle high" held on about 87 % of the
        # sandbox's candles, yet SOL/USDT closed 12 minutes in a row at its high in one test
        # run, and a bot that had to trade there waited out its test's 3 minutes.
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe  # exits come from minimal_roi and the stoploss
