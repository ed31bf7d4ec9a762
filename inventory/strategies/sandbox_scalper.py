"""SandboxScalper: enters often and exits on a small ROI, so demos and tests see trades
within a minute or two on the sandbox exchange. Not a strategy for real money.
"""

from freqtrade.strategy import IStrategy
from pandas import DataFrame


class SandboxScalper(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1m"
    minimal_roi = {"0": 0.003}  # take 0.3 % profit: the sandbox moves ~0.35 % a minute
    stoploss = -0.02
    startup_candle_count = 10
    process_only_new_candles = False  # decide on every loop, not once a candle: trade sooner

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["sma"] = dataframe["close"].rolling(5).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        # below its short average about half the time: enters almost at once
        dataframe.loc[dataframe["close"] <= dataframe["sma"], "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe  # exits come from minimal_roi and the stoploss
