"""Reconcile decides the smallest change: one changed bot touches one program, nothing else."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from botpool.core import snapshot
from botpool.core.names import ROOT_MARKER
from botpool.core.plan import load_plan
from botpool.core.reconcile import reconcile
from botpool.core.render import render_backup_job, render_host
from botpool.core.snapshot import ContainerState, DirectoryState, FileState, ProgramState, Snapshot

from .conftest import MINIMAL

THREE = MINIMAL + "      - name: two\n      - name: three\n"
IMAGES = {"2026.9": "botpool/pool:test"}


def desired(path, secrets):
    plan = load_plan(path)
    return render_host(plan, plan.hosts["local"], IMAGES, secrets)


def converged(pools, exchanges, jobs=(), monitoring=None) -> Snapshot:
    """The snapshot of a host that runs exactly what was rendered.

    Files and folders are really written (content, owner, group, mode) into a folder and
    read back by the real snapshot command (find, stat, sha256sum), so a hash or a mode that
    differs from what a host reports cannot pass. Containers and programs, which need a
    Docker engine, are added as a converged host shows them.
    """
    with tempfile.TemporaryDirectory() as root:
        write_tree(Path(root), pools, exchanges, monitoring, jobs)
        out = subprocess.run(
            ["sh", "-c", snapshot.command(root)], capture_output=True, text=True, check=True
        )
        snap = snapshot.parse(out.stdout.splitlines())
    snap.engine, snap.images = "20.10", {IMAGES["2026.9"]}
    snap.networks, snap.network_users, snap.containers, snap.programs = set(), {}, {}, {}
    for unit in [*pools, *exchanges, *jobs]:
        spec = unit.container
        networks = frozenset(spec.networks or ("none",))  # as docker shows no network
        snap.containers[spec.name] = ContainerState(
            spec.name, True, "pool", spec.hash, networks=networks
        )
        snap.networks |= set(spec.networks)  # "none" is never botpool's
        for network in spec.networks:
            snap.network_users.setdefault(network, set()).add(spec.name)
    if monitoring:  # on the host's network
        spec = monitoring.container
        snap.containers[spec.name] = ContainerState(
            spec.name, True, "monitoring", spec.hash, networks=frozenset({"host"})
        )
    for pool in pools:
        snap.programs[pool.container.name] = {
            name: ProgramState(name, "RUNNING", 100 + i, 60)
            for i, name in enumerate(sorted(pool.programs))
        }
    return snap


def write_tree(root: Path, pools, exchanges, monitoring=None, jobs=()) -> None:
    """What a converge leaves under a root: the marker, every folder and file as planned."""
    (root / ROOT_MARKER).write_text("botpool\n")
    for folder in ("pools", "exchanges"):
        (root / folder).mkdir(mode=0o755)
    for unit, directory in (
        [(p, f"pools/{p.pool.name}") for p in pools]
        + [(e, f"exchanges/{e.exchange.profile.name}") for e in exchanges]
        + [(monitoring, "monitoring")] * bool(monitoring)
        + [(j, j.directory) for j in jobs]
    ):
        (root / directory).mkdir(mode=0o755, parents=True)
        for sub in getattr(unit, "directories", ()):
            path = root / directory / sub.path
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, sub.uid, sub.gid)
            path.chmod(sub.mode)
        for artifact in unit.files:
            path = root / directory / artifact.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(artifact.text)
            os.chown(path, artifact.uid, artifact.gid)
            path.chmod(artifact.mode)


def test_fresh_host_gets_everything(write_layout, secrets):
    pools, exchanges = desired(write_layout(THREE), secrets)
    changes = reconcile(Snapshot(), pools, exchanges)
    (pool,) = changes.pools
    assert changes.create_networks == ["botpool_alice"] and pool.container == "create"
    assert len(pool.uploads) == len(pools[0].files)
    assert pool.wait_for == ["alice-one", "alice-three", "alice-two", "zygote"]
    assert changes.exchanges[0].container == "create"


def test_converged_host_needs_nothing(write_layout, secrets):
    pools, exchanges = desired(write_layout(THREE), secrets)
    changes = reconcile(converged(pools, exchanges), pools, exchanges)
    assert changes.empty and changes.differences == []
    assert all(unit.empty for unit in changes.pools + changes.exchanges)


def test_changing_one_bot_updates_only_its_program(write_layout, secrets):
    path = write_layout(THREE)
    snap = converged(*desired(path, secrets))
    path.write_text(THREE.replace("- name: two", "- {name: two, stake_amount: 20}"))
    pools, exchanges = desired(path, secrets)
    (pool,) = reconcile(snap, pools, exchanges).pools
    assert sorted(u.artifact.path for u in pool.uploads) == [
        "bots/two/config.json",
        "programs/alice-two.conf",
    ]
    assert pool.container is None and pool.supervisor_update
    assert pool.restart == [] and pool.start == [] and pool.archive_bots == []


def test_adding_a_bot_to_a_free_slot_keeps_the_container(write_layout, secrets):
    path = write_layout(MINIMAL)
    snap = converged(*desired(path, secrets))
    path.write_text(THREE)
    (pool,) = reconcile(snap, *desired(path, secrets)).pools
    assert pool.container is None and pool.supervisor_update
    assert {"pools/alice-pool-1/bots/two/user_data", "pools/alice-pool-1/bots/three/logs"} <= {
        f.dest for f in pool.directories
    }


def test_removing_a_bot_stops_it_and_archives_its_data(write_layout, secrets):
    path = write_layout(THREE)
    snap = converged(*desired(path, secrets))
    path.write_text(THREE.replace("      - name: two\n", ""))
    changes = reconcile(snap, *desired(path, secrets))
    (pool,) = changes.pools
    assert pool.removals == ["pools/alice-pool-1/programs/alice-two.conf"]
    assert pool.supervisor_update and pool.archive_bots == ["two"] and pool.container is None
    assert "bot alice/two: extra" in "\n".join(map(str, changes.differences))


def test_a_root_without_botpools_marker_has_nothing_deleted_or_archived(write_layout, secrets):
    """A root set by mistake to a folder of other things: botpool marks it, and removes
    nothing there until a later converge finds the mark."""
    path = write_layout(THREE)
    snap = converged(*desired(path, secrets))
    path.write_text(THREE.replace("      - name: two\n", ""))
    snap.directories["exchanges/someone-elses"] = DirectoryState(0o755, 0, 0)
    snap.marked = False
    containers, snap.containers = snap.containers, {}  # none of this root: never converged
    changes = reconcile(snap, *desired(path, secrets))
    assert changes.mark_root
    (pool,) = changes.pools
    assert (pool.removals, pool.archive_bots, changes.remove_directories) == ([], [], [])
    held = {str(d) for d in changes.differences if d.kind == "held"}
    assert "exchanges/someone-elses: held: not removed: the root has no .botpool-root yet" in (
        "\n".join(held)
    )
    snap.marked = True  # the next converge finds the mark and removes them
    snap.containers = containers
    changes = reconcile(snap, *desired(path, secrets))
    assert changes.remove_directories == ["exchanges/someone-elses"] and not changes.mark_root
    assert changes.pools[0].archive_bots == ["two"]


def test_an_older_botpools_root_is_marked_and_cleaned_in_the_same_converge(write_layout, secrets):
    """No marker, but containers labelled with this root (an older botpool made them): a
    program file planted there goes now, before supervisord could read it as root."""
    path = write_layout(THREE)
    snap = converged(*desired(path, secrets))
    snap.marked = False
    snap.files["pools/alice-pool-1/programs/evil.conf"] = FileState("ab" * 32, 0o644, 1000)
    changes = reconcile(snap, *desired(path, secrets))
    assert changes.mark_root
    assert changes.pools[0].removals == ["pools/alice-pool-1/programs/evil.conf"]
    assert not [d for d in changes.differences if d.kind == "held"]


def test_removing_the_last_bot_removes_the_pool_container_and_archives_the_pool(
    write_layout, secrets
):
    path = write_layout(MINIMAL + "  bob:\n    bots:\n      - name: x\n")
    snap = converged(*desired(path, secrets))
    path.write_text(MINIMAL)
    changes = reconcile(snap, *desired(path, secrets))
    assert changes.remove_containers == ["botpool_bob-pool-1"] and changes.archive_pools == [
        "bob-pool-1"
    ]
    assert all(unit.empty for unit in changes.pools)


def test_config_edited_on_the_host_is_restored_and_only_that_bot_restarts(write_layout, secrets):
    path = write_layout(THREE)
    pools, exchanges = desired(path, secrets)
    snap = converged(pools, exchanges)
    key = "pools/alice-pool-1/bots/two/config.json"
    snap.files[key] = dataclasses.replace(snap.files[key], sha256="edited")
    (pool,) = reconcile(snap, pools, exchanges).pools
    assert [u.dest for u in pool.uploads] == [key]
    assert pool.restart == ["alice-two"] and not pool.supervisor_update


def test_deleted_program_file_is_put_back_without_restarting_anyone(write_layout, secrets):
    pools, exchanges = desired(write_layout(THREE), secrets)
    snap = converged(pools, exchanges)
    del snap.files["pools/alice-pool-1/programs/alice-two.conf"]
    (pool,) = reconcile(snap, pools, exchanges).pools
    assert [u.artifact.path for u in pool.uploads] == ["programs/alice-two.conf"]
    assert pool.restart == [] and pool.container is None


@pytest.mark.parametrize("state", ["STOPPED", "EXITED", "FATAL"])
def test_a_program_down_in_any_way_is_started(write_layout, secrets, state):
    pools, exchanges = desired(write_layout(THREE), secrets)
    snap = converged(pools, exchanges)
    snap.programs["botpool_alice-pool-1"]["alice-three"] = ProgramState(
        "alice-three", state, None, None
    )
    (pool,) = reconcile(snap, pools, exchanges).pools
    assert pool.start == ["alice-three"] and not pool.supervisor_update and pool.uploads == []


def test_a_stopped_container_is_started_not_recreated(write_layout, secrets):
    pools, exchanges = desired(write_layout(THREE), secrets)
    snap = converged(pools, exchanges)
    name = "botpool_alice-pool-1"
    snap.containers[name] = dataclasses.replace(snap.containers[name], running=False)
    (pool,) = reconcile(snap, pools, exchanges).pools
    assert pool.container == "start"
    assert f"container {name}: stopped: will be started" in map(
        str, reconcile(snap, pools, exchanges).differences
    )


def test_a_stopped_zygote_is_started_before_its_bots(write_layout, secrets):
    pools, exchanges = desired(write_layout(THREE), secrets)
    snap = converged(pools, exchanges)
    for name in ("zygote", "alice-one"):
        snap.programs["botpool_alice-pool-1"][name] = ProgramState(name, "EXITED", None, None)
    changes = reconcile(snap, pools, exchanges)
    assert changes.pools[0].start == ["zygote", "alice-one"]
    assert "program alice-pool-1:zygote: stopped" in "\n".join(map(str, changes.differences))


def test_removed_or_changed_container_is_recreated_and_waited_for(write_layout, secrets):
    pools, exchanges = desired(write_layout(THREE), secrets)
    snap = converged(pools, exchanges)
    del snap.containers["botpool_alice-pool-1"]
    assert reconcile(snap, pools, exchanges).pools[0].container == "create"
    snap = converged(pools, exchanges)
    snap.containers["botpool_alice-pool-1"] = dataclasses.replace(
        snap.containers["botpool_alice-pool-1"], spec_hash="old"
    )
    (pool,) = reconcile(snap, pools, exchanges).pools
    assert pool.container == "recreate" and len(pool.wait_for) == 4  # 3 bots and the zygote


def test_stray_labelled_container_is_removed(write_layout, secrets):
    pools, exchanges = desired(write_layout(MINIMAL), secrets)
    snap = converged(pools, exchanges)
    snap.containers["stray"] = ContainerState("stray", True, "pool", "x")
    assert reconcile(snap, pools, exchanges).remove_containers == ["stray"]


def test_wrong_mode_on_a_secret_file_is_fixed(write_layout, secrets):
    pools, exchanges = desired(write_layout(MINIMAL), secrets)
    snap = converged(pools, exchanges)
    key = "pools/alice-pool-1/bots/one/config.json"
    snap.files[key] = dataclasses.replace(snap.files[key], mode=0o644)
    (pool,) = reconcile(snap, pools, exchanges).pools
    assert [u.dest for u in pool.uploads] == [key]


def test_an_owner_or_mode_changed_by_hand_is_repaired_without_restarting_anyone(
    write_layout, secrets
):
    pools, exchanges = desired(write_layout(THREE), secrets)
    snap = converged(pools, exchanges)
    program = "pools/alice-pool-1/programs/alice-two.conf"
    snap.files[program] = dataclasses.replace(snap.files[program], mode=0o666)
    config = "pools/alice-pool-1/bots/one/config.json"
    snap.files[config] = dataclasses.replace(snap.files[config], gid=1000)
    changes = reconcile(snap, pools, exchanges)
    (pool,) = changes.pools
    assert sorted(u.dest for u in pool.uploads) == [config, program]
    assert not (pool.restart or pool.start or pool.supervisor_update or pool.container)
    found = "\n".join(map(str, changes.differences))
    assert f"file {program}: changed: owner 0:0 mode 0666, want owner 0:0 mode 0644" in found
    assert f"file {config}: changed: owner 0:1000 mode 0640, want owner 0:209000 mode 0640" in found


def test_a_folder_with_another_owner_is_repaired_and_a_bots_data_goes_wholly_to_the_bot(
    write_layout, secrets
):
    pools, exchanges = desired(write_layout(THREE), secrets)
    snap = converged(pools, exchanges)
    bot = "pools/alice-pool-1/bots/two"
    snap.directories[bot] = DirectoryState(0o755, 1000, 1000)
    snap.directories[f"{bot}/user_data"] = DirectoryState(0o755, 1000, 1000)
    snap.directories["pools/alice-pool-1/programs"] = DirectoryState(0o777, 0, 0)
    changes = reconcile(snap, pools, exchanges)
    folders = {f.dest: f.directory.tree for f in changes.pools[0].directories}
    assert folders == {
        bot: False,
        f"{bot}/user_data": True,  # wholly the bot's again: its database with it
        "pools/alice-pool-1/programs": False,
    }
    found = "\n".join(map(str, changes.differences))
    assert f"folder {bot}/user_data: changed: owner 1000:1000 mode 0755, want owner " in found
    # supervisord's logs: whatever someone else left there becomes root's again
    snap = converged(pools, exchanges)
    snap.directories[f"{bot}/logs"] = DirectoryState(0o777, 0, 0)
    (folder,) = reconcile(snap, pools, exchanges).pools[0].directories
    assert (folder.dest, folder.directory.tree) == (f"{bot}/logs", True)


def test_the_deployments_own_folders_go_back_to_root_when_others_may_write_in_them(
    write_layout, secrets
):
    pools, exchanges = desired(write_layout(MINIMAL), secrets)
    snap = converged(pools, exchanges)
    snap.host_folders = {
        ".": DirectoryState(0o700, 0, 0),  # stricter than planned: fine
        "pools": DirectoryState(0o755, 1000, 1000),
        "exchanges": DirectoryState(0o775, 0, 0),
    }
    changes = reconcile(snap, pools, exchanges)
    assert changes.host_folders == ["exchanges", "pools"]
    assert "folder pools: changed: owner 1000:1000 mode 0755" in "\n".join(
        map(str, changes.differences)
    )


def test_a_link_where_a_file_belongs_is_replaced_and_a_stray_link_removed(write_layout, secrets):
    pools, exchanges = desired(write_layout(THREE), secrets)
    snap = converged(pools, exchanges)
    config = "pools/alice-pool-1/bots/two/config.json"
    snap.files[config] = FileState("", 0o777, 209001, 209001, regular=False)
    stray = "pools/alice-pool-1/bots/two/planted"
    snap.files[stray] = FileState("", 0o777, 1000, 1000, regular=False)
    (pool,) = reconcile(snap, pools, exchanges).pools
    assert [u.dest for u in pool.uploads] == [config]
    assert pool.restart == ["alice-two"] and pool.removals == [stray]


def test_an_old_host_is_migrated_whole_and_its_shared_network_retired(write_layout, secrets):
    """A host an older botpool converged: uid 1000 owns everything, configs are 0600, every
    pool and exchange sits on the one `botpool` network, each container has an older spec."""
    pools, exchanges = desired(
        write_layout(MINIMAL + "  bob:\n    bots:\n      - name: x\n"), secrets
    )
    snap = converged(pools, exchanges)
    snap.files = {
        path: dataclasses.replace(s, uid=1000, gid=1000, mode=0o600 if s.mode == 0o640 else s.mode)
        for path, s in snap.files.items()
    }
    snap.directories = {path: DirectoryState(0o755, 1000, 1000) for path in snap.directories}
    snap.containers = {
        name: dataclasses.replace(c, spec_hash="older", networks=frozenset({"botpool"}))
        for name, c in snap.containers.items()
    }
    snap.networks = {"botpool"}
    snap.network_users = {"botpool": set(snap.containers)}
    changes = reconcile(snap, pools, exchanges)
    assert changes.create_networks == ["botpool_alice", "botpool_bob"]
    assert changes.remove_networks == ["botpool"]
    for unit, rendered in zip(changes.pools, pools, strict=True):
        assert unit.container == "recreate" and not (unit.connect or unit.disconnect)
        assert len(unit.uploads) == len(rendered.files)  # each file is root's again
        folder = f"pools/{rendered.pool.name}"
        assert {f.dest for f in unit.directories if f.directory.tree} == {f"{folder}/logs"} | {
            f"{folder}/bots/{b.name}/{sub}"  # each tree goes wholly to its owner
            for b in rendered.pool.bots
            for sub in ("user_data", "logs")
        }
        assert {f.dest for f in unit.directories} == {
            f"pools/{rendered.pool.name}/{d.path}".rstrip("/") for d in rendered.directories
        }
    assert changes.exchanges[0].container == "recreate"
    # another deployment on the engine still on the old network: it stays, and is no drift
    snap.network_users["botpool"].add("someone-elses-pool")
    changes = reconcile(snap, pools, exchanges)
    found = "\n".join(map(str, changes.differences))
    assert changes.remove_networks == [] and "network botpool:" not in found
    # nobody on it, but none of this root's containers was either: an older deployment's
    # (its converge may be about to put containers on it), not this root's to retire
    snap.network_users["botpool"] = set()
    snap.containers = converged(pools, exchanges).containers
    changes = reconcile(snap, pools, exchanges)
    found = "\n".join(map(str, changes.differences))
    assert changes.remove_networks == [] and "network botpool:" not in found


def test_a_new_user_joins_the_exchange_live_and_a_gone_users_network_goes(write_layout, secrets):
    path = write_layout(MINIMAL)
    snap = converged(*desired(path, secrets))
    path.write_text(MINIMAL + "  bob:\n    bots:\n      - name: x\n")
    changes = reconcile(snap, *desired(path, secrets))
    (exchange,) = changes.exchanges
    assert changes.create_networks == ["botpool_bob"]
    assert exchange.container is None and exchange.connect == ["botpool_bob"]
    assert [p.container for p in changes.pools] == [None, "create"]
    # and back: bob's pool goes, the exchange leaves bob's network, the network goes
    snap = converged(*desired(path, secrets))
    path.write_text(MINIMAL)
    changes = reconcile(snap, *desired(path, secrets))
    (exchange,) = changes.exchanges
    assert exchange.container is None and exchange.disconnect == ["botpool_bob"]
    assert changes.remove_containers == ["botpool_bob-pool-1"] and changes.remove_networks == [
        "botpool_bob"
    ]


def test_a_container_on_a_network_not_its_own_leaves_it(write_layout, secrets):
    pools, exchanges = desired(
        write_layout(MINIMAL + "  bob:\n    bots:\n      - name: x\n"), secrets
    )
    snap = converged(pools, exchanges)
    snap.containers["botpool_alice-pool-1"] = dataclasses.replace(
        snap.containers["botpool_alice-pool-1"],
        networks=frozenset({"botpool_alice", "botpool_bob"}),
    )
    changes = reconcile(snap, pools, exchanges)
    assert changes.pools[0].disconnect == ["botpool_bob"] and changes.pools[0].container is None
    assert "container botpool_alice-pool-1: changed: on network botpool_bob: leaves it" in str(
        [str(d) for d in changes.differences]
    )


def test_a_folder_deleted_by_hand_is_drift_and_comes_back(write_layout, secrets):
    pools, exchanges = desired(write_layout(THREE), secrets)
    snap = converged(pools, exchanges)
    del snap.directories["pools/alice-pool-1/bots/two/logs"]
    changes = reconcile(snap, pools, exchanges)
    assert [f.dest for f in changes.pools[0].directories] == ["pools/alice-pool-1/bots/two/logs"]
    assert [str(d) for d in changes.differences] == [
        "folder pools/alice-pool-1/bots/two/logs: missing: will be created"
    ]


def test_the_folder_commands_make_a_tree_its_owners_and_rid_roots_folders_of_links(tmp_path):
    """The shell the converge runs for each Folder, on a real tree an older botpool (and a
    bot of it) left: uid 1000 everywhere, links planted where root writes."""
    import os
    import subprocess

    from botpool.core.reconcile import Folder
    from botpool.core.render import Directory
    from tasks.operations import folder_commands

    pool = tmp_path / "pools" / "p-pool-1"
    data = pool / "bots" / "b" / "user_data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "tradesv3.sqlite").write_text("trades")
    (data / "mine").symlink_to("/etc/hostname")  # the bot's own business: stays
    (pool / "programs").mkdir()
    (pool / "programs" / "evil.conf").symlink_to(data / "sub" / "tradesv3.sqlite")
    (pool / "logs" / "deep").mkdir(parents=True)
    (pool / "logs" / "supervisord.log").write_text("log")
    (pool / "logs" / "deep" / "planted.log").symlink_to(pool / "programs" / "x.conf")
    (pool / "bots" / "b" / "logs").symlink_to(data)  # a link where a folder belongs
    (pool / "strategies").symlink_to(data)  # the same, in a folder (the pool's) left as is
    subprocess.run(["chown", "-hR", "1000:1000", str(tmp_path / "pools")], check=True)
    folders = [
        Folder(Directory("programs"), "pools/p-pool-1/programs"),
        Folder(Directory("logs", tree=True), "pools/p-pool-1/logs"),
        Folder(Directory("bots/b", 0o750, 0, 209003), "pools/p-pool-1/bots/b"),
        Folder(
            Directory("bots/b/user_data", 0o700, 209003, 209003, True),
            f"{data.relative_to(tmp_path)}",
        ),
        Folder(Directory("bots/b/logs", tree=True), "pools/p-pool-1/bots/b/logs"),
        Folder(Directory("strategies"), "pools/p-pool-1/strategies"),
    ]
    for command in folder_commands(str(tmp_path), folders):
        subprocess.run(["sh", "-c", command], check=True)

    def access(path):
        st = os.lstat(path)
        return st.st_uid, st.st_gid, st.st_mode & 0o7777

    assert access(pool / "programs") == (0, 0, 0o755)
    assert not os.path.lexists(pool / "programs" / "evil.conf")
    assert access(pool / "logs" / "supervisord.log")[:2] == (0, 0)  # supervisord may append
    assert not os.path.lexists(pool / "logs" / "deep" / "planted.log")
    assert access(pool / "bots" / "b") == (0, 209003, 0o750)
    assert access(data) == (209003, 209003, 0o700)
    assert access(data / "sub" / "tradesv3.sqlite")[:2] == (209003, 209003)  # the data stays
    assert (data / "sub" / "tradesv3.sqlite").read_text() == "trades"
    assert (data / "mine").is_symlink() and access("/etc/hostname")[0] == 0  # not followed
    for folder in (pool / "bots" / "b" / "logs", pool / "strategies"):
        assert not folder.is_symlink() and access(folder) == (0, 0, 0o755)


def test_the_backup_job_lists_the_hosts_bots_and_changes_alone(write_layout, secrets):
    path = write_layout(THREE)
    plan = load_plan(path)
    pools, exchanges = desired(path, secrets)
    job = render_backup_job(plan, plan.hosts["local"], IMAGES["2026.9"])
    schedule = json.loads({f.path: f.text for f in job.files}["schedule.json"])
    assert (schedule["hourly"], schedule["daily"], schedule["interval_minutes"]) == (24, 14, 60)
    assert schedule["bots"][0] == {
        "user": "alice",
        "bot": "one",
        "uid": 209000,
        "database": "alice-pool-1/bots/one/user_data/tradesv3.sqlite",
    }
    assert len(schedule["bots"]) == 3
    args = job.container.run_args()
    assert args[args.index("--network") + 1] == "none"
    fresh = reconcile(converged(pools, exchanges), pools, exchanges, jobs=[job])
    (unit,) = fresh.jobs
    assert unit.container == "create" and len(unit.uploads) == 2
    assert reconcile(converged(pools, exchanges, [job]), pools, exchanges, jobs=[job]).empty

    path.write_text(path.read_text() + "backups: {hourly: 6}\n")
    plan = load_plan(path)
    kept = render_backup_job(plan, plan.hosts["local"], IMAGES["2026.9"])
    changes = reconcile(converged(pools, exchanges, [job]), pools, exchanges, jobs=[kept])
    assert changes.jobs[0].container == "recreate"
    assert [u.dest for u in changes.jobs[0].uploads] == ["jobs/backup/schedule.json"]
    assert all(p.empty for p in changes.pools)  # no pool, no bot restarts

    path.write_text(path.read_text().replace("hourly: 6", "enabled: false"))
    plan = load_plan(path)
    assert render_backup_job(plan, plan.hosts["local"], IMAGES["2026.9"]) is None
    changes = reconcile(converged(pools, exchanges, [job]), pools, exchanges, jobs=[])
    assert changes.remove_containers == [job.container.name]
