"""The rendered Prometheus and Alertmanager configs, checked by their own tools: promtool
and amtool from the monitoring image (Debian's packages, the very versions a host runs),
and a promtool unit test per alert: it fires when it should, and not when it should not.

e2e because the tools come in the monitoring image (built here once, like a host builds it):
the controller installs no Prometheus.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from botpool.core import monitoring
from botpool.core.image import monitoring_image_spec
from botpool.core.layout import MonitoringSettings

from .harness.images import ensure_pool_image

pytestmark = pytest.mark.e2e(minutes=0.3)

HOST = "vps1"
POOL = {"host": HOST, "pool": "alice-pool-1", "user": "alice"}
ONE = {**POOL, "bot": "one"}
TWO = {**POOL, "bot": "two"}
EXPORTER = {"host": HOST, "job": "botpool", "instance": "127.0.0.1:19093"}
ROOTFS = {"host": HOST, "mountpoint": "/", "fstype": "ext4", "device": "/dev/vda1"}
TMPFS = {"host": HOST, "mountpoint": "/run", "fstype": "tmpfs", "device": "tmpfs"}


@pytest.fixture(scope="module")
def image() -> str:
    return ensure_pool_image(monitoring_image_spec())


def tool(image: str, folder: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{folder}:/m:ro", "-w", "/m"]
        + [image, *command],
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_configs(
    folder: Path, settings: MonitoringSettings, delivery: monitoring.Delivery | None = None
) -> None:
    folder.mkdir(exist_ok=True)
    files = {
        "prometheus.yml": monitoring.prometheus_config(settings, HOST, "botpool"),
        "rules.yml": monitoring.alert_rules(settings),
        "alertmanager.yml": monitoring.alertmanager_config(
            settings, delivery or monitoring.Delivery(), HOST
        ),
    }
    for name, data in files.items():
        (folder / name).write_text(monitoring._yaml(data))


EVERY_KIND = {  # one receiver of each kind, as alerts/<name>.json would hold it
    "hook": ("webhook", {"url": "https://hooks.example.org/services/T0/B0/x"}),
    "team": ("slack", {"url": "https://hooks.slack.com/services/T0/B0/x", "channel": "#ops"}),
    "chat": ("discord", {"url": "https://discord.com/api/webhooks/1/x"}),
    "phone": (
        "telegram",
        {
            "token": "123456:" + "A" * 35,
            "chat_id": "-1001234567890",
            "api_url": "https://tg-proxy.example.org",
        },
    ),
    "mail": (
        "email",
        {
            "to": "ops@example.org",
            "from": "botpool@example.org",
            "smarthost": "smtp.example.org:587",
            "username": "botpool",
            "password": "pass word",
        },
    ),
}
ROUTED = MonitoringSettings(
    receivers={name: kind for name, (kind, _) in EVERY_KIND.items()},
    operator="hook",
    user_receivers={"alice": "phone", "bob": "team", "carol": "chat", "dave": "mail"},
    watchdog="deadman",
)
DELIVERY = monitoring.Delivery(
    receivers=EVERY_KIND,
    webhook="https://legacy.example.org/x",
    watchdog="https://hc-ping.example.org/key/{host}",
)


@pytest.mark.parametrize(
    ("settings", "delivery"),
    [
        (MonitoringSettings(), None),
        (MonitoringSettings(), monitoring.Delivery(webhook="https://hooks.example.org/T0/x")),
        (ROUTED, DELIVERY),  # every kind Alertmanager 0.28 of Debian trixie supports
    ],
    ids=["nobody", "webhook", "every-kind"],
)
def test_promtool_and_amtool_accept_the_rendered_configs(image, tmp_path, settings, delivery):
    write_configs(tmp_path / "m", settings, delivery)
    for command in (
        ("promtool", "check", "config", "prometheus.yml"),
        ("promtool", "check", "rules", "rules.yml"),
        ("amtool", "check-config", "alertmanager.yml"),
    ):
        result = tool(image, tmp_path / "m", *command)
        assert result.returncode == 0, (command, result.stdout, result.stderr)


def test_the_tools_refuse_a_broken_config(image, tmp_path):
    """The checks above can fail: a rule with a broken expression, a route to no receiver."""
    write_configs(tmp_path / "m", MonitoringSettings())
    rules = tmp_path / "m" / "rules.yml"
    rules.write_text(
        rules.read_text().replace("botpool_bot_running == 0", "botpool_bot_running ==")
    )
    am = tmp_path / "m" / "alertmanager.yml"
    am.write_text(am.read_text().replace("receiver: operator", "receiver: missing"))
    assert tool(image, tmp_path / "m", "promtool", "check", "rules", "rules.yml").returncode
    assert tool(image, tmp_path / "m", "amtool", "check-config", "alertmanager.yml").returncode


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def alert(labels: dict[str, str], severity: str, summary: str, action: str) -> dict[str, Any]:
    return {
        "exp_labels": {**labels, "severity": severity},
        "exp_annotations": {"summary": summary, "action": action},
    }


def stagnant(labels: dict[str, str], reason: str) -> dict[str, Any]:
    expected = alert(
        labels,
        "warning",
        f"bot alice/{labels['bot']} has no trade open and opened or closed none in the last "
        f"60 min in pool alice-pool-1 on host {HOST}",
        action("BotStagnant"),
    )
    expected["exp_annotations"]["reason"] = f"last warning: {reason}"
    return expected


def action(name: str) -> str:
    (rule,) = [r for r in monitoring.alert_rules(RULED)["groups"][0]["rules"] if r["alert"] == name]
    return str(rule["annotations"]["action"])


# Each alert: input series (one minute apart), then times at which exactly these alerts fire
# (an empty list: it must not fire then). Thresholds are the layout's defaults.
MI = 2**20
RULED = MonitoringSettings(pool_memory_mb=500)  # every default, and the MiB alert (off by default)
CASES: dict[str, tuple[list[dict[str, str]], list[tuple[str, list[dict[str, Any]]]]]] = {
    "BotDown": (  # bot_down_for: 2m; bot two never stops
        [
            series("botpool_bot_running", ONE, "1 1 0 0 0 0 0 0"),
            series("botpool_bot_running", TWO, "1x8"),
        ],
        [
            ("1m", []),
            ("3m", []),  # down for 1m only
            (
                "5m",
                [
                    alert(
                        ONE,
                        "critical",
                        f"bot alice/one is not running in pool alice-pool-1 on host {HOST}",
                        action("BotDown"),
                    )
                ],
            ),
        ],
    ),
    "BotApiDown": (  # api_down_for: 5m; bot two is not running at all (BotDown's business)
        [
            series("botpool_bot_running", ONE, "1x12"),
            series("botpool_bot_api_up", ONE, "1 1 0x10"),
            series("botpool_bot_running", TWO, "0x12"),
            series("botpool_bot_api_up", TWO, "0x12"),
        ],
        [
            ("5m", []),
            (
                "9m",
                [
                    alert(
                        ONE,
                        "warning",
                        f"bot alice/one runs but its API does not answer in pool alice-pool-1 "
                        f"on host {HOST}",
                        action("BotApiDown"),
                    )
                ],
            ),
        ],
    ),
    "BotCrashLooping": (  # more than 3 starts within an hour; bot two started once
        [
            series("botpool_bot_starts_total", ONE, "0+1x40"),
            series("botpool_bot_starts_total", TWO, "0 0 1x38"),
        ],
        [
            ("2m", []),
            (
                "30m",
                [
                    alert(
                        ONE,
                        "critical",
                        f"bot alice/one restarted more than 3 times in the last hour in pool "
                        f"alice-pool-1 on host {HOST}",
                        action("BotCrashLooping"),
                    )
                ],
            ),
        ],
    ),
    "PoolMemoryHigh": (  # above 90 % of the limit for 5m; pool 2 stays at 80 %
        [
            series("botpool_pool_memory_bytes", POOL, "500 500 950x10"),
            series("botpool_pool_memory_limit_bytes", POOL, "1000x12"),
            series("botpool_pool_memory_bytes", {**POOL, "pool": "alice-pool-2"}, "800x12"),
            series("botpool_pool_memory_limit_bytes", {**POOL, "pool": "alice-pool-2"}, "1000x12"),
        ],
        [
            ("5m", []),
            (
                "9m",
                [
                    alert(
                        POOL,
                        "warning",
                        f"pool alice-pool-1 uses 95% of its memory limit (above 90%) on host "
                        f"{HOST}",
                        action("PoolMemoryHigh"),
                    )
                ],
            ),
        ],
    ),
    "PoolMemoryAbove": (  # above RULED's 500 MiB for 5m; pool 2 stays at 500 MiB exactly
        [
            series("botpool_pool_memory_bytes", POOL, f"{400 * MI} {400 * MI} {600 * MI}x10"),
            series("botpool_pool_memory_bytes", {**POOL, "pool": "alice-pool-2"}, f"{500 * MI}x12"),
        ],
        [
            ("5m", []),
            (
                "9m",
                [
                    alert(
                        POOL,
                        "warning",
                        f"pool alice-pool-1 uses 600MiB of memory (above 500 MiB) on host {HOST}",
                        action("PoolMemoryAbove"),
                    )
                ],
            ),
        ],
    ),
    "BotHeartbeatStale": (  # above 180 s for 2m while running; bot two stopped (BotDown's)
        [
            series("botpool_bot_heartbeat_age_seconds", ONE, "5 5 200+60x10"),
            series("botpool_bot_running", ONE, "1x12"),
            series("botpool_bot_heartbeat_age_seconds", TWO, "5 5 200+60x10"),
            series("botpool_bot_running", TWO, "0x12"),
        ],
        [
            ("3m", []),  # stale for 1m only
            (
                "5m",
                [
                    alert(
                        ONE,
                        "warning",
                        f"the loop of bot alice/one last ran 6m 20s ago (limit 180 s) in pool "
                        f"alice-pool-1 on host {HOST}",
                        action("BotHeartbeatStale"),
                    )
                ],
            ),
        ],
    ),
    "BotStagnant": (  # 60 min up, no trade open, none opened for 60 min (one) or ever (two);
        # three holds an open trade, four opened one 10 min ago, five closed the one it had
        # held for 83 min 5 min into the window: none of them is stagnant
        [
            series("botpool_bot_uptime_seconds", ONE, "3000+60x20"),
            series("botpool_bot_trades_open", ONE, "0x20"),
            series("botpool_bot_last_trade_age_seconds", ONE, "5000+60x20"),
            series("botpool_bot_api_up", ONE, "1x20"),
            series(
                "botpool_bot_last_warning_info",
                {**ONE, "warning": "freqtrade - WARNING - Available balance is lower"},
                "1x20",
            ),
            series("botpool_bot_uptime_seconds", TWO, "3000+60x20"),
            series("botpool_bot_trades_open", TWO, "0x20"),
            series("botpool_bot_api_up", TWO, "1x20"),
            series("botpool_bot_uptime_seconds", {**POOL, "bot": "three"}, "9000x20"),
            series("botpool_bot_trades_open", {**POOL, "bot": "three"}, "1x20"),
            series("botpool_bot_api_up", {**POOL, "bot": "three"}, "1x20"),
            series("botpool_bot_uptime_seconds", {**POOL, "bot": "four"}, "9000x20"),
            series("botpool_bot_trades_open", {**POOL, "bot": "four"}, "0x20"),
            series("botpool_bot_last_trade_age_seconds", {**POOL, "bot": "four"}, "600x20"),
            series("botpool_bot_api_up", {**POOL, "bot": "four"}, "1x20"),
            series("botpool_bot_uptime_seconds", {**POOL, "bot": "five"}, "9000x20"),
            series("botpool_bot_trades_open", {**POOL, "bot": "five"}, "1x4 0x16"),
            series("botpool_bot_last_trade_age_seconds", {**POOL, "bot": "five"}, "5000+60x20"),
            series("botpool_bot_trades_closed", {**POOL, "bot": "five"}, "3x4 4x16"),
            series("botpool_bot_api_up", {**POOL, "bot": "five"}, "1x20"),
        ],
        [
            ("5m", []),  # up 55 min only
            (
                "15m",
                [
                    stagnant(ONE, "freqtrade - WARNING - Available balance is lower"),
                    stagnant(TWO, "none in its log"),
                ],
            ),
        ],
    ),
    "HostMemoryLow": (  # below 256 MiB for 5m; host two keeps 1 GiB
        [
            series("node_memory_MemAvailable_bytes", {"host": HOST}, "1e9 1e9 1e8x10"),
            series("node_memory_MemAvailable_bytes", {"host": "vps2"}, "1e9x12"),
        ],
        [
            ("5m", []),
            (
                "9m",
                [
                    alert(
                        {"host": HOST},
                        "critical",
                        f"host {HOST} has 95.37MiB of memory available (below 256 MiB)",
                        action("HostMemoryLow"),
                    )
                ],
            ),
        ],
    ),
    "HostDiskLow": (  # below 10 % free for 10m; /boot stays at 50 %, a tmpfs is ignored
        [
            series("node_filesystem_avail_bytes", ROOTFS, "500 500 50x15"),
            series("node_filesystem_size_bytes", ROOTFS, "1000x17"),
            series("node_filesystem_avail_bytes", {**ROOTFS, "mountpoint": "/boot"}, "500x17"),
            series("node_filesystem_size_bytes", {**ROOTFS, "mountpoint": "/boot"}, "1000x17"),
            series("node_filesystem_avail_bytes", TMPFS, "1x17"),
            series("node_filesystem_size_bytes", TMPFS, "1000x17"),
        ],
        [
            ("10m", []),
            (
                "14m",
                [
                    alert(
                        ROOTFS,
                        "critical",
                        f"/ on host {HOST} has 5% free (below 10%)",
                        action("HostDiskLow"),
                    )
                ],
            ),
        ],
    ),
    "HostOutOfSync": (  # out_of_sync_for: 10m
        [series("botpool_host_out_of_sync_files", {"host": HOST}, "0 0 2x15")],
        [
            ("1m", []),
            ("10m", []),
            (
                "14m",
                [
                    alert(
                        {"host": HOST},
                        "warning",
                        f"2 file(s) of the pools on host {HOST} differ from what the last "
                        "converge wrote",
                        action("HostOutOfSync"),
                    )
                ],
            ),
        ],
    ),
    "Watchdog": (  # always firing: the dead man's switch
        [],
        [
            (
                "1m",
                [
                    alert(
                        {},
                        "none",
                        "the monitoring of this host is alive (always firing; its host label "
                        "names it)",
                        action("Watchdog"),
                    )
                ],
            ),
        ],
    ),
    "MonitoringTargetDown": (  # target_down_for: 2m; the node exporter keeps answering
        [
            series(
                "up", {"host": HOST, "job": "botpool", "instance": "127.0.0.1:19093"}, "1 1 0x6"
            ),
            series("up", {"host": HOST, "job": "node", "instance": "127.0.0.1:19092"}, "1x8"),
        ],
        [
            ("3m", []),
            (
                "6m",
                [
                    alert(
                        EXPORTER,
                        "critical",
                        f"botpool on host {HOST} does not answer Prometheus",
                        action("MonitoringTargetDown"),
                    )
                ],
            ),
        ],
    ),
}


def test_every_alert_has_a_rule_unit_test():
    rules = monitoring.alert_rules(RULED)["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == CASES.keys()
    defaults = monitoring.alert_rules(MonitoringSettings())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} - {r["alert"] for r in defaults} == {"PoolMemoryAbove"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_alert_fires_when_it_should_and_not_when_it_should_not(image, tmp_path, name):
    write_configs(tmp_path / "m", RULED)
    inputs, expectations = CASES[name]
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": inputs,
                "alert_rule_test": [
                    {"eval_time": at, "alertname": name, "exp_alerts": expected}
                    for at, expected in expectations
                ],
            }
        ],
    }
    (tmp_path / "m" / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = tool(image, tmp_path / "m", "promtool", "test", "rules", "tests.yml")
    assert result.returncode == 0, result.stdout + result.stderr
