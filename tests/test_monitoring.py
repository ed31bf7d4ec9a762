"""Monitoring: the layout's `monitoring:` section, the rendered Prometheus and Alertmanager
configs, the monitoring container and how a converge treats it (pure: no Docker here)."""

from __future__ import annotations

import json

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


# --- rendering and reconciling the monitoring container -------------------------------------


def _host(write_layout, secrets, monitoring="{}"):
    from botpool.core.pipeline import HostRef, desired

    # a file per variant: plans are read once per path and process
    name = f"layout-{abs(hash(monitoring))}.yaml"
    path = write_layout(f"monitoring: {monitoring}\n" + MINIMAL.lstrip(), name=name)
    return desired(HostRef(str(path), "local"))


def _converged(want, tmp_path):
    """What a host shows once it runs exactly `want` (files really written and read back)."""
    from .test_reconcile import converged

    return converged(want.pools, want.exchanges, want.jobs, want.monitoring)


def test_the_monitoring_container_listens_on_loopback_only_and_holds_one_capability(
    write_layout, secrets
):
    want = _host(write_layout, secrets)
    spec = want.monitoring.container
    args = spec.run_args()
    assert args[args.index("--network") + 1] == "host" and spec.ports == ()
    added = [args[i + 1] for i, a in enumerate(args) if a == "--cap-add"]
    assert added == ["SYS_PTRACE"] and "--privileged" not in args  # PSS of the bots only
    assert spec.image == want.monitoring.image.tag
    assert spec.image.startswith("botpool/monitoring:trixie-")
    conf = {a.path: a for a in want.monitoring.files}["supervisord.conf"].text
    for port in range(19090, 19094):
        assert f"127.0.0.1:{port}" in conf or f"127.0.0.1:{port}" in str(
            {a.path: a.text for a in want.monitoring.files}
        )
    assert "0.0.0.0" not in conf and "--cluster.listen-address= " in conf.replace("\n", " ")
    prometheus = {a.path: a for a in want.monitoring.files}["prometheus.yml"].text
    assert "0.0.0.0" not in prometheus


def test_a_pool_spec_hash_is_unchanged_by_the_host_network_field(write_layout, secrets):
    """Older containers (no host_network key) keep their hash: no fleet-wide recreate."""
    import dataclasses
    import json

    from botpool.core.render import sha256

    want = _host(write_layout, secrets)
    spec = want.pools[0].container
    legacy = dataclasses.asdict(spec)
    for key in ("labels", "networks", "host_network"):
        legacy.pop(key)
    assert spec.hash == sha256(json.dumps(legacy, sort_keys=True))[:16]


def test_the_webhook_url_is_read_from_the_secrets_folder_into_a_private_file(write_layout, secrets):
    alerts = secrets.directory / "alerts"
    alerts.mkdir(parents=True, mode=0o700)
    secrets.directory.chmod(0o700)
    (alerts / "ops.url").write_text("https://hooks.example.org/T0/secret-token\n")
    (alerts / "ops.url").chmod(0o600)
    want = _host(write_layout, secrets, "{webhook: ops}")
    files = {a.path: a for a in want.monitoring.files}
    assert "secret-token" in files["alertmanager.yml"].text
    assert files["alertmanager.yml"].mode == 0o600 and files["alertmanager.yml"].secret
    others = [a.text for a in want.monitoring.files if a.path != "alertmanager.yml"]
    assert not [text for text in others if "secret-token" in text]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist: write the URL into it"),
        ("ftp://example.org/x\n", "must hold one http:// or https:// URL"),
        ("https://a.example/x\nhttps://b.example/y\n", "must hold one http:// or https:// URL"),
    ],
)
def test_a_missing_or_bad_webhook_file_is_a_clear_layout_problem(
    write_layout, secrets, content, message
):
    alerts = secrets.directory / "alerts"
    alerts.mkdir(parents=True, mode=0o700)
    secrets.directory.chmod(0o700)
    if content is not None:
        (alerts / "ops.url").write_text(content)
        (alerts / "ops.url").chmod(0o600)
    with pytest.raises(LayoutError) as caught:
        _host(write_layout, secrets, "{webhook: ops}")
    (problem,) = caught.value.problems
    assert "monitoring.webhook" in str(problem) and message in str(problem)
    assert "b.example" not in str(problem) and "ftp://" not in str(problem)


def _alert_secrets(secrets, files):
    alerts = secrets.directory / "alerts"
    alerts.mkdir(parents=True, mode=0o700, exist_ok=True)
    secrets.directory.chmod(0o700)
    for name, text in files.items():
        (alerts / name).write_text(text)
        (alerts / name).chmod(0o600)


ROUTING = (
    "{receivers: {ops: slack, alice-phone: telegram}, operator: ops, "
    "user_receivers: {alice: alice-phone}, watchdog: deadman, watchdog_interval: 1m}"
)


def test_each_users_bot_alerts_reach_that_user_and_fleet_alerts_the_operator(write_layout, secrets):
    import yaml

    _alert_secrets(
        secrets,
        {
            "ops.json": '{"url": "https://hooks.slack.com/services/OPS-TOKEN"}',
            "alice-phone.json": '{"token": "123456:' + "T" * 35 + '", "chat_id": "-1001"}',
            "deadman.url": "https://hc-ping.example.org/PING-KEY/{host}\n",
        },
    )
    want = _host(write_layout, secrets, ROUTING)
    files = {a.path: a for a in want.monitoring.files}
    config = yaml.safe_load(files["alertmanager.yml"].text)
    route = config["route"]
    receivers = {r["name"]: r for r in config["receivers"]}
    assert route["receiver"] == "operator"
    assert receivers["operator"]["slack_configs"][0]["api_url"].endswith("OPS-TOKEN")
    (alice,) = [r for r in route["routes"] if r["matchers"] == ['user="alice"']]
    telegram = receivers[alice["receiver"]]["telegram_configs"][0]
    assert telegram["chat_id"] == -1001 and telegram["bot_token"].startswith("123456:")
    (watchdog,) = [r for r in route["routes"] if r["matchers"] == ['alertname="Watchdog"']]
    assert watchdog["repeat_interval"] == "1m" and route["routes"][0] is watchdog  # first
    hook = receivers[watchdog["receiver"]]["webhook_configs"][0]
    assert hook["url"] == "https://hc-ping.example.org/PING-KEY/local"  # {host}: its name
    assert files["alertmanager.yml"].mode == 0o600
    for other in (a for a in want.monitoring.files if a.path != "alertmanager.yml"):
        for secret in ("OPS-TOKEN", "TTTTTTTTTT", "PING-KEY"):
            assert secret not in other.text, other.path


def test_without_receivers_the_watchdog_goes_nowhere_and_alerts_show_in_alertmanager(
    write_layout, secrets
):
    import yaml

    want = _host(write_layout, secrets)
    config = yaml.safe_load({a.path: a for a in want.monitoring.files}["alertmanager.yml"].text)
    assert [r for r in config["receivers"] if set(r) != {"name"}] == []
    assert config["route"]["routes"][0]["receiver"] == "nobody"


def test_a_converged_host_needs_no_monitoring_change(write_layout, secrets, tmp_path):
    want = _host(write_layout, secrets)
    changes = want.compare(_converged(want, tmp_path))
    assert changes.monitoring is not None and changes.monitoring.empty, changes.differences
    assert changes.differences == []


def test_a_new_threshold_reloads_prometheus_and_touches_nothing_else(
    write_layout, secrets, tmp_path
):
    snap = _converged(_host(write_layout, secrets), tmp_path)
    changes = _host(write_layout, secrets, "{bot_down_for: 9m}").compare(snap)
    unit = changes.monitoring
    assert [u.dest for u in unit.uploads] == ["monitoring/rules.yml"]
    assert unit.reload == ["prometheus"] and unit.container is None
    assert all(p.empty for p in changes.pools)


def test_a_new_receiver_setting_reloads_alertmanager(write_layout, secrets, tmp_path):
    snap = _converged(_host(write_layout, secrets), tmp_path)
    unit = _host(write_layout, secrets, "{group_wait: 5s}").compare(snap).monitoring
    assert unit.reload == ["alertmanager"] and unit.container is None


def test_new_ports_recreate_the_container(write_layout, secrets, tmp_path):
    snap = _converged(_host(write_layout, secrets), tmp_path)
    unit = _host(write_layout, secrets, "{base_port: 29090}").compare(snap).monitoring
    assert unit.container == "recreate" and unit.reload == []


def test_turning_monitoring_off_removes_the_container_and_archives_its_folder(
    write_layout, secrets, tmp_path
):
    on = _host(write_layout, secrets)
    changes = _host(write_layout, secrets, "{enabled: false}").compare(_converged(on, tmp_path))
    assert changes.monitoring is None
    assert changes.remove_containers == [on.monitoring.container.name]
    assert changes.archive_monitoring is True


# --- the exporter's own logic (the engine parts run in tests/test_monitoring_e2e.py) ------------


def test_supervisor_status_is_read_line_by_line():
    from botpool.payloads.exporter import Program, parse_status

    text = (
        "alice-one                        RUNNING   pid 42, uptime 1 day, 2:03:04\n"
        "alice-two                        BACKOFF   Exited too quickly (process log may have)\n"
        "alice-three                      STOPPED   Nov 27 04:00 PM\n"
        "unix:///run/supervisor.sock no such file\n"
    )
    assert parse_status(text) == {
        "alice-one": Program("RUNNING", 42, 93784),
        "alice-two": Program("BACKOFF", None, None),
        "alice-three": Program("STOPPED", None, None),
    }


def test_starts_count_new_pids_but_not_the_first_one_seen():
    from botpool.payloads.exporter import Starts

    starts = Starts()
    key = ("alice-pool-1", "one")
    assert [starts.see(key, pid) for pid in (10, 10, None, 11, 12, 12)] == [0, 0, 0, 1, 2, 2]
    assert Starts().see(key, 12) == 0  # a restarted exporter adds no start


def test_the_supervisor_status_is_read_again_exactly_when_it_may_have_changed():
    """The exporter reads a pool's `supervisorctl status` (a docker exec, about 0.1
    CPU-second) only when the pool's processes changed, a program is between states, or a
    minute passed; in between it serves the last status with uptimes counted on."""
    from botpool.payloads.exporter import Program, StatusCache

    cache, pool, pids = StatusCache(every=60), "alice-pool-1", frozenset({1, 7, 8})
    running = {"alice-one": Program("RUNNING", 7, 100), "alice-two": Program("FATAL", None, None)}
    assert cache.get(pool, pids, 0.0) is None  # never read
    cache.put(pool, running, pids, 0.0)
    assert cache.get(pool, pids, 15.5) == {
        "alice-one": Program("RUNNING", 7, 115),  # its uptime counted on
        "alice-two": Program("FATAL", None, None),
    }
    assert cache.get("bob-pool-1", pids, 15.5) is None  # another pool: its own status
    assert cache.get(pool, pids, 60.0) is None  # a minute passed
    assert cache.get(pool, pids - {7}, 15.5) is None  # a program's process ended
    assert cache.get(pool, pids | {9}, 15.5) is None  # a process started (a program, a fork)
    for passing in ("STARTING", "BACKOFF", "STOPPING"):
        cache.put(pool, {**running, "alice-two": Program(passing, None, None)}, pids, 0.0)
        assert cache.get(pool, pids, 15.5) is None, passing  # changes with no process


def test_out_of_sync_counts_missing_changed_and_linked_files(tmp_path):
    import hashlib

    from botpool.payloads.exporter import out_of_sync

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    pool = tmp_path / "alice-pool-1"
    pool.mkdir()
    (pool / "same.conf").write_text("a")
    (pool / "changed.conf").write_text("b")
    (pool / "real.conf").write_text("c")
    (pool / "linked.conf").symlink_to(pool / "real.conf")
    manifest = {
        f"alice-pool-1/{name}": digest(text)
        for name, text in [("same.conf", "a"), ("changed.conf", "x"), ("linked.conf", "c")]
    }
    manifest["alice-pool-1/missing.conf"] = digest("d")
    assert out_of_sync(manifest, str(tmp_path)) == 3
    assert out_of_sync({"alice-pool-1/same.conf": digest("a")}, str(tmp_path)) == 0


def test_a_planned_bot_whose_pool_is_gone_counts_as_down(write_layout, secrets):
    import json

    from botpool.payloads.exporter import BotAnswer, PoolReading, Program, Starts, samples

    want = _host(write_layout, secrets)
    config = json.loads({a.path: a for a in want.monitoring.files}["exporter.json"].text)
    (pool,) = config["pools"]
    asked = []

    def answers(pool_name: str, bot: dict) -> BotAnswer:
        asked.append((pool_name, bot["port"]))
        return BotAnswer(api_up=True, heartbeat_ts=990.0, trades_open=2.0, last_trade_ts=None)

    def values(readings):
        out = samples(config, readings, answers, Starts(), 0, now=1000.0)
        return {(s.name, s.labels.get("bot")): s.value for s in out}

    gone = values({})
    assert gone[("botpool_bot_running", "one")] == 0 and gone[("botpool_pool_up", None)] == 0
    assert ("botpool_bot_heartbeat_age_seconds", "one") not in gone
    assert asked == []  # a bot that does not run is not asked
    program = {"alice-one": Program("RUNNING", 7, 30)}
    up = values({pool["container"]: PoolReading(True, 100.0, 1000.0, 3.5, program, {})})
    assert up[("botpool_bot_running", "one")] == 1 and up[("botpool_bot_api_up", "one")] == 1
    assert up[("botpool_pool_memory_bytes", None)] == 100.0
    assert up[("botpool_bot_heartbeat_age_seconds", "one")] == 10.0
    assert up[("botpool_bot_trades_open", "one")] == 2.0
    assert ("botpool_bot_last_trade_age_seconds", "one") not in up  # never traded: absent
    assert ("botpool_bot_pss_bytes", "one") not in up  # not read: absent, never 0
    assert asked == [(pool["name"], pool["bots"][0]["port"])]


def _bot_folder(pools, login=("botpool", "s3cret-pass")):
    folder = pools / "alice-pool-1" / "bots" / "one"
    (folder / "logs").mkdir(parents=True)
    api = {"username": login[0], "password": login[1]}
    (folder / "config.json").write_text(json.dumps({"api_server": api}))
    return folder


def test_the_exporter_reads_each_figure_with_the_bots_own_login(tmp_path):
    import time

    from botpool.payloads.exporter import ask, bot_samples

    from .freqtrade_double import FreqtradeDouble

    folder = _bot_folder(tmp_path)
    (folder / "logs" / "freqtrade.log").write_text(
        "2026-11-27 10:00:00,000 - freqtrade.freqtradebot - WARNING - Unable to create trade "
        "for BTC/USDT: see https://hooks.example/T0/TOKEN\n"
    )
    double = FreqtradeDouble("alice-one", login=("botpool", "s3cret-pass"))
    now = time.time()
    double.answers["count"] = {"current": 1, "max": 3, "total_stake": 10}
    double.answers["profit"] = {
        "trade_count": 5,
        "closed_trade_count": 4,
        "profit_closed_coin": -1.25,
        "latest_trade_timestamp": int((now - 600) * 1000),
    }
    double.answers["health"] = {"last_process_ts": int(now) - 30}
    try:
        answer = ask(str(tmp_path), "alice-pool-1", {"name": "one", "port": double.port})
    finally:
        double.close()
    out = bot_samples({"bot": "one"}, None, answer, 0, 123 << 20, now)
    values = {s.name: s.value for s in out}
    assert values["botpool_bot_api_up"] is True
    assert 29 <= values["botpool_bot_heartbeat_age_seconds"] <= 32
    assert values["botpool_bot_trades_open"] == 1 and values["botpool_bot_trades_closed"] == 4
    assert values["botpool_bot_profit_closed_coin"] == -1.25
    assert values["botpool_bot_wallet_coin"] == 1000.0
    assert 599 <= values["botpool_bot_last_trade_age_seconds"] <= 601
    assert values["botpool_bot_pss_bytes"] == 123 << 20
    (info,) = [s for s in out if s.name == "botpool_bot_last_warning_info"]
    assert info.labels["warning"].startswith("freqtrade.freqtradebot - WARNING - Unable")
    assert "TOKEN" not in info.labels["warning"]  # URLs hidden, as the checks hide them
    assert not [s for s in out if "s3cret" in str(s)]  # the login is never a label


@pytest.mark.parametrize(
    "answers",
    [
        {"health": {"last_process_ts": "yesterday"}, "count": {"current": True}},
        {"health": {"last_process_ts": None}, "count": {"current": [1]}},
        {"profit": {"closed_trade_count": {"a": 1}, "latest_trade_timestamp": 0}},
        {"balance": ["not", "an", "object"]},
    ],
)
def test_a_figure_of_the_wrong_type_is_left_out(tmp_path, answers):
    from botpool.payloads.exporter import ask

    from .freqtrade_double import FreqtradeDouble

    _bot_folder(tmp_path)
    double = FreqtradeDouble("alice-one", login=("botpool", "s3cret-pass"))
    double.answers.update(answers)
    try:
        answer = ask(str(tmp_path), "alice-pool-1", {"name": "one", "port": double.port})
    finally:
        double.close()
    assert answer.api_up is True
    if "balance" in answers:  # an answer that is not an object: no figure of that cycle
        assert answer.wallet_coin is None
        return
    wrong = {
        ("health", "last_process_ts"): answer.heartbeat_ts,
        ("count", "current"): answer.trades_open,
        ("profit", "closed_trade_count"): answer.trades_closed,
        ("profit", "latest_trade_timestamp"): answer.last_trade_ts,
    }
    for (route, key), value in wrong.items():
        if key in answers.get(route, {}):
            assert value is None, (route, key)


@pytest.mark.parametrize("behaviour", ["hang", "trickle"])
def test_a_bot_that_hangs_costs_at_most_its_deadline(tmp_path, behaviour, monkeypatch):
    import time

    from botpool.payloads import exporter

    from .freqtrade_double import FreqtradeDouble

    _bot_folder(tmp_path)
    monkeypatch.setattr(exporter, "BOT_DEADLINE", 1.0)
    double = FreqtradeDouble("alice-one", behaviour=behaviour)
    began = time.monotonic()
    try:
        answer = exporter.ask(str(tmp_path), "alice-pool-1", {"name": "one", "port": double.port})
    finally:
        double.close()
    assert answer.api_up is False and time.monotonic() - began < 3


def test_a_bots_pss_is_the_sum_over_the_processes_of_its_uid(tmp_path):
    """Real /proc: this test's process stands for a bot's program, a child of its uid for
    the zygote's child; a process of another uid (holding 64 MiB) is not counted."""
    import os
    import subprocess
    import sys

    from botpool.payloads.exporter import bot_pss, namespace_pid, pss_bytes

    me, uid = os.getpid(), 4242  # the uid docker top would show for the bot
    child = subprocess.Popen(["sleep", "30"])
    big = "import sys, time; x = bytearray(64 << 20); print(1, flush=True); time.sleep(30)"
    other = subprocess.Popen([sys.executable, "-c", big], stdout=subprocess.PIPE)
    assert other.stdout and other.stdout.readline()  # its 64 MiB are touched
    try:
        mine, its = pss_bytes("/proc", me), pss_bytes("/proc", child.pid)
        assert mine and its and namespace_pid("/proc", me) == me
        processes = [(me, uid), (child.pid, uid), (other.pid, 12345)]
        total = bot_pss("/proc", processes, program_pid=me)
        assert total is not None and abs(total - (mine + its)) < 4 << 20  # PSS moves a little
        assert bot_pss("/proc", processes, program_pid=999_999_999) is None
        assert bot_pss("/proc", [(me, 0)], program_pid=me) is None  # root is never a bot
        assert bot_pss(str(tmp_path), processes, program_pid=me) is None  # nothing readable
    finally:
        for process in (child, other):
            process.kill()
            process.wait()


# --- botpool alerts ------------------------------------------------------------------------

AMTOOL_JSON = """[{"annotations": {"summary": "bot alice/one is not running in pool alice-pool-1"},
  "startsAt": "2026-11-27T17:00:00.000Z", "status": {"state": "active"},
  "labels": {"alertname": "BotDown", "bot": "one", "host": "local", "pool": "alice-pool-1",
             "severity": "critical", "user": "alice"}},
 {"annotations": {}, "startsAt": "2026-11-27T16:00:00.000Z",
  "labels": {"alertname": "HostOutOfSync", "host": "local", "severity": "warning"}}]"""


def test_alerts_are_read_from_amtool_json():
    from botpool.hosts.alerts import Alert, parse

    assert parse(AMTOOL_JSON) == [
        Alert(
            "BotDown",
            "critical",
            "alice-pool-1",
            "alice",
            "one",
            "bot alice/one is not running in pool alice-pool-1",
            "2026-11-27T17:00:00.000Z",
        ),
        Alert("HostOutOfSync", "warning", "", "", "", "", "2026-11-27T16:00:00.000Z"),
    ]
    assert parse("") == [] and parse("[]") == []
    with pytest.raises(ValueError):
        parse('{"not": "a list"}')


def test_the_always_firing_watchdog_is_not_listed_as_firing():
    from botpool.hosts.alerts import parse

    watchdog = '{"labels": {"alertname": "Watchdog", "host": "local", "severity": "none"}}'
    assert parse(f"[{watchdog}]") == []


@pytest.mark.parametrize(
    ("answers", "code"),
    [([AMTOOL_JSON], 2), (["[]"], 0), (None, 1)],
)
def test_botpool_alerts_exits_by_what_fires(
    write_layout, secrets, monkeypatch, capsys, answers, code
):
    from botpool.cli import main
    from botpool.hosts import remote
    from botpool.hosts.remote import RemoteError, RemoteHost

    path = write_layout(MINIMAL)
    host = RemoteHost("vps1", "local", str(path), {})
    commands = []

    def run(self, command, purpose):
        commands.append(command)
        if answers is None:
            raise RemoteError("vps1: unreachable during reading its alerts: timed out")
        return answers

    monkeypatch.setattr(remote, "inventory_hosts", lambda _: [host])
    monkeypatch.setattr(RemoteHost, "run", run)
    assert main(["alerts", "inventory/local.py"]) == code
    out, err = capsys.readouterr()
    assert commands == [
        "docker exec botpool_monitoring amtool alert query --output=json "
        "--alertmanager.url=http://127.0.0.1:19091"
    ]
    if code == 2:
        assert "BotDown" in out and "alice-pool-1" in out and "HostOutOfSync" in out
    if code == 0:
        assert "nothing firing on vps1" in out
    if code == 1:
        assert "error: vps1: unreachable" in err


def test_botpool_alerts_says_when_monitoring_is_off(write_layout, secrets, monkeypatch, capsys):
    from botpool.cli import main
    from botpool.hosts import remote
    from botpool.hosts.remote import RemoteHost

    path = write_layout("monitoring: {enabled: false}\n" + MINIMAL.lstrip())
    monkeypatch.setattr(
        remote, "inventory_hosts", lambda _: [RemoteHost("vps1", "local", str(path), {})]
    )
    assert main(["alerts", "inventory/local.py", "--json"]) == 1
    (report,) = json.loads(capsys.readouterr().out)
    assert report["error"] == "vps1: monitoring is off in the layout"


def test_render_writes_the_monitoring_files_with_their_modes(write_layout, secrets, tmp_path):
    from botpool.cli import main

    out = tmp_path / "out"
    assert main(["render", str(write_layout(MINIMAL)), "--out", str(out)]) == 0
    folder = out / "local" / "monitoring"
    assert (folder / "rules.yml").read_text().count("- alert:") == 11
    assert (folder / "alertmanager.yml").stat().st_mode & 0o777 == 0o600
    assert json.loads((folder / "container.json").read_text())["spec"]["host_network"] is True
