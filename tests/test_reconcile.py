"""Reconcile decides the smallest change: one changed bot touches one program, nothing else."""

from __future__ import annotations

import dataclasses

from botpool.plan import load_plan
from botpool.reconcile import CONTAINER_UID, reconcile
from botpool.render import render_host
from botpool.snapshot import ContainerState, FileState, ProgramState, Snapshot

from .conftest import MINIMAL

THREE = MINIMAL + "      - name: two\n      - name: three\n"
IMAGES = {"2026.9": "botpool/pool:test"}


def desired(path, secrets):
    plan = load_plan(path)
    return render_host(plan, plan.hosts["local"], IMAGES, secrets)


def converged(pools, exchanges) -> Snapshot:
    """The snapshot of a host that runs exactly what was rendered."""
    snap = Snapshot(engine="20.10", images={IMAGES["2026.9"]}, networks={"botpool"})
    for unit, directory in [(p, f"pools/{p.pool.name}") for p in pools] + [
        (e, f"exchanges/{e.exchange.profile.name}") for e in exchanges
    ]:
        spec = unit.container
        snap.containers[spec.name] = ContainerState(spec.name, True, "pool", spec.hash)
        snap.directories.add(directory)
        for sub in getattr(unit, "directories", ()):
            snap.directories.add(f"{directory}/{sub}")
        for artifact in unit.files:
            snap.files[f"{directory}/{artifact.path}"] = FileState(
                artifact.hash, artifact.mode, CONTAINER_UID
            )
            parent = f"{directory}/{artifact.path}".rsplit("/", 1)[0]
            while parent != directory:
                snap.directories.add(parent)
                parent = parent.rsplit("/", 1)[0]
    for pool in pools:
        snap.programs[pool.pool.name] = {
            name: ProgramState(name, "RUNNING", 100 + i, 60)
            for i, name in enumerate(sorted(pool.programs))
        }
    return snap


def test_fresh_host_gets_everything(write_layout, secrets):
    pools, exchanges = desired(write_layout(THREE), secrets)
    changes = reconcile(Snapshot(), pools, exchanges)
    (pool,) = changes.pools
    assert changes.create_network and pool.container == "create"
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
    assert {"pools/alice-pool-1/bots/two/user_data", "pools/alice-pool-1/bots/three/logs"} <= set(
        pool.directories
    )


def test_removing_a_bot_stops_it_and_archives_its_data(write_layout, secrets):
    path = write_layout(THREE)
    snap = converged(*desired(path, secrets))
    path.write_text(THREE.replace("      - name: two\n", ""))
    changes = reconcile(snap, *desired(path, secrets))
    (pool,) = changes.pools
    assert pool.removals == ["pools/alice-pool-1/programs/alice-two.conf"]
    assert pool.supervisor_update and pool.archive_bots == ["two"] and pool.container is None
    assert "bot alice/two: extra" in "\n".join(map(str, changes.differences))


def test_removing_the_last_bot_removes_the_pool_container_and_archives_the_pool(
    write_layout, secrets
):
    path = write_layout(MINIMAL + "  bob:\n    bots:\n      - name: x\n")
    snap = converged(*desired(path, secrets))
    path.write_text(MINIMAL)
    changes = reconcile(snap, *desired(path, secrets))
    assert changes.remove_containers == ["bob-pool-1"] and changes.archive_pools == ["bob-pool-1"]
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


def test_stopped_program_is_started(write_layout, secrets):
    pools, exchanges = desired(write_layout(THREE), secrets)
    snap = converged(pools, exchanges)
    snap.programs["alice-pool-1"]["alice-three"] = ProgramState(
        "alice-three", "STOPPED", None, None
    )
    (pool,) = reconcile(snap, pools, exchanges).pools
    assert pool.start == ["alice-three"] and not pool.supervisor_update and pool.uploads == []


def test_a_stopped_zygote_is_started_before_its_bots(write_layout, secrets):
    pools, exchanges = desired(write_layout(THREE), secrets)
    snap = converged(pools, exchanges)
    for name in ("zygote", "alice-one"):
        snap.programs["alice-pool-1"][name] = ProgramState(name, "EXITED", None, None)
    changes = reconcile(snap, pools, exchanges)
    assert changes.pools[0].start == ["zygote", "alice-one"]
    assert "program alice-pool-1:zygote: stopped" in "\n".join(map(str, changes.differences))


def test_removed_or_changed_container_is_recreated_and_waited_for(write_layout, secrets):
    pools, exchanges = desired(write_layout(THREE), secrets)
    snap = converged(pools, exchanges)
    del snap.containers["alice-pool-1"]
    assert reconcile(snap, pools, exchanges).pools[0].container == "create"
    snap = converged(pools, exchanges)
    snap.containers["alice-pool-1"] = dataclasses.replace(
        snap.containers["alice-pool-1"], spec_hash="old"
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
