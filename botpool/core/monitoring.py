"""Metrics and alerts on one host, rendered from the layout. Pure: no Docker, no network.

One container per host (`<project>_monitoring`, host networking, everything on 127.0.0.1)
runs four programs under supervisord: Prometheus, Alertmanager, the node exporter and
botpool's exporter (botpool/payloads/exporter.py). One container rather than four: one
image, one spec hash, one thing to recreate, archive or remove, managed exactly like a
pool; the four programs share its memory limit.

Its folder `<root>/monitoring`, mounted at /monitoring:
    supervisord.conf     root 0644  the four programs (in the spec hash: a change recreates)
    exporter.py          root 0644  botpool's exporter (in the spec hash)
    probe.py             root 0644  the checks' probe, whose bounded file and API reads the
                                    exporter uses (in the spec hash)
    exporter.json        root 0644  what the exporter watches, and the hashes of every pool
                                    file the converge wrote (read afresh every cycle)
    prometheus.yml       root 0644  scrape targets    } a change reloads Prometheus (SIGHUP):
    rules.yml            root 0644  alert rules       } no restart, no gap in its data
    alertmanager.yml     root 0600  routes, receivers (the webhook URL: a secret); a change
                                    reloads Alertmanager
    data/                root 0700  Prometheus' and Alertmanager's storage (never rendered)
    logs/                root 0755  supervisord's and the programs' logs
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from botpool import payloads
from botpool.core import names
from botpool.core.image import ImageSpec, monitoring_image_spec
from botpool.core.layout import MonitoringSettings
from botpool.core.plan import HostPlan, Plan
from botpool.core.render import Artifact, ContainerSpec, Directory, RenderedPool, sha256
from botpool.core.secretstore import SecretsError, SecretStore
from botpool.core.source import LayoutError, Problem
from botpool.payloads import exporter, probe

MOUNT = "/monitoring"
EXPORTER_SOURCE = Path(exporter.__file__).resolve()
PROBE_SOURCE = Path(probe.__file__).resolve()
SUPERVISOR_CONF = f"{MOUNT}/supervisord.conf"
SUPERVISORCTL = f"supervisorctl -c {SUPERVISOR_CONF}"
HOST_ROOT = "/host"  # the host's / (read-only) for the node exporter
POOLS = "/pools"  # the deployment's pools folder (read-only) for the exporter
DOCKER_SOCKET = "/var/run/docker.sock"
CRASH_LOOP_WINDOW = "1h"
# which program re-reads which file on SIGHUP (the others are in the spec hash)
RELOADS = {
    "prometheus.yml": "prometheus",
    "rules.yml": "prometheus",
    "alertmanager.yml": "alertmanager",
}
DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


@dataclass(frozen=True)
class RenderedMonitoring:
    files: tuple[Artifact, ...]
    directories: tuple[Directory, ...]
    container: ContainerSpec
    image: ImageSpec

    def reloads(self, changed: set[str]) -> list[str]:
        """The programs to signal (SIGHUP) after these files changed."""
        return sorted({RELOADS[path] for path in changed if path in RELOADS})


def seconds(duration: str) -> float:
    """A Prometheus duration (one unit: `15s`, `5m`) in seconds."""
    match = DURATION.fullmatch(duration)
    if not match:
        raise ValueError(f"not a duration: {duration!r}")
    return int(match[1]) * SECONDS[match[2]]


def container_name(project: str) -> str:
    return f"{project}_monitoring"


# --- Prometheus ----------------------------------------------------------------------------


def prometheus_config(settings: MonitoringSettings, host: str, project: str) -> dict[str, Any]:
    """Scrape the four programs, each series labelled with the host; send alerts to this
    host's Alertmanager, labelled with the project."""
    ports = settings.ports
    jobs = {
        "prometheus": ports["prometheus"],
        "alertmanager": ports["alertmanager"],
        "node": ports["node exporter"],
        "botpool": ports["botpool exporter"],
    }
    return {
        "global": {
            "scrape_interval": settings.scrape_interval,
            "evaluation_interval": settings.scrape_interval,
            "external_labels": {"project": project, "host": host},
        },
        "rule_files": ["rules.yml"],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]}
            ]
        },
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"host": host}}],
            }
            for job, port in jobs.items()
        ],
    }


BOT = "{{ $labels.user }}/{{ $labels.bot }}"
SAME_BOT = "on (host, pool, user, bot)"
# the file systems HostDiskLow watches: the host's own disks, not its pseudo or overlay ones
DISKS = (
    'fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|autofs|fuse.*",'
    'mountpoint!~"/(proc|sys|dev|run)($|/).*"'
)
# BotStagnant's reason: the bot log's last warning (botpool_bot_last_warning_info)
LAST_WARNING = (
    '{{ with printf "botpool_bot_last_warning_info{host=%q,pool=%q,bot=%q}" '
    "$labels.host $labels.pool $labels.bot | query }}{{ with first . }}"
    "{{ .Labels.warning }}{{ end }}{{ else }}none in its log{{ end }}"
)
WHERE = "in pool {{ $labels.pool }} on host {{ $labels.host }}"


def _rule(
    name: str,
    expr: str,
    duration: str | None,
    summary: str,
    action: str,
    severity: str,
    **more: str,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if duration:
        rule["for"] = duration
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "action": action, **more}
    return rule


def alert_rules(settings: MonitoringSettings) -> dict[str, Any]:
    """The alert rules, thresholds from the layout. Every bot alert carries pool, user and
    bot (from the exporter's labels) and host (a label of every scraped series)."""
    share = settings.pool_memory_share
    rules = [
        _rule(
            "BotDown",
            "botpool_bot_running == 0",
            settings.bot_down_for,
            f"bot {BOT} is not running {WHERE}",
            "`botpool status` shows why (its log: bots/<bot>/logs/freqtrade.log in the pool's "
            "folder); a converge starts it again",
            "critical",
        ),
        _rule(
            "BotApiDown",
            "botpool_bot_api_up == 0 and on (host, pool, user, bot) botpool_bot_running == 1",
            settings.api_down_for,
            f"bot {BOT} runs but its API does not answer {WHERE}",
            "look at the bot's log; `supervisorctl restart` the bot if it hangs",
            "warning",
        ),
        _rule(
            "BotCrashLooping",
            f"increase(botpool_bot_starts_total[{CRASH_LOOP_WINDOW}]) > "
            f"{settings.crash_loop_restarts}",
            None,
            f"bot {BOT} restarted more than {settings.crash_loop_restarts} times in the last "
            f"hour {WHERE}",
            "its log says why it exits (a strategy error, a wrong setting); fix and converge",
            "critical",
        ),
        _rule(
            "PoolMemoryHigh",
            f"botpool_pool_memory_bytes / botpool_pool_memory_limit_bytes > {share:g}",
            settings.pool_memory_for,
            f"pool {{{{ $labels.pool }}}} uses {{{{ $value | humanizePercentage }}}} of its "
            f"memory limit (above {share:.0%}) on host {{{{ $labels.host }}}}",
            "give the pool fewer bots (max_bots_per_pool) or more memory "
            "(pool_memory_limit_mb) before the kernel kills a bot",
            "warning",
        ),
        *_pool_memory_above(settings),
        _rule(
            "BotHeartbeatStale",
            f"botpool_bot_heartbeat_age_seconds > {settings.heartbeat_max_age_seconds} "
            f"and {SAME_BOT} botpool_bot_running == 1",
            settings.heartbeat_stale_for,
            f"the loop of bot {BOT} last ran {{{{ $value | humanizeDuration }}}} ago (limit "
            f"{settings.heartbeat_max_age_seconds} s) {WHERE}",
            "its log says where it hangs (an exchange that does not answer, a strategy "
            "stuck in a loop); `supervisorctl restart` the bot",
            "warning",
        ),
        _rule(
            "BotStagnant",
            _stagnant(settings.stagnant_after_minutes * 60),
            None,
            f"bot {BOT} has no trade open and opened or closed none in the last "
            f"{settings.stagnant_after_minutes} min {WHERE}",
            "`pytest checks/` shows its stake against its wallet, free slots and whitelist; "
            "the reason is often a stake above the tradable wallet or an empty whitelist",
            "warning",
            reason=f"last warning: {LAST_WARNING}",
        ),
        _rule(
            "HostMemoryLow",
            f"node_memory_MemAvailable_bytes < {settings.host_memory_min_available_mb * 2**20}",
            settings.host_memory_for,
            "host {{ $labels.host }} has {{ $value | humanize1024 }}B of memory available "
            f"(below {settings.host_memory_min_available_mb} MiB)",
            "move bots to another host (`botpool plan` shows each host's projection) or "
            "give the host more memory before the kernel kills a bot",
            "critical",
        ),
        _rule(
            "HostDiskLow",
            f"node_filesystem_avail_bytes{{{DISKS}}} / node_filesystem_size_bytes{{{DISKS}}} "
            f"< {settings.host_disk_min_free_share:g}",
            settings.host_disk_for,
            "{{ $labels.mountpoint }} on host {{ $labels.host }} has "
            "{{ $value | humanizePercentage }} free (below "
            f"{settings.host_disk_min_free_share:.0%})",
            "free space: old archives in the root's archive folder, Docker images "
            "(`docker image prune`), bot logs; or lower monitoring.retention_size",
            "critical",
        ),
        _rule(
            "HostOutOfSync",
            "botpool_host_out_of_sync_files > 0",
            settings.out_of_sync_for,
            "{{ $value }} file(s) of the pools on host {{ $labels.host }} differ from "
            "what the last converge wrote",
            "`botpool drift` lists them; converge to restore them",
            "warning",
        ),
        _rule(
            "Watchdog",
            "vector(1)",
            None,
            "the monitoring of this host is alive (always firing; its host label names it)",
            "nothing: this alert is the dead man's switch; its heartbeat URL alarms when it "
            "stops arriving (monitoring.watchdog)",
            "none",
        ),
        _rule(
            "MonitoringTargetDown",
            "up == 0",
            settings.target_down_for,
            "{{ $labels.job }} on host {{ $labels.host }} does not answer Prometheus",
            "look at the monitoring container's logs/ folder; a converge restarts it",
            "critical",
        ),
    ]
    return {"groups": [{"name": "botpool", "rules": rules}]}


def _pool_memory_above(settings: MonitoringSettings) -> list[dict[str, Any]]:
    """The alert on a pool's memory in MiB, when the layout sets pool_memory_mb."""
    if settings.pool_memory_mb is None:
        return []
    mib = settings.pool_memory_mb
    return [
        _rule(
            "PoolMemoryAbove",
            f"botpool_pool_memory_bytes > {mib * 2**20}",
            settings.pool_memory_for,
            "pool {{ $labels.pool }} uses {{ $value | humanize1024 }}B of memory (above "
            f"{mib} MiB) on host {{{{ $labels.host }}}}",
            "give the pool fewer bots (max_bots_per_pool), or raise monitoring.pool_memory_mb "
            "if the pool is meant to be this large",
            "warning",
        )
    ]


def _stagnant(seconds: int) -> str:
    """Running this long, no trade open, its latest trade opened longer ago (or never: no
    last-trade series while its API answers), and none closed meanwhile: a bot that held a
    trade for hours and has just closed it is not stagnant (freqtrade gives the latest
    trade's open date only; the closed count's changes give the close)."""
    never_traded = f"(botpool_bot_api_up == 1 unless {SAME_BOT} botpool_bot_last_trade_age_seconds)"
    return (
        f"botpool_bot_uptime_seconds > {seconds} "
        f"and {SAME_BOT} botpool_bot_trades_open == 0 "
        f"and {SAME_BOT} (botpool_bot_last_trade_age_seconds > {seconds} or {never_traded}) "
        f"unless {SAME_BOT} changes(botpool_bot_trades_closed[{seconds}s]) > 0"
    )


# --- Alertmanager --------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """Where alerts go, with what the secrets folder holds for it (never shown).
    receivers: layout name -> (kind, its file's values); webhook, watchdog: URLs."""

    receivers: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    webhook: str | None = None
    watchdog: str | None = None


OPERATOR = "operator"  # the root route's receiver: the operator's, or nobody
NOBODY = "nobody"  # sends nothing: the Watchdog's receiver when no heartbeat URL is set
RESOLVED = {"send_resolved": True}
TEXT = (
    '{{ range .Alerts }}{{ if eq .Status "resolved" }}RESOLVED: {{ end }}'
    "{{ .Annotations.summary }}\n{{ .Annotations.action }}"
    "{{ with .Annotations.reason }}\n{{ . }}{{ end }}\n{{ end }}"
)
TITLE = "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} on {{ .CommonLabels.host }}"


def integration(kind: str, values: dict[str, str]) -> dict[str, Any]:
    """One receiver's Alertmanager integration (Alertmanager 0.25's own *_configs)."""
    if kind == "webhook":
        return {"webhook_configs": [{"url": values["url"], **RESOLVED}]}
    if kind == "slack":
        slack = {"api_url": values["url"], "title": TITLE, "text": TEXT, **RESOLVED}
        if "channel" in values:
            slack["channel"] = values["channel"]
        return {"slack_configs": [slack]}
    if kind == "discord":
        return {
            "discord_configs": [
                {"webhook_url": values["url"], "title": TITLE, "message": TEXT, **RESOLVED}
            ]
        }
    if kind == "telegram":
        telegram = {
            "bot_token": values["token"],
            "chat_id": int(values["chat_id"]),
            "parse_mode": "",  # plain text: a summary's < or _ never breaks the message
            "message": f"{TITLE}\n{TEXT}",
            **RESOLVED,
        }
        if "api_url" in values:  # default https://api.telegram.org
            telegram["api_url"] = values["api_url"]
        return {"telegram_configs": [telegram]}
    email = {
        "to": values["to"],
        "from": values["from"],
        "smarthost": values["smarthost"],
        "headers": {"Subject": TITLE},
        "text": TEXT,
        **RESOLVED,
    }
    if "username" in values:
        email["auth_username"] = values["username"]
    if "password" in values:
        email["auth_password"] = values["password"]
    return {"email_configs": [email]}


def alertmanager_config(
    settings: MonitoringSettings, delivery: Delivery, host: str = ""
) -> dict[str, Any]:
    """Routes and receivers. Each user's bot alerts go to that user's receiver (by the
    `user` label) when the layout names one; everything else to the operator's receiver
    (and the legacy `webhook`), or nowhere (alerts still show in Alertmanager). The
    Watchdog goes only to the heartbeat URL, every watchdog_interval, `{host}` in it
    replaced by this host's name."""
    operator: dict[str, Any] = {"name": OPERATOR}
    for name in [settings.operator] if settings.operator else []:
        kind, values = delivery.receivers[name]
        operator.update(integration(kind, values))
    if delivery.webhook:
        operator.setdefault("webhook_configs", []).append({"url": delivery.webhook, **RESOLVED})
    receivers = [operator, {"name": NOBODY}]
    for name in sorted(set(settings.user_receivers.values())):
        kind, values = delivery.receivers[name]
        receivers.append({"name": f"user-{name}", **integration(kind, values)})
    watchdog: dict[str, Any] = {"name": "watchdog"}
    if delivery.watchdog:
        url = delivery.watchdog.replace("{host}", host)
        watchdog["webhook_configs"] = [{"url": url, "send_resolved": False}]
        receivers.append(watchdog)
    every = settings.watchdog_interval
    routes: list[dict[str, Any]] = [
        {
            "matchers": ['alertname="Watchdog"'],
            "receiver": "watchdog" if delivery.watchdog else NOBODY,
            "group_wait": "0s",
            "group_interval": every,
            "repeat_interval": every,
        }
    ]
    routes += [
        {"matchers": [f'user="{user}"'], "receiver": f"user-{name}"}
        for user, name in sorted(settings.user_receivers.items())
    ]
    return {
        "route": {
            "receiver": OPERATOR,
            "group_by": ["alertname", "host", "pool", "user", "bot"],
            "group_wait": settings.group_wait,
            "group_interval": settings.group_interval,
            "repeat_interval": settings.repeat_interval,
            "routes": routes,
        },
        "receivers": receivers,
    }


def delivery(settings: MonitoringSettings, secrets: SecretStore) -> Delivery:
    """Read what the monitoring section names from the secrets folder (validated there)."""
    return Delivery(
        receivers={
            name: (kind, secrets.alert_receiver(kind, name))
            for name, kind in settings.receivers.items()
        },
        webhook=secrets.alert_webhook_url(settings.webhook) if settings.webhook else None,
        watchdog=(
            secrets.alert_webhook_url(settings.watchdog, "watchdog") if settings.watchdog else None
        ),
    )


# --- the exporter and supervisord ------------------------------------------------------------


def exporter_config(
    plan: Plan, host: HostPlan, pools: list[RenderedPool], settings: MonitoringSettings
) -> dict[str, Any]:
    """What the exporter watches: each planned pool and bot, and the hash of every file the
    converge writes into the pools (what "in sync with the last converge" means)."""
    return {
        "listen": "127.0.0.1",
        "port": settings.ports["botpool exporter"],
        "interval_seconds": seconds(settings.scrape_interval),
        "project": plan.layout.project,
        "root": plan.layout.root,
        "proc": f"{HOST_ROOT}/proc",
        "supervisor_status": payloads.supervisor_status_command(),
        "pools": [
            {
                "name": pool.name,
                "container": pool.container,
                "user": pool.user,
                "bots": [
                    {"name": b.name, "program": b.program, "port": b.host_port} for b in pool.bots
                ],
            }
            for pool in host.pools
        ],
        "manifest": {
            f"{rendered.pool.name}/{artifact.path}": artifact.hash
            for rendered in pools
            for artifact in rendered.files
        },
    }


def supervisord_conf(settings: MonitoringSettings) -> str:
    ports = settings.ports
    data = f"{MOUNT}/data"
    programs = {
        "prometheus": [
            "prometheus",
            f"--config.file={MOUNT}/prometheus.yml",
            f"--storage.tsdb.path={data}/prometheus",
            f"--storage.tsdb.retention.time={settings.retention}",
            f"--storage.tsdb.retention.size={settings.retention_size}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
        ],
        "alertmanager": [
            "prometheus-alertmanager",
            f"--config.file={MOUNT}/alertmanager.yml",
            f"--storage.path={data}/alertmanager",
            f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
            "--cluster.listen-address=",  # one per host: no gossip port
        ],
        "node-exporter": [
            "prometheus-node-exporter",
            f"--web.listen-address=127.0.0.1:{ports['node exporter']}",
            f"--path.rootfs={HOST_ROOT}",
            f"--path.procfs={HOST_ROOT}/proc",
            f"--path.sysfs={HOST_ROOT}/sys",
            "--no-collector.systemd",  # no systemd bus in the container
        ],
        "exporter": ["python3", f"{MOUNT}/exporter.py", f"{MOUNT}/exporter.json"],
    }
    lines = [
        "; botpool monitoring: rendered by botpool. Do not edit here; edit the layout and "
        "converge.",
        "[unix_http_server]",
        "file=/run/supervisor.sock",
        "chmod=0700",
        "",
        "[supervisord]",
        "nodaemon=true",
        "user=root",
        f"logfile={MOUNT}/logs/supervisord.log",
        "logfile_maxbytes=10MB",
        "logfile_backups=3",
        "pidfile=/run/supervisord.pid",
        f"childlogdir={MOUNT}/logs",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        "serverurl=unix:///run/supervisor.sock",
    ]
    for name, command in programs.items():
        lines += [
            "",
            f"[program:{name}]",
            f"command={' '.join(command)}",
            "autorestart=true",
            "startsecs=5",
            "stopwaitsecs=30",
            "redirect_stderr=true",
            f"stdout_logfile={MOUNT}/logs/{name}.log",
            "stdout_logfile_maxbytes=10MB",
            "stdout_logfile_backups=3",
            'environment=PYTHONUNBUFFERED="1",PYTHONDONTWRITEBYTECODE="1"',
        ]
    return "\n".join(lines) + "\n"


def _yaml(data: dict[str, Any]) -> str:
    header = "# rendered by botpool from the layout's monitoring: section; do not edit here\n"
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def render_monitoring(
    plan: Plan, host: HostPlan, pools: list[RenderedPool], secrets: SecretStore
) -> RenderedMonitoring | None:
    """The monitoring container of one host and its files; None when monitoring is off."""
    settings = plan.layout.monitoring
    if not settings.enabled:
        return None
    project, root = plan.layout.project, plan.layout.root
    try:
        sends = delivery(settings, secrets)
    except SecretsError as exc:
        raise LayoutError([Problem(plan.layout.file, 1, "monitoring", str(exc))]) from None
    supervisord = supervisord_conf(settings)
    code = EXPORTER_SOURCE.read_text()
    probe_code = PROBE_SOURCE.read_text()
    files = (
        Artifact("supervisord.conf", supervisord),
        Artifact("exporter.py", code),
        Artifact("probe.py", probe_code),
        Artifact(
            "exporter.json",
            json.dumps(exporter_config(plan, host, pools, settings), indent=1, sort_keys=True)
            + "\n",
        ),
        Artifact("prometheus.yml", _yaml(prometheus_config(settings, host.name, project))),
        Artifact("rules.yml", _yaml(alert_rules(settings))),
        Artifact("alertmanager.yml", _yaml(alertmanager_config(settings, sends, host.name)), 0o600),
    )
    directories = (
        Directory(""),
        Directory("data", 0o700),
        Directory("data/prometheus", 0o700, tree=True),
        Directory("data/alertmanager", 0o700, tree=True),
        Directory("logs", tree=True),
    )
    image = monitoring_image_spec()
    container = ContainerSpec(
        name=container_name(project),
        hostname=f"{project}-monitoring",
        image=image.tag,
        command=("supervisord", "-n", "-c", SUPERVISOR_CONF),
        ports=(),
        mounts=(
            (f"{root}/monitoring", MOUNT, "rw"),
            (f"{root}/pools", POOLS, "ro"),
            (DOCKER_SOCKET, DOCKER_SOCKET, "ro"),
            ("/", HOST_ROOT, "ro"),
        ),
        memory_limit_mb=settings.memory_limit_mb,
        host_network=True,
        inputs=(
            ("supervisord.conf", sha256(supervisord)),
            ("exporter.py", sha256(code)),
            ("probe.py", sha256(probe_code)),
        ),
        # root of the container owns every file it reads and writes; SYS_PTRACE only lets
        # the exporter read each bot's PSS (/proc/PID/smaps_rollup of another uid). The
        # container holds the Docker socket already: this widens nothing it could do.
        capabilities=("SYS_PTRACE",),
        labels=(
            (names.ROLE, "monitoring"),
            (names.ROOT, root),
            (names.PROJECT, project),
        ),
    )
    return RenderedMonitoring(files, directories, container, image)
