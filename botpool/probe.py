"""Ask every bot of a host how it is, the way a person would: through its published port.

PROBE runs on the host in a throwaway container of the pool image (`--network host`, the
pools folder mounted read-only): it reads each bot's own config for its API login, calls
the bot at 127.0.0.1:<host port>, and reads the tail of its log and supervisord's log. So
no port is opened, no credential crosses the network, and the path tested is the real one
(published on the host's loopback). One command per host; its output is one JSON line.

The script, botpool/payloads/probe.py, is standard-library Python passed as an argument (it
holds no secret); the pools folder and the targets are its arguments.
"""

from __future__ import annotations

import json
import shlex
from importlib import resources

PROBE = (resources.files("botpool.payloads") / "probe.py").read_text()

MARK = "@@botpool "


def command(root: str, image: str, targets: list[dict[str, object]]) -> str:
    """Shell printing listening sockets, memory, container memory and the probe's JSON."""
    pools = f"{root}/pools"
    probe = (
        f"docker run --rm --network host --user 1000 --cap-drop ALL -v "
        f"{shlex.quote(pools)}:/pools:ro {shlex.quote(image)} python3 -c "
        f"{shlex.quote(PROBE)} /pools {shlex.quote(json.dumps(targets))}"
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
