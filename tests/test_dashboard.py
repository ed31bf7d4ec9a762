"""The dashboard without a host: Prometheus answers and the checks' readings -> page models,
and the web application on top of them (Flask's test client; no network, no browser).

The Prometheus answers below have the exact shapes of its HTTP API (`/api/v1/query`: a
vector of {metric, value: [time, "text"]}; `/api/v1/query_range`: a matrix of {metric,
values: [[time, "text"], ...]}; errors: {status: error, errorType, error}), values as text,
"NaN" and "+Inf" included, as Prometheus 2.42 sends them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from botpool.core.health import evaluate
from botpool.core.layout import CheckSettings
from botpool.core.plan import load_plan
from botpool.dashboard import collect, model, prometheus, server
from botpool.dashboard.collect import Fleet
from botpool.dashboard.model import HostReading
from botpool.hosts import prometheus as prometheus_ask
from botpool.hosts.remote import RemoteHost

from .conftest import MINIMAL
from .test_health import NOW, healthy

STEP = prometheus.WINDOWS["1h"][1]
END = (NOW // STEP) * STEP
LAYOUT = (
    MINIMAL
    + """      - name: two
  bob:
    bots:
      - name: three
"""
)
HOSTILE = "<script>alert('pwned')</script><img src=x onerror=alert(1)>"


def labels(pool: str, bot: str | None = None, name: str | None = None) -> dict[str, str]:
    out = {"host": "local", "instance": "127.0.0.1:19093", "job": "botpool", "pool": pool}
    out["user"] = pool.split("-pool-")[0]
    if bot:
        out["bot"] = bot
    if name:
        out["__name__"] = name
    return out


def vector(*items: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [NOW + 0.123, v]} for m, v in items],
        },
    }


def matrix(*items: tuple[dict[str, str], list[tuple[float, str]]]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": m, "values": [[t, v] for t, v in pts]} for m, pts in items],
        },
    }


def answers() -> dict[str, Any]:
    """A host's answers: alice's pool at 50 % then 95 % of its limit, bob's without data."""
    a1 = "alice-pool-1"
    return {
        "alerts": vector(
            (
                {
                    "__name__": "ALERTS",
                    "alertname": "BotDown",
                    "alertstate": "firing",
                    "severity": "critical",
                    **labels(a1, "two"),
                },
                "1",
            )
        ),
        "host_memory_total": vector(({"__name__": "node_memory_MemTotal_bytes"}, "8589934592")),
        "host_memory_available": vector(
            ({"__name__": "node_memory_MemAvailable_bytes"}, "6442450944")
        ),
        "host_cpu_busy": vector(({}, "0.25")),
        "bots": vector(
            (labels(a1, "one", "botpool_bot_trades_open"), "2"),
            (labels(a1, "one", "botpool_bot_heartbeat_age_seconds"), "4.5"),
            (labels(a1, "two", "botpool_bot_trades_open"), "NaN"),
        ),
        "restarts_1h": vector((labels(a1, "one"), "3")),
        "pool_share": matrix((labels(a1), [(END - STEP, "0.5"), (END, "0.95")])),
        "pool_memory": matrix((labels(a1), [(END - STEP, "536870912"), (END, "1020054732.8")])),
        "pool_limit": matrix((labels(a1), [(END - STEP, "1073741824"), (END, "1073741824")])),
        "pool_cpu": matrix((labels(a1), [(END, "0.12")])),
        "bot_pss": matrix((labels(a1, "one"), [(END, "104857600")])),
        "bot_profit": {"status": "error", "errorType": "bad_data", "error": "parse error"},
        "bot_wallet": matrix((labels(a1, "one"), [(END - STEP, "1000"), (END, "+Inf")])),
        "bot_trades_open": matrix(),
        "bot_trades_closed": matrix(),
    }


@pytest.fixture
def plan(write_layout):
    return load_plan(write_layout(LAYOUT))


def reading(plan, **changes: Any) -> HostReading:
    snap, seen = healthy(plan)
    findings = evaluate(plan.hosts["local"], snap, seen, CheckSettings(), now=NOW)
    base = HostReading(
        "@local",
        "local",
        plan=plan,
        snapshot=snap,
        health=seen,
        findings=findings,
        answers=answers(),
        read_at=NOW,
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


# --- Prometheus answers ---------------------------------------------------------------------


def test_vectors_and_matrices_keep_labels_and_drop_values_that_are_not_numbers():
    bots = prometheus.vector(answers()["bots"])
    assert [(s.labels["bot"], s.labels["__name__"], s.value) for s in bots] == [
        ("one", "botpool_bot_trades_open", 2.0),
        ("one", "botpool_bot_heartbeat_age_seconds", 4.5),
    ]  # "NaN" is no data
    (wallet,) = prometheus.matrix(answers()["bot_wallet"])
    assert wallet.points == ((END - STEP, 1000.0),)  # "+Inf" is no data
    assert prometheus.matrix(answers()["bot_profit"]) == []  # an error answer: no series
    assert prometheus.vector(answers()["pool_share"]) == []  # a matrix is not a vector
    for junk in (None, "text", [], {"status": "success"}, {"status": "success", "data": []}):
        assert prometheus.vector(junk) == [] and prometheus.matrix(junk) == []


def test_a_refresh_asks_the_same_queries_whatever_the_number_of_bots():
    asked = prometheus.queries("1d", NOW)
    assert len(asked) == len(prometheus.INSTANT) + len(prometheus.RANGE)
    ranged = [q for q in asked if "step" in q]
    seconds, step = prometheus.WINDOWS["1d"]
    assert {(q["end"] - q["start"], q["step"], q["end"] % step) for q in ranged} == {
        (seconds, step, 0)
    }
    assert not any("{rate}" in q["expr"] for q in asked)


def test_prometheus_unreachable_is_said_once_not_per_query():
    failed = {key: {"status": "error", "error": "connection refused"} for key in ("a", "b")}
    assert prometheus.error_of(failed) == "connection refused"
    assert prometheus.error_of(answers()) is None  # one bad query is that query's no data


def test_the_probe_command_output_is_split_from_prometheus_answers():
    lines = [
        "@@botpool prometheus",
        '{"alerts": {"status": "success"}}',
        "@@botpool listening",
        "tcp line",
        "@@botpool probe",
        "{}",
    ]
    rest, found, error = prometheus_ask.split(lines)
    assert found == {"alerts": {"status": "success"}} and error is None
    assert rest == lines[2:]
    _, found, error = prometheus_ask.split(["@@botpool prometheus", "Error: No such container: x"])
    assert found == {} and error == "Error: No such container: x"


# --- page models ----------------------------------------------------------------------------


def test_the_fleet_shows_hosts_bots_alerts_and_a_heat_row_per_pool(plan):
    seen = reading(plan)
    seen.snapshot.programs["botpool_alice-pool-1"]["alice-two"] = seen.snapshot.programs[
        "botpool_alice-pool-1"
    ]["alice-two"].__class__("alice-two", "STOPPED", None, None)
    seen.findings = evaluate(
        plan.hosts["local"], seen.snapshot, seen.health, CheckSettings(), now=NOW
    )
    fleet = model.fleet([seen], "1h")
    assert {b.key: (b.pool, b.host, b.health) for b in fleet.bots} == {
        "alice/one": ("alice-pool-1", "@local", "healthy"),
        "alice/two": ("alice-pool-1", "@local", "down"),
        "bob/three": ("bob-pool-1", "@local", "healthy"),
    }
    assert fleet.counts == {"healthy": 2, "degraded": 0, "down": 1, "unknown": 0}
    (host,) = fleet.hosts
    assert (host.used_mb, host.total_mb, host.cpu_busy) == (2048.0, 8192.0, 0.25)
    assert host.planned_mb == plan.hosts["local"].projected_mb
    assert [(a.alertname, a.bot) for a in fleet.alerts] == [("BotDown", "two")]
    assert [(r.pool, len(r.cells)) for r in fleet.heat] == [
        ("alice-pool-1", len(fleet.times)),
        ("bob-pool-1", len(fleet.times)),
    ]
    assert fleet.heat[0].cells[-2:] == (0.5, 0.95)
    assert set(fleet.heat[1].cells) == {None}  # bob's pool: no data, still a row
    one = next(b for b in fleet.bots if b.key == "alice/one")
    assert one.metrics["open trades"] == 2.0 and one.metrics["wallet"] is None
    assert one.restarts_1h == 3.0 and one.open_trades == 1 and one.closed_trades == 4


def test_the_user_filter_keeps_one_users_pools_bots_and_alerts(plan):
    fleet = model.fleet([reading(plan)], "1h", user="bob")
    assert [b.key for b in fleet.bots] == ["bob/three"]
    assert [r.pool for r in fleet.heat] == ["bob-pool-1"]
    assert fleet.alerts == []


def test_a_host_that_is_down_is_unreachable_and_its_bots_unknown(plan):
    down = HostReading("vps2", "local", plan=plan, error="vps2: unreachable: timed out")
    fleet = model.fleet([down], "1h")
    (host,) = fleet.hosts
    assert not host.reachable and host.error == "vps2: unreachable: timed out"
    assert {b.health for b in fleet.bots} == {"unknown"}
    assert {b.state for b in fleet.bots} == {"unknown"}


def test_monitoring_off_shows_the_current_state_without_history(plan):
    off = reading(plan, answers={}, monitoring=False)
    fleet = model.fleet([off], "1h")
    (host,) = fleet.hosts
    assert host.monitoring == "off" and host.used_mb is not None  # from the probe's meminfo
    assert {b.health for b in fleet.bots} == {"healthy"}
    assert all(set(r.cells) == {None} for r in fleet.heat)
    pool = host.pools[0]
    assert pool.used_mb == 500.0 and pool.share == 500.0 / pool.limit_mb


def test_pool_and_bot_charts_are_aligned_on_the_window(plan):
    seen = reading(plan)
    times = model.grid("1h", [seen])
    pool = plan.hosts["local"].pools[0]
    charts = model.pool_charts(seen, pool, times)
    assert charts["memory"]["limit"][-1] == 1024.0 and charts["memory"]["pool"][-1] == 972.8
    assert charts["memory"]["bots"] == {"one": [None] * (len(times) - 1) + [100.0]}
    assert charts["cpu"][-1] == 0.12
    bot = plan.hosts["local"].bots[0]
    money = model.bot_charts(seen, bot, times)
    assert not model.has_data(money["profit"])  # the query failed: no data, not an error
    assert money["wallet"][-2:] == [1000.0, None]


def test_settings_shown_are_the_plans_without_secrets(plan):
    shown = model.settings_of(plan.hosts["local"].bots[0])
    assert "credentials" not in shown and "notify" not in shown and "freqtrade" not in shown
    assert shown["strategy"] == "SampleStrategy" and shown["stake_amount"] == 10


# --- the web application ----------------------------------------------------------------------


def app_for(plan, layout: str, token: str | None = None, **changes: Any):
    remote = RemoteHost("@local", "local", layout, {})
    fleet = Fleet([remote], interval_s=15)
    fleet.readings = [reading(plan, **changes)]
    return server.create_app(fleet, token).test_client()


def test_every_page_renders_and_escapes_what_bots_wrote(plan, write_layout):
    layout = str(write_layout(LAYOUT))
    seen = reading(plan)
    seen.health.bots["alice-one"]["last_warnings"] = ["an older warning", HOSTILE]
    client = app_for(plan, layout, health=seen.health)
    for path in ("/", "/?window=1d", "/pool/@local/alice-pool-1", "/bot/alice/one"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    bot = client.get("/bot/alice/one").text
    escaped = "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"
    assert escaped in bot and bot.index(escaped) < bot.index("an older warning")  # newest first
    assert "no tunnel needed: http://127.0.0.1:" in bot
    fleet = client.get("/").text
    assert len(re.findall(r'class="heatrow"', fleet)) == 2
    assert 'data-bot="alice/two"' in fleet and "BotDown" in fleet
    api = client.get("/api/fleet?user=alice").get_json()
    assert [b["key"] for h in api["hosts"] for p in h["pools"] for b in p["bots"]] == [
        "alice/one",
        "alice/two",
    ]
    chart = client.get("/api/pool/@local/alice-pool-1").get_json()
    assert chart["charts"]["memory"]["limit"][-1] == 1024.0


def test_bad_parameters_are_clear_errors(plan, write_layout):
    client = app_for(plan, str(write_layout(LAYOUT)))
    assert client.get("/?window=1y").status_code == 400
    assert client.get("/?user=../etc").status_code == 400
    assert client.get("/bot/alice/nobody").status_code == 404
    assert client.get("/bot/Alice/one").status_code == 404
    assert client.get("/pool/@local/nope-pool-9").status_code == 404
    assert client.get("/api/pool/elsewhere/alice-pool-1").status_code == 404


def test_with_a_token_nothing_is_served_without_it(plan, write_layout):
    token = "s3cret-token-0123456789"
    client = app_for(plan, str(write_layout(LAYOUT)), token=token)
    assert client.get("/").status_code == 401
    assert client.get("/api/fleet").status_code == 401
    assert client.get("/?token=wrong-token-0000000").status_code == 403
    assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    first = client.get(f"/?window=1d&token={token}")
    assert first.status_code == 302 and first.headers["Location"] == "/?window=1d"
    assert token not in first.headers["Location"]
    assert client.get("/api/fleet").status_code == 200  # the cookie it set


def test_only_loopback_listens_without_a_token(tmp_path):
    assert server.is_loopback("127.0.0.1") and server.is_loopback("::1")
    assert not server.is_loopback("0.0.0.0") and not server.is_loopback("192.0.2.1")
    with pytest.raises(server.DashboardError, match="--token"):
        server.serve(Fleet([], 15), "0.0.0.0", 0, None)
    loose = tmp_path / "token"
    loose.write_text("s3cret-token-0123456789\n")
    loose.chmod(0o644)
    with pytest.raises(server.DashboardError, match="chmod 600"):
        server.read_token(str(loose))
    loose.chmod(0o600)
    assert server.read_token(str(loose)) == "s3cret-token-0123456789"
    loose.write_text("short\n")
    with pytest.raises(server.DashboardError, match="16 characters"):
        server.read_token(str(loose))


# --- reading a host: the checks' two commands, Prometheus inside the second ------------------


class Recorded(RemoteHost):
    """A host that records every command and answers as a host with nothing running."""

    def run(self, command: str, purpose: str) -> list[str]:
        self.commands += 1
        self.data.setdefault("sent", []).append((purpose, command))
        if self.data.get("down"):
            raise collect.RemoteError(f"{self.name}: unreachable during {purpose}: timed out")
        return []


def test_a_refresh_is_two_commands_per_host_with_prometheus_asked_in_the_second(
    write_layout, secrets
):
    many = MINIMAL + "".join(f"      - name: bot{i}\n" for i in range(12))
    cases = ((LAYOUT, True), (many, True), (LAYOUT, False))
    for number, (layout, monitoring) in enumerate(cases):
        text = layout if monitoring else "monitoring: {enabled: false}\n" + layout
        path = write_layout(text, name=f"layout{number}.yaml")  # plans are cached per file
        remote = Recorded("@local", "local", str(path), {})
        read = collect.HostReader(remote).read()
        assert read.error is None and read.commands == 2
        (_, snapshot), (_, second) = remote.data["sent"]
        asks_prometheus = "docker exec" in second and "query_range" in second
        assert asks_prometheus == monitoring
        assert all(secrets.api_credentials(b.key).password not in second for b in read.plan.bots)


def test_an_unreachable_host_is_a_reading_with_its_error(write_layout, secrets):
    remote = Recorded("vps1", "local", str(write_layout(LAYOUT)), {"down": True})
    read = collect.HostReader(remote).read()
    assert read.error == "vps1: unreachable during the host snapshot: timed out"
    assert read.commands == 1
    fleet = Fleet([remote], interval_s=15)
    assert [r.error for r in fleet.refresh()] == [read.error] and fleet.refreshes == 1
    assert model.fleet(fleet.readings, "1h").hosts[0].reachable is False


class Garbled(Recorded):
    """A host whose snapshot is not what botpool prints."""

    def run(self, command: str, purpose: str) -> list[str]:
        super().run(command, purpose)
        return ["@@botpool files", "not a file line"]


def test_a_host_that_prints_nonsense_is_a_reading_with_its_error(write_layout, secrets):
    read = collect.HostReader(Garbled("vps1", "local", str(write_layout(LAYOUT)), {})).read()
    assert read.error == "vps1: unreadable answer: ValueError"
