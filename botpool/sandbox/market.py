"""Synthetic, deterministic markets: the price of a pair at a time is a pure function of
(seed, pair, time step), so candles of every timeframe, the ticker and the order book agree
with each other and repeat exactly across restarts.

The log price is a sum of octaves of value noise (hashed values, interpolated): a random
walk on the scales a trading bot looks at (seconds to hours) that stays bounded over days,
and costs O(octaves) to evaluate at any step, without walking from the beginning of time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

OCTAVES = 13  # 2**12 steps: about 5.7 hours at 5-second steps
SAMPLES_PER_CANDLE = 12  # high/low of long candles are taken from this many points
KNOWN_BASES = {
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
}
DEFAULT_PAIRS = (
    "BTC/USDT",
    "ETH/USDT",
    "SOL/USDT",
    "BNB/USDT",
    "XRP/USDT",
    "ADA/USDT",
    "DOGE/USDT",
)


MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finalizer: a fast, well-distributed 64-bit integer hash."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & MASK
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & MASK
    return x ^ (x >> 31)


@lru_cache(maxsize=4096)
def _pair_key(seed: int, pair: str) -> int:
    return _mix(seed * 0x9E3779B97F4A7C15 + int.from_bytes(pair.encode(), "little") & MASK)


def _noise(seed: int, pair: str, octave: int, index: int) -> float:
    """A repeatable uniform value in [-1, 1] for one lattice point of one octave."""
    key = _mix(_pair_key(seed, pair) ^ ((octave + 7) * 0xD6E8FEB86659FD93) & MASK)
    return _mix(key ^ (index & MASK)) / 2**63 - 1.0


@dataclass(frozen=True)
class Market:
    """One pair's synthetic market."""

    pair: str
    seed: int
    step_seconds: int
    volatility: float

    @property
    def base(self) -> str:
        return self.pair.split("/")[0]

    @property
    def quote(self) -> str:
        return self.pair.split("/")[1]

    @property
    def symbol(self) -> str:
        return self.pair.replace("/", "")

    @property
    def start_price(self) -> float:
        if self.base in KNOWN_BASES:
            return KNOWN_BASES[self.base]
        return 10 ** (_noise(self.seed, self.pair, -1, 0) * 2 + 1)  # 0.1 .. 1000

    @property
    def tick(self) -> float:
        """Price step: about six significant digits."""
        return 10.0 ** (math.floor(math.log10(self.start_price)) - 5)

    @property
    def decimals(self) -> int:
        return max(0, -round(math.log10(self.tick)))

    @property
    def lot(self) -> float:
        """Quantity step, coarser for expensive coins (like real exchanges)."""
        return 10.0 ** (-max(0, min(8, 5 + math.floor(math.log10(self.start_price)) - 3)))

    def step_at(self, ms: int) -> int:
        return ms // (self.step_seconds * 1000)

    @lru_cache(maxsize=1 << 18)  # noqa: B019 - markets live as long as the server
    def price(self, step: int) -> float:
        """Mid price at a step, on the tick grid."""
        walk = 0.0  # scaled so that `volatility` is about the std of one step's move
        for octave in range(OCTAVES):
            x = step / (1 << octave)
            i = math.floor(x)
            f = x - i
            f = f * f * (3 - 2 * f)  # smoothstep: no kinks between lattice points
            a, b = (
                _noise(self.seed, self.pair, octave, i),
                _noise(self.seed, self.pair, octave, i + 1),
            )
            walk += (a + (b - a) * f) * 2 ** (octave / 2)
        return self.on_grid(self.start_price * math.exp(self.volatility * walk))

    def on_grid(self, price: float) -> float:
        return round(round(price / self.tick) * self.tick, self.decimals)

    def book(self, step: int) -> tuple[float, float]:
        """Best bid and ask: one tick either side of the mid price."""
        mid = self.price(step)
        return self.on_grid(mid - self.tick), self.on_grid(mid + self.tick)

    def candle(self, open_ms: int, interval_ms: int, now_ms: int) -> list[float]:
        """[open, high, low, close, volume] of the candle opening at open_ms, up to now."""
        first = self.step_at(open_ms)
        last = self.step_at(min(open_ms + interval_ms - 1, now_ms))
        span = max(last - first, 0)
        stride = max(1, span // SAMPLES_PER_CANDLE)
        steps = sorted({*range(first, last + 1, stride), last})
        prices = [self.price(s) for s in steps]
        volume = sum(abs(_noise(self.seed, self.pair, -2, s)) for s in steps[:SAMPLES_PER_CANDLE])
        volume *= 1000 / self.start_price * max(1, span + 1) / len(steps)
        return [prices[0], max(prices), min(prices), prices[-1], round(volume, 4)]
