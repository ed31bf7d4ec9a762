"""Upgrading a fleet to the names of projects (issue 12): "Migrating an existing fleet to the new
names must keep every bot's data: converge with the old release, upgrade, converge, same
trades."

The old release is the last one before the names changed, commit 5d96ec5, taken from this
clone's history (`git archive`) and run as it was installed: its own deploy.py from its own
folder, importing its own botpool. Its layout has no `project` key; its pools are named by
pool (`mia-pool-1`), its exchange `botpool-exchange-<profile>`, and every pool shares the
network `botpool`; uid 1000 owns each bot's files, and a bot could plant files and links
where root reads and writes (issue 11). The same layout, unchanged, is then converged by this
code: the project comes from the root, and everything root reads becomes root's again.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from botpool.core.names import LEGACY_NETWORK
from botpool.core.plan import BotPlan

from .e2e import (
    REPO,
    VENV,
    Deployment,
    container_names,
    docker,
    kept_trades_in,
    mode_of,
    new_deployment,
    wait_for,
)

pytestmark = pytest.mark.e2e(minutes=1.6)

OLD_RELEASE = "5d96ec5"  # the last release before project names
USERS = """
mia:
  runtime: zygote
  bots:
    - name: one
    - {name: two, pairs: [ETH/USDT]}
moe:
  runtime: process
  bots:
    - {name: solo, pairs: [SOL/USDT]}
"""


def old_release(directory: Path) -> Path:
    """The old release's tree. A clone without its commit (a shallow one) fails loudly: this
    test must never pass by being skipped."""
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{OLD_RELEASE}^{{commit}}"], cwd=REPO, capture_output=True
    )
    if found.returncode:
        pytest.fail(
            f"commit {OLD_RELEASE} (the release before project names) is not in this clone, "
            "so the migration from it cannot be tested: clone with full history "
            "(`git fetch --unshallow`)",
            pytrace=False,
        )
    tree = directory / OLD_RELEASE
    tree.mkdir()
    subprocess.run(
        f"git -C {REPO} archive {OLD_RELEASE} | tar -x -C {tree}", shell=True, check=True
    )
    return tree


def old_names(dep: Deployment) -> set[str]:
    """The containers the old release names: each pool by its name, its exchange by profile."""
    return {p.name for p in dep.plan().pools} | {f"botpool-exchange-{dep.name}"}


def converge_old(dep: Deployment, release: Path) -> None:
    proc = subprocess.run(
        [str(VENV / "pyinfra"), "inventory/local.py", "deploy.py", "-y"],
        cwd=release,
        env={**dep.environment(), "PYTHONPATH": str(release)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


def trades(dep: Deployment, bot: BotPlan) -> set[tuple[int, str, str]]:
    """A bot's trades with a fill, read from its database on the host (tests/e2e.py)."""
    return kept_trades_in(
        dep.root / "pools" / bot.pool / "bots" / bot.name / "user_data" / "tradesv3.sqlite"
    )


def owners(path: Path) -> dict[int, list[str]]:
    """The owners of a folder and of everything in it: uid -> the first few paths it owns."""
    found: dict[int, list[str]] = {}
    for p in [path, *path.rglob("*")]:
        found.setdefault(p.lstat().st_uid, []).append(str(p.relative_to(path)))
    return {uid: paths[:5] for uid, paths in found.items()}


def legacy_network() -> set[str] | None:
    """The containers on the network every pool shared before networks per user (None: the
    network is gone)."""
    found = docker("network", "inspect", "-f", "{{json .Containers}}", LEGACY_NETWORK, check=False)
    return {c["Name"] for c in (json.loads(found) or {}).values()} if found.strip() else None


@pytest.fixture
def dep(tmp_path: Path) -> Iterator[Deployment]:
    deployment = new_deployment(tmp_path, "e2emig", 19600)
    deployment.names_project = False  # the old release knows no such key
    deployment.write(USERS)
    yield deployment
    deployment.teardown()  # this code's converge, whichever release ran last


def test_a_fleet_of_the_old_release_keeps_every_bots_trades_under_the_new_names(dep, tmp_path):
    release = old_release(tmp_path)
    converge_old(dep, release)
    # the old release knows no `monitoring:`; this code's stays off here (its default ports
    # are those of the operator's fleet; tests/test_monitoring_e2e.py covers monitoring)
    dep.layout.write_text(
        dep.layout.read_text().replace("users:", "monitoring: {enabled: false}\nusers:", 1)
    )
    layout = dep.layout.read_text()
    old = old_names(dep)
    assert old <= container_names()
    bots = dep.plan().bots
    for bot in bots:  # the old release's files are uid 1000's (its zygote, root, may have
        # made a bot's log before the fork dropped to uid 1000: that one may be root's)
        found = owners(dep.root / "pools" / bot.pool / "bots" / bot.name)
        assert set(found) <= {0, 1000} and {".", "config.json", "user_data"} <= set(found[1000]), (
            bot.key,
            found,
        )
    wait_for(lambda: any(trades(dep, b) for b in bots), timeout=180, what="a trade of some bot")
    foreign = (legacy_network() or set()) - old  # another fleet's, on the old shared network
    before = {bot.key: trades(dep, bot) for bot in bots}  # taken while the old bots still run
    mia = dep.root / "pools" / "mia-pool-1"  # what a bot of the old release could do:
    planted = mia / "bots" / "one" / "logs" / "planted.log"  # a link supervisord would follow
    planted.symlink_to("/botpool/programs/planted.conf")
    evil = mia / "programs" / "evil.conf"  # issue 11's own repro
    evil.write_text("[program:evil]\ncommand=id\nuser=root\n")
    os.chown(evil, 1000, 1000)
    os.lchown(planted, 1000, 1000)

    dep.converge()  # this code, the same layout
    assert dep.layout.read_text() == layout
    assert not old & container_names(), "a container of the old names is left"
    for name in [p.container for p in dep.plan().pools] + [dep.exchange_container()]:
        assert docker("inspect", "-f", "{{.State.Running}}", name).strip() == "true", name
        assert name.startswith(f"{dep.project}_")
    dep.wait_answering()
    for bot in bots:
        after = trades(dep, bot)
        assert {t for t in after if t[0] in {i for i, _, _ in before[bot.key]}} == before[bot.key]
    assert any(before.values())
    # ours left the old network; it goes with them, unless another fleet still uses it
    assert legacy_network() == (foreign or None)
    for bot in bots:  # ownership migrated: each bot's data is its own uid's, its log root's
        folder = dep.root / "pools" / bot.pool / "bots" / bot.name  # (supervisord writes it)
        data = folder / "user_data"
        found = owners(data)
        assert set(found) == {bot.uid}, (bot.key, found)
        assert set(owners(folder / "logs")) == {0}, (bot.key, owners(folder / "logs"))
        assert mode_of(data.parent / "config.json") == (0, bot.uid, 0o640), bot.key
    assert not planted.is_symlink() and not evil.exists()
    assert not (mia / "programs" / "planted.conf").exists()
    problems = [f"{path}: {what}" for path, what in not_as_planned(dep)]
    assert problems == [], "\n".join(problems)
    pools = mode_of(dep.root / "pools")  # the folder of them all
    assert pools[0] == 0 and not pools[2] & 0o022, pools
    assert dep.converge().operations == []


def not_as_planned(dep: Deployment):  # noqa: ANN201
    """Every path of the pools folder whose owner, group or mode is not the plan's rule: a
    bot's user_data is its uid's; everything else is root's, writable by no group or other,
    of group 0 but a bot's config and folder (the bot's gid)."""
    uid_of = {(b.pool, b.name): b.uid for b in dep.plan().bots}
    for pool in sorted((dep.root / "pools").iterdir()):
        for folder, dirs, files in os.walk(pool):
            here = Path(folder)
            rel = here.relative_to(pool).parts
            bot_uid = (
                uid_of.get((pool.name, rel[1])) if len(rel) >= 2 and rel[0] == "bots" else None
            )
            if len(rel) >= 3 and rel[2] == "user_data":  # the bot's own data: its alone
                for path in [here, *(here / n for n in dirs + files)]:
                    if path.lstat().st_uid != bot_uid:
                        yield path, f"owner {path.lstat().st_uid}, want the bot's {bot_uid}"
                continue
            for path in [here, *(here / n for n in files)]:
                uid, gid, mode = mode_of(path)
                want_gid = (
                    bot_uid if path.name == "config.json" or len(rel) == 2 and path == here else 0
                )
                if path.is_symlink():
                    yield path, "a link"
                elif uid != 0 or mode & 0o022 or gid != want_gid:
                    yield path, f"owner {uid}:{gid} mode {mode:04o}"
