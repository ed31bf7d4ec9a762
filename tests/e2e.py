"""Support for end-to-end tests: a real deployment on this machine's Docker engine.

Each Deployment has its own root folder, port range, sandbox exchange profile and secrets
directory, so it never touches another deployment on the same engine (botpool scopes
everything by root). Tests converge it with the real `pyinfra inventory/local.py deploy.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import textwrap
import time
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker as docker_sdk
import httpx

from botpool.core import names
from botpool.core.plan import BotPlan, Plan, load_plan
from botpool.core.secretstore import SecretStore
from botpool.core.snapshot import parse_program
from botpool.payloads import supervisor_status

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv" / "bin"
CTL = names.SUPERVISORCTL
# One HTTP client for every request to a bot's API or the dashboard: each new client (what
# httpx.get makes) loads the system's CA certificates, 26 ms of CPU, for plain HTTP on
# 127.0.0.1 that never uses them; tests ask in loops, every second. No connection is kept
# between requests, as with httpx.get: each is closed by this end, so a bot or a tunnel that
# goes away leaves no connection behind on its port.
HTTP = httpx.Client(timeout=5, limits=httpx.Limits(max_keepalive_connections=0))
# The engine's API, for what tests ask it in loops (a container's pid): no `docker` process
ENGINE = docker_sdk.DockerClient(base_url="unix:///var/run/docker.sock", timeout=30)

# Trades a bot keeps: those with a filled order. Freqtrade itself deletes a trade whose first
# entry order is cancelled before anything filled (unfilledtimeout, a failed replacement), so a
# trade seen while its entry was pending may go without any loss of data; a trade with a fill
# never does. Tests that say "no trade lost" compare these, as (id, pair, open date).
KEPT_TRADES_SQL = (
    "SELECT DISTINCT t.id, t.pair, t.open_date FROM trades t "
    "JOIN orders o ON o.ft_trade_id = t.id WHERE o.filled > 0"
)


@dataclass
class Run:
    output: str
    returncode: int

    @property
    def commands(self) -> int:
        """How many commands ran on the host (needs a verbose run)."""
        return len(re.findall(r"^\[[^]]+\] >>> ", self.output, re.M))

    @property
    def operations(self) -> list[str]:
        """The names of the operations pyinfra ran, in order."""
        return re.findall(r"--> Starting (?:run once )?operation: (.+?) *$", self.output, re.M)


BOT_CHECKS = ("running", "crash-loop", "port", "api", "config", "heartbeat", "stagnant")
POOL_CHECKS = ("container", "supervisord", "memory")
HOST_TESTS = ("test_host_is_reachable_and_its_layout_is_valid", "test_host_runs_exactly_the_plan")


@dataclass
class CheckRun:
    """One run of `pytest checks/`: its exit code and every test it ran (id -> outcome, msg)."""

    returncode: int
    tests: dict[str, tuple[str, str]]
    output: str

    def failures(self, plan: Plan, hosts: dict[str, str] | None = None) -> dict[str, str]:
        """Failed checks (id -> message), once it is proven that every check of every planned
        host, pool and bot ran and that the exit code says the same: a check that was never
        generated must not pass for one that passed. hosts: inventory name -> layout host."""
        hosts = hosts or {"@local": "local"}
        expected = set()
        for inventory_name, layout_host in hosts.items():
            host = plan.hosts[layout_host]
            expected |= {f"{t}[{inventory_name}]" for t in HOST_TESTS}
            expected.add(f"test_check[{inventory_name}|host {layout_host}|memory]")
            for pool in host.pools:
                names = POOL_CHECKS + (("zygote",) if pool.runtime.name == "zygote" else ())
                expected |= {f"test_check[{inventory_name}|pool {pool.name}|{c}]" for c in names}
            for bot in host.bots:
                expected |= {f"test_check[{inventory_name}|bot {bot.key}|{c}]" for c in BOT_CHECKS}
        missing = sorted(expected - self.tests.keys())
        assert not missing, f"checks never generated: {missing}\n{self.output[-2000:]}"
        failed = {name: msg for name, (outcome, msg) in self.tests.items() if outcome == "failed"}
        assert self.returncode == (1 if failed else 0), self.output[-2000:]
        return failed


@dataclass
class Deployment:
    name: str  # also its project (so its containers' and networks' prefix) and exchange profile
    directory: Path
    base_port: int
    env: dict[str, str] = field(default_factory=dict)
    inventory: str = "inventory/local.py"
    runtime: str = "zygote"  # defaults.runtime of every layout it writes
    # False: its layouts leave `defaults.project` out, as older releases' did (no such key),
    # and its project is the one botpool derives from the root
    names_project: bool = True
    # its layouts' `monitoring:` section: off unless a test is about monitoring (deployments
    # run side by side on one engine, and the monitoring ports are one set per host)
    monitoring: str = "{enabled: false}"

    @property
    def root(self) -> Path:
        return self.directory / "root"

    @property
    def layout(self) -> Path:
        return self.directory / "layout.yaml"

    @property
    def secrets(self) -> SecretStore:
        return SecretStore(self.directory / "secrets")

    # --- the names it has on a host (botpool.core.names): no test spells one by hand --------------

    @property
    def project(self) -> str:
        """Its project: its name, which every layout it writes sets as `defaults.project`
        (unless names_project is False: then the one botpool derives from its root)."""
        return names.project(str(self.root), self.name if self.names_project else None)

    def container(self, pool: str) -> str:
        """The container of one of its pools (`ann-pool-1` -> `e2econv_ann-pool-1`)."""
        return names.pool_container(self.project, pool)

    def exchange_container(self, profile: str | None = None) -> str:
        """The container of a sandbox exchange (default: its own profile)."""
        return names.exchange_container(self.project, profile or self.name)

    def backup_container(self) -> str:
        """The backup job of each of its hosts (backups are on unless a layout says not)."""
        return names.backup_container(self.project)

    def network(self, user: str) -> str:
        """The Docker network of one user's pools."""
        return names.user_network(self.project, user)

    def write(self, users_yaml: str, extra_yaml: str = "") -> None:
        """A layout with this deployment's root, project, ports, exchange, extra keys and users."""
        head = f"""
        defaults:
          root: {self.root}
          project: {self.project}
          runtime: {self.runtime}
          base_port: {self.base_port}
          strategies_dir: {REPO / "inventory" / "strategies"}
          image: {{ca_bundle: /etc/ssl/certs/ca-certificates.crt}}
          bot: {{exchange: {self.name}, strategy: SandboxScalper, stake_amount: 10,
                dry_run_wallet: 1000, timeframe: 1m, pairs: [BTC/USDT]}}
        exchanges:
          {self.name}: {{sandbox: true, step_seconds: 2, volatility: 0.002}}
        monitoring: {self.monitoring}
        """
        text = textwrap.dedent(head).lstrip() + textwrap.dedent(extra_yaml)
        if not self.names_project:  # nor `monitoring:`, which came later
            text = text.replace(f"  project: {self.project}\n", "", 1)
            text = text.replace(f"monitoring: {self.monitoring}\n", "", 1)
        self.layout.write_text(
            text + "users:\n" + textwrap.indent(textwrap.dedent(users_yaml), "  ")
        )

    def plan(self) -> Plan:
        return load_plan(self.layout)

    def converge(
        self, check: bool = True, verbose: bool = False, args: tuple[str, ...] = ()
    ) -> Run:
        proc = subprocess.run(
            [str(VENV / "pyinfra"), self.inventory, "deploy.py", "-y", *["-vv"] * verbose, *args],
            cwd=REPO,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        run = Run(proc.stdout + proc.stderr, proc.returncode)
        if check:
            assert proc.returncode == 0, run.output[-4000:]
        return run

    def environment(self) -> dict[str, str]:
        """The environment the botpool commands and pyinfra run with for this deployment."""
        return {
            **os.environ,
            "BOTPOOL_LAYOUT": str(self.layout),
            "BOTPOOL_SECRETS_DIR": str(self.secrets.directory),
            **self.env,
        }

    def checks(self, inventory: str | Path | None = None) -> CheckRun:
        """Run `pytest checks/` as a user would (JSON and JUnit reports in the folder)."""
        report = self.directory / "checks.json"
        report.unlink(missing_ok=True)  # never read the previous run's report
        proc = subprocess.run(
            [
                *(str(VENV / "pytest"), "checks/", "-q", "-p", "no:cacheprovider"),
                *("--inventory", str(inventory or self.inventory)),
                *("--checks-json", str(report)),
                *("--junitxml", str(self.directory / "checks.xml")),
            ],
            cwd=REPO,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert report.exists(), f"pytest checks/ wrote no report:\n{proc.stdout}{proc.stderr}"
        tests = {
            t["test"].rsplit("::", 1)[-1]: (t["outcome"], t["message"])
            for t in json.loads(report.read_text())["tests"]
        }
        return CheckRun(proc.returncode, tests, proc.stdout + proc.stderr)

    def teardown(self) -> None:
        """Remove what this deployment made, by its root's label (containers, then networks),
        and its folder. Not through a converge to no users: that took a minute per module,
        and removing users is a story of its own (test_converge_e2e's removals)."""
        label = f"label=botpool.root={self.root}"
        for listing, remove in (
            (["ps", "-aq"], ["rm", "-f"]),
            (["network", "ls", "-q"], ["network", "rm"]),
        ):
            found = docker(*listing, "--filter", label).split()
            if found:
                docker(*remove, *found, check=False)
        subprocess.run(["rm", "-rf", str(self.directory)], check=False)

    # --- reading the real thing -----------------------------------------------------------

    def run_botpool(
        self, *args: str, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run the `botpool` command as a user of this deployment would (from the repository,
        with its layout and secrets; env adds variables)."""
        return subprocess.run(
            [str(VENV / "botpool"), *args],
            cwd=REPO,
            env={**self.environment(), **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def botpool(self, *args: str, **env: str) -> tuple[int, str]:
        """`run_botpool`: its exit code, and stdout + stderr together."""
        proc = self.run_botpool(*args, **env)
        return proc.returncode, proc.stdout + proc.stderr

    def ctl(self, pool: str, *args: str, check: bool = True) -> str:
        """`supervisorctl ARGS` inside one of its pools (by pool name)."""
        return docker("exec", self.container(pool), *CTL.split(), *args, check=check)

    def programs(self, pool: str) -> dict[str, tuple[str, int | None]]:
        """supervisor's view inside a pool (by pool name): program -> (state, pid), in the
        lines the snapshot reads (supervisor_status.py), read from this machine through the
        pool's /proc/PID/root: a `docker exec` of it cost the machine about 0.1 CPU-second,
        and tests poll (none when the pool is not running)."""
        try:
            pid = ENGINE.containers.get(self.container(pool)).attrs["State"]["Pid"]
            found = supervisor_status.read(f"/proc/{pid}/root{supervisor_status.SOCKET}")
        except (docker_sdk.errors.NotFound, OSError, xmlrpc.client.Error):
            return {}
        programs = filter(None, map(parse_program, supervisor_status.lines(found)))
        return {p.name: (p.state, p.pid) for p in programs}

    def pids(self, *pools: str, timeout: float = 60) -> dict[str, int | None]:
        """Program -> pid, once no program is still starting or stopping (settled)."""
        moving = {"STARTING", "BACKOFF", "STOPPING"}
        deadline = time.monotonic() + timeout
        while True:
            states = {n: st for pool in pools for n, st in self.programs(pool).items()}
            if not any(state in moving for state, _ in states.values()):
                return {name: pid for name, (_, pid) in states.items()}
            if time.monotonic() > deadline:
                raise AssertionError(f"programs did not settle within {timeout}s: {states}")
            time.sleep(0.5)

    def bot(self, user: str, bot: str) -> BotPlan:
        """One of its planned bots, by user and bot name."""
        (target,) = [b for b in self.plan().bots if b.key == f"{user}/{bot}"]
        return target

    def api(
        self, user: str, bot: str, path: str, auth: bool = True, post: dict | None = None
    ) -> httpx.Response:
        return self.request(self.bot(user, bot), path, auth, post)

    def request(
        self, target: BotPlan, path: str, auth: bool = True, post: dict | None = None
    ) -> httpx.Response:
        """GET /api/v1/PATH of a planned bot (POST, when given what to post, as JSON), with its
        credentials unless auth is False."""
        creds = self.secrets.api_credentials(target.key) if auth else None
        return HTTP.request(
            "GET" if post is None else "POST",
            f"http://127.0.0.1:{target.host_port}/api/v1/{path}",
            json=post,
            auth=(creds.username, creds.password) if creds else None,
        )

    def kept_trades(self, user: str, bot: str) -> set[int]:
        """The ids of the bot's trades with a filled order, from its API (see KEPT_TRADES_SQL):
        the open ones (/status) first, then the closed ones (/trades lists only those), so that
        a trade closing between the two calls is in one of them."""
        trades = [
            *self.api(user, bot, "status").json(),
            *self.api(user, bot, "trades").json()["trades"],
        ]
        return {t["trade_id"] for t in trades if t["nr_of_successful_entries"] > 0}

    def log_tail(self, user: str, bot: str, lines: int = 40) -> str:
        """The end of a bot's freqtrade log, for a failure's message."""
        folder = self.root / "pools" / self.bot(user, bot).pool / "bots" / bot
        log = folder / "logs" / "freqtrade.log"
        try:
            text = "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            text = str(exc)
        return f"\n--- the end of {log}:\n{text}"

    def wait_answering(self, timeout: float = 120) -> None:
        """Until every planned bot answers /ping (raises with the silent ones). The plan is
        read once: reading it for every ping cost about 9 ms of CPU each."""
        bots = self.plan().bots
        deadline = time.monotonic() + timeout
        silent: list[str] = []
        while time.monotonic() < deadline:
            silent = []
            for b in bots:
                try:
                    ok = self.request(b, "ping", auth=False).json() == {"status": "pong"}
                except (httpx.HTTPError, ValueError):
                    ok = False
                if not ok:
                    silent.append(b.key)
            if not silent:
                return
            time.sleep(1)
        raise AssertionError(f"bots not answering after {timeout}s: {silent}")


class Dashboard:
    """`botpool dashboard DEP.INVENTORY --port 0` in the background (any free port), with
    the URL it printed; its JSON endpoints at hand."""

    def __init__(self, dep: Deployment, refresh_s: float) -> None:
        self.log = open(dep.directory / "dashboard.log", "w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(VENV / "botpool"), "dashboard", dep.inventory, "--port", "0"]
            + ["--refresh", str(refresh_s)],
            cwd=REPO,
            env=dep.environment(),
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first.startswith("botpool dashboard on http://127.0.0.1:"), first + self.output()
        self.url = first.split(" on ", 1)[1].strip().rstrip("/")

    def get(self, path: str) -> httpx.Response:
        return HTTP.get(self.url + path, timeout=30)

    def fleet(self, query: str = "") -> dict[str, Any]:
        answer = self.get("/api/fleet" + query)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def bots(self, query: str = "") -> dict[str, dict[str, Any]]:
        fleet = self.fleet(query)
        return {b["key"]: b for h in fleet["hosts"] for p in h["pools"] for b in p["bots"]}

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-3000:]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own download cannot work here
ARTIFACTS = Path(os.environ.get("BOTPOOL_ARTIFACTS", REPO / "reports")) / "dashboard"


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A real browser: Playwright driving Debian's chromium (`make test-e2e` installs it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()


def healthy_everywhere(dashboard: Dashboard) -> dict[str, dict[str, Any]] | None:
    """Every bot of the dashboard's fleet, once each is healthy (None until then)."""
    bots = dashboard.bots()
    return bots if bots and {b["health"] for b in bots.values()} == {"healthy"} else None


def bot_rows(page: Any) -> dict[str, list[str]]:
    """The fleet page's bot rows: bot key -> its first cells (bot, pool, host)."""
    rows = page.locator("tr.bot")
    return {
        rows.nth(i).get_attribute("data-bot"): rows.nth(i).locator("td").all_inner_texts()[:3]
        for i in range(rows.count())
    }


def screenshot(page: Any, name: str) -> None:
    """A whole page as a test artifact (reports/dashboard/NAME.png; CI keeps reports/)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def start_pyinfra(dep: Deployment, *args: str, deploy: str = "deploy.py") -> subprocess.Popen[str]:
    """`pyinfra INVENTORY DEPLOY -vv ARGS` in the background (stdin: a pipe). Without -y it
    stops at pyinfra's "Press enter to execute..." once it has planned, holding its converge
    lock: a person reading the changes, for as long as a test needs, without sleeping."""
    return subprocess.Popen(
        [str(VENV / "pyinfra"), dep.inventory, deploy, "-vv", *args],
        cwd=REPO,
        env=dep.environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(run: subprocess.Popen[str], confirm: bool = False, seen: str = "") -> tuple[int, str]:
    """Its exit code and output (pressing enter first, if it waits at the prompt)."""
    output, _ = run.communicate("\n" if confirm else None, timeout=600)
    return run.returncode, seen + output


def read_until(run: subprocess.Popen[str], text: str, timeout: float = 120) -> str:
    """Its output up to the line holding `text` (which it prints before it blocks)."""
    assert run.stdout is not None
    seen, deadline = "", time.monotonic() + timeout
    while text not in seen:
        line = run.stdout.readline()
        assert line and time.monotonic() < deadline, f"no {text!r} in:\n{seen[-3000:]}"
        seen += line
    return seen


def kept_trades_in(database: Path) -> set[tuple[int, str, str]]:
    """A database's trades with a filled order (see KEPT_TRADES_SQL); none if it is absent,
    or not yet made: freqtrade creates the file first and its tables a moment later."""
    if not database.exists():
        return set()
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        listed = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not {"trades", "orders"} <= {name for (name,) in listed}:
            return set()
        rows = connection.execute(KEPT_TRADES_SQL).fetchall()
    finally:
        connection.close()
    return {(int(i), str(pair), str(opened)) for i, pair, opened in rows}


def docker(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"docker {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def mode_of(path: Path) -> tuple[int, int, int]:
    """Owner, group and mode of a path (of a link itself, not what it points to)."""
    st = path.lstat()
    return st.st_uid, st.st_gid, st.st_mode & 0o7777


def container_names() -> set[str]:
    """The name of every container on this engine, running or not."""
    return set(docker("ps", "-a", "--format", "{{.Names}}").split())


def wait_for(  # noqa: ANN201
    predicate,  # noqa: ANN001
    timeout: float = 60,
    interval: float = 1.0,
    what: str = "condition",
    then=None,  # noqa: ANN001
):
    """predicate's first true value, within timeout. then: what else to say when it times out
    (called then, e.g. the end of a bot's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{then() if then else ''}")


def remove_stale_test_deployments() -> None:
    """Containers and networks of test deployments whose folder is gone (a test session that
    was killed before its teardown) would block the names and ports of a new one: remove
    them."""
    temp = tempfile.gettempdir()
    lines = docker(
        "ps",
        "-a",
        "--filter",
        "label=botpool.managed=true",
        "--format",
        '{{.Names}} {{.Label "botpool.root"}}',
    ).splitlines()
    for name, _, root in (line.partition(" ") for line in lines):
        if root.startswith(temp + "/") and not os.path.exists(root):
            docker("rm", "-f", name, check=False)
    networks = docker(  # and their users' networks, whose names a new deployment may reuse
        "network",
        "ls",
        "--filter",
        "label=botpool.managed=true",
        "--format",
        '{{.Name}} {{.Label "botpool.root"}}',
    ).splitlines()
    for name, _, root in (line.partition(" ") for line in networks):
        if root.startswith(temp + "/") and not os.path.exists(root):
            docker("network", "rm", name, check=False)


def remove_namesakes(project: str, root: Path) -> None:
    """Containers, then networks, of this deployment's project that another test root made:
    an earlier session's, killed before its teardown while pytest still keeps its folder. A
    module runs once per session and no two sessions run one module at once (its ports
    would clash), so they are nobody's now. The machine's own fleet (a root outside the
    temporary folder) is never touched."""
    temp = tempfile.gettempdir() + "/"
    label = '{{.Label "botpool.root"}}'
    for listing, name_field, remove in (
        (["ps", "-a"], "{{.Names}}", ["rm", "-f"]),
        (["network", "ls"], "{{.Name}}", ["network", "rm"]),
    ):
        found = docker(
            *listing, "--filter", f"name=^{project}_", "--format", f"{name_field} {label}"
        )
        for name, _, owner in (line.partition(" ") for line in found.splitlines()):
            if owner.startswith(temp) and owner != str(root):
                docker(*remove, name, check=False)


def new_deployment(tmp_root: Path, name: str, base_port: int) -> Deployment:
    remove_stale_test_deployments()
    directory = tmp_root / name
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    deployment = Deployment(name, directory, base_port)
    remove_namesakes(deployment.project, deployment.root)
    return deployment
