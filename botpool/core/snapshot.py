"""What a host really runs, read in ONE shell command: Docker labels, files, supervisor.

There is no state file: converge and drift both start from this snapshot, so they can never
believe something the host does not show. The command (botpool/payloads/snapshot.sh) is plain
POSIX shell plus the docker CLI, because a bare host may have no Python; it asks the docker
CLI rather than the Docker SDK for the same reason, and since it is one command per host over
SSH, not a Docker API connection per host. `parse` turns its output into a Snapshot.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass, field

from botpool import payloads
from botpool.core import names
from botpool.core.names import LEGACY_NETWORK

MARK = "@@botpool "
# Data that bots write: never hashed, never walked into (a database can be large).
DATA_DIRS = ("user_data", "logs", "data")


@dataclass(frozen=True)
class FileState:
    sha256: str  # "" for anything but a regular file
    mode: int  # permission bits
    uid: int
    gid: int = 0
    regular: bool = True  # False: a link, a socket, a fifo... where botpool puts files


@dataclass(frozen=True)
class DirectoryState:
    mode: int  # permission bits
    uid: int
    gid: int


@dataclass(frozen=True)
class ContainerState:
    name: str
    running: bool
    role: str
    spec_hash: str
    labels: dict[str, str] = field(default_factory=dict, compare=False)
    networks: frozenset[str] = frozenset()
    image: str = ""  # the image it was created from, as named then (a pool's tag)


@dataclass(frozen=True)
class ProgramState:
    name: str
    state: str  # RUNNING, STARTING, BACKOFF, STOPPED, EXITED, FATAL, ...
    pid: int | None
    uptime_s: int | None


@dataclass
class Snapshot:
    engine: str | None = None  # docker server version, None when no engine answers
    images: set[str] = field(default_factory=set)
    # this root's networks, and the shared network of older versions if it still exists
    networks: set[str] = field(default_factory=set)
    # every container of the engine (any root) on each of those networks
    network_users: dict[str, set[str]] = field(default_factory=dict)
    containers: dict[str, ContainerState] = field(default_factory=dict)
    files: dict[str, FileState] = field(default_factory=dict)  # path relative to root
    directories: dict[str, DirectoryState] = field(default_factory=dict)
    host_folders: dict[str, DirectoryState] = field(default_factory=dict)  # ., pools, exchanges
    programs: dict[str, dict[str, ProgramState]] = field(
        default_factory=dict
    )  # pool -> name -> state
    supervisor_errors: dict[str, str] = field(default_factory=dict)  # pool -> message
    marked: bool = False  # the root holds botpool's marker file (names.ROOT_MARKER)
    # upgrades rolled back on this host: the image (tag after ":") -> why (one line)
    failed_upgrades: dict[str, str] = field(default_factory=dict)
    retired_images: list[str] = field(default_factory=list)  # left behind by upgrades, oldest first


def command(root: str) -> str:
    """The shell command that prints a host's snapshot under root (botpool/payloads/snapshot.sh).

    Only containers labelled botpool.managed=true AND botpool.root=<root> are seen: a root is
    one deployment, so two layouts with different roots (say staging and the test suite)
    can share a Docker engine without touching each other.
    """
    return payloads.shell(
        "snapshot.sh",
        root=root,
        mark=MARK,
        managed=names.MANAGED,
        root_label=names.ROOT,
        role_label=names.ROLE,
        spec_label=names.SPEC_HASH,
        image_label=names.IMAGE,
        legacy_network=LEGACY_NETWORK,
        marker=names.ROOT_MARKER,
        supervisor_status=payloads.source("supervisor_status.py"),
        data_dirs=" ".join(DATA_DIRS),
    )


def parse(lines: list[str]) -> Snapshot:
    snap = Snapshot()
    section, pool = "", ""
    modes: dict[str, tuple[int, int, int]] = {}  # path -> raw mode, uid, gid
    hashes: dict[str, str] = {}
    users: dict[str, set[str]] = {}
    for line in lines:
        if line.startswith(MARK):
            section, _, pool = line[len(MARK) :].partition(" ")
            if section == "supervisor":
                snap.programs[pool] = {}
            continue
        if not line.strip():
            continue
        if section == "marker":
            snap.marked = line.strip() == "present"
        elif section == "engine":
            snap.engine = line.strip()
        elif section == "images":
            snap.images.add(line.strip())
        elif section == "networks":
            snap.networks.add(line.strip())
        elif section == "network-users":
            name, _, networks = line.strip().partition("|")
            for network in _names(networks):
                users.setdefault(network, set()).add(name)
        elif section == "containers":
            seen = json.loads(line)
            snap.containers[seen["name"]] = ContainerState(
                seen["name"],
                seen["state"] == "running",
                seen["role"],
                seen["spec_hash"],
                networks=_names(seen["networks"]),
                image=seen.get("image", ""),
            )
        elif section == "upgrade-failed":
            image, _, why = line.strip().partition(" ")
            snap.failed_upgrades[image] = why
        elif section == "retired-images":
            snap.retired_images.append(line.strip())
        elif section == "files":
            mode_hex, uid_text, gid_text, path = line.split(" ", 3)
            modes[path] = (int(mode_hex, 16), int(uid_text), int(gid_text))
        elif section == "hashes":
            digest, path = line.split(None, 1)
            hashes[path] = digest
        elif section in ("directories", "host-folders"):
            mode_text, uid_text, gid_text, path = line.split(" ", 3)
            folders = snap.directories if section == "directories" else snap.host_folders
            folders[path] = DirectoryState(int(mode_text, 8), int(uid_text), int(gid_text))
        elif section == "supervisor":
            program = parse_program(line)
            if program:
                snap.programs[pool][program.name] = program
            else:
                snap.supervisor_errors[pool] = line.strip()
    for path, (raw, uid, gid) in modes.items():
        regular = stat.S_ISREG(raw)
        digest = hashes.get(path, "") if regular else ""
        snap.files[path] = FileState(digest, stat.S_IMODE(raw), uid, gid, regular)
    snap.network_users = {n: users.get(n, set()) for n in snap.networks}
    return snap


def _names(text: str) -> frozenset[str]:
    """docker's {{.Networks}}: names separated by commas."""
    return frozenset(n for n in text.strip().split(",") if n)


def parse_program(line: str) -> ProgramState | None:
    """One line of `supervisorctl status` (or of supervisor_status.py, which prints the same):
    NAME STATE [pid N, uptime H:MM:SS | message]."""
    parts = line.split(None, 2)
    states = {"RUNNING", "STARTING", "BACKOFF", "STOPPED", "STOPPING", "EXITED", "FATAL", "UNKNOWN"}
    if len(parts) < 2 or parts[1] not in states:
        return None
    pid = uptime = None
    rest = parts[2] if len(parts) > 2 else ""
    if rest.startswith("pid "):
        pid_text, _, uptime_text = rest[4:].partition(", uptime ")
        pid = int(pid_text)
        uptime = _seconds(uptime_text)
    return ProgramState(parts[0], parts[1], pid, uptime)


def _seconds(text: str) -> int | None:
    """supervisor prints uptime as H:MM:SS or 'N days, H:MM:SS'."""
    days = 0
    if "day" in text:
        day_text, _, text = text.partition(", ")
        days = int(day_text.split()[0])
    try:
        h, m, s = (int(x) for x in text.strip().split(":"))
    except ValueError:
        return None
    return days * 86400 + h * 3600 + m * 60 + s
