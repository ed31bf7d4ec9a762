"""Benchmark the monitoring stack beside the fleet it watches, on every host of an inventory.

    .venv/bin/python bench/monitoring.py INVENTORY [--json]

Each host's own Prometheus is asked (botpool/payloads/promquery.py in the monitoring container,
one remote command per host, as the dashboard does) for what the stack costs and what the
fleet costs, measured by the same exporters over the last RATE window:

* memory: the resident memory of Prometheus, Alertmanager, the node exporter and botpool's
  exporter (each one's `process_resident_memory_bytes`), against the pools' memory (the
  exporter's `botpool_pool_memory_bytes`, the containers' cgroup figure) and the host's total;
* CPU: each process' `rate(process_cpu_seconds_total)` against the pools' cgroup CPU, in % of
  one core;
* disk: samples appended per second and the bytes one sample takes in Prometheus' compacted
  blocks (`prometheus_tsdb_compaction_chunk_size_bytes / _samples`; until the first
  compaction, about two hours after start, Prometheus' documented 1-2 bytes: 2 is assumed and
  said so), so the disk a day takes and the disk at the layout's retention, against its
  `retention_size` budget.

It only reads (queries); point it at a converged fleet: `inventory/local.py` after `make up`,
or the soak's inventory while `bench/soak.py` runs (50 bots on the seed's VPS).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.density import table  # noqa: E402
from botpool.dashboard.collect import HostReader  # noqa: E402
from botpool.hosts.prometheus import ask, vector  # noqa: E402
from botpool.hosts.remote import InventoryError, RemoteError, RemoteHost  # noqa: E402

RATE = "5m"
ASSUMED_BYTES_PER_SAMPLE = 2.0  # Prometheus' storage docs: 1-2 bytes per sample
STACK = ("prometheus", "alertmanager", "node", "botpool")  # the scrape jobs of the stack
QUERIES = {
    "memory": "process_resident_memory_bytes",
    "cpu": f"rate(process_cpu_seconds_total[{RATE}])",
    "host_memory": "node_memory_MemTotal_bytes",
    "pools_memory": "sum(botpool_pool_memory_bytes)",
    "pools_cpu": f"sum(rate(botpool_pool_cpu_seconds_total[{RATE}]))",
    "bots": "count(botpool_bot_pss_bytes)",
    "series": "prometheus_tsdb_head_series",
    "samples": f"sum(rate(prometheus_tsdb_head_samples_appended_total[{RATE}]))",
    "bytes_per_sample": "prometheus_tsdb_compaction_chunk_size_bytes_sum"
    " / prometheus_tsdb_compaction_chunk_samples_sum",
    "blocks": "prometheus_tsdb_storage_blocks_bytes",
    "uptime": 'time() - process_start_time_seconds{job="prometheus"}',
}
MIB = 2**20
DAY = 86400
SIZE_UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}
DURATION_UNITS = {"h": 3600, "d": DAY, "w": 7 * DAY, "y": 365 * DAY}


def values(answers: dict[str, Any], key: str) -> dict[str, float]:
    """One query's vector as {job (or ""): value}; {} if it failed or is empty (a value that
    is not finite, NaN when there is no data yet, is left out)."""
    return {s.labels.get("job", ""): s.value for s in vector(answers.get(key))}


def one(answers: dict[str, Any], key: str) -> float | None:
    found = list(values(answers, key).values())
    return found[0] if found else None


def size_bytes(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([KMGT]?B)", text).groups()  # type: ignore[union-attr]
    return float(number) * SIZE_UNITS[unit]


def duration_s(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9]+)([hdwy])", text).groups()  # type: ignore[union-attr]
    return int(number) * DURATION_UNITS[unit]


def measure(remote: RemoteHost) -> dict[str, Any]:
    """The figures of one host (or its error)."""
    reader = HostReader(remote)
    try:
        want = reader.want()
        settings = want.plan.layout.monitoring
        if not settings.enabled:
            return {"host": remote.name, "error": "monitoring is disabled in the layout"}
        asked = [{"id": key, "expr": expr} for key, expr in QUERIES.items()]
        answers = ask(remote, want.plan.layout, asked)
    except RemoteError as exc:
        return {"host": remote.name, "error": str(exc)}
    memory, cpu = values(answers, "memory"), values(answers, "cpu")
    measured = one(answers, "bytes_per_sample")
    per_sample = measured or ASSUMED_BYTES_PER_SAMPLE
    samples = one(answers, "samples") or 0.0
    per_day = samples * DAY * per_sample
    return {
        "host": remote.name,
        "bots": int(one(answers, "bots") or 0),
        "host_memory_mib": (one(answers, "host_memory") or 0) / MIB,
        "pools_memory_mib": (one(answers, "pools_memory") or 0) / MIB,
        "pools_cpu_pct": 100 * (one(answers, "pools_cpu") or 0),
        "stack_memory_mib": {job: memory.get(job, 0) / MIB for job in STACK},
        "stack_cpu_pct": {job: 100 * cpu.get(job, 0) for job in STACK},
        "series": int(one(answers, "series") or 0),
        "samples_per_s": samples,
        "bytes_per_sample": per_sample,
        "bytes_per_sample_measured": measured is not None,
        "disk_per_day_mib": per_day / MIB,
        "disk_at_retention_mib": per_day * duration_s(settings.retention) / DAY / MIB,
        "retention": settings.retention,
        "retention_size_mib": size_bytes(settings.retention_size) / MIB,
        "blocks_mib": (one(answers, "blocks") or 0) / MIB,
        "prometheus_uptime_h": (one(answers, "uptime") or 0) / 3600,
    }


def report(figures: list[dict[str, Any]]) -> str:
    memory_rows, disk_rows = [], []
    for f in figures:
        if "error" in f:
            memory_rows.append((f["host"], "error: " + f["error"][:80], "", "", "", "", "", ""))
            continue
        stack = sum(f["stack_memory_mib"].values())
        parts = " / ".join(f"{f['stack_memory_mib'][j]:.0f}" for j in STACK)
        memory_rows.append(
            (
                f["host"],
                f["bots"],
                f"{f['pools_memory_mib']:.0f}",
                f"{stack:.0f} ({parts})",
                f"{100 * stack / max(f['pools_memory_mib'], 1):.1f} %",
                f"{f['host_memory_mib']:.0f}",
                f"{f['pools_cpu_pct']:.1f}",
                f"{sum(f['stack_cpu_pct'].values()):.1f}",
            )
        )
        disk_rows.append(
            (
                f["host"],
                f["series"],
                f"{f['samples_per_s']:.0f}",
                f"{f['bytes_per_sample']:.2f}"
                + ("" if f["bytes_per_sample_measured"] else " (assumed)"),
                f"{f['disk_per_day_mib']:.0f}",
                f"{f['disk_at_retention_mib']:.0f} ({f['retention']})",
                f"{f['retention_size_mib']:.0f}",
                f"{f['blocks_mib']:.0f} after {f['prometheus_uptime_h']:.1f} h",
            )
        )
    out = table(
        (
            "host",
            "bots",
            "pools MiB",
            "monitoring MiB (prometheus / alertmanager / node / botpool)",
            "monitoring / pools",
            "host MiB",
            "pools CPU % of a core",
            "monitoring CPU %",
        ),
        [tuple(map(str, r)) for r in memory_rows],
    )
    if disk_rows:
        out += "\n\n" + table(
            (
                "host",
                "series",
                "samples/s",
                "bytes/sample",
                "disk MiB/day",
                "disk MiB at retention",
                "budget MiB",
                "blocks now MiB",
            ),
            [tuple(map(str, r)) for r in disk_rows],
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inventory")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    args = parser.parse_args(argv)
    from botpool.hosts.remote import inventory_hosts

    try:
        hosts = inventory_hosts(args.inventory)
    except InventoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    figures = [measure(h) for h in hosts]
    print(json.dumps(figures, indent=1) if args.json else report(figures))
    return 1 if any("error" in f for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
