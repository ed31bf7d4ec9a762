"""Ask every bot of a host how it is, the way a person would: through its published port.

PROBE runs on the host in a throwaway container of the pool image (`--network host`, the
pools folder mounted read-only): it reads each bot's own config for its API login, calls
the bot at 127.0.0.1:<host port>, and reads the tail of its log and supervisord's log. So
no port is opened, no credential crosses the network, and the path tested is the real one
(published on the host's loopback). One command per host; its output is one JSON line.

The script, botpool/payloads/probe.py, is standard-library Python passed as an argument (it
holds no secret); the pools folder and the targets are its arguments. It reads what bots can
write, so its container gets little and can do little (LIMITS) and runs under a wall clock.
"""

from __future__ import annotations

import json
import shlex
from importlib import resources

from botpool.core import names
from botpool.core.pipeline import Desired
from botpool.core.snapshot import MARK, Snapshot  # one marker for every host command's sections

PROBE = (resources.files("botpool.payloads") / "probe.py").read_text()

CALL_TIMEOUT_S = 5  # one HTTP call to one bot
BOT_DEADLINE_S = 20  # every call to one bot
DEADLINE_S = 90  # every bot of the host (a hung bot costs one call timeout)
WALL_CLOCK_S = DEADLINE_S + 60  # the whole `docker run`, container start included
# The probe reads bot-written files and answers: it gets little and can do little.
LIMITS = (
    "--pull never",  # only the pool image built on the host, never a same-named one pulled
    "--user 0:0",  # root reads the root-owned 0640 configs as their owner: no capability
    "--cap-drop ALL",
    "--security-opt no-new-privileges",
    "--read-only",
    "--memory 128m",
    "--memory-swap 128m",
    "--pids-limit 16",
    "--cpus 1",
    "--init",  # so the wall clock's SIGTERM ends python3, which is not PID 1
)


def command(
    root: str, image: str, targets: list[dict[str, object]], pools: list[str] | None = None
) -> str:
    """Shell printing listening sockets, memory, the memory of the running pool containers
    named in pools, and the probe's JSON.

    `docker stats --no-stream` takes two samples a second apart, and of every container of
    the engine unless named: it runs beside the probe, on the pools alone (one that is gone
    would make it print nothing at all), so a check costs the probe's time, not the sum.
    """
    stats = "timeout 30 docker stats --no-stream --format '{{.Name}}|{{.MemUsage}}'"
    return "\n".join(
        [
            *(
                [
                    "stats=$(mktemp)",
                    f'{stats} {" ".join(map(shlex.quote, pools))} >"$stats" 2>/dev/null &',
                ]
                if pools
                else []
            ),
            f"echo '{MARK}listening'",
            "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null",
            f"echo '{MARK}meminfo'",
            "cat /proc/meminfo",
            f"echo '{MARK}backups'",  # each bot's scheduled backups: ./<user>/<bot>/<stamp>...
            f"(cd {shlex.quote(root)}/{names.BACKUPS_DIR} 2>/dev/null && find . -mindepth 3 "
            "-maxdepth 3 -type f -name '*.sqlite.gz')",
            f"echo '{MARK}probe'",
            run_probe(root, image, targets) if targets else "echo '{}'",
            f"echo '{MARK}stats'",
            *(["wait", 'cat "$stats"; rm -f "$stats"'] if pools else []),
            "exit 0",
        ]
    )


def run_probe(
    root: str, image: str, targets: list[dict[str, object]], wall_clock_s: int = WALL_CLOCK_S
) -> str:
    """`docker run` of the probe under a wall clock; past it, a clear line instead of JSON.

    The script has its own deadlines (per call, per bot, in all), so the wall clock only
    catches what it cannot: a Docker engine or host too slow to start it or let it finish.
    """
    arguments = (
        f"/pools {shlex.quote(json.dumps(targets))} --call-timeout {CALL_TIMEOUT_S} "
        f"--bot-deadline {BOT_DEADLINE_S} --deadline {DEADLINE_S}"
    )
    name = "botpool-probe-$$-$(date +%s)"
    return "\n".join(
        [
            f'name="{name}"',
            f'timeout -k 10 {wall_clock_s} docker run --rm --name "$name" --network host '
            f"{' '.join(LIMITS)} -v {shlex.quote(root + '/pools')}:/pools:ro "
            f"{shlex.quote(image)} python3 -I -c {shlex.quote(PROBE)} {arguments} 2>&1",
            "code=$?",
            'case $code in 124|137) timeout 30 docker rm -f "$name" >/dev/null 2>&1;; esac',
            f'[ $code = 124 ] && echo "the probe did not finish within {wall_clock_s} s: the host '
            'or its Docker engine is too slow"',
            '[ $code = 137 ] && echo "the probe was killed: out of its 128 MiB of memory, or '
            'stuck past its wall clock"',
        ]
    )


def command_for(want: Desired, snap: Snapshot) -> str:
    """The probe of every bot planned for a host (the checks' and the dashboard's)."""
    targets: list[dict[str, object]] = [
        {"program": b.program, "pool": b.pool, "bot": b.name, "port": b.host_port}
        for b in want.host.bots
    ]
    pools = want.pools
    image = image_for(pools[0].container.image if pools else "", snap.images)
    running = [
        p.container.name
        for p in pools
        if p.container.name in snap.containers and snap.containers[p.container.name].running
    ]
    return command(want.plan.layout.root, image, targets, running)


def image_for(planned: str, present: set[str]) -> str:
    """The planned pool image, or (before a converge built it) any pool image on the host."""
    if planned in present:
        return planned
    return next(iter(sorted(i for i in present if i.startswith("botpool/pool:"))), planned)
