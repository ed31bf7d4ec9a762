"""TrendFollow: a plain EMA crossover, the kind of strategy a user writes for their bots.

Enters when the fast EMA crosses above the slow one and leaves on the opposite cross,
with a modest ROI ladder and a stoploss. Pure pandas, so it runs anywhere freqtrade does.
"""

from freqtrade.strategy import IStrategy
from pandas import DataFrame


class TrendFollow(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "5m"
    minimal_roi = {"0": 0.02, "30": 0.01, "60": 0.0}
    stoploss = -0.05
    startup_candle_count = 50
    process_only_new_candles = True

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["ema_fast"] = dataframe["close"].ewm(span=12, adjust=False).mean()
        dataframe["ema_slow"] = dataframe["close"].ewm(span=26, adjust=False).mean()
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        above = dataframe["ema_fast"] > dataframe["ema_slow"]
        dataframe.loc[above & ~above.shift(1, fill_value=True), "enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        below = dataframe["ema_fast"] < dataframe["ema_slow"]
        dataframe.loc[below & ~below.shift(1, fill_value=True), "exit_long"] = 1
        return dataframe
