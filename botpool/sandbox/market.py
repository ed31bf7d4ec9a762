"""Synthetic, deterministic markets: the price of a pair at a time step is a pure function of
(seed, pair, step), so candles of every timeframe, the ticker and the order book agree with
each other and repeat exactly across restarts, without any state.

The log price is a sum of octaves of value noise (hashed lattice values, smoothly
interpolated), with amplitudes growing like the square root of the octave's period: on the
scales a trading bot looks at (seconds to hours) it moves like a random walk, yet it stays
within a bounded band over days and costs O(octaves) to evaluate at any step, without
walking from the beginning of time.
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
DEFAULT_PAIRS = (
    "BTC/USDT",
    "ETH/USDT",
    "SOL/USDT",
    "BNB/USDT",
    "XRP/USDT",
    "ADA/USDT",
    "DOGE/USDT",
)

OCTAVES = 13  # the longest octave spans 2**12 steps: about 5.7 hours at 5-second steps
AMPLITUDES = tuple(2 ** (octave / 2) for octave in range(OCTAVES))
EXACT_CANDLE_STEPS = 60  # candles of up to this many steps get their exact high and low
SAMPLES_PER_CANDLE = 12  # longer ones take them from this many evenly spaced steps
USD_VOLUME_PER_STEP = 1000.0  # traded value per step, in USD, so volumes look plausible

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
    volume: float  # in the base asset


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
        """Price step: about six significant digits, like Binance's PRICE_FILTER."""
        return 10.0 ** (math.floor(math.log10(self.start_price)) - 5)

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
    def volume_per_step(self) -> float:
        """Base-asset volume traded in one step, on the lot grid; constant, so volumes add
        up exactly across timeframes."""
        lots = max(1, round(USD_VOLUME_PER_STEP / self._usd_price / self.lot))
        return lots * self.lot

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
        """Best bid and ask at a step: one tick either side of the mid price."""
        mid = self.price(step)
        return self.on_grid(mid - self.tick), self.on_grid(mid + self.tick)

    def candle(self, open_ms: int, interval_ms: int, now_ms: int) -> Candle:
        """The candle opening at open_ms, as much of it as has happened by now_ms.

        Open, close and volume are exact, so they agree across timeframes. High and low are
        exact for candles of up to EXACT_CANDLE_STEPS steps (1m and 5m at 5-second steps);
        longer candles take them from SAMPLES_PER_CANDLE evenly spaced steps, so they may
        fall slightly inside the extremes of the shorter candles they contain: evaluating
        every step of a thousand daily candles would take minutes.
        """
        first = self.step_at(open_ms)
        last = self.step_at(min(open_ms + interval_ms - 1, now_ms))
        return self._candle(first, max(first, last))

    # Bots ask for the same thousand candles again at every candle close: cache them.
    @lru_cache(maxsize=1 << 16)  # noqa: B019 - markets live as long as the server
    def _candle(self, first: int, last: int) -> Candle:
        """The candle of the steps first..last."""
        if last - first < EXACT_CANDLE_STEPS:
            prices = self.prices(first, last)
        else:
            stride = (last - first) // SAMPLES_PER_CANDLE
            prices = [self.price(s) for s in range(first, last, stride)] + [self.price(last)]
        volume = round((last - first + 1) * self.volume_per_step, 8)
        return Candle(prices[0], max(prices), min(prices), prices[-1], volume)
