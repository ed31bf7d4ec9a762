"""Shared fixtures: layouts written into a temporary folder with a strategies folder beside."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from botpool.core.secretstore import SecretStore

STRATEGIES = """
from freqtrade.strategy import IStrategy


class SampleStrategy(IStrategy):
    INTERFACE_VERSION = 3
    minimal_roi = {"0": 0.01}
    stoploss = -0.1
    timeframe = "5m"

    def populate_indicators(self, dataframe, metadata):
        return dataframe

    def populate_entry_trend(self, dataframe, metadata):
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        return dataframe


class TrendFollow(SampleStrategy):
    pass
"""

MINIMAL = """
defaults:
  bot:
    exchange: sandbox
    strategy: SampleStrategy
    stake_amount: 10
    dry_run_wallet: 1000
    pairs: [BTC/USDT]
users:
  alice:
    bots:
      - name: one
"""


@pytest.fixture
def layout_dir(tmp_path: Path) -> Path:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "sample.py").write_text(STRATEGIES)
    return tmp_path


@pytest.fixture
def write_layout(layout_dir: Path) -> Callable[..., Path]:
    """Write a layout (dedented) into the temporary folder and return its path."""

    def write(text: str, name: str = "layout.yaml") -> Path:
        path = layout_dir / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SecretStore:
    """A private secrets directory, also seen by the CLI through BOTPOOL_SECRETS_DIR."""
    directory = tmp_path / "secrets"
    monkeypatch.setenv("BOTPOOL_SECRETS_DIR", str(directory))
    return SecretStore(directory)
