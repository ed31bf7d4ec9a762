"""Shared fixtures: layouts written into a temporary folder with a strategies folder beside."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from xdist.scheduler import LoadFileScheduling

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


@pytest.fixture(autouse=True)
def private_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Unit tests remember nothing in the user's ~/.cache/botpool (accepted freqtrade
    configs): each gets its own. End-to-end tests use the real one, as a user's converges."""
    if request.node.get_closest_marker("e2e") is None:
        mp = request.getfixturevalue("monkeypatch")
        mp.setenv("BOTPOOL_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SecretStore:
    """A private secrets directory, also seen by the CLI through BOTPOOL_SECRETS_DIR."""
    directory = tmp_path / "secrets"
    monkeypatch.setenv("BOTPOOL_SECRETS_DIR", str(directory))
    return SecretStore(directory)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest end-to-end modules first (each says about how long it takes, in its
    `pytest.mark.e2e(minutes=N)`, measured on a fresh machine, as CI runs it: what the first
    run builds counts), the rest in file order: `make test` hands
    modules to its workers in this order (xdist --dist loadfile --no-loadscope-reorder), so
    the longest start at once and the short ones fill in, and the workers finish at about
    the same time."""
    items.sort(key=lambda item: -_e2e_minutes(item))  # stable: a module's tests keep their order


class OneModuleAhead(LoadFileScheduling):
    """`--dist loadfile`, but a worker is handed its next module when its current one is down to
    its last test, not to its last two: a worker holds its last test until it knows what comes
    after it (xdist's worker does), so one is the least it can be given ahead. A module handed
    two tests ahead waited behind them (behind a story's last minutes) while another worker
    took whatever was left, or nothing."""

    def _reschedule(self, node) -> None:  # noqa: ANN001 - xdist's WorkerController
        if node.shutting_down:
            return
        if not self.workqueue:
            node.shutdown()
        elif self._pending_of(self.assigned_work[node]) <= 1:
            self._assign_work_unit(node)


@pytest.hookimpl(optionalhook=True)  # xdist's hook: `-p no:xdist` runs without it
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> LoadFileScheduling | None:  # noqa: ANN001
    return OneModuleAhead(config, log) if config.getoption("dist") == "loadfile" else None


def _e2e_minutes(item: pytest.Item) -> float:
    marker = item.get_closest_marker("e2e")
    return float(marker.kwargs.get("minutes", 0)) if marker else 0.0


_SECONDS: dict[str, float] = {}  # test module -> its tests' setup, call and teardown
_CPU: dict[str, float] = {}  # test module -> CPU of its test process and what that waited for
_SPAN: dict[str, tuple[float, float]] = {}  # test module -> its first start, its last stop (epoch)


def _cpu_now() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


_CPU_SO_FAR = [_cpu_now()]  # this process's CPU and its waited children's, at its last report


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Each report carries the CPU spent since the one before in this process (a worker runs
    one module at a time): the test's own, and that of the commands it ran and waited for
    (pyinfra, the CLI, docker, `pytest checks/`). Containers' CPU is not in it."""
    outcome = yield
    now = _cpu_now()
    outcome.get_result().cpu_seconds = now - _CPU_SO_FAR[0]  # type: ignore[attr-defined]
    _CPU_SO_FAR[0] = now


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::", 1)[0]
    _SECONDS[module] = _SECONDS.get(module, 0.0) + report.duration
    _CPU[module] = _CPU.get(module, 0.0) + getattr(report, "cpu_seconds", 0.0)
    first, last = _SPAN.get(module, (report.start, report.stop))
    _SPAN[module] = (min(first, report.start), max(last, report.stop))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How long each module took on its worker (end-to-end runs: where the time goes)."""
    slow = sorted(((s, m) for m, s in _SECONDS.items() if s >= 30), reverse=True)
    if slow:
        terminalreporter.section("module times (setup + tests + teardown)")
        terminalreporter.write_line(
            "wall min  CPU-s of its test process and the commands it ran  from-to (minute of"
            " the run)"
        )
        began = min(first for first, _ in _SPAN.values())
        for seconds, module in slow:
            cpu = _CPU.get(module, 0.0)
            first, last = ((t - began) / 60 for t in _SPAN[module])
            terminalreporter.write_line(
                f"{seconds / 60:8.1f}  {cpu:6.0f}  {first:4.1f}-{last:4.1f}  {module}"
            )
