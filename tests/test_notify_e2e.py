"""Notifications from a real bot, on the real engine: a dry-run bot trading on the sandbox
exchange posts its entry and exit messages to a webhook, and no URL shows in any output.

The webhook receiver is a test double: a few lines of Python's http.server in a container
of the pool image, on the user's Docker network (where the bots can reach it by name, as
they would a real webhook service), printing every request it gets as one JSON line to its
`docker logs`.
"""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from botpool.core import names
from botpool.core.image import pool_images

from .e2e import REPO, VENV, Deployment, docker, new_deployment, wait_for

pytestmark = pytest.mark.e2e

PROJECT = "e2enotify"
BASE_PORT = 19950
USERS = """
nia:
  bots:
    - name: one
    - {name: two, pairs: [ETH/USDT]}
"""
NOTIFIED = USERS.replace(
    "    - name: one\n", "    - name: one\n      notify: {webhook: {credentials: sink}}\n"
)
SINK = f"{PROJECT}_sink"  # on the user's network: the bots find it by this name
# the URL is the secret: its path and query must show nowhere but in the bot's config
SECRET_PATH = "hook-SECRETPATH"
SECRET_QUERY = "SECRETQUERY"
URL = f"http://{SINK}:8080/{SECRET_PATH}?token={SECRET_QUERY}"
FRONTEND = f"http://127.0.0.1:{BASE_PORT}"  # FreqUI opened from nia/one's port
SINK_CODE = r"""
import http.server, json
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        size = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
        body = self.rfile.read(size).decode("utf-8", "replace")
        print(json.dumps({"path": self.path, "type": self.headers.get("Content-Type"),
                          "body": body}), flush=True)
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Sink)
print("listening", flush=True)
server.serve_forever()
"""


@pytest.fixture(scope="module")
def dep(tmp_path_factory) -> Deployment:
    deployment = new_deployment(tmp_path_factory.mktemp("notify"), "e2enotify", BASE_PORT)
    deployment.project = PROJECT
    docker("rm", "--force", SINK, check=False)  # a killed session's
    deployment.write(USERS, extra_yaml="")
    with_origins(deployment)
    try:
        deployment.converge()
        deployment.wait_answering()
        yield deployment
    finally:
        docker("rm", "--force", SINK, check=False)  # before the network goes
        deployment.teardown()


def with_origins(dep: Deployment) -> None:
    text = dep.layout.read_text()
    dep.layout.write_text(
        text.replace("defaults:\n", f"defaults:\n  frequi_origins: [{FRONTEND}]\n", 1)
    )


def received() -> list[dict]:
    """Every request the sink got, in order."""
    lines = docker("logs", SINK).splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def start_sink(dep: Deployment) -> None:
    image = pool_images(dep.plan().layout)["2026.9"].tag
    docker(
        *("run", "--detach", "--name", SINK, "--network", names.user_network(PROJECT, "nia")),
        *("--user", "65534:65534", "--cap-drop", "ALL", "--memory", "64m"),
        *("--label", "botpool-test=notify-sink", "--entrypoint", "python3"),
        *(image, "-u", "-c", SINK_CODE),
    )
    wait_for(lambda: "listening" in docker("logs", SINK), timeout=30, what="the sink")


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


def test_adding_a_webhook_restarts_that_bot_only_and_prints_no_url(dep):
    start_sink(dep)
    store = dep.secrets.directory / "notify"
    store.mkdir(mode=0o700)
    (store / "sink.json").write_text(json.dumps({"url": URL}))
    (store / "sink.json").chmod(0o600)
    pool = names.pool_container(PROJECT, "nia-pool-1")
    before = dep.pids(pool)
    dep.write(NOTIFIED)
    with_origins(dep)
    run = dep.converge(args=("--diff", "-vvv"))  # the most a person could ask it to print
    after = dep.pids(pool)
    assert {p for p in before if before[p] != after[p]} == {"nia-one"}
    assert_no_secret(run.output)
    config = dep.root / "pools" / "nia-pool-1" / "bots" / "one" / "config.json"
    assert json.loads(config.read_text())["webhook"]["url"] == URL  # root:bot 0640 only
    dep.wait_answering()


def test_the_bot_posts_its_entry_and_exit_naming_itself_and_the_pair(dep):
    def events() -> dict[str, dict]:
        found = {}
        for request in received():
            assert request["path"] == f"/{SECRET_PATH}?token={SECRET_QUERY}"
            assert request["type"] == "application/json"
            message = json.loads(request["body"])
            found.setdefault(message["event"], message)
        return found

    wait_for(lambda: "entry" in events(), timeout=180, what="an entry message")
    wait_for(lambda: {"exit", "exit_fill"} <= events().keys(), timeout=900, what="an exit")
    found = events()
    for event in ("entry", "entry_fill", "exit", "exit_fill"):
        message = found[event]
        assert (message["bot"], message["pair"]) == ("nia-one", "BTC/USDT"), message
        assert message["text"].startswith("nia-one: ") and "BTC/USDT" in message["text"]
        assert message["trade_id"].isdigit()
    assert found["exit_fill"]["trade_id"] == found["entry"]["trade_id"]
    # the bot without notify: sent nothing (every request came from nia-one)
    assert {json.loads(r["body"])["bot"] for r in received()} == {"nia-one"}


def test_plan_drift_and_the_bots_log_show_no_url(dep):
    for args in (("plan", str(dep.layout)), ("plan", str(dep.layout), "--json")):
        code, output = botpool(dep, *args)
        assert code == 0, output
        assert_no_secret(output)
    assert "webhook" in botpool(dep, "plan", str(dep.layout))[1]  # which service, no more
    config = dep.root / "pools" / "nia-pool-1" / "bots" / "one" / "config.json"
    original = config.read_text()
    edited = json.loads(original)
    edited["webhook"]["url"] = URL.replace(SECRET_QUERY, "EDITEDBYHAND")
    config.write_text(json.dumps(edited))  # someone edits the config on the host
    code, output = botpool(dep, "drift", "inventory/local.py")
    assert code == 2, output
    assert "webhook.url differ (values not shown)" in output
    assert_no_secret(output)
    assert "EDITEDBYHAND" not in output
    code, output = botpool(dep, "drift", "inventory/local.py", "--json")
    assert code == 2 and "webhook.url" in output
    assert_no_secret(output)
    dep.converge()  # puts the config back
    assert json.loads(config.read_text()) == json.loads(original)
    log = dep.root / "pools" / "nia-pool-1" / "bots" / "one" / "logs" / "freqtrade.log"
    text = log.read_text()
    assert "Sending rpc message" in text  # freqtrade logs the messages it sends...
    assert_no_secret(text)  # ...and never where they go


def test_every_bot_allows_frequi_from_the_listed_origin_only(dep):
    dep.wait_answering()
    two = next(b for b in dep.plan().bots if b.key == "nia/two")
    url = f"http://127.0.0.1:{two.host_port}/api/v1/ping"

    def preflight(origin: str) -> httpx.Response:
        headers = {"Origin": origin, "Access-Control-Request-Method": "GET"}
        return httpx.options(url, headers=headers, timeout=5)

    allowed = preflight(FRONTEND)
    assert allowed.headers.get("access-control-allow-origin") == FRONTEND
    assert allowed.headers.get("access-control-allow-credentials") == "true"
    refused = preflight("http://127.0.0.1:8666")
    assert "access-control-allow-origin" not in refused.headers
