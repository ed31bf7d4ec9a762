"""Render a plan into files and container specs, each with a content hash. Pure: no I/O
beyond reading templates, strategy files and the secret store.

A pool renders to a tree that is bind-mounted at /botpool in its container. Owners and
modes are part of the plan (B = the bot's uid and gid, see BotPlan.uid): what supervisord
(root) reads, no bot can write; each bot reads its own config only and writes its own data.
    supervisord.conf            root 0644   the pool's supervisord (part of the container spec)
    programs/<user>-<bot>.conf  root 0644   one supervisor program per bot
    bots/<bot>/                 root:B 0750
    bots/<bot>/config.json      root:B 0640 the bot's freqtrade config (holds its API secrets)
    bots/<bot>/user_data/       B:B 0700    trade database and freqtrade data (never rendered)
    bots/<bot>/logs/            root 0755   the bot's log, written and rotated by supervisord
    strategies/<file>.py        root 0644   strategy files the pool's bots use
    logs/                       root 0755   supervisord's (and its services') own logs
and whatever the pool's runtime adds (botpool.core.runtimes: its services' programs and files).
Every other folder is root 0755.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import botpool
from botpool.core import names, notify
from botpool.core.layout import deep_merge
from botpool.core.names import MOUNT
from botpool.core.plan import (
    BotPlan,
    ExchangePlan,
    HostPlan,
    Plan,
    PoolPlan,
)
from botpool.core.secretstore import SecretStore
from botpool.core.templating import render_template
from botpool.payloads import backup, sandbox

SANDBOX_SOURCE = Path(sandbox.__file__).resolve().parent
BACKUP_SOURCE = Path(backup.__file__).resolve()
PROGRAM_TIMING = {"startsecs": 10, "startretries": 5, "stopwaitsecs": 30}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Artifact:
    """One rendered file, at a path relative to its pool (or exchange) directory, with the
    owner, group and mode it must have on the host (root's, readable by all, by default)."""

    path: str
    text: str
    mode: int = 0o644
    uid: int = 0
    gid: int = 0

    @property
    def hash(self) -> str:
        return sha256(self.text)

    @property
    def secret(self) -> bool:
        """Not for everyone: only its owner and its group (one bot) may read it."""
        return self.mode & 0o007 == 0


@dataclass(frozen=True)
class Directory:
    """A folder of a pool with its owner, group and mode on the host.

    `tree`: all it holds is its owner's too (a bot's data; the logs supervisord writes).
    When such a folder is not as planned (say a host converged by an older botpool, where
    uid 1000 owned everything), the converge gives its whole tree to its owner.
    """

    path: str  # relative to the pool's directory; "" is the pool's directory itself
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    tree: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """Everything that needs a container to be recreated when it changes, and nothing else."""

    name: str
    hostname: str
    image: str
    command: tuple[str, ...]
    ports: tuple[tuple[str, int, int], ...]  # (host ip, host port, container port)
    mounts: tuple[tuple[str, str, str], ...]  # (host path, container path, rw|ro)
    memory_limit_mb: int
    # Docker networks: it is created on the first and connected to the others right after.
    # Not in the hash: networks change live (`docker network connect`), so a new user of a
    # sandbox exchange never recreates it.
    networks: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()  # hashes of files baked into the running process
    restart: str = "unless-stopped"
    # supervisord runs as root with only the capabilities it needs to start each bot under
    # the bot's own uid and gid (SETUID, SETGID) and to signal it (stop, restart: a process
    # of another uid takes signals only with KILL). No DAC_OVERRIDE: root reads and writes
    # only its own files, so a file a bot owns is never "readable anyway" to it. The bots
    # themselves keep no capability.
    user: str = "0:0"
    capabilities: tuple[str, ...] = ("SETUID", "SETGID", "KILL")
    log_options: tuple[tuple[str, str], ...] = (("max-size", "10m"), ("max-file", "3"))
    # the host's network instead of `networks` (the monitoring container: it reaches every
    # bot's 127.0.0.1 port and listens on the host's 127.0.0.1 only)
    host_network: bool = False
    labels: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def hash(self) -> str:
        spec = asdict(self)
        spec.pop("labels")
        spec.pop("networks")
        if not spec["host_network"]:  # absent when off: older containers keep their hash
            spec.pop("host_network")
        return sha256(json.dumps(spec, sort_keys=True))[:16]

    def run_args(self) -> list[str]:
        """`docker run` arguments that create this container (hardened: few capabilities)."""
        args = [
            "docker",
            "run",
            "--detach",
            "--name",
            self.name,
            "--hostname",
            self.hostname,
            "--restart",
            self.restart,
            "--memory",
            f"{self.memory_limit_mb}m",
            "--network",
            "host" if self.host_network else self.networks[0] if self.networks else "none",
            "--user",
            self.user,
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--stop-timeout",
            "45",
            "--log-driver",
            "json-file",
        ]
        args += [a for cap in self.capabilities for a in ("--cap-add", cap)]
        args += [a for key, value in self.log_options for a in ("--log-opt", f"{key}={value}")]
        args += [a for ip, host, cont in self.ports for a in ("--publish", f"{ip}:{host}:{cont}")]
        args += [a for src, dst, mode in self.mounts for a in ("--volume", f"{src}:{dst}:{mode}")]
        args += [a for key, value in self.environment for a in ("--env", f"{key}={value}")]
        args += [
            a
            for key, value in sorted(self.all_labels().items())
            for a in ("--label", f"{key}={value}")
        ]
        return [*args, self.image, *self.command]

    def all_labels(self) -> dict[str, str]:
        """Labels to put on the container: the given ones plus the spec hash and version."""
        return {
            **dict(self.labels),
            names.MANAGED: "true",
            names.SPEC_HASH: self.hash,
            names.VERSION: botpool.__version__,
        }


@dataclass(frozen=True)
class RenderedPool:
    pool: PoolPlan
    files: tuple[Artifact, ...]
    directories: tuple[Directory, ...]
    container: ContainerSpec

    @property
    def programs(self) -> set[str]:
        """Every supervisor program the pool runs: its bots, and its runtime's services."""
        return {
            a.path[len("programs/") : -len(".conf")]
            for a in self.files
            if a.path.startswith("programs/")
        }


@dataclass(frozen=True)
class RenderedJob:
    """A host job: files in `directory` (relative to the root) and the container running them."""

    name: str
    directory: str
    files: tuple[Artifact, ...]
    container: ContainerSpec


@dataclass(frozen=True)
class RenderedExchange:
    exchange: ExchangePlan
    files: tuple[Artifact, ...]
    container: ContainerSpec


def bot_config(plan: Plan, bot: BotPlan, secrets: SecretStore, listen_ip: str = "0.0.0.0") -> str:
    """The bot's freqtrade config.json text."""
    settings = bot.settings
    profile = plan.layout.exchanges[settings.exchange]
    exchange: dict[str, Any] = {
        "name": profile.exchange,
        "key": "",
        "secret": "",
        "ccxt_config": profile.ccxt_config,
        "pair_whitelist": list(settings.pairs or ()),  # none: a dynamic pair list picks
        "pair_blacklist": [],
    }
    if profile.sandbox:
        url = ExchangePlan(profile, (), plan.layout.project).url
        exchange.update(sandbox.freqtrade_exchange_overrides(url))
    if not settings.dry_run and settings.credentials:
        exchange.update(secrets.exchange_credentials(settings.credentials))
    base = render_template(
        "freqtrade-config.json.j2",
        bot=bot,
        s=settings,
        exchange=exchange,
        api=secrets.api_credentials(bot.bot.key),
        listen_ip=listen_ip,
        cors_origins=list(plan.layout.frequi_origins),
    )
    notifications = notify.freqtrade_sections(
        settings.notify,
        {"bot_name": bot.program, "strategy": settings.strategy, "timeframe": settings.timeframe},
        secrets.notify_credentials,
    )
    config = {**json.loads(base), **notifications}
    # the layout's freqtrade: settings last (validation refused every key botpool owns)
    return json.dumps(deep_merge(config, settings.freqtrade), indent=2) + "\n"


def render_pool(plan: Plan, pool: PoolPlan, image: str, secrets: SecretStore) -> RenderedPool:
    files: list[Artifact] = []
    directories = [Directory(p) for p in ("", "bots", "programs", "strategies")]
    directories.append(Directory("logs", tree=True))  # supervisord's and its services' logs
    strategy_files = {
        b.settings.strategy: plan.layout.strategies[b.settings.strategy] for b in pool.bots
    }
    for path in sorted(set(strategy_files.values())):
        files.append(Artifact(f"strategies/{path.name}", path.read_text()))
    strategy_hash = {name: sha256(path.read_text()) for name, path in strategy_files.items()}
    files += [Artifact(where, text) for where, text in pool.runtime.files()]
    known = {d.path for d in directories}
    directories += [
        Directory(d) for d in sorted({posixpath.dirname(f.path) for f in files} - known)
    ]
    command, runtime_inputs = pool.runtime.bot_command(), pool.runtime.bot_inputs()
    for bot in pool.bots:
        config = Artifact(
            f"bots/{bot.name}/config.json", bot_config(plan, bot, secrets), 0o640, 0, bot.uid
        )
        inputs = sha256(config.hash + strategy_hash[bot.settings.strategy] + runtime_inputs)[:16]
        program = render_template(
            "program.conf.j2",
            bot=bot,
            command=f"{as_bot(bot)} {command}",
            home=f"{MOUNT}/bots/{bot.name}/user_data",
            inputs_hash=inputs,
            **PROGRAM_TIMING,
        )
        files += [config, Artifact(f"programs/{bot.program}.conf", program)]
        directories += bot_directories(bot)
    supervisord = render_template("supervisord.conf.j2", pool=pool.name)
    files.append(Artifact("supervisord.conf", supervisord))
    root = plan.layout.root
    container = ContainerSpec(
        name=pool.container,
        hostname=pool.name,
        image=image,
        command=("supervisord", "-n", "-c", names.SUPERVISOR_CONF),
        ports=tuple(
            ("127.0.0.1", port, port - pool.block.first_port + names.CONTAINER_FIRST_PORT)
            for port in pool.block.ports
        ),
        mounts=((f"{root}/pools/{pool.name}", MOUNT, "rw"),),
        memory_limit_mb=pool.memory_limit_mb,
        networks=(pool.network,),
        inputs=(("supervisord.conf", sha256(supervisord)),),
        labels=(
            (names.ROLE, "pool"),
            (names.USER, pool.user),
            (names.POOL, pool.name),
            (names.ROOT, root),
            (names.PROJECT, plan.layout.project),
        ),
    )
    return RenderedPool(pool, tuple(files), tuple(directories), container)


def as_bot(bot: BotPlan) -> str:
    """The prefix that runs a command as the bot: its own uid and gid, no other group.

    setpriv (util-linux, in every Debian image) rather than supervisord's `user=`, which
    wants a passwd entry; a bot's uid has none, and needs none (HOME is its user_data).
    """
    return f"setpriv --reuid={bot.uid} --regid={bot.uid} --clear-groups --"


def bot_directories(bot: BotPlan) -> list[Directory]:
    """Its folder: root's, entered by the bot's group; its data: the bot's alone; its logs:
    written by supervisord (root), so a bot cannot point them anywhere."""
    folder = f"bots/{bot.name}"
    return [
        Directory(folder, 0o750, 0, bot.uid),
        Directory(f"{folder}/user_data", 0o700, bot.uid, bot.uid, tree=True),
        Directory(f"{folder}/logs", tree=True),
    ]


def render_exchange(plan: Plan, exchange: ExchangePlan, image: str) -> RenderedExchange:
    """A sandbox exchange container, running botpool's sandbox module from a mounted copy."""
    files = tuple(
        Artifact(f"botpool/sandbox/{p.name}", p.read_text())
        for p in sorted(SANDBOX_SOURCE.glob("*.py"))
    )
    files += (Artifact("botpool/__init__.py", '"""botpool, as much as the sandbox needs."""\n'),)
    profile = exchange.profile
    directory = f"{plan.layout.root}/exchanges/{profile.name}"
    container = ContainerSpec(
        name=exchange.container,
        hostname=f"exchange-{exchange.profile.name}",
        image=image,
        command=(
            "python3",
            "-m",
            "botpool.sandbox",
            "--listen",
            "0.0.0.0",
            "--port",
            str(names.EXCHANGE_PORT),
            "--seed",
            str(profile.seed),
            "--step-seconds",
            str(profile.step_seconds),
            "--volatility",
            str(profile.volatility),
        ),
        ports=(),
        user="65534:65534",  # nobody: the sandbox needs no privilege at all
        capabilities=(),
        mounts=((directory, "/opt/botpool-sandbox", "ro"),),
        memory_limit_mb=256,
        networks=exchange.networks,
        environment=(("PYTHONPATH", "/opt/botpool-sandbox"), ("PYTHONUNBUFFERED", "1")),
        inputs=tuple((f.path, f.hash) for f in files),
        labels=(
            (names.ROLE, "exchange"),
            (names.EXCHANGE, profile.name),
            (names.ROOT, plan.layout.root),
            (names.PROJECT, plan.layout.project),
        ),
    )
    return RenderedExchange(exchange, files, container)


def backup_schedule(plan: Plan, bots: Iterable[BotPlan]) -> str:
    """What a backup job backs up and keeps (read by botpool/payloads/backup.py): the host's
    bots for its job, one pool's before an upgrade."""
    settings = plan.layout.backups
    entries = [
        {
            "user": bot.user,
            "bot": bot.name,
            "uid": bot.uid,
            "database": f"{bot.pool}/bots/{bot.name}/user_data/{names.DATABASE}",
        }
        for bot in bots
    ]
    schedule = {
        "interval_minutes": settings.interval_minutes,
        "hourly": settings.hourly,
        "daily": settings.daily,
        "bots": entries,
    }
    return json.dumps(schedule, indent=2) + "\n"


def render_backup_job(plan: Plan, host: HostPlan, image: str) -> RenderedJob | None:
    """The host's backup job: a container that survives reboots by Docker's restart policy
    (with or without systemd), running the backup program on the layout's schedule.

    It runs as root with SETUID and SETGID only (to read each bot's database as that bot,
    through setpriv) and KILL (to end a copy that hangs); no network; the program and its
    schedule read-only. None when backups are off, or the host runs no bot.
    """
    if not plan.layout.backups.enabled or not host.bots:
        return None
    files = (
        Artifact("backup.py", BACKUP_SOURCE.read_text()),
        Artifact("schedule.json", backup_schedule(plan, host.bots)),
    )
    root = plan.layout.root
    container = ContainerSpec(
        name=names.backup_container(plan.layout.project),
        hostname="backup",
        image=image,
        command=("python3", "/job/backup.py", "loop"),
        ports=(),
        capabilities=("SETUID", "SETGID", "KILL"),
        mounts=(
            (f"{root}/{names.BACKUP_JOB_DIR}", "/job", "ro"),
            (f"{root}/pools", "/pools", "rw"),
            (f"{root}/{names.BACKUPS_DIR}", "/backups", "rw"),
        ),
        memory_limit_mb=256,
        environment=(("PYTHONUNBUFFERED", "1"),),
        inputs=tuple((f.path, f.hash) for f in files),
        labels=(
            (names.ROLE, "backup"),
            (names.ROOT, root),
            (names.PROJECT, plan.layout.project),
        ),
    )
    return RenderedJob(container.name, names.BACKUP_JOB_DIR, files, container)


def render_host(
    plan: Plan, host: HostPlan, images: dict[str, str], secrets: SecretStore
) -> tuple[list[RenderedPool], list[RenderedExchange]]:
    """Everything one host runs; images maps a freqtrade version to its pool image tag."""
    pools = [
        render_pool(plan, pool, images[pool.freqtrade_version], secrets) for pool in host.pools
    ]
    default_image = images[plan.layout.freqtrade_version]
    exchanges = [render_exchange(plan, ex, default_image) for ex in host.exchanges]
    return pools, exchanges
