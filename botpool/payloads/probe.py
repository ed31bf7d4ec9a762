"""Ask every bot of one host how it is; print one JSON line (see botpool/probe.py).

Runs in a throwaway container of the pool image, on the host's network:
`python3 -c SOURCE POOLS TARGETS`, POOLS being the pools folder and TARGETS a JSON list of
{"program", "pool", "bot", "port"}. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

# freqtrade's warning about listening on 0.0.0.0 is expected in a container: skip it
EXPECTED_WARNING = "SECURITY WARNING"


def call(port: int, path: str, auth: tuple[str, str] | None = None) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/{path}")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", "Basic " + token)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def tail(path: Path, lines: int = 400) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def ask(target: dict[str, Any], bot: Path, result: dict[str, Any]) -> None:
    """The bot's API, through its published port, with the login of its own config."""
    port = target["port"]
    api = json.loads((bot / "config.json").read_text())["api_server"]
    auth = (api["username"], api["password"])
    result["ping"] = call(port, "ping").get("status") == "pong"
    config = call(port, "show_config", auth)
    keys = (
        "bot_name",
        "dry_run",
        "strategy",
        "stake_amount",
        "stake_currency",
        "exchange",
        "max_open_trades",
        "state",
    )
    result["config"] = {k: config.get(k) for k in keys}
    result["count"] = call(port, "count", auth)
    result["trade_count"] = call(port, "profit", auth).get("trade_count")
    result["whitelist"] = call(port, "whitelist", auth).get("length")
    balance = call(port, "balance", auth)
    currency = config.get("stake_currency")
    stake = [c for c in balance.get("currencies", []) if c.get("currency") == currency]
    result["wallet"] = {
        "total": balance.get("total"),
        "free": stake[0].get("free") if stake else None,
    }
    result["last_process_ts"] = call(port, "health", auth).get("last_process_ts")


def probe(pools: Path, targets: list[dict[str, Any]], now: float) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for target in targets:
        bot = pools / target["pool"] / "bots" / target["bot"]
        result = report[target["program"]] = {"port": target["port"]}
        try:
            ask(target, bot, result)
        except Exception as error:  # report, never crash: one silent bot must not hide others
            result["error"] = f"{type(error).__name__}: {error}"
        warnings = [
            line
            for line in tail(bot / "logs" / "freqtrade.log")
            if (" - WARNING - " in line or " - ERROR - " in line) and EXPECTED_WARNING not in line
        ]
        result["last_warning"] = warnings[-1][:300] if warnings else None
        exits = 0
        for line in tail(pools / target["pool"] / "logs" / "supervisord.log", 2000):
            if f"exited: {target['program']} " in line:
                try:
                    stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
                except ValueError:
                    continue
                exits += now - stamp < 3600
        result["exits_last_hour"] = exits
    return report


def main() -> None:
    parser = argparse.ArgumentParser(prog="botpool-probe", description=__doc__)
    parser.add_argument("pools", type=Path, help="the pools folder (read only)")
    parser.add_argument("targets", type=json.loads, help="JSON list of bots to ask")
    args = parser.parse_args()
    print(json.dumps(probe(args.pools, args.targets, time.time())))


if __name__ == "__main__":
    main()
