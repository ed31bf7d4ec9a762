"""`botpool status`'s reading of one bot: its supervisor state from the snapshot, and what its
API answers with the bot's own login. The bot's API is a test double: a few lines of
http.server on 127.0.0.1 that answer /ping to anyone and /count and /profit only to the login
the secrets give that bot, as freqtrade does."""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from botpool.core.plan import BotPlan, load_plan
from botpool.core.secretstore import SecretStore
from botpool.core.snapshot import ProgramState, Snapshot
from botpool.hosts.status import bot_status

from .conftest import MINIMAL

ANSWERS = {
    "/api/v1/ping": {"status": "pong"},
    "/api/v1/count": {"current": 2, "max": 3, "total_stake": 20},
    "/api/v1/profit": {"closed_trade_count": 7},
}


def fake_bot(login: str) -> ThreadingHTTPServer:
    """A freqtrade API double: /ping for anyone, the rest for `user:password` only."""

    class Api(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            authorised = self.headers.get("Authorization") == (
                "Basic " + base64.b64encode(login.encode()).decode()
            )
            if self.path not in ANSWERS or (self.path != "/api/v1/ping" and not authorised):
                self.send_response(401 if self.path in ANSWERS else 404)
                self.end_headers()
                return
            body = json.dumps(ANSWERS[self.path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Api)


@pytest.fixture
def bot(write_layout, secrets: SecretStore) -> Iterator[tuple[BotPlan, SecretStore]]:
    """alice/one, its API (the double) on a free port of 127.0.0.1."""
    (planned,) = load_plan(write_layout(MINIMAL)).bots
    creds = secrets.api_credentials(planned.key)
    server = fake_bot(f"{creds.username}:{creds.password}")
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield dataclasses.replace(planned, host_port=server.server_address[1]), secrets
    finally:
        server.shutdown()
        server.server_close()


def snapshot(bot: BotPlan, state: str) -> Snapshot:
    return Snapshot(programs={"pool": {bot.program: ProgramState(bot.program, state, 42, 60)}})


def test_a_bot_is_read_with_its_own_login_through_the_one_client(bot):
    planned, secrets = bot
    with httpx.Client(timeout=3) as client:
        status = bot_status(planned, "pool", snapshot(planned, "RUNNING"), secrets, client)
    assert (status.state, status.answers, status.open_trades, status.closed_trades) == (
        "RUNNING",
        True,
        2,
        7,
    )


def test_another_login_gets_no_figures_and_a_bot_that_is_gone_does_not_answer(bot, tmp_path):
    planned, _ = bot
    other = SecretStore(tmp_path / "other-secrets")  # another master key: another login
    with httpx.Client(timeout=3) as client:
        status = bot_status(planned, "pool", snapshot(planned, "RUNNING"), other, client)
        assert (status.answers, status.open_trades, status.closed_trades) == (True, None, None)
        with socket.socket() as closed:  # a port nothing listens on
            closed.bind(("127.0.0.1", 0))
            gone = dataclasses.replace(planned, host_port=closed.getsockname()[1])
            status = bot_status(gone, "pool", Snapshot(), other, client)
    assert (status.state, status.answers, status.open_trades) == ("absent", False, None)
