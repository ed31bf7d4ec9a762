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
    startup_candle_count = 20

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["recent_high"] = dataframe["close"].rolling(20).max()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # "Buy unless the last candle closed at a 20-candle high": true for about 87 % of
        # the sandbox's candles, so a bot with a few pairs nearly always enters on its
        # first loop instead of waiting a candle (or more) for a signal.
        dataframe.loc[dataframe["close"] < dataframe["recent_high"], "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe  # exits come from minimal_roi and the stoploss
