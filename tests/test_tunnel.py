"""`botpool tunnel` and `botpool credentials USER`: FreqUI for a whole fleet from one machine."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess

import pytest

from botpool.cli import main

from .conftest import MINIMAL
from .e2e import REPO, VENV

HOSTS = """
hosts:
  vps1: {memory_mb: 4096}
  vps2: {memory_mb: 4096}
users:
  alice:
    host: vps1
    bots:
      - name: one
      - name: two
  bob:
    host: vps2
    bots:
      - name: solo
"""
LAYOUT = MINIMAL.split("users:")[0] + HOSTS.lstrip("\n")


@pytest.fixture
def fleet(write_layout, layout_dir, secrets, monkeypatch):
    """A two-host layout and an inventory file factory (host data as Python literals)."""
    layout = write_layout(LAYOUT)
    monkeypatch.delenv("BOTPOOL_LAYOUT", raising=False)

    def inventory(**data_per_host: dict) -> str:
        hosts = [
            (name, {"botpool_host": host, "botpool_layout": str(layout), **data})
            for name, (host, data) in data_per_host.items()
        ]
        path = layout_dir / "inventory.py"
        path.write_text(f"hosts = {hosts!r}\n")
        return str(path)

    return layout, inventory


def tunnel(*args: str) -> tuple[int, str, str]:
    """`botpool tunnel` as a user runs it (a process of its own: loading a pyinfra inventory
    patches the process with gevent, which this test process must not be)."""
    proc = subprocess.run(
        [str(VENV / "botpool"), "tunnel", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout, proc.stderr


def commands(output: str) -> list[list[str]]:
    return [shlex.split(line) for line in output.splitlines() if line.startswith("ssh ")]


def test_one_ssh_per_host_with_every_bots_forward_at_stable_local_ports(fleet):
    _, inventory = fleet
    path = inventory(
        **{
            "vps1.example.com": ("vps1", {"ssh_user": "root"}),
            "10.0.0.2": (
                "vps2",
                {
                    "ssh_user": "deploy",
                    "ssh_port": 2222,
                    "ssh_key": "~/.ssh/id fleet",  # a space: quoted when printed
                    "ssh_known_hosts_file": "/etc/botpool/known_hosts",
                    "ssh_strict_host_key_checking": "yes",
                },
            ),
        }
    )
    code, out, _ = tunnel(path)
    assert code == 0
    first, second = commands(out)
    assert first == [
        *("ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30"),
        *("-L", "127.0.0.1:9000:127.0.0.1:9000", "-L", "127.0.0.1:9001:127.0.0.1:9001"),
        *("--", "root@vps1.example.com"),
    ]
    # the second host's ports are its own 9000.. too: here they are 1000 further on
    assert second == [
        *("ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30"),
        *("-i", "~/.ssh/id fleet", "-o", "IdentitiesOnly=yes", "-p", "2222"),
        *("-o", "UserKnownHostsFile=/etc/botpool/known_hosts", "-o", "StrictHostKeyChecking=yes"),
        *("-L", "127.0.0.1:10000:127.0.0.1:9000", "--", "deploy@10.0.0.2"),
    ]
    assert "#   alice/one  http://127.0.0.1:9000" in out
    assert "#   bob/solo  http://127.0.0.1:10000" in out


def test_user_picks_one_users_bots(fleet):
    _, inventory = fleet
    path = inventory(a=("vps1", {}), b=("vps2", {}))
    code, out, _ = tunnel(path, "--user", "bob")
    assert code == 0
    assert commands(out) == [
        [
            *("ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=30"),
            *("-L", "127.0.0.1:10000:127.0.0.1:9000", "--", "b"),
        ]
    ]
    assert "# a (layout host vps1): 0 bot(s)\n# no bots" in out
    code, _, err = tunnel(path, "--user", "carol")
    assert code == 1 and "no user 'carol'" in err


def test_at_local_needs_no_tunnel_and_run_has_nothing_to_run(write_layout, secrets):
    layout = write_layout(MINIMAL)
    inventory = layout.parent / "local.py"
    inventory.write_text(
        f"hosts = [('@local', {{'botpool_host': 'local', 'botpool_layout': '{layout}'}})]\n"
    )
    code, out, err = tunnel(str(inventory), "--run")
    assert code == 0
    assert out.splitlines() == [
        "# @local (layout host local): 1 bot(s)",
        "# this machine: no tunnel needed",
        "#   alice/one  http://127.0.0.1:9000",
    ]
    assert "nothing to run: no bot needs a tunnel" in err


HOSTILE_DATA = {
    "an option for a host": ({"ssh_hostname": "-oProxyCommand=touch /tmp/x"}, "ssh_hostname"),
    "a space in the host": ({"ssh_hostname": "a b"}, "ssh_hostname"),
    "a newline in the host": ({"ssh_hostname": "vps1\n"}, "ssh_hostname"),
    "a command as a user": ({"ssh_user": "root;id"}, "ssh_user"),
    "an option for a user": ({"ssh_user": "-lroot"}, "ssh_user"),
    "a port as text": ({"ssh_port": "22"}, "ssh_port"),
    "a port as a boolean": ({"ssh_port": True}, "ssh_port"),
    "a port too high": ({"ssh_port": 70000}, "ssh_port"),
    "a newline in a key path": ({"ssh_key": "/k\nProxyCommand x"}, "ssh_key"),
    "a huge known_hosts path": ({"ssh_known_hosts_file": "x" * 5000}, "ssh_known_hosts_file"),
    "an unknown checking": ({"ssh_strict_host_key_checking": "maybe"}, "ssh_strict_host_key"),
}


@pytest.mark.parametrize("case", HOSTILE_DATA, ids=list(HOSTILE_DATA))
def test_host_data_never_reaches_the_command_line_unchecked(fleet, case):
    data, key = HOSTILE_DATA[case]
    _, inventory = fleet
    code, out, err = tunnel(inventory(vps=("vps1", data)))
    assert code == 1
    assert err.startswith(f"error: vps: {key}") and "Traceback" not in err
    assert "ssh " not in out


def test_an_inventory_that_is_broken_or_names_an_undeclared_host_is_an_error(fleet):
    _, inventory = fleet
    code, _, err = tunnel(inventory(vps=("vps9", {})))
    assert code == 1 and "no host 'vps9'" in err
    broken = fleet[0].parent / "broken.py"
    broken.write_text("hosts = [1/0]\n")
    code, _, err = tunnel(str(broken))
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"error: {broken}:1: cannot read the inventory: ZeroDivisionError")
    # (missing, empty and non-Python inventories: tests/test_cli.py, for every command)


def test_credentials_of_every_bot_of_a_user_as_text_and_json(fleet, secrets, capsys):
    layout, _ = fleet
    assert main(["credentials", str(layout), "alice"]) == 0
    out = capsys.readouterr().out
    for bot in ("alice/one", "alice/two"):
        assert f"bot:      {bot} on host vps1" in out
        assert secrets.api_credentials(bot).password in out
    assert "bob/solo" not in out
    assert main(["credentials", str(layout), "bob", "--json"]) == 0
    (login,) = json.loads(capsys.readouterr().out)
    assert login == {
        "bot": "bob/solo",
        "host": "vps2",
        "pool": "bob-pool-1",
        "host_port": 9000,
        "url": "http://127.0.0.1:10000",  # where `botpool tunnel` forwards it
        "username": "botpool",
        "password": secrets.api_credentials("bob/solo").password,
    }
    assert main(["credentials", str(layout), "alice/two", "--json"]) == 0
    assert [x["bot"] for x in json.loads(capsys.readouterr().out)] == ["alice/two"]
    assert main(["credentials", str(layout), "carol"]) == 1
    assert "no bot or user 'carol'" in capsys.readouterr().err


def test_frequi_origins_are_every_bots_cors_origins(write_layout, secrets):
    from botpool.core.freqtrade_validation import refusal
    from botpool.core.plan import load_plan
    from botpool.core.render import bot_config

    origins = "[http://127.0.0.1:9000, https://frequi.example.com]"
    path = write_layout(MINIMAL.replace("defaults:\n", f"defaults:\n  frequi_origins: {origins}\n"))
    plan = load_plan(path)
    config = json.loads(bot_config(plan, plan.bots[0], secrets))
    assert config["api_server"]["CORS_origins"] == [
        "http://127.0.0.1:9000",
        "https://frequi.example.com",
    ]
    assert refusal(config) is None
    plain = load_plan(write_layout(MINIMAL, "plain.yaml"))
    assert json.loads(bot_config(plain, plain.bots[0], secrets))["api_server"]["CORS_origins"] == []


def run_tunnels(*argvs: tuple[str, ...]) -> subprocess.Popen[str]:
    """tunnel.run() in a process of its own, patched by gevent as loading a pyinfra inventory
    patches `botpool tunnel`, with real processes standing in for ssh."""
    tunnels = [("h" + str(i), argv) for i, argv in enumerate(argvs, 1)]
    script = (
        "import sys\n"
        "from gevent import monkey\n"
        "monkey.patch_all()\n"
        "from botpool.hosts.tunnel import Tunnel, run\n"
        f"sys.exit(run([Tunnel(host, 'x', (), argv) for host, argv in {tunnels!r}]))\n"
    )
    return subprocess.Popen(
        [str(VENV / "python"), "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_a_tunnel_that_ends_closes_the_others_and_the_run_exits_1():
    """One ends at once (a refused login); the other would last a minute and is closed; the
    run says which ended and nothing more."""
    run = run_tunnels(("sleep", "60"), ("false",))
    out, err = run.communicate(timeout=30)  # the sleep was closed, not waited for
    assert (run.returncode, out) == (1, "")
    assert err == (
        "2 tunnel(s) open; Ctrl-C closes them\n"
        "error: the tunnel to h2 ended (exit 1); closing the others\n"
    )


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_closes_every_tunnel_and_the_run_exits_0(stop):
    run = run_tunnels(("sleep", "61"), ("sleep", "62"))
    assert run.stderr is not None
    assert run.stderr.readline() == "2 tunnel(s) open; Ctrl-C closes them\n"
    run.send_signal(stop)
    out, err = run.communicate(timeout=30)  # both sleeps closed
    assert (run.returncode, out, err) == (0, "", "")  # no traceback, from gevent's hub either
