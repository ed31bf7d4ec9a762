"""A TEST DOUBLE of freqtrade's REST API, not freqtrade: the seven routes the probe calls.

`/api/v1/ping` answers without a login, the others need HTTP basic auth, as in freqtrade
2026.9; the answers carry the fields the probe reads, shaped as freqtrade shapes them
(stake_amount as text in show_config, the stake currency among balance's currencies). It
can also misbehave the ways a bot can: never answer, or answer one byte at a time.
The real API is covered end to end (tests/test_checks_e2e.py).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FreqtradeDouble:
    """One bot's API on 127.0.0.1, on a free port; `behaviour`: answer, hang or trickle."""

    def __init__(
        self,
        bot_name: str,
        login: tuple[str, str] = ("user", "secret"),
        behaviour: str = "answer",
        trade_count: int = 4,
        stake_amount: str = "10",
        wallet: float = 1000.0,
    ) -> None:
        self.login, self.behaviour = login, behaviour
        self.closed = threading.Event()
        self.answers: dict[str, dict[str, Any]] = {
            "ping": {"status": "pong"},
            "show_config": {
                "bot_name": bot_name,
                "dry_run": True,
                "strategy": "SampleStrategy",
                "stake_amount": stake_amount,
                "stake_currency": "USDT",
                "exchange": "sandbox",
                "max_open_trades": 3,
                "state": "running",
            },
            "count": {"current": 0, "max": 3, "total_stake": 0},
            "profit": {"trade_count": trade_count},
            "whitelist": {"whitelist": ["BTC/USDT"], "length": 1, "method": ["StaticPairList"]},
            "balance": {
                "currencies": [{"currency": "USDT", "free": wallet, "balance": wallet}],
                "total": wallet,
            },
            "health": {"last_process_ts": int(time.time()) - 5},
        }
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = self.path.removeprefix("/api/v1/")
                if double.behaviour == "hang":
                    double.closed.wait()
                    return
                if route not in double.answers:
                    return self._send(404, {"detail": "Not Found"})
                if route != "ping" and not self._authorised():
                    return self._send(401, {"detail": "Unauthorized"})
                self._send(200, double.answers[route])

            def _authorised(self) -> bool:
                user, password = double.login
                token = base64.b64encode(f"{user}:{password}".encode()).decode()
                return self.headers.get("Authorization") == f"Basic {token}"

            def _send(self, status: int, answer: dict[str, Any]) -> None:
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if double.behaviour == "trickle":  # each byte within any socket timeout
                    for byte in body:
                        if double.closed.wait(0.5):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                else:
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
