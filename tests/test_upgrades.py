"""The decisions of a pool upgrade (botpool.core.upgrades): which pools move, in what order,
which are held and why; the snapshot's records of upgrades; the pre-upgrade backup."""

from __future__ import annotations

import dataclasses
import gzip
import os
import sqlite3
import subprocess

import pytest

from botpool.core import snapshot, upgrades
from botpool.core.layout import UpgradeSettings
from botpool.core.plan import load_plan
from botpool.core.reconcile import reconcile
from botpool.core.render import render_host
from botpool.core.snapshot import ContainerState
from botpool.payloads import backup

from .test_backup import bot_database, make_database, schedule_for
from .test_reconcile import converged

OLD, NEW = "botpool/pool:2026.9-aaaaaaaaaaaa", "botpool/pool:2026.9-bbbbbbbbbbbb"
LAYOUT = """
defaults:
  bot: {exchange: sandbox, strategy: SampleStrategy, stake_amount: 10, dry_run_wallet: 1000,
        pairs: [BTC/USDT]}
users:
  ann:
    bots:
      - name: one
      - name: two
  ben:
    bots:
      - name: solo
  cid:
    bots:
      - name: one
"""


def host_on(write_layout, secrets, runs: str, wants: str, extra: str = ""):
    """(changes, rendered pools, snapshot) of a host whose pools run `runs`, planned on
    `wants`."""
    plan = load_plan(write_layout(LAYOUT + extra))
    host = plan.hosts["local"]
    pools, exchanges = render_host(plan, host, {"2026.9": runs}, secrets)
    snap = converged(pools, exchanges)
    for pool in pools:  # the image it was created from, as docker shows it
        name = pool.container.name
        snap.containers[name] = dataclasses.replace(snap.containers[name], image=runs)
    pools, exchanges = render_host(plan, host, {"2026.9": wants}, secrets)
    return reconcile(snap, pools, exchanges), pools, snap


def test_a_new_image_moves_every_pool_and_the_smallest_goes_first(write_layout, secrets):
    changes, pools, snap = host_on(write_layout, secrets, OLD, NEW)
    found = upgrades.transitions(changes.pools, pools, snap)
    assert sorted(t.pool for t in found) == ["ann-pool-1", "ben-pool-1", "cid-pool-1"]
    assert {(t.source, t.target) for t in found} == {(OLD, NEW)}
    ann = next(t for t in found if t.pool == "ann-pool-1")
    assert [b.name for b in ann.bots] == ["one", "two"]
    assert set(ann.programs) >= {"ann-one", "ann-two"}  # and its zygote
    plan = upgrades.rollout(found, UpgradeSettings(), {})
    assert [t.pool for t in plan.run] == ["ben-pool-1", "ann-pool-1", "cid-pool-1"]
    assert plan.canary and plan.canary.pool == "ben-pool-1" and plan.held == ()


def test_the_canary_the_layout_names_goes_first(write_layout, secrets):
    changes, pools, snap = host_on(write_layout, secrets, OLD, NEW)
    found = upgrades.transitions(changes.pools, pools, snap)
    named = upgrades.rollout(found, UpgradeSettings(canary="ann-pool-1"), {})
    assert [t.pool for t in named.run] == ["ann-pool-1", "ben-pool-1", "cid-pool-1"]
    elsewhere = upgrades.rollout(found, UpgradeSettings(canary="zed-pool-1"), {})
    assert elsewhere.run[0].pool == "ben-pool-1"  # not on this host: the smallest


def test_no_new_image_is_no_upgrade_even_when_a_pool_is_recreated(write_layout, secrets):
    changes, pools, snap = host_on(write_layout, secrets, OLD, OLD)
    assert upgrades.transitions(changes.pools, pools, snap) == []
    for unit in changes.pools:  # say a memory limit changed: recreated, on the same image
        unit.container = "recreate"
    assert upgrades.transitions(changes.pools, pools, snap) == []


def test_a_new_pool_or_an_older_container_without_its_image_is_no_upgrade(write_layout, secrets):
    changes, pools, snap = host_on(write_layout, secrets, OLD, NEW)
    del snap.containers[pools[0].container.name]
    snap.containers[pools[1].container.name] = dataclasses.replace(
        snap.containers[pools[1].container.name], image=""
    )
    changes = reconcile(snap, pools, [])
    found = upgrades.transitions(changes.pools, pools, snap)
    assert [t.pool for t in found] == [pools[2].pool.name]


def test_an_image_that_failed_before_is_held_until_retried(write_layout, secrets):
    changes, pools, snap = host_on(write_layout, secrets, OLD, NEW)
    found = upgrades.transitions(changes.pools, pools, snap)
    failed = {"2026.9-bbbbbbbbbbbb": "ben-solo: not RUNNING within 180s"}
    held = upgrades.rollout(found, UpgradeSettings(), failed)
    assert held.run == () and len(held.held) == 3
    reason = dict((t.pool, why) for t, why in held.held)["ben-pool-1"]
    assert "failed before and was rolled back (ben-solo: not RUNNING within 180s)" in reason
    assert f"--data {upgrades.RETRY}=true" in reason
    retried = upgrades.rollout(found, UpgradeSettings(), failed, retry=True)
    assert len(retried.run) == 3 and retried.held == ()
    other = upgrades.rollout(found, UpgradeSettings(), {"2026.9-cccccccccccc": "x"})
    assert len(other.run) == 3  # a changed layout (another image) is tried


@pytest.mark.parametrize(
    ("source", "target", "down"),
    [
        ("botpool/pool:2026.10-aaaaaaaaaaaa", "botpool/pool:2026.9-bbbbbbbbbbbb", True),
        ("botpool/pool:2026.9-aaaaaaaaaaaa", "botpool/pool:2026.10-bbbbbbbbbbbb", False),
        ("botpool/pool:2026.9-aaaaaaaaaaaa", "botpool/pool:2026.9-bbbbbbbbbbbb", False),
        ("botpool/pool:2026.9.1-aaaaaaaaaaaa", "botpool/pool:2026.9-bbbbbbbbbbbb", True),
        ("someone/else:latest", "botpool/pool:2026.9-bbbbbbbbbbbb", False),
    ],
)
def test_a_downgrade_is_an_older_freqtrade_release(source, target, down):
    move = upgrades.Transition("p", "c", source, target, (), ())
    assert move.downgrade is down


def test_a_downgrade_is_refused_unless_asked_to_restore(write_layout, secrets):
    newer = "botpool/pool:2026.10-aaaaaaaaaaaa"
    changes, pools, snap = host_on(write_layout, secrets, newer, NEW)
    found = upgrades.transitions(changes.pools, pools, snap)
    refused = upgrades.rollout(found, UpgradeSettings(), {})
    assert refused.run == ()
    reason = refused.held[0][1]
    assert "older than the 2026.10-aaaaaaaaaaaa it runs" in reason
    assert "freqtrade #12045" in reason and f"--data {upgrades.DOWNGRADE}=restore" in reason
    allowed = upgrades.rollout(found, UpgradeSettings(), {}, downgrade="restore")
    assert len(allowed.run) == 3
    script = upgrades.gate_command(
        allowed.run[0], "true", "true", UpgradeSettings(), "/opt/x", "20261127T160000Z", "/j"
    )
    assert "restore_glob='*-from-2026.9-*.sqlite.gz'" in script
    upgrade = upgrades.Transition("p", "c", OLD, NEW, (), ("a",))
    script = upgrades.gate_command(upgrade, "true", "true", UpgradeSettings(), "/opt/x", "S", "/j")
    assert "restore_glob=''" in script


def test_the_gate_bounds_come_from_the_layout(write_layout, secrets):
    plan = load_plan(
        write_layout(LAYOUT + "upgrades: {health_timeout_seconds: 42, settle_seconds: 7}\n")
    )
    move = upgrades.Transition("p", "c", OLD, NEW, plan.bots[:1], ("ann-one",))
    script = upgrades.gate_command(move, "true", "true", plan.layout.upgrades, "/r", "S", "/j")
    assert "timeout=42\n" in script and "settle=7\n" in script
    assert UpgradeSettings().health_timeout_seconds == 180  # the schema's default


def test_the_snapshot_reads_each_containers_image_and_the_upgrade_records(tmp_path):
    root = tmp_path / "root"
    (root / "upgrades" / "failed").mkdir(parents=True)
    (root / "upgrades" / "failed" / "2026.9-bbbbbbbbbbbb").write_text("ben-solo: it died\nmore\n")
    (root / "upgrades" / "retired").write_text(f"{OLD}\nbotpool/pool:2026.8-cccccccccccc\n")
    out = subprocess.run(
        ["sh", "-c", snapshot.command(str(root))], capture_output=True, text=True, check=True
    )
    snap = snapshot.parse(out.stdout.splitlines())
    assert snap.failed_upgrades == {"2026.9-bbbbbbbbbbbb": "ben-solo: it died"}
    assert snap.retired_images == [OLD, "botpool/pool:2026.8-cccccccccccc"]
    line = (
        '{"name":"p","state":"running","role":"pool","spec_hash":"h","networks":"n","image":"%s"}'
    )
    parsed = snapshot.parse(["@@botpool containers", line % OLD])
    want = ContainerState("p", True, "pool", "h", networks=frozenset({"n"}), image=OLD)
    assert parsed.containers["p"] == want


def test_a_pre_upgrade_backup_is_tagged_with_its_image_and_outside_the_retention(tmp_path):
    pools, backups = tmp_path / "pools", tmp_path / "backups"
    database = bot_database(pools, "one")
    make_database(database)
    schedule = schedule_for([("alice", "one", 0), ("alice", "never", 0)], hourly=1, daily=0)
    code = backup.pre_upgrade(
        schedule, str(pools), str(backups), "2026.9-aaaaaaaaaaaa", "20261127T160000Z"
    )
    assert code == 0
    folder = backups / "alice" / "one" / "pre-upgrade"
    (name,) = os.listdir(folder)
    assert name == "20261127T160000Z-from-2026.9-aaaaaaaaaaaa.sqlite.gz"
    assert (folder / name).stat().st_mode & 0o777 == 0o600
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(gzip.decompress((folder / name).read_bytes()))
    assert sqlite3.connect(copy).execute("SELECT sum(balance) FROM account").fetchone() == (
        1000000,
    )
    # the scheduled runs' retention never removes it
    backup.run_once(schedule, str(pools), str(backups))
    assert os.listdir(folder) == [name]
    assert backup.pre_upgrade(schedule, str(pools), str(backups), "../x", "20261127T160000Z") == 1
