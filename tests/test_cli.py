"""The botpool command: exit codes 0 / 1 / 2, and output a person can act on."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from botpool.cli import main
from botpool.core import schema
from botpool.core.allocate import lock_path
from botpool.core.plan import EXCHANGE_MB, MONITORING_MB
from botpool.core.runtimes import ZYGOTE

from .conftest import MINIMAL
from .e2e import REPO


def test_validate_exits_0_when_valid_and_1_with_every_problem(write_layout, secrets, capsys):
    good = write_layout(MINIMAL)
    assert main(["validate", str(good)]) == 0
    assert "valid: 1 users, 1 bots in 1 pools on 1 host(s)" in capsys.readouterr().out
    bad = write_layout(
        MINIMAL.replace("timeframe", "x").replace("stake_amount: 10", "stake_ammount: 10"),
        "bad.yaml",
    )
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:5: defaults.bot.stake_ammount: unknown key" in err
    assert "problem(s); nothing was changed" in err


def test_plan_writes_the_lock_and_check_exits_2_until_it_is_current(write_layout, secrets, capsys):
    path = write_layout(MINIMAL)
    assert main(["plan", str(path), "--check"]) == 2
    assert not lock_path(path).exists()  # --check never writes
    assert main(["plan", str(path)]) == 0
    assert lock_path(path).exists()
    assert main(["plan", str(path), "--check"]) == 0
    path.write_text(path.read_text() + "      - name: two\n")
    assert main(["plan", str(path), "--check"]) == 2
    out = capsys.readouterr().out
    assert re.search(r"local\s+alice-pool-1\s+one\s+127\.0\.0\.1:9000\s+SampleStrategy", out)


def test_plan_json_lists_every_bot_with_host_pool_slot_and_port(write_layout, secrets, capsys):
    path = write_layout(MINIMAL + "      - name: two\n")
    assert main(["plan", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(b["bot"], b["host"], b["pool"], b["slot"], b["host_port"]) for b in data["bots"]] == [
        ("one", "local", "alice-pool-1", 0, 9000),
        ("two", "local", "alice-pool-1", 1, 9001),
    ]
    zygote = ZYGOTE  # the default runtime: its pool share, 2 bots, exchange
    assert data["hosts"][0]["projected_mb"] == (
        zygote.pool_mb + 2 * zygote.bot_mb + EXCHANGE_MB + MONITORING_MB
    )
    (pool,) = data["pools"]
    assert (pool["pool"], pool["runtime"], pool["bots"]) == ("alice-pool-1", "zygote", 2)
    assert pool["projected_mb"] == zygote.pool_mb + 2 * zygote.bot_mb


def test_credentials_prints_one_bots_login_only_when_asked(write_layout, secrets, capsys):
    path = write_layout(MINIMAL)
    assert main(["credentials", str(path), "alice/one"]) == 0
    out = capsys.readouterr().out
    assert secrets.api_credentials("alice/one").password in out
    assert main(["credentials", str(path), "alice/nope"]) == 1


def test_the_committed_lock_files_are_current():
    for layout in ("inventory/layout.yaml", "inventory/loadtest.yaml", "inventory/production.yaml"):
        assert main(["plan", str(REPO / layout), "--check"]) == 0, layout


def test_the_readme_documents_every_layout_key():
    readme = (REPO / "README.md").read_text()
    for section in (
        schema.TOP,
        schema.DEFAULTS,
        schema.IMAGE,
        schema.BOT,
        schema.HOST,
        schema.EXCHANGE,
        schema.USER,
        schema.MONITORING,
        schema.BACKUPS,
    ):
        for key in section:
            assert f"| `{key}` |" in readme, f"README does not document {key}"


def test_plan_shows_host_labels_and_pending_moves(write_layout, secrets, capsys):
    hosts = "hosts:\n  h0: {memory_mb: 8000, labels: {region: eu}}\n  h1: {memory_mb: 8000}\nusers:"
    path = write_layout(
        MINIMAL.replace("users:", hosts).replace("  alice:\n", "  alice:\n    host: h0\n")
    )
    assert main(["plan", str(path)]) == 0
    assert re.search(r"^h0 .* region=eu  sandbox 1/-$", capsys.readouterr().out, re.M)
    path.write_text(path.read_text().replace("host: h0", "host: h1"))
    assert main(["plan", str(path)]) == 0
    assert "alice-pool-1 moves from h0 to h1 with its data at the next converge" in (
        capsys.readouterr().out
    )
    assert main(["plan", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["moves"] == [{"pool": "alice-pool-1", "from": "h0", "to": "h1"}]


def test_checks_of_an_inventory_without_hosts_fail(tmp_path):
    """`pytest checks/` that checked nothing must not exit 0 (it did, with 3 skipped)."""
    inventory = tmp_path / "empty.py"
    inventory.write_text("hosts = []\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "checks/",
            "-q",
            "-p",
            "no:cacheprovider",
            "--inventory",
            str(inventory),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode not in (0, 2), proc.stdout + proc.stderr
    assert "lists no hosts, so there is nothing to read" in proc.stdout + proc.stderr


@pytest.mark.parametrize("command", ["drift", "alerts", "backup", "tunnel", "dashboard"])
def test_a_missing_inventory_or_a_layout_given_as_one_is_an_error(tmp_path, capsys, command):
    """A tired user's typo, or the layout passed where the inventory goes: exit 1 naming the
    file, never exit 0 with nothing read (a missing file did that) nor a traceback."""
    layout = tmp_path / "layout.yaml"
    layout.write_text("hosts: []\n")
    for path, message in (
        (tmp_path / "missing.py", "missing.py: no such inventory file"),
        (layout, "layout.yaml: an inventory is a pyinfra Python file"),
    ):
        assert main([command, str(path)]) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("command", "name", "text", "message"),
    [
        (
            "drift",
            "syntax.py",
            "hosts = [\n",
            "syntax.py:1: cannot read the inventory: SyntaxError",
        ),
        (
            "alerts",
            "raises.py",
            "x = 1\ny = 1 / 0\n",
            "raises.py:2: cannot read the inventory: ZeroDivisionError",
        ),
        ("backup", "empty.py", "hosts = []\n", "empty.py: the inventory lists no hosts"),
        ("dashboard", "empty.py", "hosts = []\n", "empty.py: the inventory lists no hosts"),
    ],
)
def test_a_broken_or_empty_inventory_is_an_error_naming_file_and_line(
    tmp_path, command, name, text, message
):
    """pyinfra runs the inventory as Python: an error in it names the file and line. (A
    process of its own: loading an inventory imports pyinfra's CLI, which patches the
    interpreter with gevent; tunnel's cases are in tests/test_tunnel.py.)"""
    path = tmp_path / name
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "botpool.cli", command, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_the_dashboard_refuses_to_listen_beyond_loopback_without_a_token(tmp_path):
    proc = subprocess.run(
        [str(REPO / ".venv/bin/botpool"), "dashboard", "inventory/local.py"]
        + ["--listen", "0.0.0.0", "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "--listen 0.0.0.0 is reachable beyond this machine: give --token FILE" in proc.stderr
    assert proc.stdout == ""  # it never printed a URL
