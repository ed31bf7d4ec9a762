"""Monitoring on the real engine: the converge deploys Prometheus, Alertmanager, the node
exporter and botpool's exporter; a bot stopped by hand reaches a webhook as a BotDown alert
naming the bot and its owner, and as resolved once it runs again; each user's alerts reach
that user's receiver in its own service's format (Slack, Telegram), everyone else's the
operator's (Discord); a file changed on the host alerts HostOutOfSync with no controller
involved; the Watchdog reaches its heartbeat URL again and again; a pool over its memory
share alerts PoolMemoryHigh.

Every receiving service is a test double: one small HTTP sink on 127.0.0.1 that records what
it gets, standing in for a webhook, Slack's and Discord's incoming webhooks, Telegram's Bot
API (through the receiver's `api_url`; it answers as Telegram does) and a healthchecks-style
heartbeat service (the Watchdog's URL). E-mail is not delivered here (no SMTP double); its
configuration is checked by amtool (test_monitoring_promtool_e2e.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from botpool.core import monitoring

from .e2e import HTTP, REPO, VENV, Deployment, docker, new_deployment, wait_for

pytestmark = pytest.mark.e2e(minutes=3.7)

BOT_PORT = 17000
MONITORING_PORT = 18990  # below every test deployment's bot ports, above this one's
TOKEN = "T0KEN-never-printed-9f3c"
BEAT = "B3AT-never-printed-51ac"
BOT_TOKEN = "123456:TeLeGrAmToKeNnEvErPrInTeD42"  # the form @BotFather gives
CHAT = -1001234567890
MONITORING = (
    f"{{base_port: {MONITORING_PORT}, scrape_interval: 2s, bot_down_for: 4s, "
    "out_of_sync_for: 2s, watchdog: beat, watchdog_interval: 3s, "
    "group_wait: 1s, group_interval: 2s, repeat_interval: 1h, webhook: sink, "
    "receivers: {chat: discord, team: slack, phone: telegram}, operator: chat, "
    "user_receivers: {nico: team, olga: phone}}"
)
USERS = """
mona:
  bots:
    - name: one
    - name: two
nico:
  bots:
    - name: one
olga:
  bots:
    - name: one
"""
TELEGRAM_SENT = {  # what Telegram's sendMessage answers (Alertmanager reads the chat back)
    "ok": True,
    "result": {"message_id": 1, "date": 0, "chat": {"id": CHAT, "type": "group"}, "text": ""},
}
TELEGRAM_ME = {"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "sink"}}
SLACK_SENT = {"ok": True}  # what Slack answers a post (Alertmanager 0.28 reads it; 0.25 did not)


class Sink:
    """Records every JSON body posted to it (Alertmanager's webhook messages)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []  # to the alerts webhook
        self.beats: list[str] = []  # paths the Watchdog was posted to
        self.posts: list[tuple[str, str]] = []  # (path, body) to the other services
        received, beats, posts = self.messages, self.beats, self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                answer: dict[str, Any] = {}
                if self.path.startswith("/beat/"):
                    beats.append(self.path)
                elif self.path.startswith("/hooks/"):
                    received.append(json.loads(body))
                else:
                    posts.append((self.path, body.decode()))
                    if self.path.startswith("/tg/"):
                        answer = TELEGRAM_ME if self.path.endswith("/getMe") else TELEGRAM_SENT
                    elif self.path.startswith("/slack/"):
                        answer = SLACK_SENT
                reply = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{TOKEN}"

    def service_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{service}"

    def sent(self, prefix: str, text: str) -> list[str]:
        """The bodies posted under `prefix` that hold `text` (JSON-escaped, as sent)."""
        return [body for path, body in self.posts if path.startswith(prefix) and text in body]

    @property
    def beat_url(self) -> str:
        """The heartbeat URL as the layout's file holds it ({host}: each host's name)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/beat/{{host}}/{BEAT}"

    def alerts(self, name: str, status: str) -> list[dict[str, Any]]:
        return [
            alert
            for message in self.messages
            for alert in message["alerts"]
            if alert["labels"]["alertname"] == name and alert["status"] == status
        ]


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    sink = Sink()
    yield sink
    sink.server.shutdown()


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory, sink: Sink) -> Iterator[Deployment]:
    deployment = new_deployment(tmp_path_factory.mktemp("monitoring"), "e2emon", BOT_PORT)
    deployment.monitoring = MONITORING
    alerts = deployment.secrets.directory / "alerts"
    alerts.mkdir(parents=True, mode=0o700)
    os.chmod(deployment.secrets.directory, 0o700)
    url = alerts / "sink.url"
    url.write_text(sink.url + "\n")
    url.chmod(0o600)
    beat = alerts / "beat.url"
    beat.write_text(sink.beat_url + "\n")
    beat.chmod(0o600)
    for name, values in {
        "chat": {"url": sink.service_url(f"discord/{TOKEN}")},
        "team": {"url": sink.service_url(f"slack/{TOKEN}"), "channel": "#nico"},
        "phone": {"token": BOT_TOKEN, "chat_id": str(CHAT), "api_url": sink.service_url("tg")},
    }.items():
        path = alerts / f"{name}.json"
        path.write_text(json.dumps(values))
        path.chmod(0o600)
    deployment.write(USERS)
    yield deployment
    deployment.monitoring = "{enabled: false}"  # the teardown's converge removes it too
    deployment.teardown()


def query(expr: str) -> list[dict[str, Any]]:
    answer = HTTP.get(f"http://127.0.0.1:{MONITORING_PORT}/api/v1/query", params={"query": expr})
    return list(answer.json()["data"]["result"])


def prometheus_sees(expr: str) -> list[dict[str, Any]] | None:
    try:
        return query(expr) or None
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def logs(dep: Deployment) -> str:
    """What the monitoring programs said, for a failing assertion."""
    folder = dep.root / "monitoring" / "logs"
    return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(folder.glob("*.log")))


def alerts(dep: Deployment) -> tuple[int, list[dict[str, Any]]]:
    """`botpool alerts inventory/local.py --json`: its exit code and report."""
    proc = subprocess.run(
        [str(VENV / "botpool"), "alerts", "inventory/local.py", "--json"],
        cwd=REPO,
        env=dep.environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_converge_deploys_monitoring_and_a_stopped_bot_alerts_its_owner(dep, sink):
    first = dep.converge()
    assert TOKEN not in first.output
    dep.wait_answering()
    name = monitoring.container_name(dep.project)
    labels = json.loads(docker("inspect", "-f", "{{json .Config.Labels}}", name))
    assert labels["botpool.role"] == "monitoring" and labels["botpool.root"] == str(dep.root)
    assert (dep.root / "monitoring" / "alertmanager.yml").stat().st_mode & 0o777 == 0o600

    # the exporter's view reaches Prometheus: both bots running, answering, pool memory known
    running = 'botpool_bot_running{user="mona"} == 1 and botpool_bot_api_up == 1'
    seen = wait_for(
        lambda: (r := prometheus_sees(running)) and len(r) == 2 and r,
        timeout=90,
        what=f"both bots running in Prometheus\n{logs(dep)}",
    )
    assert {s["metric"]["bot"] for s in seen} == {"one", "two"}
    for expr in (
        "botpool_pool_memory_limit_bytes > 0",
        'up{job="node"} == 1',  # the node exporter answers
        'node_memory_MemAvailable_bytes{job="node"} > 0',
        "botpool_host_out_of_sync_files == 0",
    ):
        wait_for(
            lambda expr=expr: prometheus_sees(expr),
            timeout=30,
            what=f"{expr} in Prometheus; up: {prometheus_sees('up')}\n{logs(dep)}",
        )

    # each bot's own figures, from its API with its login and from the host's /proc
    for expr in (
        'botpool_bot_heartbeat_age_seconds{user="mona"} < 120',
        'botpool_bot_pss_bytes{user="mona"} > 20e6',  # a forked freqtrade's own: tens of MiB
        'botpool_bot_wallet_coin{user="mona"} > 0',
        'botpool_bot_trades_closed{user="mona"} >= 0',
        'botpool_bot_trades_open{user="mona"} >= 0',
        'botpool_bot_profit_closed_coin{user="mona"} > -1e9',
    ):
        found = wait_for(
            lambda expr=expr: (r := prometheus_sees(expr)) and len(r) == 2 and r,
            timeout=60,
            what=f"{expr} for mona's bots; seen: {prometheus_sees(expr.split()[0])}\n{logs(dep)}",
        )
        assert {s["metric"]["bot"] for s in found} == {"one", "two"}, expr

    dep.ctl("mona-pool-1", "stop", "mona-one")
    fired = wait_for(
        lambda: sink.alerts("BotDown", "firing"),
        timeout=90,
        what=f"a firing BotDown at the webhook\n{logs(dep)}",
    )
    assert {(a["labels"]["user"], a["labels"]["bot"]) for a in fired} == {("mona", "one")}
    assert fired[0]["labels"]["host"] == "local"
    assert "mona/one" in fired[0]["annotations"]["summary"]
    code, listed = alerts(dep)
    assert code == 2, listed
    assert [(a["alertname"], a["user"], a["bot"]) for a in listed[0]["alerts"]] == [
        ("BotDown", "mona", "one")
    ]

    dep.ctl("mona-pool-1", "start", "mona-one")
    resolved = wait_for(
        lambda: sink.alerts("BotDown", "resolved"),
        timeout=90,
        what=f"a resolved BotDown at the webhook\n{logs(dep)}",
    )
    assert resolved[0]["labels"]["bot"] == "one"
    assert alerts(dep) == (0, [{"host": "@local", "alerts": [], "error": None}])

    again = dep.converge()
    assert again.operations == [], again.output[-3000:]
    for secret in (TOKEN, BEAT, BOT_TOKEN):
        assert secret not in first.output + again.output


def test_each_users_alerts_reach_their_own_service_in_its_format(dep, sink):
    """nico's receiver is Slack, olga's Telegram, the operator's Discord (mona has none of her
    own: her BotDown above went there, beside the webhook)."""
    summary = "bot mona/one is not running"
    (discord,) = sink.sent(f"/discord/{TOKEN}", summary)[:1]
    assert json.loads(discord)["embeds"][0]["title"] == "[FIRING] BotDown on local"
    for user in ("nico", "olga"):
        dep.ctl(f"{user}-pool-1", "stop", f"{user}-one")
    slack = wait_for(
        lambda: sink.sent(f"/slack/{TOKEN}", "bot nico/one is not running"),
        timeout=90,
        what=f"nico's BotDown at Slack; posts: {[p for p, _ in sink.posts]}\n{logs(dep)}",
    )
    message = json.loads(slack[0])
    assert message["channel"] == "#nico"
    assert message["attachments"][0]["title"] == "[FIRING] BotDown on local"
    telegram = wait_for(
        lambda: sink.sent(f"/tg/bot{BOT_TOKEN}/sendMessage", "bot olga/one is not running"),
        timeout=90,
        what=f"olga's BotDown at Telegram; posts: {[p for p, _ in sink.posts]}\n{logs(dep)}",
    )
    assert int(json.loads(telegram[0])["chat_id"]) == CHAT
    # a user's alerts go to that user's receiver alone
    assert {a["labels"]["user"] for a in sink.alerts("BotDown", "firing")} == {"mona"}
    assert not sink.sent("/discord/", "nico/one") and not sink.sent("/slack/", "olga/one")
    for user in ("nico", "olga"):
        dep.ctl(f"{user}-pool-1", "start", f"{user}-one")
    wait_for(
        lambda: (
            sink.sent("/slack/", "RESOLVED: bot nico/one")
            and sink.sent("/tg/", "RESOLVED: bot olga/one")
        ),
        timeout=90,
        what=f"both resolutions; posts: {[p for p, _ in sink.posts]}\n{logs(dep)}",
    )


def test_a_file_changed_on_the_host_alerts_out_of_sync_without_the_controller(dep, sink):
    """The exporter compares the host's files with the manifest the converge left: nothing
    of botpool runs on the controller between the edit and the alert."""
    config = dep.root / "pools" / "mona-pool-1" / "bots" / "two" / "config.json"
    config.write_text(config.read_text() + "\n")  # one byte the converge did not write
    fired = wait_for(
        lambda: sink.alerts("HostOutOfSync", "firing"),
        timeout=120,
        what=f"a firing HostOutOfSync at the webhook\n{logs(dep)}",
    )
    assert fired[0]["labels"]["host"] == "local"
    dep.converge()  # writes the file back
    wait_for(
        lambda: sink.alerts("HostOutOfSync", "resolved"),
        timeout=120,
        what=f"a resolved HostOutOfSync at the webhook\n{logs(dep)}",
    )


def test_the_watchdog_reaches_its_heartbeat_url_again_and_again(dep, sink):
    """A dead man's switch: the heartbeat service notices when these posts stop."""
    seen = len(sink.beats)
    wait_for(
        lambda: len(sink.beats) >= seen + 2,
        timeout=90,
        what=f"two more Watchdog posts (so far {len(sink.beats)})\n{logs(dep)}",
    )
    assert set(sink.beats) == {f"/beat/local/{BEAT}"}  # {host} became the host's name
    assert not sink.alerts("Watchdog", "firing")  # never to the alerts webhook


def test_a_changed_threshold_reloads_prometheus_without_restarting_it(dep):
    name = monitoring.container_name(dep.project)
    before = docker("inspect", "-f", "{{.Id}}", name)
    pid = docker("exec", name, *monitoring.SUPERVISORCTL.split(), "pid", "prometheus")
    dep.monitoring = MONITORING.replace("bot_down_for: 4s", "bot_down_for: 7s")
    dep.write(USERS)
    run = dep.converge()
    assert run.operations == [
        f"tasks/monitoring.py | {name}: write rules.yml",
        f"tasks/monitoring.py | {name}: reload prometheus (new configuration)",
    ], run.operations
    assert docker("inspect", "-f", "{{.Id}}", name) == before
    assert docker("exec", name, *monitoring.SUPERVISORCTL.split(), "pid", "prometheus") == pid
    wait_for(
        lambda: bot_down_for() == 7,
        timeout=30,
        what=f"Prometheus to load the new rules (BotDown for: {bot_down_for()} s)",
    )


def bot_down_for() -> float | None:
    """The `for` of the BotDown rule Prometheus runs, in seconds."""
    answer = HTTP.get(f"http://127.0.0.1:{MONITORING_PORT}/api/v1/rules").json()
    rules = [r for g in answer["data"]["groups"] for r in g["rules"] if r["name"] == "BotDown"]
    return rules[0]["duration"] if rules else None


def test_a_pool_over_its_memory_share_alerts(dep, sink):
    dep.monitoring = MONITORING.replace(
        "bot_down_for: 4s", "pool_memory_share: 0.01, pool_memory_for: 1s"
    )
    dep.write(USERS)
    dep.converge()
    fired = wait_for(
        lambda: sink.alerts("PoolMemoryHigh", "firing"),
        timeout=120,
        what=f"a firing PoolMemoryHigh at the webhook\n{logs(dep)}",
    )
    assert {a["labels"]["pool"] for a in fired} == {"mona-pool-1"}
    assert "memory limit" in fired[0]["annotations"]["summary"]


def test_plan_measured_projects_each_pool_with_its_peak_from_prometheus(dep):
    """`botpool plan --measured` over SSH-less @local: each pool's figure is the peak its
    host's Prometheus recorded (asked here directly for the same), every bot measured."""
    wanted = {
        r["metric"]["pool"]: float(r["value"][1]) / 2**20
        for r in query("max_over_time(botpool_pool_memory_bytes[1d])")
    }
    code, output = dep.botpool(
        "plan", str(dep.layout), "--measured", "inventory/local.py", "--json"
    )
    assert code == 0, output
    report = json.loads(output)
    pools = {p["pool"]: p for p in report["pools"]}
    assert set(pools) == {"mona-pool-1", "nico-pool-1", "olga-pool-1"}
    for name, pool in pools.items():
        assert pool["unmeasured_bots"] == 0, pool
        assert abs(pool["measured_mb"] - wanted[name]) <= 0.02 * wanted[name] + 1, (pool, wanted)
        assert 30 < pool["measured_mb"] < pool["planned_mb"] * 3, pool  # a real pool's figure
    (host,) = report["hosts"]
    assert host["above"] is False and 0 < host["history_hours"] < 1, host
    # a threshold this host passes: flagged, exit 2, and with one host no move can help
    code, output = dep.botpool(
        "plan", str(dep.layout), "--measured", "inventory/local.py", "--threshold", "1"
    )
    assert code == 2, output
    assert "ABOVE 1 %" in output and "no set of pool moves brings every host under it" in output
    assert "password" not in output.lower()


def test_turning_monitoring_off_removes_it_and_archives_its_data(dep):
    dep.monitoring = "{enabled: false}"
    dep.write(USERS)
    dep.converge()
    names = docker("ps", "-a", "--format", "{{.Names}}").split()
    assert monitoring.container_name(dep.project) not in names
    assert not (dep.root / "monitoring").exists()
    assert list(Path(dep.root / "archive").glob("*/monitoring/prometheus.yml"))
    assert dep.converge().operations == []
    code, output = dep.botpool("plan", str(dep.layout), "--measured", "inventory/local.py")
    assert code == 1 and "monitoring.enabled: false" in output, output
