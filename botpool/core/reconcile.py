"""Compare what a host should run with what it runs, and decide the smallest set of changes.

Pure: rendered artifacts + Snapshot -> HostChanges. pyinfra tasks turn HostChanges into
operations; `botpool drift` prints its differences. Keeping the decisions here, in one
small tested module, is what makes "one changed bot restarts one process" provable.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from botpool.core.monitoring import RenderedMonitoring
from botpool.core.names import LEGACY_NETWORK, ROOT_MARKER
from botpool.core.render import (
    Artifact,
    ContainerSpec,
    Directory,
    RenderedExchange,
    RenderedJob,
    RenderedPool,
)
from botpool.core.snapshot import ContainerState, Snapshot

DOWN_STATES = {"STOPPED", "EXITED", "FATAL"}
MONITORING = "monitoring"  # its folder under the root


@dataclass(frozen=True)
class Difference:
    """One way the host differs from the plan, as drift reports it."""

    subject: str  # e.g. "bot alice/btc-trend", "pool alice-pool-1", "file pools/.../x.conf"
    kind: str  # missing | extra | changed | stopped | unhealthy
    detail: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.kind}: {self.detail}"


Report = Callable[[Difference], None]


@dataclass(frozen=True)
class Upload:
    artifact: Artifact
    dest: str  # relative to the host's root


@dataclass(frozen=True)
class Folder:
    """A folder that is missing, or not as planned: it gets its planned owner, group and mode.

    Either way it may hold what someone else wrote (a pool whose data moved in from another
    host, a host of an older botpool): tasks/operations.py makes a tree wholly its owner's
    and removes links from folders of root's.
    """

    directory: Directory
    dest: str  # relative to the host's root


@dataclass
class UnitChanges:
    """Changes to one pool or sandbox exchange: a directory tree plus one container."""

    name: str
    directory: str  # relative to root
    spec: ContainerSpec
    directories: list[Folder] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    container: str | None = None  # create | recreate | start | restart
    connect: list[str] = field(default_factory=list)  # networks to join (the container stays)
    disconnect: list[str] = field(default_factory=list)  # networks to leave
    supervisor_update: bool = False
    restart: list[str] = field(default_factory=list)
    start: list[str] = field(default_factory=list)
    archive_bots: list[str] = field(default_factory=list)
    wait_for: list[str] = field(default_factory=list)  # programs to see RUNNING afterwards
    reload: list[str] = field(default_factory=list)  # programs to signal (SIGHUP) to re-read

    @property
    def empty(self) -> bool:
        return not (
            self.directories
            or self.uploads
            or self.removals
            or self.container
            or self.connect
            or self.disconnect
            or self.supervisor_update
            or self.restart
            or self.start
            or self.archive_bots
            or self.reload
        )


@dataclass
class HostChanges:
    create_networks: list[str] = field(default_factory=list)
    remove_networks: list[str] = field(default_factory=list)  # once no container uses them
    host_folders: list[str] = field(default_factory=list)  # ., pools, exchanges: root's again
    mark_root: bool = False  # write botpool's marker into the root (names.ROOT_MARKER)
    exchanges: list[UnitChanges] = field(default_factory=list)
    pools: list[UnitChanges] = field(default_factory=list)
    monitoring: UnitChanges | None = None
    archive_monitoring: bool = False  # monitoring was turned off: its data is archived
    jobs: list[UnitChanges] = field(default_factory=list)  # the backup job
    remove_containers: list[str] = field(default_factory=list)
    archive_pools: list[str] = field(default_factory=list)
    remove_directories: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.differences


def reconcile(
    snap: Snapshot,
    pools: list[RenderedPool],
    exchanges: list[RenderedExchange],
    *,
    jobs: Iterable[RenderedJob] = (),
    monitoring: RenderedMonitoring | None = None,
) -> HostChanges:
    changes = HostChanges()
    report = changes.differences.append
    jobs = list(jobs)
    specs = [p.container for p in pools] + [e.container for e in exchanges]
    _networks(changes, snap, specs, report)
    for path, folder in sorted(snap.host_folders.items()):
        if folder.uid != 0 or folder.mode & 0o022:  # whoever may write here may swap a pool
            changes.host_folders.append(path)
            have = _access(folder.uid, folder.gid, folder.mode)
            report(Difference(f"folder {path}", "changed", f"{have}, want root's, 0755 or less"))
    for ex in exchanges:
        unit = UnitChanges(ex.container.name, f"exchanges/{ex.exchange.profile.name}", ex.container)
        _sync_directories(unit, (), ex.files, snap, report)
        _sync_files(unit, ex.files, snap, report)
        _converge_container(unit, snap, report)
        changes.exchanges.append(unit)
    for rendered in pools:
        changes.pools.append(_pool(rendered, snap, report))
    if monitoring:
        changes.monitoring = _monitoring(monitoring, snap, report)
    elif MONITORING in snap.directories:
        changes.archive_monitoring = True
        report(Difference("monitoring", "extra", "monitoring is off: its data will be archived"))
    for job in jobs:
        unit = UnitChanges(job.name, job.directory, job.container)
        _sync_directories(unit, (), job.files, snap, report)
        _sync_files(unit, job.files, snap, report)
        _converge_container(unit, snap, report)
        changes.jobs.append(unit)
    wanted = {p.container.name for p in pools} | {e.container.name for e in exchanges}
    wanted |= {j.container.name for j in jobs}
    wanted |= {monitoring.container.name} if monitoring else set()
    pools_wanted = {p.pool.name for p in pools}
    exchanges_wanted = {e.exchange.profile.name for e in exchanges}
    for name, container in sorted(snap.containers.items()):
        if name not in wanted:
            changes.remove_containers.append(name)
            report(
                Difference(
                    f"container {name}",
                    "extra",
                    f"labelled botpool.managed but not "
                    f"in the plan (role {container.role or 'none'}): it will be removed",
                )
            )
    for directory in sorted(snap.directories):
        parts = directory.split("/")
        if len(parts) == 2 and parts[0] == "pools" and parts[1] not in pools_wanted:
            changes.archive_pools.append(parts[1])
            report(
                Difference(
                    f"pool {parts[1]}",
                    "extra",
                    f"{directory} is not in the plan: it will be archived",
                )
            )
        if len(parts) == 2 and parts[0] == "exchanges" and parts[1] not in exchanges_wanted:
            changes.remove_directories.append(directory)
    if not snap.marked and snap.containers:
        # an older botpool's root (its containers carry this root's label; only root makes
        # containers): marked now, and cleaned now, since a program file planted there
        # would be read by supervisord as root in this very converge
        changes.mark_root = True
    elif not snap.marked:
        _hold_deletions(changes, report)
    return changes


def _hold_deletions(changes: HostChanges, report: Report) -> None:
    """A root without botpool's marker and without a container of it may be a folder of other
    things (a root set by mistake): mark it, and delete or archive nothing in it until a
    converge finds the mark."""
    changes.mark_root = True
    report(Difference("root", "missing", f"{ROOT_MARKER} will be written"))
    held = [f"pools/{p}" for p in changes.archive_pools] + changes.remove_directories
    held += [MONITORING] * changes.archive_monitoring
    held += [path for unit in changes.pools for path in unit.removals]
    held += [f"{unit.directory}/bots/{bot}" for unit in changes.pools for bot in unit.archive_bots]
    changes.archive_pools, changes.remove_directories = [], []
    changes.archive_monitoring = False
    for unit in changes.pools:
        unit.removals, unit.archive_bots = [], []
    for path in held:
        report(
            Difference(
                path, "held", f"not removed: the root has no {ROOT_MARKER} yet (next converge)"
            )
        )


def _networks(
    changes: HostChanges, snap: Snapshot, specs: list[ContainerSpec], report: Report
) -> None:
    """One network per user; a network nobody plans goes once no other container is on it."""
    wanted = {network for spec in specs for network in spec.networks}
    for name in sorted(wanted - snap.networks):
        changes.create_networks.append(name)
        report(Difference(f"network {name}", "missing", "will be created"))
    for name in sorted(snap.networks - wanted):
        others = sorted(snap.network_users.get(name, set()) - set(snap.containers))
        ours = any(name in c.networks for c in snap.containers.values())
        if name == LEGACY_NETWORK and (others or not ours):
            # The engine's, not this root's: the converge that moves the last containers
            # off it retires it. One that never used it leaves it to an older deployment,
            # which may be creating it and its containers at this very moment.
            continue
        if others:
            report(
                Difference(
                    f"network {name}",
                    "extra",
                    f"not in the plan, but {', '.join(others)} (not this root's) still use it",
                )
            )
            continue
        changes.remove_networks.append(name)
        why = "the network older versions shared" if name == LEGACY_NETWORK else "not in the plan"
        report(Difference(f"network {name}", "extra", f"{why}: it will be removed"))


def _pool(rendered: RenderedPool, snap: Snapshot, report: Report) -> UnitChanges:
    pool = rendered.pool
    unit = UnitChanges(rendered.container.name, f"pools/{pool.name}", rendered.container)
    _sync_directories(unit, rendered.directories, rendered.files, snap, report)
    changed = _sync_files(unit, rendered.files, snap, report)
    wanted_programs = rendered.programs
    wanted_bots = {bot.name for bot in pool.bots}
    rendered_paths = {a.path for a in rendered.files}
    for path, state in sorted(snap.files.items()):
        rel = path[len(unit.directory) + 1 :]
        if not path.startswith(unit.directory + "/") or rel in rendered_paths:
            continue
        managed = rel.count("/") == 1 and rel.split("/")[0] in ("programs", "strategies", "runtime")
        if managed or not state.regular:  # root reads every file there; a link may lead anywhere
            unit.removals.append(path)
            what = "not rendered by the plan" if state.regular else "not a regular file"
            report(Difference(f"file {path}", "extra", f"{what}: it will be removed"))
    for directory in sorted(snap.directories):
        parts = directory.split("/")
        if (
            len(parts) == 4
            and parts[:3] == ["pools", pool.name, "bots"]
            and parts[3] not in wanted_bots
        ):
            unit.archive_bots.append(parts[3])
            report(
                Difference(
                    f"bot {pool.user}/{parts[3]}",
                    "extra",
                    f"not in the plan: it will be stopped and {directory} archived",
                )
            )
    _converge_container(unit, snap, report)
    unit.wait_for = sorted(wanted_programs) if unit.container else []
    if unit.container is None:
        _converge_programs(unit, rendered, snap, changed, wanted_programs, report)
    return unit


def _monitoring(rendered: RenderedMonitoring, snap: Snapshot, report: Report) -> UnitChanges:
    """Its files and container like a pool's; a changed config is re-read (SIGHUP), so a
    new threshold never restarts Prometheus nor loses its data."""
    unit = UnitChanges(rendered.container.name, MONITORING, rendered.container)
    _sync_directories(unit, rendered.directories, rendered.files, snap, report)
    changed = _sync_files(unit, rendered.files, snap, report)
    _converge_container(unit, snap, report)
    if unit.container in (None, "start"):
        unit.reload = rendered.reloads(changed)
    return unit


def _sync_directories(
    unit: UnitChanges,
    planned: Iterable[Directory],
    files: tuple[Artifact, ...],
    snap: Snapshot,
    report: Report,
) -> None:
    """Queue every folder that is missing, or whose owner, group or mode differ."""
    wanted = {d.path: d for d in planned}
    for artifact in files:  # the folders files go in: root's, 0755, unless planned otherwise
        parent = posixpath.dirname(artifact.path)
        while parent not in wanted:
            wanted[parent] = Directory(parent)
            parent = posixpath.dirname(parent)
    wanted.setdefault("", Directory(""))
    known = unit.directory in snap.directories  # a new unit's folders are no news
    for path, directory in sorted(wanted.items()):
        dest = posixpath.join(unit.directory, path) if path else unit.directory
        state = snap.directories.get(dest)
        if state is None:
            unit.directories.append(Folder(directory, dest))
            if known:
                report(Difference(f"folder {dest}", "missing", "will be created"))
            continue
        have = (state.uid, state.gid, state.mode)
        if have == (directory.uid, directory.gid, directory.mode):
            continue
        unit.directories.append(Folder(directory, dest))
        detail = f"{_access(*have)}, want {_access_of(directory)}"
        report(Difference(f"folder {dest}", "changed", detail))


def _sync_files(
    unit: UnitChanges, files: tuple[Artifact, ...], snap: Snapshot, report: Report
) -> set[str]:
    """Queue uploads for missing or different files; return the relative paths changed."""
    changed = set()
    for artifact in files:
        dest = f"{unit.directory}/{artifact.path}"
        state = snap.files.get(dest)
        if state is None:
            kind, detail = "missing", "will be written"
        elif not state.regular:
            kind, detail = "changed", "not a regular file (a link?): it will be replaced"
        elif state.sha256 != artifact.hash:
            kind, detail = "changed", "content differs from the plan"
        elif (state.uid, state.gid, state.mode) != (artifact.uid, artifact.gid, artifact.mode):
            have = _access(state.uid, state.gid, state.mode)
            kind, detail = "changed", f"{have}, want {_access_of(artifact)}"
        else:
            continue
        unit.uploads.append(Upload(artifact, dest))
        report(Difference(f"file {dest}", kind, detail))
        if kind == "missing" or not detail.startswith("owner"):
            changed.add(artifact.path)  # what the bot reads changed: it restarts
    return changed


def _access(uid: int, gid: int, mode: int) -> str:
    return f"owner {uid}:{gid} mode {mode:04o}"


def _access_of(item: Artifact | Directory) -> str:
    return _access(item.uid, item.gid, item.mode)


def _converge_container(unit: UnitChanges, snap: Snapshot, report: Report) -> None:
    current = snap.containers.get(unit.name)
    if current is None:
        unit.container = "create"
        report(Difference(f"container {unit.name}", "missing", "will be created"))
    elif current.spec_hash != unit.spec.hash:
        unit.container = "recreate"
        report(
            Difference(
                f"container {unit.name}",
                "changed",
                f"spec hash {current.spec_hash} != planned {unit.spec.hash}: will be recreated",
            )
        )
    else:
        if not current.running:
            unit.container = "start"
            report(Difference(f"container {unit.name}", "stopped", "will be started"))
        if not unit.spec.host_network:
            _converge_networks(unit, current, report)


def _converge_networks(unit: UnitChanges, current: ContainerState, report: Report) -> None:
    """A kept container joins the networks it lacks and leaves the others, live."""
    wanted = set(unit.spec.networks)
    have = current.networks - {"none"}  # a container without a network (the backup job)
    unit.connect = sorted(wanted - have)
    unit.disconnect = sorted(have - wanted)
    for name in unit.connect:
        report(Difference(f"container {unit.name}", "changed", f"not on network {name}: joins it"))
    for name in unit.disconnect:
        report(Difference(f"container {unit.name}", "changed", f"on network {name}: leaves it"))


def _converge_programs(
    unit: UnitChanges,
    rendered: RenderedPool,
    snap: Snapshot,
    changed: set[str],
    wanted: set[str],
    report: Report,
) -> None:
    pool, container = rendered.pool.name, rendered.container.name
    if container in snap.supervisor_errors and not snap.programs.get(container):
        unit.container = "restart"
        report(
            Difference(
                f"pool {pool}",
                "unhealthy",
                f"supervisord does not answer "
                f"({snap.supervisor_errors[container]}): the container will be restarted",
            )
        )
        return
    running = snap.programs.get(container, {})
    program_changed = {rel.split("/")[1][:-5] for rel in changed if rel.startswith("programs/")}
    if program_changed or unit.removals or set(running) ^ wanted:
        unit.supervisor_update = True
    for name in sorted(set(running) - wanted):
        report(Difference(f"program {pool}:{name}", "extra", "not in the plan: it will be stopped"))
    for name in sorted(wanted - set(running)):
        if name not in program_changed:
            report(Difference(f"program {pool}:{name}", "missing", "supervisor does not know it"))
    for service in rendered.pool.runtime.services:  # first: the bots wait for them
        state = running.get(service)
        if state and state.state in DOWN_STATES and service in wanted - program_changed:
            unit.start.append(service)
            report(
                Difference(
                    f"program {pool}:{service}",
                    "stopped",
                    f"the pool's {service} is {state.state}, so are its bots: it will be started",
                )
            )
    for bot in rendered.pool.bots:
        config_changed = f"bots/{bot.name}/config.json" in changed
        if config_changed and bot.program not in program_changed and bot.program in running:
            unit.restart.append(bot.program)
        elif (
            (state := running.get(bot.program))
            and state.state in DOWN_STATES
            and bot.program not in program_changed
        ):
            unit.start.append(bot.program)
            report(
                Difference(
                    f"bot {bot.user}/{bot.name}",
                    "stopped",
                    f"program is {state.state}: it will be started",
                )
            )
