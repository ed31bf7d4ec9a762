"""The part of bench/soak.py that runs inside the VPS: python3's standard library only.

    python3 soak_inside.py traffic CREDENTIALS OUT [--every 10]
    python3 soak_inside.py sample SPEC_JSON

`traffic` calls every bot's API as a dashboard would (ping, status, profit, balance, trades,
health every --every seconds per bot, one thread per bot, started spread over one period) on
the VPS's own 127.0.0.1, and appends one JSON line per bot and round to OUT: calls, errors
(with the first words of each), latencies, the bot's trade count and its heartbeat age
(/health's last_process_ts). CREDENTIALS is a 0600 JSON file (a list of {key, port, username,
password}) that it reads once; nothing of it is ever printed.

`sample` prints one JSON object: every process of each container of the deployment with its
PSS (/proc/PID/smaps_rollup) and name, supervisor's view of each pool, unexpected exits in each
pool's supervisord log, the VPS's own cgroup (memory, limit, OOM kills, CPU time), the
exporter's start counters and the alerts Prometheus saw firing since the previous sample.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ENDPOINTS = ("ping", "status", "profit", "balance", "trades", "health")
UNEXPECTED_EXIT = re.compile(r"exited: (\S+) \(.*not expected\)")


# --- traffic -------------------------------------------------------------------------------


def call(port: int, path: str, auth: str) -> tuple[float, object, str | None]:
    """One GET: (seconds, decoded JSON or None, error or None)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/{path}", headers={"Authorization": auth}
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.loads(answer.read())
        return time.monotonic() - started, body, None
    except (OSError, ValueError) as error:  # URLError, HTTPError, timeouts, bad JSON
        return time.monotonic() - started, None, f"{path}: {str(error)[:80]}"


def poll_bot(bot: dict[str, object], every: float, delay: float, out, lock, stop) -> None:  # type: ignore[no-untyped-def]
    login = f"{bot['username']}:{bot['password']}".encode()
    auth = "Basic " + base64.b64encode(login).decode()
    if stop.wait(delay):
        return
    while True:
        round_started = time.monotonic()
        record: dict[str, object] = {"t": time.time(), "bot": bot["key"]}
        latencies, errors = [], []
        for path in ENDPOINTS:
            seconds, body, error = call(int(bot["port"]), path, auth)  # type: ignore[call-overload]
            latencies.append(round(seconds, 4))
            if error:
                errors.append(error)
            elif path == "trades" and isinstance(body, dict):
                record["trades"] = body.get("total_trades")
            elif path == "health" and isinstance(body, dict) and body.get("last_process_ts"):
                record["heartbeat_age"] = round(time.time() - float(body["last_process_ts"]), 1)
        record.update(calls=len(ENDPOINTS), errors=errors, latencies=latencies)
        with lock:
            out.write(json.dumps(record) + "\n")
            out.flush()
        if stop.wait(max(0.0, every - (time.monotonic() - round_started))):
            return


def traffic(credentials: Path, out_path: Path, every: float) -> None:
    bots = json.loads(credentials.read_text())
    lock, stop = threading.Lock(), threading.Event()
    with open(out_path, "a") as out:
        threads = [
            threading.Thread(
                target=poll_bot,
                args=(bot, every, every * i / len(bots), out, lock, stop),
                daemon=True,
            )
            for i, bot in enumerate(bots)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


# --- one sample ----------------------------------------------------------------------------


def run(*args: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout


def pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else 0


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def processes(container: str) -> list[list[object]]:
    """[pid, ppid, args, PSS KiB, comm] of each process of a container (pids of the VPS)."""
    rows: list[list[object]] = []
    for line in run("docker", "top", container, "-eo", "pid,ppid,args").splitlines()[1:]:
        pid, ppid, args = line.split(None, 2)
        rows.append([int(pid), int(ppid), args, pss_kib(int(pid)), comm(int(pid))])
    return rows


def supervisor(container: str, ctl: list[str]) -> dict[str, list[object]]:
    """program -> [state, pid or None]."""
    programs: dict[str, list[object]] = {}
    for line in run("docker", "exec", container, *ctl, "status").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            pid = int(parts[3].rstrip(",")) if len(parts) > 3 and parts[2] == "pid" else None
            programs[parts[0]] = [parts[1], pid]
    return programs


def unexpected_exits(log: Path) -> dict[str, int]:
    """program -> exits supervisord called "not expected", in its log and rotated logs."""
    counts: dict[str, int] = {}
    for path in sorted(log.parent.glob(log.name + "*")):
        for match in UNEXPECTED_EXIT.finditer(path.read_text(errors="replace")):
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def cgroup() -> dict[str, int | None]:
    """This VPS's memory and CPU as its cgroup accounts them (v1 or v2), OOM kills included
    from every cgroup below it (its containers). anon: anonymous and shared memory, which
    without swap the kernel cannot take back (page cache it can, before it kills)."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    own = {c: path for _, cs, path in (line.split(":", 2) for line in lines) for c in cs.split(",")}
    if "memory" in own:  # v1
        memory = Path("/sys/fs/cgroup/memory") / own["memory"].lstrip("/")
        cpu = Path("/sys/fs/cgroup/cpuacct") / own.get("cpuacct", own["memory"]).lstrip("/")
        stat = stat_file(memory / "memory.stat")
        limit = int((memory / "memory.limit_in_bytes").read_text())
        return {
            "usage": int((memory / "memory.usage_in_bytes").read_text()),
            "inactive_file": stat.get("total_inactive_file", 0),
            "anon": stat.get("total_rss", 0) + stat.get("total_shmem", 0),
            "limit": limit if limit < 1 << 60 else None,
            "oom_kills": sum(
                stat_file(p).get("oom_kill", 0) for p in memory.rglob("memory.oom_control")
            ),
            "cpu_ns": int((cpu / "cpuacct.usage").read_text()),
        }
    path = Path("/sys/fs/cgroup") / own[""].lstrip("/")  # v2: "0::/path"
    stat = stat_file(path / "memory.stat")
    limit = (path / "memory.max").read_text().strip()
    return {
        "usage": int((path / "memory.current").read_text()),
        "inactive_file": stat.get("inactive_file", 0),
        "anon": stat.get("anon", 0) + stat.get("shmem", 0),
        "limit": None if limit == "max" else int(limit),
        "oom_kills": sum(stat_file(p).get("oom_kill", 0) for p in path.rglob("memory.events")),
        "cpu_ns": stat_file(path / "cpu.stat").get("usage_usec", 0) * 1000,
    }


def stat_file(path: Path) -> dict[str, int]:
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return str(answer.read().decode())
    except OSError:
        return None


def bot_starts(port: int) -> dict[str, float] | None:
    """botpool's exporter: `user/bot` -> botpool_bot_starts_total (None: no exporter)."""
    text = get(f"http://127.0.0.1:{port}/metrics")
    if text is None:
        return None
    starts = {}
    for line in text.splitlines():
        if line.startswith("botpool_bot_starts_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            starts[f"{labels.get('user')}/{labels.get('bot')}"] = float(line.rsplit(None, 1)[1])
    return starts


def alerts_fired(port: int, seconds: int) -> list[dict[str, str]] | None:
    """Alerts that were firing at some evaluation within the last `seconds` (None: no
    Prometheus answered)."""
    query = f'max_over_time(ALERTS{{alertstate="firing"}}[{max(seconds, 60)}s])'
    text = get(f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    if text is None:
        return None
    return [r["metric"] for r in json.loads(text)["data"]["result"]]


def all_pss_kib() -> int:
    """PSS of every process in the VPS (sshd, engine, shims, containers)."""
    return sum(pss_kib(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit())


def sample(spec: dict[str, object]) -> dict[str, object]:
    root, ctl = str(spec["root"]), list(spec["ctl"])  # type: ignore[call-overload]
    names = run("docker", "ps", "--filter", f"label=botpool.root={root}", "--format", "{{.Names}}")
    pools: dict[str, str] = dict(spec["pools"])  # type: ignore[call-overload]  # container -> pool
    return {
        "time": time.time(),
        "containers": {name: processes(name) for name in names.split()},
        "supervisor": {c: supervisor(c, ctl) for c in pools},
        "exits": {
            c: unexpected_exits(Path(root) / "pools" / pool / "logs" / "supervisord.log")
            for c, pool in pools.items()
        },
        "cgroup": cgroup(),
        "all_pss_kib": all_pss_kib(),
        "starts": bot_starts(int(spec["exporter_port"])),  # type: ignore[call-overload]
        "alerts": alerts_fired(int(spec["prometheus_port"]), int(spec["window"])),  # type: ignore[call-overload]
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("traffic")
    load.add_argument("credentials", type=Path)
    load.add_argument("out", type=Path)
    load.add_argument("--every", type=float, default=10)
    once = commands.add_parser("sample")
    once.add_argument("spec")
    args = parser.parse_args(argv)
    if args.command == "traffic":
        traffic(args.credentials, args.out, args.every)
    else:
        json.dump(sample(json.loads(args.spec)), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
