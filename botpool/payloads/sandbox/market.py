"""Synthetic, deterministic markets: the price of a pair at a time step is a pure function of
(seed, pair, step), so candles of every timeframe, the ticker and the order book agree with
each other and repeat exactly across restarts, without any state.

The log price is a sum of octaves of value noise (hashed lattice values, smoothly
interpolated), with amplitudes growing like the square root of the octave's period: on the
scales a trading bot looks at (seconds to hours) it moves like a random walk, yet it stays
within a bounded band over days and costs O(octaves) to evaluate at any step, without
walking from the beginning of time.

Each market trades a fixed value a day (its Listing), spread evenly over its steps: its
24h quote volume, which freqtrade's VolumePairList ranks markets by, never changes, so the
ranking of the fixed market list (LISTINGS) is the same at any time, seed or volatility.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import NamedTuple

# The defaults of every knob, in one place (the CLI and serve() both use them).
DEFAULT_SEED = 42
DEFAULT_STEP_SECONDS = 5  # prices change this often; requests within a step see one price
DEFAULT_VOLATILITY = 0.001  # about the std of one step's relative move: ~0.4 % a minute
OCTAVES = 13  # the longest octave spans 2**12 steps: about 5.7 hours at 5-second steps
AMPLITUDES = tuple(2 ** (octave / 2) for octave in range(OCTAVES))
EXACT_CANDLE_STEPS = 60  # candles of up to this many steps: exact high, low, base volume
SAMPLES_PER_CANDLE = 12  # longer ones take them from this many evenly spaced steps
DAY_SECONDS = 86_400
BOOK_USD = 10e6  # offered at each level of the order book
MIN_TICK = 1e-8  # Binance prices have at most 8 decimals: a tick is never finer


class Listing(NamedTuple):
    """How much one market of the fixed list trades, and how thin its book is."""

    usd_volume: float  # traded in 24 hours, in USD: the same every day, whatever the price
    spread: float = 0.0  # the book's width, relative to the price; 0: one tick either side


# The fixed market list, what the sandbox serves unless told otherwise. Most traded first
# within each quote currency, so a VolumePairList ranks them in this order, whatever the
# seed, the time or the prices. Two markets are there for filters to remove: BTTC/USDT
# trades so low that one tick is 1.4 % of its price (a PriceFilter's low_price_ratio of
# 1 % removes it) and SLP/USDT has a book 1 % wide (a SpreadFilter of 0.5 % removes it).
LISTINGS = {
    "BTC/USDT": Listing(1_500e6),
    "ETH/USDT": Listing(900e6),
    "SOL/USDT": Listing(400e6),
    "XRP/USDT": Listing(250e6),
    "DOGE/USDT": Listing(200e6),
    "BNB/USDT": Listing(150e6),
    "PEPE/USDT": Listing(120e6),
    "SUI/USDT": Listing(100e6),
    "ADA/USDT": Listing(80e6),
    "TRX/USDT": Listing(65e6),
    "LINK/USDT": Listing(55e6),
    "AVAX/USDT": Listing(45e6),
    "LTC/USDT": Listing(40e6),
    "SHIB/USDT": Listing(35e6),
    "DOT/USDT": Listing(30e6),
    "BCH/USDT": Listing(27e6),
    "NEAR/USDT": Listing(24e6),
    "UNI/USDT": Listing(21e6),
    "APT/USDT": Listing(18e6),
    "ARB/USDT": Listing(16e6),
    "OP/USDT": Listing(14e6),
    "FIL/USDT": Listing(12e6),
    "ATOM/USDT": Listing(10e6),
    "ETC/USDT": Listing(9e6),
    "XLM/USDT": Listing(8e6),
    "HBAR/USDT": Listing(7e6),
    "ICP/USDT": Listing(6e6),
    "AAVE/USDT": Listing(5e6),
    "INJ/USDT": Listing(4e6),
    "BTTC/USDT": Listing(3e6),
    "SLP/USDT": Listing(1e6, spread=0.01),
    "ETH/BTC": Listing(60e6),
    "SOL/BTC": Listing(20e6),
    "BNB/BTC": Listing(15e6),
    "XRP/BTC": Listing(10e6),
    "LTC/BTC": Listing(5e6),
}
DEFAULT_PAIRS = tuple(LISTINGS)

# Rough USD prices: pairs of known assets start near reality (ETH/BTC near 0.05); any other
# asset gets a start price derived from its name, between 0.1 and 1000.
USD_PRICES = {
    "USDT": 1.0,
    "USDC": 1.0,
    "FDUSD": 1.0,
    "DAI": 1.0,
    "EUR": 1.1,
    "BTC": 60000.0,
    "ETH": 3000.0,
    "SOL": 150.0,
    "BNB": 600.0,
    "XRP": 0.6,
    "ADA": 0.45,
    "DOGE": 0.15,
    "LTC": 80.0,
    "DOT": 6.0,
    "AVAX": 30.0,
    "LINK": 15.0,
    "TRX": 0.15,
    "PEPE": 0.00001,
    "SUI": 3.0,
    "SHIB": 0.000015,
    "BCH": 400.0,
    "NEAR": 5.0,
    "UNI": 8.0,
    "APT": 9.0,
    "ARB": 0.8,
    "OP": 1.8,
    "FIL": 4.5,
    "ATOM": 7.0,
    "ETC": 25.0,
    "XLM": 0.1,
    "HBAR": 0.07,
    "ICP": 10.0,
    "AAVE": 150.0,
    "INJ": 22.0,
    "BTTC": 0.0000007,
    "SLP": 0.002,
}

PAIR = re.compile(r"^([A-Z0-9]{2,12})/([A-Z0-9]{2,12})$")
MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finalizer: a fast, well-distributed 64-bit integer hash."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & MASK
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & MASK
    return x ^ (x >> 31)


def _key(seed: int, pair: str, purpose: str) -> int:
    """A 64-bit key for one use of one pair's randomness; unlike hash(), stable across runs."""
    text = f"{seed}\0{pair}\0{purpose}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def _uniform(key: int, index: int) -> float:
    """A repeatable value in [-1, 1) for one lattice point."""
    return _mix(key ^ (index & MASK)) / 2**63 - 1.0


class Candle(NamedTuple):
    open: float
    high: float
    low: float
    close: float
    volume: float  # in the base asset, on the lot grid
    quote_volume: float  # in the quote asset: exact, it adds up across timeframes
    steps: int  # price steps inside, one trade each


@dataclass(frozen=True)
class Market:
    """One pair's synthetic market; all prices sit on its tick grid."""

    pair: str
    seed: int = DEFAULT_SEED
    step_seconds: int = DEFAULT_STEP_SECONDS
    volatility: float = DEFAULT_VOLATILITY

    def __post_init__(self) -> None:
        if not PAIR.match(self.pair):
            raise ValueError(f"pair {self.pair!r} is not BASE/QUOTE in capitals, e.g. BTC/USDT")
        if self.step_seconds < 1:
            raise ValueError("step_seconds must be at least 1")
        if not 0 <= self.volatility <= 1:
            raise ValueError("volatility must be between 0 and 1")

    @property
    def base(self) -> str:
        return self.pair.split("/")[0]

    @property
    def quote(self) -> str:
        return self.pair.split("/")[1]

    @property
    def symbol(self) -> str:
        """The exchange's name for the pair: BTC/USDT is BTCUSDT."""
        return self.base + self.quote

    @cached_property
    def start_price(self) -> float:
        """The centre of the price band."""
        base, quote = USD_PRICES.get(self.base), USD_PRICES.get(self.quote)
        if base is not None and quote is not None:
            return base / quote
        return 10 ** (_uniform(_key(self.seed, self.pair, "start"), 0) * 2 + 1)

    @cached_property
    def tick(self) -> float:
        """Price step: about six significant digits, like Binance's PRICE_FILTER, but never
        below 0.00000001: below a hundredth of a cent (BTTC), one tick is a big move."""
        return max(MIN_TICK, 10.0 ** (math.floor(math.log10(self.start_price)) - 5))

    @cached_property
    def decimals(self) -> int:
        return max(0, -round(math.log10(self.tick)))

    @cached_property
    def lot(self) -> float:
        """Quantity step: finer for valuable coins, coarser for cheap ones (0.000001 BTC)."""
        return 10.0 ** -max(0, min(8, 2 + math.floor(math.log10(self._usd_price))))

    @property
    def min_notional(self) -> float:
        """Smallest order value in the quote asset: about 5 USD, like Binance."""
        return 5 / USD_PRICES.get(self.quote, 1.0)

    @cached_property
    def listing(self) -> Listing:
        """The market's entry in the fixed list; a pair outside it trades between 0.1 and
        10 million USD a day, derived from its name, with a book one tick either side."""
        if self.pair in LISTINGS:
            return LISTINGS[self.pair]
        return Listing(10 ** (6 + _uniform(_key(self.seed, self.pair, "volume"), 0)))

    @cached_property
    def book_quantity(self) -> float:
        """What each level of the order book offers: 10 million USD worth, so that a
        dry-run order, even a market order, fills whole at the top of the book."""
        return max(1, round(BOOK_USD / self._usd_price / self.lot)) * self.lot

    @cached_property
    def quote_volume_per_step(self) -> float:
        """Quote-asset value traded in one step: the same at every step, so that a day's
        volume is exactly the listing's and a VolumePairList's ranking never changes."""
        usd_per_step = self.listing.usd_volume * self.step_seconds / DAY_SECONDS
        return usd_per_step / USD_PRICES.get(self.quote, 1.0)

    @property
    def steps_per_day(self) -> int:
        return max(1, DAY_SECONDS // self.step_seconds)

    @property
    def _usd_price(self) -> float:
        """The base asset's value in USD (unknown quotes count as 1 USD)."""
        return self.start_price * USD_PRICES.get(self.quote, 1.0)

    @cached_property
    def _octave_keys(self) -> tuple[int, ...]:
        return tuple(_key(self.seed, self.pair, f"octave {o}") for o in range(OCTAVES))

    def step_at(self, ms: int) -> int:
        """The price step that a moment (Unix milliseconds) falls into."""
        return ms // (self.step_seconds * 1000)

    def walks(self, first: int, last: int) -> list[float]:
        """The unscaled log-price offsets of the steps first..last: the sum of the octaves.

        Evaluating a range at once shares each octave's lattice values between its steps,
        which makes a candle's worth of steps several times cheaper than one by one. A
        single step is the range (step, step), so both give bit-identical results.
        """
        total = [0.0] * (last - first + 1)
        for octave, key in enumerate(self._octave_keys):
            low = first >> octave  # floor division by 2**octave, negative steps included
            values = [_uniform(key, i) for i in range(low, (last >> octave) + 2)]
            size, amplitude = 1 << octave, AMPLITUDES[octave]
            for j in range(len(total)):
                index = (first + j) >> octave
                value = values[index - low]
                fraction = (first + j - (index << octave)) / size
                if fraction:
                    fraction = fraction * fraction * (3 - 2 * fraction)  # smoothstep: no kinks
                    value += (values[index - low + 1] - value) * fraction
                total[j] += value * amplitude
        return total

    def prices(self, first: int, last: int) -> list[float]:
        """Mid prices of the steps first..last, on the tick grid."""
        return [
            self.on_grid(self.start_price * math.exp(self.volatility * w))
            for w in self.walks(first, last)
        ]

    @lru_cache(maxsize=1 << 16)  # noqa: B019 - markets live as long as the server
    def price(self, step: int) -> float:
        """Mid price at a step, on the tick grid."""
        return self.prices(step, step)[0]

    def on_grid(self, price: float) -> float:
        """The nearest multiple of the tick, rounded so that it prints exactly."""
        return round(max(1, round(price / self.tick)) * self.tick, self.decimals)

    def book(self, step: int) -> tuple[float, float]:
        """Best bid and ask at a step: half the listing's spread either side of the mid
        price, at least one tick."""
        mid = self.price(step)
        half = max(1, round(mid * self.listing.spread / 2 / self.tick)) * self.tick
        return self.on_grid(mid - half), self.on_grid(mid + half)

    def candle(self, open_ms: int, interval_ms: int, now_ms: int) -> Candle:
        """The candle opening at open_ms, as much of it as has happened by now_ms.

        Open, close and quote volume are exact, so they agree across timeframes. High, low
        and base volume (the quote volume at each step's price) are exact for candles of up
        to EXACT_CANDLE_STEPS steps (1m and 5m at 5-second steps); longer candles take them
        from SAMPLES_PER_CANDLE evenly spaced steps, so high and low may fall slightly
        inside the extremes of the shorter candles they contain, and base volume is within
        a few percent of their sum: evaluating every step of a thousand daily candles would
        take minutes.
        """
        first = self.step_at(open_ms)
        last = self.step_at(min(open_ms + interval_ms - 1, now_ms))
        return self._candle(first, max(first, last))

    def last_day(self, now_ms: int) -> Candle:
        """The 24 hours up to now_ms, as a candle: what a 24h ticker reports."""
        last = self.step_at(now_ms)
        return self._candle(last - self.steps_per_day + 1, last)

    # Bots ask for the same thousand candles again at every candle close: cache them.
    @lru_cache(maxsize=1 << 16)  # noqa: B019 - markets live as long as the server
    def _candle(self, first: int, last: int) -> Candle:
        """The candle of the steps first..last."""
        if last - first < EXACT_CANDLE_STEPS:
            prices = self.prices(first, last)
        else:
            stride = (last - first) // SAMPLES_PER_CANDLE
            prices = [self.price(s) for s in range(first, last, stride)] + [self.price(last)]
        steps = last - first + 1
        quote_volume = steps * self.quote_volume_per_step
        base_volume = quote_volume * sum(1 / p for p in prices) / len(prices)
        volume = round(round(base_volume / self.lot) * self.lot, 8)
        return Candle(prices[0], max(prices), min(prices), prices[-1], volume, quote_volume, steps)
