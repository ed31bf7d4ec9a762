"""Monitoring: the layout's `monitoring:` section, the rendered Prometheus and Alertmanager
configs, the monitoring container and how a converge treats it (pure: no Docker here)."""

from __future__ import annotations

import pytest

from botpool.core import schema
from botpool.core.source import LayoutError
from botpool.core.validate import load_layout, read_layout

from .conftest import MINIMAL


def test_monitoring_is_on_by_default_with_documented_ports(write_layout):
    monitoring = load_layout(write_layout(MINIMAL)).monitoring
    assert monitoring.enabled is True
    assert monitoring.retention == "15d"
    assert monitoring.ports == {
        "prometheus": 19090,
        "alertmanager": 19091,
        "node exporter": 19092,
        "botpool exporter": 19093,
    }
    assert monitoring.values == {k: key.default for k, key in schema.MONITORING.items()}


@pytest.mark.parametrize(
    ("monitoring", "line", "message"),
    [
        (
            "{base_port: 9998}",
            "1: monitoring.base_port: ports 9998-10001 overlap the bot ports 9000-9999",
            "pick a base_port above 9999 or at most 8996",
        ),
        (
            "{retention: 15 days}",
            "1: monitoring.retention: expected a Prometheus duration",
            "such as 30s",
        ),
        ("{pool_memory_share: 1.5}", "1: monitoring.pool_memory_share: must be at most 1", ""),
        ("{webhook: https://hooks.example/x}", "1: monitoring.webhook: expected a plain name", ""),
        ("{scrape_intervall: 5s}", "1: monitoring.scrape_intervall: unknown key", "did you mean"),
    ],
)
def test_mistakes_in_monitoring_name_file_and_line(write_layout, monitoring, line, message):
    path = write_layout(f"monitoring: {monitoring}\n" + MINIMAL.lstrip())
    _, problems = read_layout(path)
    assert len(problems) == 1, problems
    assert str(problems[0]).startswith(f"{path}:{line}"), problems[0]
    assert message in str(problems[0])


def test_ports_may_overlap_bot_ports_when_monitoring_is_off(write_layout):
    path = write_layout("monitoring: {enabled: false, base_port: 9000}\n" + MINIMAL.lstrip())
    assert load_layout(path).monitoring.enabled is False


def test_a_bad_monitoring_layout_is_refused_whole(write_layout):
    with pytest.raises(LayoutError):
        load_layout(write_layout("monitoring: {enabled: maybe}\n" + MINIMAL.lstrip()))
