"""botpool's Prometheus exporter: per pool and per bot, what the host really runs.

Runs in the host's monitoring container (botpool/core/monitoring.py), on the host's
network, as `python3 exporter.py CONFIG`. CONFIG (exporter.json, rendered by the converge)
names the pools and bots planned on this host and the hash of every file the converge
wrote into the pools. Every `interval_seconds` it reads, and keeps for the next scrape:
- each pool container's memory, memory limit and CPU time (the Docker API, via the socket),
- each bot's supervisor state, uptime and starts (`supervisorctl status` in its pool),
- whether each bot's API answers `/api/v1/ping` on its 127.0.0.1 port,
- how many of the converge's files in the pools are missing or differ (out of sync).
A planned bot whose pool is gone counts as not running: that is what BotDown is for.

Sampling in a loop rather than on each scrape: a scrape costs nothing, and a slow engine
never makes Prometheus time out. Bots are untrusted: their API answers are read bounded,
and files are hashed only when they are regular files (no link is followed).
Needs prometheus_client and the Docker SDK (Debian's python3-prometheus-client,
python3-docker); the parts tests read (parsing, counting, metrics) need neither.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POOLS = "/pools"  # the deployment's pools folder, mounted read-only
PING_TIMEOUT = 2.0
ANSWER_MAX_BYTES = 4096
FILE_MAX_BYTES = 16 << 20
STATES = {"RUNNING", "STARTING", "BACKOFF", "STOPPED", "STOPPING", "EXITED", "FATAL", "UNKNOWN"}


@dataclass(frozen=True)
class Program:
    state: str
    pid: int | None
    uptime_s: int | None


@dataclass(frozen=True)
class PoolReading:
    """One pool container as the engine and its supervisord show it."""

    running: bool
    memory_bytes: float = 0
    limit_bytes: float = 0
    cpu_seconds: float = 0
    programs: dict[str, Program] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str  # gauge | counter
    help: str
    labels: dict[str, str]
    value: float


def parse_status(text: str) -> dict[str, Program]:
    """`supervisorctl status` output: NAME STATE [pid N, uptime H:MM:SS | message]."""
    programs = {}
    for line in text.splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2 or parts[1] not in STATES:
            continue
        pid = uptime = None
        rest = parts[2] if len(parts) > 2 else ""
        if rest.startswith("pid "):
            pid_text, _, uptime_text = rest[4:].partition(", uptime ")
            pid = int(pid_text) if pid_text.isdigit() else None
            uptime = _seconds(uptime_text)
        programs[parts[0]] = Program(parts[1], pid, uptime)
    return programs


def _seconds(text: str) -> int | None:
    days = 0
    if "day" in text:
        day_text, _, text = text.partition(", ")
        days = int(day_text.split()[0]) if day_text.split()[0].isdigit() else 0
    try:
        h, m, s = (int(x) for x in text.strip().split(":"))
    except ValueError:
        return None
    return days * 86400 + h * 3600 + m * 60 + s


class Starts:
    """Counts each bot's starts seen: a new pid after a known one. The first pid seen is no
    start (the exporter may start long after the bot), so a restarted exporter adds none."""

    def __init__(self) -> None:
        self.last_pid: dict[tuple[str, str], int] = {}
        self.count: dict[tuple[str, str], int] = {}

    def see(self, key: tuple[str, str], pid: int | None) -> int:
        if pid is not None:
            if key in self.last_pid and self.last_pid[key] != pid:
                self.count[key] = self.count.get(key, 0) + 1
            self.last_pid[key] = pid
        return self.count.get(key, 0)


def out_of_sync(manifest: dict[str, str], pools: str = POOLS) -> int:
    """How many files the converge wrote are missing, not regular files, or changed."""
    return sum(1 for path, digest in manifest.items() if file_hash(f"{pools}/{path}") != digest)


def file_hash(path: str) -> str | None:
    """sha256 of a regular file, never through a link at its end; None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > FILE_MAX_BYTES:
            return None
        return hashlib.sha256(f.read()).hexdigest()


def ping(port: int) -> bool:
    """Does the bot's API answer /api/v1/ping with pong (no auth needed) on 127.0.0.1?"""
    url = f"http://127.0.0.1:{port}/api/v1/ping"
    try:
        with urllib.request.urlopen(url, timeout=PING_TIMEOUT) as answer:  # noqa: S310
            return bool(json.loads(answer.read(ANSWER_MAX_BYTES)) == {"status": "pong"})
    except (OSError, ValueError):
        return False


def samples(
    config: dict[str, Any],
    readings: dict[str, PoolReading | None],
    answers: Callable[[int], bool],
    starts: Starts,
    unsynced: int,
) -> list[Sample]:
    """The metrics of one cycle, from what was read (None: the pool's container is gone)."""
    out = []
    for pool in config["pools"]:
        reading = readings.get(pool["container"]) or PoolReading(running=False)
        labels = {"pool": pool["name"], "user": pool["user"]}
        out += [
            Sample("botpool_pool_up", "gauge", "the pool container runs", labels, reading.running),
            Sample(
                "botpool_pool_memory_bytes",
                "gauge",
                "memory the pool container uses (without page cache)",
                labels,
                reading.memory_bytes,
            ),
            Sample(
                "botpool_pool_memory_limit_bytes",
                "gauge",
                "memory limit of the pool container",
                labels,
                reading.limit_bytes,
            ),
            Sample(
                "botpool_pool_cpu_seconds",
                "counter",
                "CPU time the pool container used",
                labels,
                reading.cpu_seconds,
            ),
        ]
        for bot in pool["bots"]:
            program = reading.programs.get(bot["program"])
            running = program is not None and program.state == "RUNNING"
            bot_labels = {**labels, "bot": bot["name"]}
            pid = program.pid if program else None
            out += [
                Sample(
                    "botpool_bot_running", "gauge", "supervisor says RUNNING", bot_labels, running
                ),
                Sample(
                    "botpool_bot_api_up",
                    "gauge",
                    "the bot's API answers /api/v1/ping",
                    bot_labels,
                    running and answers(bot["port"]),
                ),
                Sample(
                    "botpool_bot_starts",
                    "counter",
                    "starts of the bot seen by this exporter (a new pid)",
                    bot_labels,
                    starts.see((pool["name"], bot["name"]), pid),
                ),
                Sample(
                    "botpool_bot_uptime_seconds",
                    "gauge",
                    "seconds since supervisor started the bot",
                    bot_labels,
                    (program.uptime_s or 0) if running and program else 0,
                ),
            ]
    out.append(
        Sample(
            "botpool_host_out_of_sync_files",
            "gauge",
            "files the last converge wrote into the pools that are missing or differ",
            {},
            unsynced,
        )
    )
    return out


# --- the engine: what needs the Docker SDK -----------------------------------------------


def read_pool(client: Any, container: str, supervisorctl: list[str]) -> PoolReading | None:
    """A pool container's memory, limit, CPU time and programs; None if it does not exist."""
    import docker.errors  # type: ignore[import-untyped,unused-ignore]

    try:
        found = client.containers.get(container)
    except docker.errors.NotFound:
        return None
    if found.status != "running":
        return PoolReading(running=False)
    stats = found.stats(stream=False)
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0)
    result = found.exec_run(supervisorctl, demux=False)
    return PoolReading(
        running=True,
        memory_bytes=max(0, memory.get("usage", 0) - cache),
        limit_bytes=memory.get("limit", 0),
        cpu_seconds=cpu / 1e9,
        programs=parse_status(result.output.decode(errors="replace")),
    )


def families(latest: list[Sample]) -> Iterator[Any]:
    """The samples as prometheus_client metric families (one per name)."""
    from prometheus_client.core import (  # type: ignore[import-not-found,unused-ignore]
        CounterMetricFamily,
        GaugeMetricFamily,
    )

    grouped: dict[str, list[Sample]] = {}
    for sample in latest:
        grouped.setdefault(sample.name, []).append(sample)
    for name, group in grouped.items():
        kind = CounterMetricFamily if group[0].kind == "counter" else GaugeMetricFamily
        family = kind(name, group[0].help, labels=sorted(group[0].labels))
        for sample in group:
            family.add_metric([sample.labels[k] for k in sorted(sample.labels)], sample.value)
        yield family


class Collector:
    """Serves the last cycle's samples to every scrape."""

    def __init__(self) -> None:
        self.latest: list[Sample] = []

    def collect(self) -> Iterator[Any]:
        yield from families(self.latest)


def main(argv: list[str]) -> int:
    import docker
    from prometheus_client import REGISTRY, start_http_server

    path = argv[0]
    config = json.loads(Path(path).read_text())
    collector = Collector()
    REGISTRY.register(collector)
    start_http_server(config["port"], addr=config["listen"])
    client = docker.DockerClient(base_url="unix:///var/run/docker.sock", timeout=30)
    starts = Starts()
    while True:
        began = time.monotonic()
        try:
            config = json.loads(Path(path).read_text())  # a converge may have changed the plan
            readings = {
                pool["container"]: read_pool(client, pool["container"], config["supervisorctl"])
                for pool in config["pools"]
            }
            unsynced = out_of_sync(config["manifest"])
            collector.latest = samples(config, readings, ping, starts, unsynced)
        except Exception as exc:  # noqa: BLE001 - one failed cycle must not end the exporter
            print(f"cycle failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        time.sleep(max(1.0, config["interval_seconds"] - (time.monotonic() - began)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
