"""Ask every bot of a host how it is, the way a person would: through its published port.

PROBE runs on the host in a throwaway container of the pool image (`--network host`, the
pools folder mounted read-only): it reads each bot's own config for its API login, calls
the bot at 127.0.0.1:<host port>, and reads the tail of its log and supervisord's log. So
no port is opened, no credential crosses the network, and the path tested is the real one
(published on the host's loopback). One command per host; its output is one JSON line.

The script is standard-library Python, passed as an argument (it holds no secret).
"""

from __future__ import annotations

import json
import shlex

PROBE = r"""
import base64, json, re, sys, time, urllib.request
from pathlib import Path

def call(port, path, auth=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/{path}")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", "Basic " + token)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())

def tail(path, lines=400):
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []

report = {}
now = time.time()
for target in json.loads(sys.argv[1]):
    bot = Path("/pools") / target["pool"] / "bots" / target["bot"]
    result = report[target["program"]] = {"port": target["port"]}
    try:
        api = json.loads((bot / "config.json").read_text())["api_server"]
        auth = (api["username"], api["password"])
        result["ping"] = call(target["port"], "ping").get("status") == "pong"
        config = call(target["port"], "show_config", auth)
        result["config"] = {k: config.get(k) for k in (
            "bot_name", "dry_run", "strategy", "stake_amount", "stake_currency", "exchange",
            "max_open_trades", "state")}
        result["count"] = call(target["port"], "count", auth)
        result["trade_count"] = call(target["port"], "profit", auth).get("trade_count")
        result["whitelist"] = call(target["port"], "whitelist", auth).get("length")
        balance = call(target["port"], "balance", auth)
        stake = [c for c in balance.get("currencies", []) if c.get("currency") == config.get(
            "stake_currency")]
        result["wallet"] = {"total": balance.get("total"), "free": stake[0].get("free")
                            if stake else None}
        result["last_process_ts"] = call(target["port"], "health", auth).get("last_process_ts")
    except Exception as error:  # report, never crash: one silent bot must not hide others
        result["error"] = f"{type(error).__name__}: {error}"
    # freqtrade's warning about listening on 0.0.0.0 is expected in a container: skip it
    warnings = [l for l in tail(bot / "logs" / "freqtrade.log")
                if (" - WARNING - " in l or " - ERROR - " in l) and "SECURITY WARNING" not in l]
    result["last_warning"] = warnings[-1][:300] if warnings else None
    exits = 0
    for line in tail(Path("/pools") / target["pool"] / "logs" / "supervisord.log", 2000):
        if f"exited: {target['program']} " in line:
            try:
                stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
            except ValueError:
                continue
            exits += now - stamp < 3600
    result["exits_last_hour"] = exits
print(json.dumps(report))
"""

MARK = "@@botpool "


def command(root: str, image: str, targets: list[dict[str, object]]) -> str:
    """Shell printing listening sockets, memory, container memory and the probe's JSON."""
    pools = f"{root}/pools"
    probe = (
        f"docker run --rm --network host --user 1000 --cap-drop ALL -v "
        f"{shlex.quote(pools)}:/pools:ro {shlex.quote(image)} python3 -c "
        f"{shlex.quote(PROBE)} {shlex.quote(json.dumps(targets))}"
    )
    return "\n".join(
        [
            f"echo '{MARK}listening'",
            "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null",
            f"echo '{MARK}meminfo'",
            "cat /proc/meminfo",
            f"echo '{MARK}stats'",
            "docker stats --no-stream --format '{{.Name}}|{{.MemUsage}}' 2>/dev/null",
            f"echo '{MARK}probe'",
            f"{probe} 2>&1" if targets else "echo '{}'",
            "exit 0",
        ]
    )
