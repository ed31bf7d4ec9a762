"""`pytest checks/ --inventory INVENTORY`: prove each host of a pyinfra inventory runs its plan.

Every host is read once, up front, in three commands (the host snapshot, the key-by-key
explanation of changed files when there are any, and the bot probe), whatever its number of
bots; the tests then judge what was read. The same inventory file deploys and checks, so
nobody repeats the host list. Results: `--junitxml=FILE` (pytest's own) and
`--checks-json=FILE`.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from botpool.core import health
from botpool.core.health import Finding
from botpool.core.reconcile import Difference
from botpool.core.source import LayoutError
from botpool.hosts import probe
from botpool.hosts.drift import explain, read_host
from botpool.hosts.remote import InventoryError, RemoteError, RemoteHost, inventory_hosts


@dataclass
class HostResult:
    name: str
    error: str | None = None
    drift: list[Difference] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    commands: int = 0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--inventory",
        default=os.environ.get("BOTPOOL_INVENTORY", "inventory/local.py"),
        help="pyinfra inventory whose hosts to check (default inventory/local.py)",
    )
    parser.addoption("--checks-json", default=None, help="also write the results as JSON here")


def read(remote: RemoteHost) -> HostResult:
    """Everything the checks judge about one host."""
    try:
        state = read_host(remote)
        host = state.plan.hosts[remote.layout_host]
        probing = probe.command_for(state.desired, state.snapshot)
        seen = health.parse(remote.run(probing, "the bot probe"))
        layout = state.plan.layout
        findings = health.evaluate(
            host, state.snapshot, seen, layout.checks, backups=layout.backups
        )
        return HostResult(remote.name, None, explain(state), findings, remote.commands)
    except (RemoteError, LayoutError) as exc:
        return HostResult(remote.name, str(exc), commands=remote.commands)


def pytest_configure(config: pytest.Config) -> None:
    inventory = config.getoption("--inventory")
    try:  # an inventory with no hosts is refused: nothing checked must never look like a pass
        hosts = inventory_hosts(inventory)
    except InventoryError as exc:
        raise pytest.UsageError(str(exc)) from None
    with ThreadPoolExecutor(max_workers=16) as pool:
        config.stash[RESULTS] = list(pool.map(read, hosts))
    config.stash[OUTCOMES] = []


RESULTS = pytest.StashKey[list[HostResult]]()
OUTCOMES = pytest.StashKey[list[dict[str, object]]]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    results = metafunc.config.stash[RESULTS]
    if "host_result" in metafunc.fixturenames:
        metafunc.parametrize("host_result", results, ids=[r.name for r in results])
    if "finding" in metafunc.fixturenames:
        cases = [(r.name, f) for r in results for f in r.findings]
        metafunc.parametrize(
            "finding",
            [f for _, f in cases],
            ids=[f"{host}|{f.subject}|{f.check}" for host, f in cases],
        )


def reason(report: pytest.TestReport) -> str:
    """A failed check's reason as a person reads it: without pytest's assertion details."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if not report.failed or crash is None:
        return ""
    message = str(crash.message).split("\nassert ")[0]
    return message.removeprefix("AssertionError: ")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome == "failed":
        message = reason(report)
        pytest_runtest_logreport.outcomes.append(  # type: ignore[attr-defined]
            {"test": report.nodeid, "outcome": report.outcome, "message": message}
        )


pytest_runtest_logreport.outcomes = []  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--checks-json")
    if not path:
        return
    results = session.config.stash.get(RESULTS, [])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(
        json.dumps(
            {
                "hosts": [
                    {
                        "host": r.name,
                        "error": r.error,
                        "commands": r.commands,
                        "drift": [str(d) for d in r.drift],
                    }
                    for r in results
                ],
                "tests": pytest_runtest_logreport.outcomes,  # type: ignore[attr-defined]
            },
            indent=2,
        )
    )
