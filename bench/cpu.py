"""Where a command's CPU goes: every process that ends while it runs, by name.

    sudo .venv/bin/python bench/cpu.py [--top 25] [--by-parent] [--by-project] -- COMMAND [ARGS...]
    # e.g. -- make test-e2e

BSD process accounting (`accton`, Debian's acct package, installed if missing) records each
process as it exits, short-lived ones included (a `docker exec supervisorctl`, a pip
install, a bot that a test stopped), with its name, uid and user + system CPU time: what a
sampler of running processes misses. The kernel writes it for processes in containers and
nested containers too. Printed when the command ends: the command's wall time and exit code,
the machine's busy CPU-seconds over that time (/proc/stat), and CPU-seconds by process name
(processes of uids 200000 and up, a pool's bots and launchers, grouped apart). Then the
processes still running at the end (engines, a fleet beside the run, kernel threads): their
CPU-seconds during the command (from /proc/PID/stat), by the container they run in (the
outermost, by name) or, on the host, by name. What else ran on the machine meanwhile is
counted too: run it on a quiet machine, or read the containers' rows. Root only.

--by-project: also every container that ran during the command, removed ones included (each
container's cgroup is read every second: one removed keeps its last reading, at most a second
short), by project: the part of its name before the first `_` (botpool's names,
`<project>_<pool>`; each end-to-end deployment has its own project), other names with their
numbers and hex ids made `*`. Cgroups the engine does not know are containers of an engine
that runs inside a container (a test VPS's).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

ACCT_V3 = struct.Struct("<BBHIIIIIIf8H16s")  # struct acct_v3 (linux/acct.h)
BOT_UIDS = 200000  # botpool/core/names.py BOT_UID_BASE: each bot's (and launcher's) uid
HZ = 100  # AHZ: the unit of acct's times


def comp_t(value: int) -> int:
    """acct's 16-bit float: 13-bit mantissa, 3-bit base-8 exponent."""
    return (value & 0x1FFF) << (3 * ((value >> 13) & 7))


class Record(NamedTuple):
    name: str
    uid: int
    cpu: float  # seconds, user + system
    pid: int
    ppid: int  # its parent when it ended
    began: float  # seconds since the epoch (whole seconds)
    ended: float


def records(data: bytes) -> list[Record]:
    """Each acct_v3 record."""
    out = []
    for offset in range(0, len(data) - ACCT_V3.size + 1, ACCT_V3.size):
        fields = ACCT_V3.unpack_from(data, offset)
        if fields[1] != 3:  # ac_version
            continue
        uid, (pid, ppid, began, elapsed), comm = fields[4], fields[6:10], fields[-1]
        cpu = (comp_t(fields[10]) + comp_t(fields[11])) / HZ
        name = comm.rstrip(b"\0").decode(errors="replace")
        out.append(Record(name, uid, cpu, pid, ppid, began, began + elapsed / HZ))
    return out


Processes = dict[int, tuple[str, int, float, str]]  # running(): pid -> (name, start, CPU, id)


def parents(rows: list[Record], now: Processes) -> dict[int, str]:
    """The name of each record's parent (by index), or "?". Pids are reused within a long run
    (pid_max is often 32768), so the parent is the process of that pid alive when the child
    ended: a record whose life spans that moment, else a process still running (`now`) that
    started before it."""
    by_pid: dict[int, list[Record]] = collections.defaultdict(list)
    for row in rows:
        by_pid[row.pid].append(row)
    boot = time.time() - time.monotonic()  # near enough: /proc's start times are since boot
    tick = os.sysconf("SC_CLK_TCK")
    alive = {pid: (name, boot + start / tick) for pid, (name, start, *_) in now.items()}
    out = {}
    for index, child in enumerate(rows):
        found = [
            p.name for p in by_pid.get(child.ppid, []) if p.began - 1 <= child.ended <= p.ended + 1
        ]
        if not found and child.ppid in alive and alive[child.ppid][1] <= child.ended + 1:
            found = [alive[child.ppid][0]]
        out[index] = found[0] if found else "?"
    return out


def busy_seconds() -> float:
    """CPU-seconds the machine was not idle since boot (all cores)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def running() -> Processes:
    """Every process now: pid -> (name, start time in ticks, CPU-seconds, container id or "")."""
    tick, out = os.sysconf("SC_CLK_TCK"), {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cgroup") as f:
                groups = f.read()
        except OSError:  # it ended meanwhile
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        values = fields.split()  # from field 3 (state) on
        cpu = (int(values[11]) + int(values[12])) / tick  # utime, stime
        found = re.search(r"docker[/-]([0-9a-f]{64})", groups)
        out[int(pid)] = (name, int(values[19]), cpu, found.group(1) if found else "")
    return out


def containers() -> dict[str, str]:
    """id -> name of every container the engine knows (none if there is no engine)."""
    listed = subprocess.run(
        ["docker", "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"],
        capture_output=True,
        text=True,
    )
    return dict(line.split(" ", 1) for line in listed.stdout.splitlines() if " " in line)


CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTAINER_ID = re.compile(r"(?:^|docker-)([0-9a-f]{64})(?:\.scope)?$")
INSIDE = "(containers of an engine inside a container)"


def container_cpu(root: Path = CGROUP_ROOT) -> dict[str, float]:
    """CPU-seconds so far of each container's cgroup, by container id: cgroup v1 (cpuacct),
    or v2 with Docker's cgroupfs or systemd driver."""
    out = {}
    for path in root.glob("cpuacct/docker/*/cpuacct.usage"):  # v1: nanoseconds
        text = _read(path)
        if text.strip().isdigit():
            out[path.parent.name] = int(text) / 1e9
    for path in [*root.glob("docker/*/cpu.stat"), *root.glob("system.slice/docker-*/cpu.stat")]:
        found = CONTAINER_ID.search(path.parent.name)
        usage = re.search(r"^usage_usec (\d+)", _read(path), re.M)
        if found and usage:
            out[found.group(1)] = int(usage.group(1)) / 1e6
    return out


def _read(path: Path) -> str:
    """A cgroup file's text, or "" when its container went away since it was listed."""
    try:
        return path.read_text()
    except OSError:
        return ""


def project_of(name: str | None) -> str:
    """Where a container's CPU is counted: its botpool project, else its name with numbers
    and hex ids as `*` (`botpool-test-vps-1a2b3c4d` -> `botpool-test-vps-*`)."""
    if name is None:
        return INSIDE
    if "_" in name:
        return name.split("_", 1)[0]
    return re.sub(r"(?<=-)(?:[0-9a-f]{8,}|\d+)(?=-|$)", "*", name)


class ContainerSampler(threading.Thread):
    """Every container's CPU over the command, read each second."""

    def __init__(self, read: Callable[[], dict[str, float]] = container_cpu) -> None:
        super().__init__(daemon=True)
        self.read, self.stopping = read, threading.Event()
        self.first = read()
        self.last = dict(self.first)
        self.names = containers()
        self.unknown: set[str] = set()  # ids the engine did not know when asked

    def run(self) -> None:
        while not self.stopping.wait(1):
            self.sample()

    def sample(self) -> None:
        now = self.read()
        self.last.update(now)
        if now.keys() - self.names.keys() - self.unknown:  # new: ask the engine once
            self.names.update(containers())
            self.unknown |= now.keys() - self.names.keys()

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.sample()

    def by_project(self) -> dict[str, float]:
        totals: dict[str, float] = collections.defaultdict(float)
        for cid, cpu in self.last.items():
            totals[project_of(self.names.get(cid))] += cpu - self.first.get(cid, 0.0)
        return totals


def ran_on(before: Processes, now: Processes) -> dict[str, float]:
    """CPU-seconds, by container name (or "host: NAME" by process name), of the processes
    running `now`, counted from `before` for those that were already running then."""
    names, totals = containers(), collections.defaultdict(float)
    for pid, (name, start, cpu, container) in now.items():
        earlier = before.get(pid)
        if earlier is not None and earlier[1] == start:
            cpu -= earlier[2]
        totals[names.get(container, container[:12]) if container else f"host: {name}"] += cpu
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--by-parent",
        action="store_true",
        help="each name with its parent's (`python3 < containerd-shim`: a docker exec)",
    )
    parser.add_argument(
        "--by-project",
        action="store_true",
        help="also every container's CPU (removed ones too), by botpool project",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or os.geteuid() != 0:
        parser.error("give a command after --, and run as root")
    if not shutil.which("accton"):
        subprocess.run(["apt-get", "install", "-y", "-q", "acct"], check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as directory:
        log = os.path.join(directory, "pacct")
        open(log, "w").close()
        subprocess.run(["accton", log], check=True, capture_output=True)
        sampler = ContainerSampler() if args.by_project else None
        if sampler:
            sampler.start()
        began, busy, before = time.monotonic(), busy_seconds(), running()
        try:
            code = subprocess.run(command).returncode
        finally:
            subprocess.run(["accton", "off"], check=False, capture_output=True)
            if sampler:
                sampler.stop()
        wall, busy = time.monotonic() - began, busy_seconds() - busy
        now = running()
        still = ran_on(before, now)
        with open(log, "rb") as f:
            rows = records(f.read())
    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    parent = parents(rows, now) if args.by_parent else {}
    for index, row in enumerate(rows):
        key = f"{row.name} (a bot's uid)" if row.uid >= BOT_UIDS else row.name
        if args.by_parent:
            key += f" < {parent[index]}"
        totals[key][0] += 1
        totals[key][1] += row.cpu
    counted = sum(cpu for _, cpu in totals.values())
    print(f"\n{' '.join(command)}: exit {code}, {wall / 60:.1f} min")
    print(f"machine busy {busy:.0f} CPU-s; {len(rows)} processes ended, {counted:.0f} CPU-s")
    print(f"{'CPU-s':>8} {'runs':>7}  name")
    for key, (runs, cpu) in sorted(totals.items(), key=lambda kv: -kv[1][1])[: args.top]:
        print(f"{cpu:8.1f} {int(runs):7d}  {key}")
    print(f"\nstill running at the end: {sum(still.values()):.0f} CPU-s during the command")
    print(f"{'CPU-s':>8}  where")
    for where, cpu in sorted(still.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{cpu:8.1f}  {where}")
    if sampler:
        projects = sampler.by_project()
        print(f"\ncontainers: {sum(projects.values()):.0f} CPU-s during the command, by project")
        print(f"{'CPU-s':>8}  project")
        for where, cpu in sorted(projects.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"{cpu:8.1f}  {where}")
    return code


if __name__ == "__main__":
    sys.exit(main())
