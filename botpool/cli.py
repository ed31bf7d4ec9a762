"""The `botpool` command: validate, plan, render and inspect a layout.

Exit codes (as `terraform plan -detailed-exitcode`): 0 = everything matches, 2 = changes
pending or drift, 1 = error (bad input, unreachable host).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

from botpool.core import names, schema
from botpool.core.allocate import lock_path, read_lock, write_lock
from botpool.core.capacity import DEFAULT_WINDOW, THRESHOLD, WINDOW_RE
from botpool.core.plan import Plan, load_plan
from botpool.core.secretstore import SecretsError, SecretStore
from botpool.core.source import LayoutError, printable, table
from botpool.hosts import InventoryError
from botpool.hosts.tunnel import TunnelError, local_url

# Each command imports what only it needs (pyinfra, paramiko, the pipeline): `botpool
# validate` or `plan` starts in about half the time of importing everything.
if TYPE_CHECKING:
    from botpool.core.pipeline import Artifact
    from botpool.core.render import ContainerSpec
    from botpool.hosts.remote import RemoteHost

OK, ERROR, CHANGES = 0, 1, 2


def _plan(args: argparse.Namespace) -> Plan:
    return load_plan(args.layout, SecretStore.from_env())


def cmd_validate(args: argparse.Namespace) -> int:
    from botpool.core import freqtrade_validation

    plan = _plan(args)
    refused = freqtrade_validation.problems(plan)
    if refused:
        raise LayoutError(refused)
    if not freqtrade_validation.available():
        print(
            "freqtrade is not installed here: the converge runs its checks of each changed "
            "config on the host, in the pool image, before it touches a bot"
        )
    print(
        f"{args.layout}: valid: {len(plan.layout.users)} users, {len(plan.bots)} bots in "
        f"{len(plan.pools)} pools on {len(plan.hosts)} host(s)"
    )
    return OK


def plan_as_json(plan: Plan) -> dict[str, Any]:
    return {
        "bots": [
            {
                "user": b.user,
                "bot": b.name,
                "program": b.program,
                "host": b.host,
                "pool": b.pool,
                "slot": b.slot,
                "host_port": b.host_port,
                "container_port": b.container_port,
                "strategy": b.settings.strategy,
                "exchange": b.settings.exchange,
                "dry_run": b.settings.dry_run,
                "memory_mb": b.memory_mb,
                "notify": sorted(b.settings.notify),  # the services, never their secrets
            }
            for b in plan.bots
        ],
        "pools": [
            {
                "pool": p.name,
                "host": p.host,
                "runtime": p.runtime.name,
                "bots": len(p.bots),
                "projected_mb": p.projected_mb,
                "memory_limit_mb": p.memory_limit_mb,
            }
            for p in plan.pools
        ],
        "hosts": [
            {
                "host": h.name,
                "pools": len(h.pools),
                "bots": len(h.bots),
                "projected_mb": h.projected_mb,
                "usable_mb": h.host.usable_mb,
                "memory_mb": h.host.memory_mb,
                "labels": h.host.labels,
                "bots_per_exchange": {
                    name: {"bots": n, "max": plan.layout.exchanges[name].max_bots_per_host}
                    for name, n in h.bots_per_profile().items()
                },
            }
            for h in plan.hosts.values()
        ],
        "moves": [
            {"pool": p.name, "from": p.block.moved_from, "to": p.host}
            for p in plan.pools
            if p.block.moved_from
        ],
    }


def cmd_plan(args: argparse.Namespace) -> int:
    """Show the plan; write the lock (or, with --check, only say whether it is current)."""
    lock = lock_path(args.layout)
    lost = frozenset(args.lost_host or ())
    if args.measured:
        return _plan_measured(args)
    if lost:
        return _plan_without(args, lock, lost)
    plan = _plan(args)
    print(json.dumps(plan_as_json(plan), indent=2) if args.json else plan_tables(plan))
    wanted = plan.allocation.to_yaml()
    if (lock.read_text() if lock.exists() else None) == wanted:
        return OK
    if args.check:
        print(
            f"{lock} is not current: run `botpool plan {args.layout}` and commit it",
            file=sys.stderr,
        )
        return CHANGES
    write_lock(lock, wanted)
    print(f"wrote {lock}", file=sys.stderr)
    return OK


def _plan_without(args: argparse.Namespace, lock: Path, lost: frozenset[str]) -> int:
    """`plan --lost-host`: the hosts' data is gone for good. Pools leaving them carry nothing
    (no move waits for them), pools staying (a replacement server of the same name) start
    empty there; the lock is written; each bot to restore is named."""
    previous = read_lock(lock)
    known = {p.host for p in previous.pools.values()} | {
        p.moved_from for p in previous.pools.values() if p.moved_from
    }
    unknown = sorted(lost - known)
    if unknown:
        print(
            f"--lost-host {', '.join(unknown)}: {lock} places no pool there (hosts it knows: "
            f"{', '.join(sorted(known)) or 'none'})",
            file=sys.stderr,
        )
        return ERROR
    if args.check:
        print("--lost-host writes the lock: it cannot be combined with --check", file=sys.stderr)
        return ERROR
    plan = load_plan(args.layout, SecretStore.from_env(), lost)
    print(json.dumps(plan_as_json(plan), indent=2) if args.json else plan_tables(plan))
    write_lock(lock, plan.allocation.to_yaml())
    print(f"wrote {lock}", file=sys.stderr)
    for pool in plan.pools:
        before = previous.pools.get(pool.name)
        if before and (before.host in lost or before.moved_from in lost):
            print(
                f"{pool.name} starts empty on {pool.host} at the next converge; then restore "
                "each of its bots from a pulled backup (`botpool backup INVENTORY --pull DIR`):",
                file=sys.stderr,
            )
            for bot in pool.bots:
                print(
                    f"  botpool restore INVENTORY {bot.key} --from DIR --at latest",
                    file=sys.stderr,
                )
    return OK


def _plan_measured(args: argparse.Namespace) -> int:
    """`plan --measured INVENTORY`: the plan projected with each host's measured peaks, and
    the fewest pool moves bringing every host under the threshold. Reads only: 0 every host
    is under it, 2 some host is above (the moves are the pending change), 1 error."""
    from botpool.hosts import capacity
    from botpool.hosts.remote import inventory_hosts

    if args.check or args.lost_host:
        print(
            "--measured only reads: it cannot be combined with --check or --lost-host",
            file=sys.stderr,
        )
        return ERROR
    plan = _plan(args)
    if not plan.layout.monitoring.enabled:
        print(
            "error: --measured reads each host's Prometheus, and this layout turns monitoring "
            "off (monitoring.enabled: false)",
            file=sys.stderr,
        )
        return ERROR
    readings = capacity.measure(inventory_hosts(args.measured), plan, args.window)
    report = capacity.report(plan, readings, args.window, args.threshold / 100)
    print(capacity.as_json(report) if args.json else capacity.text(report))
    for reading in readings:
        if reading.error:
            print(f"error: {reading.error} (its pools count with planned figures)", file=sys.stderr)
    if any(r.error for r in readings):
        return ERROR
    return CHANGES if report.above else OK


HOST_COLUMNS = ("HOST", "POOLS", "BOTS", "PROJECTED", "USABLE", "USE", "LABELS", "BOTS/EXCHANGE")


def plan_tables(plan: Plan) -> str:
    """Bots, pools and hosts as aligned tables, then the pool moves a converge would carry."""
    bots = [
        (
            b.host,
            b.pool,
            b.name,
            f"127.0.0.1:{b.host_port}",
            b.settings.strategy,
            "yes" if b.settings.dry_run else "LIVE",
            f"{b.memory_mb} MiB",
            ",".join(sorted(b.settings.notify)) or "-",
        )
        for b in plan.bots
    ]
    pools = [
        (
            p.name,
            p.host,
            p.runtime.name,
            len(p.bots),
            f"{p.projected_mb} MiB",
            f"{p.memory_limit_mb} MiB",
        )
        for p in plan.pools
    ]
    hosts = [
        (
            h.name,
            len(h.pools),
            len(h.bots),
            f"{h.projected_mb} MiB",
            f"{h.host.usable_mb} MiB",
            f"{100 * h.projected_mb // max(h.host.usable_mb, 1)}%",
            " ".join(f"{k}={v}" for k, v in sorted(h.host.labels.items())),
            ", ".join(
                f"{name} {n}/{plan.layout.exchanges[name].max_bots_per_host or '-'}"
                for name, n in h.bots_per_profile().items()
            ),
        )
        for h in plan.hosts.values()
    ]
    moves = [
        f"{p.name} moves from {p.block.moved_from} to {p.host} with its data at the next converge"
        for p in plan.pools
        if p.block.moved_from
    ]
    return "\n\n".join(
        [
            table(bots, ("HOST", "POOL", "BOT", "API", "STRATEGY", "DRY-RUN", "MEMORY", "NOTIFY")),
            table(pools, ("POOL", "HOST", "RUNTIME", "BOTS", "PROJECTED", "LIMIT")),
            "\n".join(
                [
                    table(
                        hosts,
                        (
                            "HOST",
                            "POOLS",
                            "BOTS",
                            "PROJECTED",
                            "USABLE",
                            "USE",
                            "LABELS",
                            "BOTS/EXCHANGE",
                        ),
                    )
                ]
                + moves
            ),
        ]
    )


def write_unit(directory: Path, files: Sequence[Artifact], container: ContainerSpec) -> None:
    """One unit's rendered files (with their modes) and its container spec."""
    for artifact in files:
        path = directory / artifact.path
        path.parent.mkdir(parents=True, exist_ok=True)
        # on this machine nobody is the bot's group: a secret is for its owner alone
        mode = 0o600 if artifact.secret else artifact.mode
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(artifact.text)
        os.chmod(path, mode)
    spec = {"spec": container.__dict__, "labels": container.all_labels()}
    (directory / "container.json").write_text(json.dumps(spec, indent=2, default=list))


def cmd_render(args: argparse.Namespace) -> int:
    """Every host's rendered tree into a folder; everything is rendered before anything is
    written, so an error (a missing credentials file, say) leaves no half-written tree."""
    from botpool.core.pipeline import HostRef, desired

    plan = _plan(args)
    out = Path(args.out)
    rendered = {name: desired(HostRef(args.layout, name), plan) for name in plan.hosts}
    for host, want in rendered.items():
        for pool in want.pools:
            directory = out / host / "pools" / pool.pool.name
            write_unit(directory, pool.files, pool.container)
            for sub in pool.directories:
                (directory / sub.path).mkdir(parents=True, exist_ok=True)
        for ex in want.exchanges:
            write_unit(out / host / "exchanges" / ex.exchange.profile.name, ex.files, ex.container)
        if want.monitoring:
            write_unit(out / host / "monitoring", want.monitoring.files, want.monitoring.container)
    print(f"rendered {len(plan.bots)} bots in {len(plan.pools)} pools into {out}")
    return OK


def cmd_credentials(args: argparse.Namespace) -> int:
    """Print the API login of one bot (USER/BOT) or of every bot of a user (USER): the one
    place a secret is shown, because a person asked."""
    plan = _plan(args)
    wanted = [b for b in plan.bots if args.who in (b.bot.key, b.user)]
    if not wanted:
        print(
            f"no bot or user {args.who!r} in {args.layout}: use USER or USER/BOT as in "
            "`botpool plan`",
            file=sys.stderr,
        )
        return ERROR
    store = SecretStore.from_env()
    logins = []
    for bot in wanted:
        creds = store.api_credentials(bot.bot.key)
        logins.append(
            {
                "bot": bot.bot.key,
                "host": bot.host,
                "pool": bot.pool,
                "host_port": bot.host_port,
                "url": local_url(plan, bot),  # through `botpool tunnel` (or on the host)
                "username": creds.username,
                "password": creds.password,
            }
        )
    if args.json:
        print(json.dumps(logins, indent=2))
        return OK
    for login in logins:
        print(f"bot:      {login['bot']} on host {login['host']}, pool {login['pool']}")
        print(
            f"api:      {login['url']} (run `botpool tunnel INVENTORY` first; on the host "
            f"itself: http://127.0.0.1:{login['host_port']})"
        )
        print(f"username: {login['username']}")
        print(f"password: {login['password']}")
        if len(logins) > 1:
            print()
    return OK


def cmd_rotate(args: argparse.Namespace) -> int:
    plan = _plan(args)
    if args.bot not in {b.bot.key for b in plan.bots}:
        print(f"no bot {args.bot!r} in {args.layout}", file=sys.stderr)
        return ERROR
    generation = SecretStore.from_env().rotate(args.bot)
    print(f"{args.bot}: API credentials rotated (generation {generation}); converge to apply")
    return OK


def cmd_status(args: argparse.Namespace) -> int:
    """Every bot of this machine: supervisor state, API URL, whether it answers, trades."""
    from botpool.hosts.status import host_status

    plan = _plan(args)
    if args.host not in plan.hosts:
        print(f"no host {args.host!r} in {args.layout}", file=sys.stderr)
        return ERROR
    rows = host_status(plan, args.host, SecretStore.from_env(), wait_s=args.wait)
    print(
        table(
            [
                (
                    r.bot.program,
                    r.bot.pool,
                    r.url,
                    r.state,
                    "yes" if r.answers else "NO",
                    "-" if r.open_trades is None else r.open_trades,
                    "-" if r.closed_trades is None else r.closed_trades,
                )
                for r in rows
            ],
            ("BOT", "POOL", "API", "STATE", "ANSWERS", "OPEN TRADES", "CLOSED"),
        )
    )
    silent = [r.bot.program for r in rows if not r.answers]
    if silent:
        print(
            f"{len(silent)} bot(s) do not answer: {', '.join(silent)}; see "
            f"`docker exec CONTAINER {names.SUPERVISORCTL} tail -f BOT`",
            file=sys.stderr,
        )
        return CHANGES
    return OK


def cmd_drift(args: argparse.Namespace) -> int:
    """Compare every host of a pyinfra inventory with its layout: 0 same, 2 drift, 1 error."""
    from botpool.hosts.drift import host_drift

    results = read_hosts(args.inventory, host_drift)
    report = json.dumps([r.as_dict() for r in results], indent=2)
    if args.json_out:  # the same reading, for machines as well as people
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(report + "\n")
    if args.json:
        print(report)
    else:
        rows = [(r.host, d.subject, d.kind, d.detail) for r in results for d in r.differences]
        print_hosts(results, rows, ("HOST", "WHAT", "DRIFT", "DETAIL"), "no drift on")
    return hosts_exit_code(results)


class HostReport(Protocol):
    """What drift and alerts tell of one host: its name, an error, or what was found."""

    host: str
    error: str | None

    @property
    def findings(self) -> Sequence[object]: ...


Report = TypeVar("Report", bound=HostReport)


def read_hosts(inventory: str, read: Callable[[RemoteHost], Report]) -> list[Report]:
    """`read` applied to every host of the inventory, the hosts read in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    from botpool.hosts.remote import inventory_hosts

    hosts = inventory_hosts(inventory)
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(read, hosts))


def print_hosts(
    results: Sequence[HostReport], rows: list[tuple[Any, ...]], header: tuple[str, ...], quiet: str
) -> None:
    """What was found on the hosts as a table, each host's error on stderr, and the hosts
    with nothing found on one line (`quiet` and their names)."""
    if rows:
        print(table(rows, header))
    for r in results:
        if r.error:
            print(f"error: {r.error}", file=sys.stderr)
    clean = [r.host for r in results if not r.error and not r.findings]
    if clean:
        print(f"{quiet} {', '.join(clean)}")


def hosts_exit_code(results: Sequence[HostReport]) -> int:
    """1 when a host could not be read, else 2 when something was found, else 0."""
    if any(r.error for r in results):
        return ERROR
    return CHANGES if any(r.findings for r in results) else OK


def cmd_tunnel(args: argparse.Namespace) -> int:
    """One `ssh -L` per host of a pyinfra inventory, forwarding every bot's API (and FreqUI)
    to this machine; --run runs them until Ctrl-C."""
    from botpool.core.pipeline import plan_of
    from botpool.hosts import tunnel
    from botpool.hosts.remote import inventory_hosts

    hosts = inventory_hosts(args.inventory)
    tunnels = []
    for remote in hosts:
        plan = plan_of(remote.layout)
        if remote.layout_host not in plan.hosts:
            print(
                f"error: {remote.name}: no host {remote.layout_host!r} in {remote.layout} "
                f"(hosts: {', '.join(plan.hosts)}): set its botpool_host data",
                file=sys.stderr,
            )
            return ERROR
        if args.user and args.user not in {u.name for u in plan.layout.users}:
            print(f"error: no user {args.user!r} in {remote.layout}", file=sys.stderr)
            return ERROR
        tunnels.append(tunnel.tunnel(remote.name, remote.layout_host, remote.data, plan, args.user))
    print(tunnel.describe(tunnels), flush=True)
    return tunnel.run(tunnels) if args.run else OK


def cmd_alerts(args: argparse.Namespace) -> int:
    """What is firing on every host of an inventory: 0 nothing, 2 some, 1 error."""
    from botpool.hosts.alerts import host_alerts

    results = read_hosts(args.inventory, host_alerts)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        rows = [
            (r.host, a.alertname, a.severity, a.pool, a.user, a.bot, a.since, a.summary)
            for r in results
            for a in r.alerts
        ]
        header = ("HOST", "ALERT", "SEVERITY", "POOL", "USER", "BOT", "SINCE", "SUMMARY")
        print_hosts(results, rows, header, "nothing firing on")
    return hosts_exit_code(results)


def cmd_dashboard(args: argparse.Namespace) -> int:
    """A local web page for every host, pool and bot of an inventory (read-only)."""
    from botpool.dashboard.collect import Fleet
    from botpool.dashboard.server import DashboardError, read_token, serve
    from botpool.hosts.remote import inventory_hosts

    try:
        token = read_token(args.token) if args.token else None
        fleet = Fleet(inventory_hosts(args.inventory), args.refresh)
        return serve(fleet, args.listen, args.port, token)
    except DashboardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ERROR


def cmd_backup(args: argparse.Namespace) -> int:
    """A backup of every bot on every host now; with --pull, the newest copied here."""
    from botpool.hosts import backups
    from botpool.hosts.remote import RemoteError, inventory_hosts

    failed = False
    for remote in inventory_hosts(args.inventory):
        try:
            for line in backups.take(remote):
                print(f"{remote.layout_host}: {printable(line)}")
            if args.pull:
                for path in backups.pull(remote, Path(args.pull)):
                    print(f"{remote.layout_host}: pulled {path}")
        except (RemoteError, LayoutError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
    return ERROR if failed else OK


def cmd_restore(args: argparse.Namespace) -> int:
    """Without --at: list the bot's backups (on its host, or pulled: --from DIR). With --at
    STAMP (or latest): restore it (a pulled one is sent to the bot's host first)."""
    from botpool.hosts import backups
    from botpool.hosts.remote import RemoteError, inventory_hosts

    if args.at and args.at != "latest" and not backups.STAMP_RE.fullmatch(args.at):
        print(
            f"--at {args.at!r}: use a stamp from the list (e.g. 20261127T160000Z) or latest",
            file=sys.stderr,
        )
        return ERROR
    if args.source and not Path(args.source).is_dir():
        print(
            f"--from {args.source}: no such folder (a `botpool backup --pull` folder)",
            file=sys.stderr,
        )
        return ERROR
    try:
        located = backups.locate(inventory_hosts(args.inventory), args.bot)
        if args.source:  # pulled to the controller: its old host may be gone
            files = backups.pulled(Path(args.source), located.bot.key)
            have, where = sorted(files), f"{args.source} (pulled)"
        else:
            have, where = backups.stamps(located), f"{located.remote.layout_host}:{located.folder}"
        if not args.at:
            print(f"backups of {args.bot} in {where} (restore one with --at STAMP):")
            print("\n".join(have) if have else "none yet")
            return OK
        stamp = have[-1] if args.at == "latest" and have else args.at
        if stamp not in have:
            print(
                f"no backup {stamp} of {args.bot} in {where}: run without --at to list them",
                file=sys.stderr,
            )
            return ERROR
        arrival = backups.push(located, files[stamp], stamp) if args.source else None
        kept = backups.restore(located, stamp, arrival)
    except RemoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ERROR
    print(
        f"{args.bot} restored from {stamp} and answering; its previous database is kept "
        f"beside it as {kept}"
    )
    return OK


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, which this CLI's contract reserves for drift."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ERROR, f"{self.prog}: error: {message}\n")


def cmd_schema(args: argparse.Namespace) -> int:
    """The layout's JSON Schema, for editors (inventory/layout.schema.json is this output)."""
    print(json.dumps(schema.json_schema(), indent=2))
    return OK


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535; 0: any free port)")
    return int(text)


def _window(text: str) -> str:
    if not WINDOW_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a window: a whole number of hours, days or weeks (6h, 1d, 2w)"
        )
    return text


def _percent(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole percentage from 1 to 100")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 2 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds between 2 and 3600")
    return value


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="botpool", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check a layout; report every problem with file:line")
    v.add_argument("layout")
    v.set_defaults(func=cmd_validate)
    pl = sub.add_parser("plan", help="show where every bot runs; write the lock file")
    pl.add_argument("layout")
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    pl.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 2 if the lock file is not current (for CI)",
    )
    pl.add_argument(
        "--lost-host",
        metavar="HOST",
        action="append",
        help="that host and its data are gone for good: pools placed elsewhere in the layout "
        "start there empty, to be restored from pulled backups (repeatable)",
    )
    pl.add_argument(
        "--measured",
        metavar="INVENTORY",
        help="project every host with what its pools really used (each host's Prometheus, "
        "read over SSH) and print the fewest pool moves that bring every host under "
        "--threshold; reads only",
    )
    pl.add_argument(
        "--window",
        type=_window,
        default=DEFAULT_WINDOW,
        help="with --measured: the peak over this much history (e.g. 6h, 1d, 2w; default "
        f"{DEFAULT_WINDOW})",
    )
    pl.add_argument(
        "--threshold",
        type=_percent,
        default=round(100 * THRESHOLD),
        help="with --measured: the share of a host's usable memory not to pass (default "
        f"{round(100 * THRESHOLD)})",
    )
    pl.set_defaults(func=cmd_plan)
    r = sub.add_parser("render", help="write every rendered file into a directory")
    r.add_argument("layout")
    r.add_argument("--out", required=True)
    r.set_defaults(func=cmd_render)
    c = sub.add_parser("credentials", help="print bots' API logins (for FreqUI)")
    c.add_argument("layout")
    c.add_argument("who", metavar="USER[/BOT]", help="one bot, or every bot of a user")
    c.add_argument("--json", action="store_true", help="a JSON list, for scripts")
    c.set_defaults(func=cmd_credentials)
    st = sub.add_parser("status", help="show every bot on this machine and whether it answers")
    st.add_argument("layout")
    st.add_argument("--host", default="local", help="layout host this machine is (default local)")
    st.add_argument("--wait", type=float, default=0, help="seconds to wait for every API")
    st.set_defaults(func=cmd_status)
    d = sub.add_parser("drift", help="compare the hosts of a pyinfra inventory with the layout")
    d.add_argument("inventory", help="pyinfra inventory, e.g. inventory/local.py")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.add_argument("--json-out", metavar="FILE", help="also write the JSON report to FILE (for CI)")
    d.set_defaults(func=cmd_drift)
    t = sub.add_parser("tunnel", help="print (or run) the ssh tunnels to every bot's API")
    t.add_argument("inventory", help="pyinfra inventory, e.g. inventory/production.py")
    t.add_argument("--user", help="only this user's bots")
    t.add_argument("--run", action="store_true", help="run the tunnels until Ctrl-C")
    t.set_defaults(func=cmd_tunnel)
    a = sub.add_parser("alerts", help="list the alerts firing on the hosts of an inventory")
    a.add_argument("inventory", help="pyinfra inventory, e.g. inventory/local.py")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a.set_defaults(func=cmd_alerts)
    db = sub.add_parser("dashboard", help="a local web page for every host, pool and bot")
    db.add_argument("inventory", help="pyinfra inventory, e.g. inventory/local.py")
    db.add_argument("--listen", default="127.0.0.1", help="address (default 127.0.0.1)")
    db.add_argument("--port", type=_port, default=8790, help="port (default 8790)")
    db.add_argument(
        "--token", metavar="FILE", help="a file (0600) holding the token; needed beyond loopback"
    )
    db.add_argument(
        "--refresh", type=_seconds, default=15.0, help="seconds between reads (default 15)"
    )
    db.set_defaults(func=cmd_dashboard)
    b = sub.add_parser("backup", help="back up every bot on every host now")
    b.add_argument("inventory", help="pyinfra inventory, e.g. inventory/local.py")
    b.add_argument(
        "--pull", metavar="DIR", help="copy each bot's newest backup into DIR (new ones only)"
    )
    b.set_defaults(func=cmd_backup)
    rs = sub.add_parser("restore", help="list one bot's backups, or restore one (--at)")
    rs.add_argument("inventory", help="pyinfra inventory, e.g. inventory/local.py")
    rs.add_argument("bot", help="USER/BOT")
    rs.add_argument(
        "--at", metavar="STAMP", help="the backup to restore (a listed stamp, or latest)"
    )
    rs.add_argument(
        "--from",
        dest="source",
        metavar="DIR",
        help="take the backup from DIR, a `botpool backup --pull` folder on this machine "
        "(any host's copy: the bot's old host may be gone); it is sent to the bot's host first",
    )
    rs.set_defaults(func=cmd_restore)
    sc = sub.add_parser("schema", help="print the layout's JSON Schema (for editors)")
    sc.set_defaults(func=cmd_schema)
    s = sub.add_parser("rotate", help="give one bot new API credentials on the next converge")
    s.add_argument("layout")
    s.add_argument("bot", help="USER/BOT")
    s.set_defaults(func=cmd_rotate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except LayoutError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s); nothing was changed", file=sys.stderr)
        return ERROR
    except (SecretsError, TunnelError, InventoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ERROR
    except OSError as exc:  # an output folder that cannot be written, say
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return ERROR


if __name__ == "__main__":
    sys.exit(main())
