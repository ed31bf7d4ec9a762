"""`botpool tunnel`: reach every bot's API (and FreqUI) from this machine through SSH.

Bot APIs listen on their host's 127.0.0.1 only. One `ssh -N -L ...` per host forwards each
bot's port to this machine's 127.0.0.1, using the SSH settings of the pyinfra inventory
(the same hosts, users, ports, keys and known_hosts a converge uses).

Local ports are stable: a bot of the layout's first host keeps its port; a bot of the n-th
host (in the order `hosts:` declares them, counted from 0) gets its port + n x the width of
the port range (`max_port` - `base_port` + 1: 1000 by default), since hosts allocate their
ports independently and two of them often both use 9000. So a bot's local URL, which FreqUI
remembers, does not change from one run to the next.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botpool.core.plan import BotPlan, Plan

LOOPBACK = "127.0.0.1"
POLL_SECONDS = 0.2  # how soon `--run` notices a tunnel that ended, or Ctrl-C
STOPS = (signal.SIGINT, signal.SIGTERM)
# what may reach the ssh command line from inventory data (never an option, never a space)
_ADDRESS = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|[0-9A-Fa-f:.]{2,45}")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
_PATH = re.compile(r"[^\x00-\x1f\x7f]{1,4096}")
_STRICT = ("yes", "no", "accept-new", "ask", "off")


class TunnelError(Exception):
    pass


def local_port(plan: Plan, bot: BotPlan) -> int:
    """The port of the bot's API on this machine, through `botpool tunnel`."""
    layout = plan.layout
    index = list(layout.hosts).index(bot.host)
    port = bot.host_port + index * (layout.max_port - layout.base_port + 1)
    if port > 65535:
        raise TunnelError(
            f"{bot.key}: its local port would be {port} (host {bot.host} is the "
            f"{index + 1}th of hosts:), beyond 65535: narrow base_port..max_port"
        )
    return port


def local_url(plan: Plan, bot: BotPlan) -> str:
    return f"http://{LOOPBACK}:{local_port(plan, bot)}"


@dataclass(frozen=True)
class Tunnel:
    """One inventory host's forwards; argv is None when no tunnel is needed (@local)."""

    host: str  # as in the inventory
    layout_host: str
    bots: tuple[tuple[BotPlan, int], ...]  # each bot and its local port
    argv: tuple[str, ...] | None
    note: str = ""  # why there is no argv


def tunnel(
    name: str, layout_host: str, data: Mapping[str, Any], plan: Plan, user: str | None
) -> Tunnel:
    """The tunnel to one inventory host for its bots (of one user, if given)."""
    bots = tuple(
        (bot, local_port(plan, bot))
        for bot in plan.hosts[layout_host].bots
        if user is None or bot.user == user
    )
    if name == "@local":  # the bots are right here, at their own ports
        here = tuple((bot, bot.host_port) for bot, _ in bots)
        return Tunnel(name, layout_host, here, None, "this machine: no tunnel needed")
    if name.startswith("@"):
        return Tunnel(name, layout_host, bots, None, "not an SSH host: botpool cannot tunnel")
    if not bots:
        return Tunnel(name, layout_host, bots, None, "no bots")
    return Tunnel(name, layout_host, bots, tuple(ssh_argv(name, data, bots)))


def ssh_argv(name: str, data: Mapping[str, Any], bots: Sequence[tuple[BotPlan, int]]) -> list[str]:
    """`ssh -N` with the inventory's SSH settings and one `-L` per bot."""

    def text(key: str, pattern: re.Pattern[str], what: str, default: Any = None) -> str | None:
        value = data.get(key, default)
        if value is None:
            return None
        if not (isinstance(value, str) and pattern.fullmatch(value)):
            raise TunnelError(f"{name}: {key} {str(value)[:80]!r} is not {what}")
        return value

    address = text("ssh_hostname", _ADDRESS, "a host name or address", name)
    user = text("ssh_user", _USER, "a user name")
    key = text("ssh_key", _PATH, "a file path")
    known_hosts = text("ssh_known_hosts_file", _PATH, "a file path")
    config = text("ssh_config_file", _PATH, "a file path")
    strict = data.get("ssh_strict_host_key_checking")
    if strict is not None and strict not in _STRICT:
        raise TunnelError(f"{name}: ssh_strict_host_key_checking is not one of {_STRICT}")
    port = data.get("ssh_port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise TunnelError(f"{name}: ssh_port {str(port)[:20]!r} is not a port number")
    if port is not None and not 1 <= port <= 65535:
        raise TunnelError(f"{name}: ssh_port {port} is not between 1 and 65535")
    argv = ["ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30"]
    if config:
        argv += ["-F", config]
    if key:
        argv += ["-i", key, "-o", "IdentitiesOnly=yes"]
    if port:
        argv += ["-p", str(port)]
    if known_hosts:
        argv += ["-o", f"UserKnownHostsFile={known_hosts}"]
    if strict:
        argv += ["-o", f"StrictHostKeyChecking={strict}"]
    for bot, local in bots:
        argv += ["-L", f"{LOOPBACK}:{local}:{LOOPBACK}:{bot.host_port}"]
    return [*argv, "--", f"{user}@{address}" if user else str(address)]


def describe(tunnels: Sequence[Tunnel]) -> str:
    """What `botpool tunnel` prints: each host's command, then each bot's local URL (as
    comments, so the whole output can be pasted into a shell)."""
    out = []
    for t in tunnels:
        out.append(f"# {t.host} (layout host {t.layout_host}): {len(t.bots)} bot(s)")
        out.append(shlex.join(t.argv) if t.argv else f"# {t.note}")
        width = max((len(bot.key) for bot, _ in t.bots), default=0)
        out += [f"#   {bot.key.ljust(width)}  http://{LOOPBACK}:{port}" for bot, port in t.bots]
    return "\n".join(out)


def run(tunnels: Sequence[Tunnel]) -> int:
    """Run every host's ssh until Ctrl-C (or SIGTERM), then close them all: exit 0. If one
    ends by itself (a refused login, a local port already taken), close the others: exit 1."""
    commands = [t for t in tunnels if t.argv]
    if not commands:
        print("nothing to run: no bot needs a tunnel", file=sys.stderr)
        return 0
    stops: list[int] = []  # the signals asking to stop; a handler that raised could raise
    # inside gevent's hub (the CLI loads a pyinfra inventory, which patches the process)
    previous = {s: signal.signal(s, lambda signum, _: stops.append(signum)) for s in STOPS}
    processes: list[tuple[Tunnel, subprocess.Popen[bytes]]] = []
    try:
        for t in commands:
            assert t.argv is not None
            processes.append((t, subprocess.Popen(t.argv)))
        print(f"{len(processes)} tunnel(s) open; Ctrl-C closes them", file=sys.stderr)
        ended = _first_to_end(processes, stops)
        if ended is None:
            return 0
        host, code = ended
        print(
            f"error: the tunnel to {host} ended (exit {code}); closing the others", file=sys.stderr
        )
        return 1
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _close([process for _, process in processes])


def _first_to_end(
    processes: Sequence[tuple[Tunnel, subprocess.Popen[bytes]]], stops: Sequence[int]
) -> tuple[str, int] | None:
    """The host of the first ssh that ends by itself and its exit code, or None once asked
    to stop (Ctrl-C also ends the ssh processes of the terminal: that is no error). Polled,
    never os.wait(): gevent reaps the children itself, and os.wait() would wait for ever."""
    while not stops:
        for t, process in processes:
            code = process.poll()
            if code is not None and not stops:
                return t.host, code
        time.sleep(POLL_SECONDS)
    return None


def _close(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
