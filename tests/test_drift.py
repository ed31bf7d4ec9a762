"""Drift on a real tree read through @local: what differs, key by key, and never a value."""

from __future__ import annotations

import json
import shutil

import pytest

from botpool.core.pipeline import Artifact
from botpool.hosts.drift import differing_keys, host_drift
from botpool.hosts.remote import RemoteHost

from .conftest import MINIMAL
from .test_reconcile import IMAGES, write_tree

FREQTRADE = MINIMAL.replace(
    "    pairs: [BTC/USDT]\n",
    "    pairs: [BTC/USDT]\n    freqtrade: {order_types: {entry: limit, exit: limit, "
    "stoploss: market, stoploss_on_exchange: false}}\n",
)


@pytest.fixture
def host(write_layout, secrets, tmp_path, monkeypatch):
    """A host converged by hand (the rendered tree written under its root), read via @local."""
    from botpool.core.pipeline import HostRef, desired

    root = tmp_path / "root"
    path = write_layout(FREQTRADE.replace("defaults:\n", f"defaults:\n  root: {root}\n"))
    monkeypatch.setattr("botpool.core.pipeline.pool_images", _images)
    want = desired(HostRef(str(path), "local"))
    root.mkdir()
    write_tree(root, want.pools, want.exchanges, want.monitoring, want.jobs)
    return RemoteHost("@local", "local", str(path), {}), root


def _images(layout):  # the rendered tree does not depend on a built image here
    from botpool.core.image import image_spec

    return {v: image_spec(v) for v in IMAGES}


def files_only(differences):
    return {d.subject: d.detail for d in differences if d.subject.startswith("file ")}


def test_a_host_as_rendered_has_no_file_drift(host):
    remote, _ = host
    result = host_drift(remote)
    assert result.error is None
    assert files_only(result.differences) == {}
    assert result.commands == 1  # one snapshot, nothing to explain


def test_a_changed_config_is_explained_key_by_key_and_no_value_is_shown(host):
    remote, root = host
    config = root / "pools" / "alice-pool-1" / "bots" / "one" / "config.json"
    data = json.loads(config.read_text())
    data["stake_amount"] = 123456
    data["order_types"]["stoploss"] = "limit"
    secret = data["api_server"]["password"]
    data["api_server"]["password"] = "hunter2-not-the-password"
    config.write_text(json.dumps(data))
    result = host_drift(remote)
    detail = files_only(result.differences)["file pools/alice-pool-1/bots/one/config.json"]
    assert detail == (
        "api_server.password, order_types.stoploss, stake_amount differ (values not shown)"
    )
    shown = json.dumps(result.as_dict())
    for value in ("123456", "hunter2", secret, "limit"):
        assert value not in shown
    assert result.commands == 2  # the snapshot, then the changed file, read once


def test_files_without_a_final_newline_are_each_explained(host):
    """json.dumps writes no final newline: the next file read must not vanish into it."""
    remote, root = host
    pool = root / "pools" / "alice-pool-1"
    config = pool / "bots" / "one" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "stake_amount": 99}))
    program = pool / "programs" / "alice-one.conf"
    program.write_text(program.read_text().replace("startretries=5", "startretries=9").rstrip())
    detail = files_only(host_drift(remote).differences)
    assert detail == {
        "file pools/alice-pool-1/bots/one/config.json": "stake_amount differ (values not shown)",
        "file pools/alice-pool-1/programs/alice-one.conf": (
            "program:alice-one.startretries differ (values not shown)"
        ),
    }


def test_a_changed_program_file_names_its_settings(host):
    remote, root = host
    program = root / "pools" / "alice-pool-1" / "programs" / "alice-one.conf"
    program.write_text(program.read_text().replace("startretries=5", "startretries=99"))
    detail = files_only(host_drift(remote).differences)
    assert detail["file pools/alice-pool-1/programs/alice-one.conf"] == (
        "program:alice-one.startretries differ (values not shown)"
    )


def test_a_missing_file_and_a_config_that_is_no_json(host):
    remote, root = host
    shutil.rmtree(root / "pools" / "alice-pool-1" / "strategies")
    config = root / "pools" / "alice-pool-1" / "bots" / "one" / "config.json"
    config.write_text("{ not json")
    detail = files_only(host_drift(remote).differences)
    assert detail["file pools/alice-pool-1/strategies/sample.py"] == "will be written"
    assert detail["file pools/alice-pool-1/bots/one/config.json"] == (
        "(not valid JSON) differ (values not shown)"
    )


def test_differing_keys_walks_nested_json_and_ini_without_values():
    want = Artifact("bots/x/config.json", json.dumps({"a": {"b": 1, "c": [1]}, "d": "s"}))
    assert differing_keys(want, json.dumps({"a": {"b": 2, "c": [1]}, "e": 1})) == [
        "a.b",
        "d",
        "e",
    ]
    ini = Artifact("programs/x.conf", "[program:x]\ncommand=a\nuser=b\n")
    assert differing_keys(ini, "[program:x]\ncommand=a\nuser=root\n") == ["program:x.user"]
    # code is not made of keys: its lines were shown as if they were (an edited backup.py)
    code = Artifact("jobs/backup/backup.py", "import os\nX = 1\n")
    assert differing_keys(code, "import os\nX = 2\nprint(X, file=y)\n") == []


def test_an_edited_backup_schedule_is_drift_named_key_by_key(host):
    remote, root = host
    schedule = root / "jobs" / "backup" / "schedule.json"
    data = json.loads(schedule.read_text())
    data["hourly"] = 1  # someone trims the retention by hand
    schedule.write_text(json.dumps(data))
    detail = files_only(host_drift(remote).differences)
    assert detail == {"file jobs/backup/schedule.json": "hourly differ (values not shown)"}


def test_two_changed_files_without_a_final_newline_are_each_explained(host):
    remote, root = host
    bots = root / "pools" / "alice-pool-1" / "bots" / "one"
    config = bots / "config.json"
    data = json.loads(config.read_text())
    data["stake_amount"] = 99
    config.write_text(json.dumps(data))  # no newline at its end
    schedule = root / "jobs" / "backup" / "schedule.json"
    schedule.write_text(json.dumps({**json.loads(schedule.read_text()), "daily": 1}))
    detail = files_only(host_drift(remote).differences)
    assert detail == {
        "file pools/alice-pool-1/bots/one/config.json": "stake_amount differ (values not shown)",
        "file jobs/backup/schedule.json": "daily differ (values not shown)",
    }
