"""Notifications from a real bot, on the real engine: a dry-run bot trading on the sandbox
exchange posts its status, entry and exit messages to a webhook (the exit forced through
its API, as an owner may), and the webhook's URL shows nowhere but in that bot's config
(0640, root and the bot's own uid).

The receiver is a test double for Discord, Telegram or any webhook service: a few lines of
Python's http.server, in a container of the pool image that shares the pool container's
network namespace and listens on its 127.0.0.1 (so the bots reach it at
http://127.0.0.1:PORT/..., and nothing leaves this machine). It prints every request it gets
as one JSON line to its `docker logs`.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from .e2e import REPO, VENV, Deployment, docker, mode_of, new_deployment, wait_for

pytestmark = pytest.mark.e2e(minutes=1.1)

# nia/one trades ETH until its webhook is added, and BTC from then on: a BTC trade opened
# before could stay open for many minutes (the scalper exits at +0.2 %, or at break-even
# after 10 minutes), and no second BTC trade, so no entry message, comes while it does
USERS = """
nia:
  bots:
    - {name: one, pairs: [ETH/USDT]}
    - name: two
"""
NOTIFIED = USERS.replace(
    "{name: one, pairs: [ETH/USDT]}",
    "{name: one, pairs: [BTC/USDT], notify: {webhook: {credentials: sink}}}",
)
SINK_PORT = 47123  # inside the pool container's network namespace, on its 127.0.0.1
# the URL is the secret: its path and query must show nowhere but in the bot's config
SECRET_PATH = "hook-SECRETPATH"
SECRET_QUERY = "SECRETQUERY"
URL = f"http://127.0.0.1:{SINK_PORT}/{SECRET_PATH}?token={SECRET_QUERY}"
SINK_CODE = rf"""
import http.server, json
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        size = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
        body = self.rfile.read(size).decode("utf-8", "replace")
        print(json.dumps({{"path": self.path, "type": self.headers.get("Content-Type"),
                          "body": body}}), flush=True)
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", {SINK_PORT}), Sink)
print("listening", flush=True)
server.serve_forever()
"""


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = new_deployment(tmp_path_factory.mktemp("notify"), "e2enotify", 19400)
    sink = sink_name(deployment)
    docker("rm", "--force", sink, check=False)  # a killed session's
    deployment.write(USERS)
    try:
        deployment.converge()
        deployment.wait_answering()
        start_sink(deployment)
        yield deployment
    finally:
        docker("rm", "--force", sink, check=False)  # before its pool container goes
        deployment.teardown()


def sink_name(dep: Deployment) -> str:
    return f"{dep.project}-webhook-sink"


def start_sink(dep: Deployment) -> None:
    """The receiver, in the network namespace of nia's pool (unprivileged, 64 MB)."""
    pool = dep.container("nia-pool-1")
    image = docker("inspect", "--format", "{{.Config.Image}}", pool).strip()
    docker(
        *("run", "--detach", "--name", sink_name(dep), "--network", f"container:{pool}"),
        *("--user", "65534:65534", "--cap-drop", "ALL", "--memory", "64m"),
        *("--label", "botpool-test=notify-sink", "--entrypoint", "python3"),
        *(image, "-u", "-c", SINK_CODE),
    )
    wait_for(lambda: "listening" in docker("logs", sink_name(dep)), timeout=30, what="the sink")


def received(dep: Deployment) -> list[dict]:
    """Every request the sink got, in order."""
    lines = docker("logs", sink_name(dep)).splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def messages(dep: Deployment) -> dict[str, list[dict]]:
    """Every message the bots sent, by event, in order (each request checked on the way)."""
    found: dict[str, list[dict]] = {}
    for request in received(dep):
        assert request["path"] == f"/{SECRET_PATH}?token={SECRET_QUERY}"
        assert request["type"] == "application/json"
        message = json.loads(request["body"])
        found.setdefault(message["event"], []).append(message)
    return found


def botpool(dep: Deployment, *args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [str(VENV / "botpool"), *args],
        cwd=REPO,
        env=dep.environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def assert_no_secret(text: str) -> None:
    for secret in (SECRET_PATH, SECRET_QUERY, URL):
        assert secret not in text


def config_of(dep: Deployment, bot: str) -> dict:
    return json.loads(
        (dep.root / "pools" / "nia-pool-1" / "bots" / bot / "config.json").read_text()
    )


def test_adding_a_webhook_restarts_that_bot_only_and_prints_no_url(dep: Deployment) -> None:
    store = dep.secrets.directory / "notify"
    store.mkdir(mode=0o700)
    (store / "sink.json").write_text(json.dumps({"url": URL}))
    (store / "sink.json").chmod(0o600)
    before = dep.pids("nia-pool-1")
    dep.write(NOTIFIED)
    run = dep.converge(verbose=True, args=("--diff",))  # the most a person could ask to see
    after = dep.pids("nia-pool-1")
    assert {p for p in before if before[p] != after[p]} == {"nia-one"}, (before, after)
    assert_no_secret(run.output)
    assert config_of(dep, "one")["webhook"]["url"] == URL
    assert "webhook" not in config_of(dep, "two")
    (one,) = [b for b in dep.plan().bots if b.key == "nia/one"]
    config = dep.root / "pools" / "nia-pool-1" / "bots" / "one" / "config.json"
    assert mode_of(config) == (0, one.uid, 0o640)  # root writes it, only its bot reads it


def test_the_bot_reports_its_status_then_its_entry(dep: Deployment) -> None:
    wait_for(lambda: "status" in messages(dep), timeout=120, what="a status message")
    status = messages(dep)["status"][0]
    assert (status["bot"], status["text"]) == ("nia-one", "nia-one: running"), status
    # the scalper enters on the first candle with a signal (most candles have one), but the
    # market is random and the machine may be busy: bounded generously
    wait_for(
        lambda: "entry" in messages(dep),
        timeout=600,
        what="an entry message",
        then=lambda: dep.log_tail("nia", "one"),  # what the bot was doing, for the reader
    )
    entry = messages(dep)["entry"][0]
    assert (entry["bot"], entry["pair"]) == ("nia-one", "BTC/USDT"), entry
    assert entry["text"].startswith("nia-one: entering BTC/USDT (Long), ")
    assert entry["trade_id"].isdigit()
    # the bot without notify: sent nothing (every request came from nia-one)
    assert {json.loads(r["body"])["bot"] for r in received(dep)} == {"nia-one"}


def test_plan_drift_and_the_bots_log_show_no_url(dep: Deployment) -> None:
    for args in (("plan", str(dep.layout)), ("plan", str(dep.layout), "--json")):
        code, output = botpool(dep, *args)
        assert code == 0, output
        assert_no_secret(output)
    config = dep.root / "pools" / "nia-pool-1" / "bots" / "one" / "config.json"
    original = config.read_text()
    edited = json.loads(original)
    edited["webhook"]["url"] = URL.replace(SECRET_QUERY, "EDITEDBYHAND")
    config.write_text(json.dumps(edited))  # someone edits the config on the host
    for json_args in ((), ("--json",)):
        code, output = botpool(dep, "drift", "inventory/local.py", *json_args)
        assert code == 2, output
        assert "webhook.url" in output  # the key that differs, never its values
        assert_no_secret(output)
        assert "EDITEDBYHAND" not in output
    dep.converge()  # puts the config back
    assert json.loads(config.read_text()) == json.loads(original)
    log = dep.root / "pools" / "nia-pool-1" / "bots" / "one" / "logs" / "freqtrade.log"
    text = log.read_text()
    assert "Sending rpc message" in text  # freqtrade logs the messages it sends...
    assert_no_secret(text)  # ...and never where they go


def test_the_exit_follows_with_its_profit_for_the_same_trade(dep: Deployment) -> None:
    def exit_of_an_announced_trade() -> dict | None:
        found = messages(dep)
        announced = {m["trade_id"] for m in found.get("entry", [])}  # trades opened before
        return next((m for m in found.get("exit_fill", []) if m["trade_id"] in announced), None)

    # the scalper exits at +0.2 %, or at break-even after 10 minutes: rather than wait for the
    # market, the test exits the announced trade through the bot's API, as its owner would
    # (unless the market did first: then the bot answers that the trade is not open)
    trade_id = messages(dep)["entry"][0]["trade_id"]
    answer = None
    if not exit_of_an_announced_trade():
        answer = dep.api("nia", "one", "forceexit", post={"tradeid": trade_id})
    exit_fill = wait_for(
        exit_of_an_announced_trade,
        timeout=120,
        what="an announced exit",
        then=lambda: f"\nforceexit of trade {trade_id} answered {answer and answer.text}",
    )
    in_order = [json.loads(request["body"]) for request in received(dep)]
    trade = [m for m in in_order if m.get("trade_id") == exit_fill["trade_id"]]
    assert [m["event"] for m in trade][:2] == ["entry", "entry_fill"], trade
    assert {"exit", "exit_fill"} <= {m["event"] for m in trade}, trade
    assert {(m["bot"], m["pair"]) for m in trade} == {("nia-one", "BTC/USDT")}
    assert exit_fill["text"].startswith("nia-one: exited BTC/USDT ("), exit_fill
    assert " USDT (" in exit_fill["text"] and exit_fill["text"].endswith("%)"), exit_fill
