"""`make bench` (bench/core.py) runs: its generated layout stays valid as validation grows."""

from __future__ import annotations

import re

import pytest

from bench import core


def test_the_core_benchmark_runs_on_a_small_generated_layout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["core.py", "--bots", "60"])
    core.main()
    out = capsys.readouterr().out
    assert re.search(
        r"^layout: 60 bots, 3 users, \d+ pools, 1 hosts, \d+ rendered files$", out, re.M
    )
    for stage in ("validate", "plan", "render", "total"):
        assert re.search(rf"^{stage} +\d+\.\d{{3}}", out, re.M), out
