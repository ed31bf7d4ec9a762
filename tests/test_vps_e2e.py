"""Rented servers for real: one story on two bare Debian "VPS" containers reached over SSH
(tests/harness/vps.py), in the order a fleet owner meets things.

h1 builds its pool image itself; h2 is shipped the image built here (the controller). Test by
test, in file order: a converge's lock over SSH ends with its connection (on bare h1); both
bare hosts converged at once (engine installed, image built or shipped, pools placed by pin
and by memory, every bot answering, drift and checks green); a second converge runs one
command per host; host keys verified (known, unknown, an impostor, opt-in); every remote
read bounded (a hung command, a frozen host); a pool moved with its trade history; a stopped
engine started, not reinstalled; a host lost with its pools, which come back on the other
from pulled backups; then one host down while the other stays green, in the dashboard too.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from botpool.core.allocate import lock_path, read_lock
from botpool.core.image import LOCAL_BASE
from botpool.hosts.remote import RemoteError, RemoteHost

from .e2e import (
    CTL,
    KEPT_TRADES_SQL,
    Dashboard,
    Deployment,
    bot_rows,
    chromium,
    docker,
    finish,
    healthy_everywhere,
    kept_trades_in,
    new_deployment,
    screenshot,
    start_pyinfra,
    wait_for,
)
from .harness import images
from .harness.vps import (
    Vps,
    changed_operations,
    remove_orphans,
    run_pyinfra,
    start_vps,
    write_inventory,
)

pytestmark = pytest.mark.e2e(minutes=8.3)
pytest_plugins = ["tests.harness.vps"]  # the ssh_key fixture

HOSTS = "hosts:\n  h1: {memory_mb: 2048}\n  h2: {memory_mb: 2048}\n"
USERS = """
ann:
  host: h1
  bots:
    - name: one
    - {name: two, pairs: [ETH/USDT]}
bob:
  bots:
    - {name: three, pairs: [SOL/USDT]}
"""
BUILD = {"h1": "host", "h2": "controller"}  # how each host gets its pool image
CACHE = {"botpool_image_cache": str(images.CACHE)}  # where the controller keeps its archives
PING = (
    'python3 -c "import urllib.request; print(urllib.request.urlopen('
    "'http://127.0.0.1:{port}/api/v1/ping', timeout=5).read().decode())\""
)
TRADES = (  # each trade with a fill as "id pair open_date" (tests/e2e.py's KEPT_TRADES_SQL)
    "python3 -c \"import json, sqlite3; print(json.dumps(sorted(' '.join(map(str, r)) for r in "
    f"sqlite3.connect('{{db}}').execute('{KEPT_TRADES_SQL}'))))\""
)


@dataclass
class Story:
    dep: Deployment  # its inventory: both hosts
    hosts: dict[str, Vps]  # layout host -> its VPS

    def inventory(self, name: str, layout_host: str, **data: object) -> Path:
        """An inventory of one of the hosts alone, with more host data."""
        vps = self.hosts[layout_host]
        own = {"botpool_host": layout_host, "botpool_image_build": BUILD[layout_host], **data}
        return write_inventory(self.dep.directory / f"{name}.py", {vps: own}, **CACHE)


@pytest.fixture(scope="module")
def story(ssh_key: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    remove_orphans()
    images.saved_archive(images.pool_spec())  # built and saved here once, shipped to h2
    hosts: dict[str, Vps] = {}
    try:
        for name in ("h1", "h2"):
            hosts[name] = start_vps(ssh_key)
        dep = new_deployment(tmp_path_factory.mktemp("vps"), "e2evps", 9000)
        dep.write(USERS, extra_yaml=HOSTS)
        own = {hosts[n]: {"botpool_host": n, "botpool_image_build": BUILD[n]} for n in hosts}
        dep.inventory = str(write_inventory(dep.directory / "inventory.py", own, **CACHE))
        yield Story(dep, hosts)
    finally:
        for vps in hosts.values():
            vps.remove()


def names(vps: Vps) -> set[str]:
    return set(vps.exec("docker ps --format '{{.Names}}'").split())


def image_id(vps: Vps, tag: str) -> str:
    """The ID of an image on the VPS's engine, or "" when it has no such image."""
    found = vps.exec(f"docker image inspect --format '{{{{.Id}}}}' {tag} 2>/dev/null || true")
    return found.strip()


def answering(story: Story) -> bool:
    for bot in story.dep.plan().bots:
        out = story.hosts[bot.host].exec(PING.format(port=bot.host_port), check=False)
        if '"pong"' not in out:
            return False
    return True


def trades(dep: Deployment, vps: Vps, pool: str, bot: str) -> list[str]:
    db = f"{dep.root}/pools/{pool}/bots/{bot}/user_data/tradesv3.sqlite"
    return json.loads(vps.exec(TRADES.format(db=db)))


def log_tail(dep: Deployment, vps: Vps, pool: str, bot: str) -> str:
    """The end of a bot's freqtrade log on its host, for a failure's message."""
    log = f"{dep.root}/pools/{pool}/bots/{bot}/logs/freqtrade.log"
    return f"\n--- the end of {log}:\n" + vps.exec(f"tail -n 40 {log} 2>&1", check=False)


def drift(dep: Deployment, inventory: Path | str) -> tuple[int, str]:
    return dep.botpool("drift", str(inventory))


# --- the converge lock over SSH, on a bare host ------------------------------------------------


def test_over_ssh_a_killed_converges_lock_ends_with_its_connection(story):
    """On bare h1, with a deploy that only locks (tests/harness/lock_deploy.py)."""
    h1, lock_deploy = story.hosts["h1"], "tests/harness/lock_deploy.py"
    dep = replace(story.dep, inventory=str(story.inventory("lock", "h1")))
    lock = dep.root / ".converge.lock"
    text = lambda: h1.exec(f"cat {lock} 2>/dev/null || true")  # noqa: E731

    first = start_pyinfra(dep, deploy=lock_deploy)
    wait_for(lambda: f"pid={first.pid}\n" in text(), timeout=120, interval=0.2, what="lock")
    code, output = finish(
        start_pyinfra(dep, "-y", "--data", "botpool_lock_wait=1", deploy=lock_deploy)
    )
    assert code == 1 and f"(pid {first.pid})" in output, output[-3000:]
    assert "Say hello" not in output.split("Preparing operation files")[-1]

    os.kill(first.pid, signal.SIGKILL)  # its SSH connection drops with it
    first.wait(timeout=30)
    code, output = finish(
        start_pyinfra(dep, "-y", "--data", "botpool_lock_wait=30", deploy=lock_deploy)
    )
    assert code == 0, output[-3000:]
    assert f"(pid {first.pid})" in output and "did not finish (it failed or was killed)" in output
    assert text() == ""  # this one ended well: its holder cleared the description
    assert h1.exec("pgrep -f '[b]otpool-lock' || true").strip() == ""  # no holder left


# --- two bare hosts, converged at once ----------------------------------------------------------


def test_two_bare_hosts_get_engine_image_and_their_pools_over_ssh(story):
    dep, h1, h2 = story.dep, story.hosts["h1"], story.hosts["h2"]
    for vps in (h1, h2):
        assert vps.exec("command -v dockerd docker || echo none").strip() == "none"  # bare

    first = dep.converge(verbose=True)
    spec = images.pool_spec()
    for vps in (h1, h2):
        changed = changed_operations(first.output, vps.name)
        assert [op for op in changed if op.startswith("tasks/engine.py")] == [
            "tasks/engine.py | Install the Docker engine (docker.io)",
            "tasks/engine.py | Start the Docker engine and wait until it answers",
        ], changed
    delivered = [op for op in changed_operations(first.output) if "tasks/image.py" in op]
    # one operation, each host its own way (its own name): h1 builds while h2 is shipped to
    assert [op for op in delivered if "Build the pool image" in op and "Ship the pool" in op], (
        delivered
    )
    # h1 made the Debian base with debootstrap and built on it; h2 has no base and the very
    # image built here, on the controller (`docker load` keeps an image's ID)
    here = docker("image", "inspect", "--format", "{{.Id}}", spec.tag).strip()
    assert image_id(h1, LOCAL_BASE) and image_id(h1, spec.tag) not in ("", here)
    assert image_id(h2, LOCAL_BASE) == "" and image_id(h2, spec.tag) == here

    placed = {p.name: p.host for p in dep.plan().pools}
    assert placed == {"ann-pool-1": "h1", "bob-pool-1": "h2"}  # ann pinned; bob: the roomier
    ann, bob = dep.container("ann-pool-1"), dep.container("bob-pool-1")
    assert names(h1) == {ann, dep.exchange_container(), dep.backup_container()}
    assert names(h2) == {bob, dep.exchange_container(), dep.backup_container()}
    wait_for(lambda: answering(story), timeout=180, what="every bot's ping on its host")

    for vps in (h1, h2):  # the image keeps its contract however it got there

        def run_in_vps(user: str | None, script: str, vps: Vps = vps) -> str:
            as_user = f"--user {user}" if user else ""
            return vps.exec(f"docker run --rm {as_user} {spec.tag} sh -c {shlex.quote(script)}")

        images.check_contract(run_in_vps, spec)
        assert vps.exec("ls -A /var/tmp/botpool-build").strip() == ""  # contexts, archives gone

    code, output = drift(dep, dep.inventory)
    assert code == 0, output
    run = dep.checks(dep.inventory)
    assert run.failures(dep.plan(), {h1.name: "h1", h2.name: "h2"}) == {}


def test_a_second_converge_runs_one_command_on_each_host(story):
    again = story.dep.converge(verbose=True)
    assert again.operations == [], again.output[-6000:]
    ran = re.findall(r"^\[([^]]+)\] >>> (.{0,80})", again.output, re.M)
    assert again.commands == 2, ran  # one snapshot a host, nothing else


def test_the_dashboard_shows_each_hosts_bots_and_follows_a_bot_stopped_by_hand(story):
    """In a real browser: every bot with its pool and its host (ann's pinned on h1, bob's
    placed on h2); bob/three stopped by hand turns down on the open page, healthy after a
    converge."""
    dep = story.dep
    plan = dep.plan()
    assert {b.host for b in plan.bots} == {"h1", "h2"}
    where = {b.key: [b.key, b.pool, story.hosts[b.host].name] for b in plan.bots}
    with Dashboard(dep, refresh_s=3) as dashboard, chromium() as browser:
        wait_for(
            lambda: healthy_everywhere(dashboard),
            timeout=120,
            what=f"every bot healthy\n{dashboard.output()}",
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(dashboard.url + "/")
        assert bot_rows(page) == where
        assert page.locator("tr.host.up").count() == 2
        heat = page.locator("tr.heatrow")
        assert {heat.nth(i).get_attribute("data-pool") for i in range(heat.count())} == {
            p.name for p in plan.pools
        }
        screenshot(page, "two-hosts")

        (bob,) = [b for b in plan.bots if b.key == "bob/three"]
        story.hosts[bob.host].exec(f"docker exec {dep.container(bob.pool)} {CTL} stop bob-three")
        cell = page.locator('tr.bot[data-bot="bob/three"] .health')
        cell.filter(has_text="down").wait_for(timeout=3 * 3000 + 60_000)  # a refresh is SSH
        screenshot(page, "two-hosts-bot-down")
        dep.converge()
        cell.filter(has_text="healthy").wait_for(timeout=120_000)
    assert dashboard.process.returncode == 0, dashboard.output()


# --- host keys: every reader verifies them --------------------------------------------------------


def reachable(dep: Deployment, inventory: Path, vps: Vps) -> tuple[str, str]:
    """`pytest checks/`: the outcome and message of the host's reachability test."""
    return dep.checks(inventory).tests[
        f"test_host_is_reachable_and_its_layout_is_valid[{vps.name}]"
    ]


def fingerprint(public_key: str, directory: Path) -> str:
    """`SHA256:...` of a `type base64` public key, as ssh-keygen shows it."""
    path = directory / "key.pub"
    path.write_text(public_key + "\n")
    out = subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True)
    return out.stdout.split()[1]


def test_a_host_whose_key_is_known_is_read(story):
    h2 = story.hosts["h2"]
    inventory = story.inventory("known", "h2")  # the harness wrote h2's own keys, strict
    code, output = drift(story.dep, inventory)
    assert code == 0 and f"no drift on {h2.name}" in output, output
    assert reachable(story.dep, inventory, h2)[0] == "passed"


def test_an_unknown_host_is_refused_until_a_converge_records_its_key(story, tmp_path):
    dep, h2 = story.dep, story.hosts["h2"]
    known_hosts = tmp_path / "known_hosts"  # empty: as a controller that never saw the host
    known_hosts.write_text("")
    inventory = story.inventory(
        "unknown", "h2", ssh_known_hosts_file=str(known_hosts), ssh_strict_host_key_checking=None
    )
    code, output = drift(dep, inventory)
    assert code == 1, output
    (key,) = [k for k in h2.host_keys() if k.startswith("ssh-ed25519")]
    assert f"error: {h2.name}: its SSH host key is not known: {h2.known_hosts_entry}" in output
    assert fingerprint(key, tmp_path) in output  # what to compare before trusting it
    assert f"ssh-keyscan -p {h2.port} 127.0.0.1 >> {known_hosts}" in output
    assert "Traceback" not in output
    outcome, message = reachable(dep, inventory, h2)
    assert outcome == "failed" and "host key is not known" in message, message
    assert known_hosts.read_text() == ""  # a reader never trusts on its own

    # pyinfra's own default (accept-new) records the key on first contact; then drift reads
    run = run_pyinfra(inventory, "exec", "--", "true")
    assert run.returncode == 0, run.output[-3000:]
    assert h2.known_hosts_entry in known_hosts.read_text()
    code, output = drift(dep, inventory)
    assert code == 0 and f"no drift on {h2.name}" in output, output


def test_an_impostor_at_the_hosts_address_is_refused_whatever_the_setting(story, tmp_path):
    dep, h2 = story.dep, story.hosts["h2"]
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")],
        check=True,
    )
    other = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    known_hosts = tmp_path / "known_hosts"  # the address is known, with another key
    known_hosts.write_text(f"{h2.known_hosts_entry} {other}\n")
    (real,) = [k for k in h2.host_keys() if k.startswith("ssh-ed25519")]
    for setting in ("yes", "accept-new", "off"):
        inventory = story.inventory(
            "impostor",
            "h2",
            ssh_known_hosts_file=str(known_hosts),
            ssh_strict_host_key_checking=setting,
        )
        code, output = drift(dep, inventory)
        assert code == 1, (setting, output)
        assert f"error: {h2.name}: its SSH host key has CHANGED: {h2.known_hosts_entry}" in output
        assert fingerprint(real, tmp_path) in output and fingerprint(other, tmp_path) in output
        assert f"ssh-keygen -R '{h2.known_hosts_entry}' -f {known_hosts}" in output
        assert "no drift" not in output, output  # nothing read from the impostor
        outcome, message = reachable(dep, inventory, h2)
        assert outcome == "failed" and "CHANGED" in message, message
    assert known_hosts.read_text() == f"{h2.known_hosts_entry} {other}\n"


def test_an_unknown_host_is_read_when_the_inventory_opts_in(story, tmp_path):
    dep, h2 = story.dep, story.hosts["h2"]
    known_hosts = tmp_path / "ssh" / "known_hosts"  # not there yet: accept-new makes it
    inventory = story.inventory(
        "opt-in",
        "h2",
        ssh_known_hosts_file=str(known_hosts),
        ssh_strict_host_key_checking="accept-new",
    )
    code, output = drift(dep, inventory)
    assert code == 0, output
    assert "new SSH host key ssh-ed25519 SHA256:" in output and str(known_hosts) in output
    assert known_hosts.read_text().startswith(f"{h2.known_hosts_entry} ssh-ed25519 ")
    assert oct(known_hosts.stat().st_mode & 0o777) == "0o600"

    known_hosts.unlink()  # off: read, with a warning, and nothing recorded
    inventory = story.inventory(
        "opt-in", "h2", ssh_known_hosts_file=str(known_hosts), ssh_strict_host_key_checking="off"
    )
    code, output = drift(dep, inventory)
    assert code == 0 and "NOT verified (ssh_strict_host_key_checking: off)" in output, output
    assert not known_hosts.exists()

    inventory = story.inventory("opt-in", "h2", ssh_strict_host_key_checking="maybe")
    code, output = drift(dep, inventory)
    assert code == 1 and f"{h2.name}: ssh_strict_host_key_checking is 'maybe'" in output, output


# --- every remote read is bounded ---------------------------------------------------------------


def reader(vps: Vps, timeout: int) -> RemoteHost:
    data = {**vps.host_data(), "botpool_command_timeout": timeout}
    return RemoteHost(vps.name, "h1", "unused", data)


def pids(vps: Vps, sleep: str) -> list[str]:
    """Processes in the VPS whose command line holds `sleep <sleep>` (never this pgrep's sh)."""
    return vps.exec(f"pgrep -f '[s]leep {sleep}' || true").split()


def test_a_hung_command_ends_in_an_error_and_nothing_of_it_keeps_running(story):
    h1 = story.hosts["h1"]
    sleep = f"600.{random.randrange(10**6):06d}"
    host = reader(h1, timeout=2)
    started = time.monotonic()
    with pytest.raises(RemoteError) as caught:
        host.run(f"sleep {sleep} & wait", "the slow look")
    assert 2 <= time.monotonic() - started < 8
    assert str(caught.value).startswith(
        f"{h1.name}: the slow look did not finish within 2 s (botpool_command_timeout)"
    )
    wait_for(lambda: not pids(h1, sleep), timeout=5, interval=0.2, what="the sleep to end")
    assert host.run("echo again", "a quick look") == ["again"]  # the connection still serves


def test_the_reader_gives_up_when_the_hosts_own_bound_cannot_act(story):
    """The command stops its `timeout` (as a frozen host would): the reader's deadline."""
    h1 = story.hosts["h1"]
    sleep = f"600.{random.randrange(10**6):06d}"
    host = reader(h1, timeout=2)
    started = time.monotonic()
    try:
        with pytest.raises(RemoteError, match="the frozen look did not finish within 2 s"):
            host.run(f"kill -STOP $PPID; sleep {sleep}", "the frozen look")
        assert 2 + 15 <= time.monotonic() - started < 2 + 15 + 5  # the bound, then the grace
    finally:
        h1.exec(f"kill -9 {' '.join(pids(h1, sleep))} 2>/dev/null || true")


def freeze(vps: Vps) -> None:
    """`docker pause`, again when the kernel could not freeze every process at once: on a
    busy machine runc gives up ("unable to freeze", seen 1 run in 5 of the whole suite), and
    thaws what it froze."""
    for _ in range(5):
        proc = subprocess.run(["docker", "pause", vps.name], capture_output=True, text=True)
        if proc.returncode == 0 or "unable to freeze" not in proc.stderr:
            break
        time.sleep(1)
    assert proc.returncode == 0, f"docker pause {vps.name}: {proc.stderr}"


def test_a_frozen_host_does_not_hang_the_reader(story):
    h1 = story.hosts["h1"]
    host = reader(h1, timeout=2)
    assert host.run("echo hello", "a first look") == ["hello"]  # connected
    freeze(h1)  # sshd stops answering, the connection stays open
    try:
        started = time.monotonic()
        with pytest.raises(RemoteError) as caught:
            host.run("echo hello", "the second look")
        assert time.monotonic() - started < 10 + 5  # the connect timeout
        assert str(caught.value).startswith(f"{h1.name}: unreachable during the second look: "), (
            caught.value
        )
    finally:
        docker("unpause", h1.name)
    wait_for(lambda: answering(story), timeout=120, what="every bot again, h1 thawed")


# --- a pool moves; an engine stops; a host goes down --------------------------------------------


def test_a_pool_moves_to_another_host_with_its_trade_history(story):
    dep, h1, h2 = story.dep, story.hosts["h1"], story.hosts["h2"]
    before = wait_for(
        lambda: trades(dep, h1, "ann-pool-1", "one") or None,
        timeout=180,
        what="a dry-run trade of ann/one on h1",
        then=lambda: log_tail(dep, h1, "ann-pool-1", "one"),
    )
    dep.layout.write_text(dep.layout.read_text().replace("host: h1", "host: h2"))
    code, output = dep.botpool("plan", str(dep.layout))  # writes the lock: new host and old
    assert code == 0, output
    moving = read_lock(lock_path(dep.layout)).pools["ann-pool-1"]
    assert (moving.host, moving.moved_from) == ("h2", "h1")

    run = dep.converge(verbose=True)
    assert any("Move ann-pool-1 (h1 -> h2)" in op for op in run.operations), run.operations
    ann = dep.container("ann-pool-1")
    assert ann not in names(h1) and ann in names(h2)
    after = trades(dep, h2, "ann-pool-1", "one")
    assert set(before) <= set(after), (before, after)  # the trade history came along
    archived = h1.exec(f"ls {dep.root}/archive/*/pools").split()
    assert archived == ["ann-pool-1"]  # the old copy is archived on h1, not deleted
    assert read_lock(lock_path(dep.layout)).pools["ann-pool-1"].moved_from is None
    wait_for(lambda: answering(story), timeout=180, what="ann's bots answering on h2")
    again = dep.converge(verbose=True)
    assert again.operations == [], again.output[-4000:]


def test_a_stopped_engine_is_started_not_reinstalled(story):
    """A rebooted host without systemd: the engine and image deploy starts it, nothing more."""
    h1, deploy = story.hosts["h1"], "tests/harness/engine_image_deploy.py"
    inventory = story.inventory("engine", "h1")
    again = run_pyinfra(inventory, deploy)
    assert again.returncode == 0 and again.operations == [], again.output[-4000:]
    assert again.commands == 1, again.output  # one fact: engine answers, image present
    h1.exec("kill $(cat /var/run/docker.pid); while [ -e /var/run/docker.pid ]; do sleep 0.2; done")
    restart = run_pyinfra(inventory, deploy)
    assert restart.returncode == 0, restart.output[-4000:]
    assert restart.changed == [
        "tasks/engine.py | Start the Docker engine and wait until it answers"
    ]
    assert images.pool_spec().tag in h1.exec("docker images --format '{{.Repository}}:{{.Tag}}'")


def kept_in_backup(path: Path, directory: Path) -> list[str]:
    """A pulled backup's trades with a fill, as TRADES prints them."""
    copy = directory / (path.name + ".sqlite")
    copy.write_bytes(gzip.decompress(path.read_bytes()))
    return sorted(" ".join(map(str, t)) for t in kept_trades_in(copy))


def test_a_lost_hosts_pools_come_back_on_the_other_from_pulled_backups(story, tmp_path):
    """The disaster: h2 (both users' pools since the move) is destroyed after `backup --pull`
    ran. Its pools are placed on h1 (`plan --lost-host h2`: h2 stays declared, as a server
    that may be replaced), converged without h2, and each bot restored from the pulled
    backup answers with its trades."""
    dep, h1, h2 = story.dep, story.hosts["h1"], story.hosts["h2"]
    wait_for(
        lambda: trades(dep, h2, "bob-pool-1", "three") or None,
        timeout=180,
        what="a dry-run trade of bob/three on h2",
        then=lambda: log_tail(dep, h2, "bob-pool-1", "three"),
    )
    pulled = tmp_path / "pulled"
    code, output = dep.botpool("backup", dep.inventory, "--pull", str(pulled))
    assert code == 0, output
    bots = dep.plan().bots
    assert {b.host for b in bots} == {"h2"}
    backups = {b.key: sorted((pulled / "h2" / b.user / b.name).iterdir())[-1] for b in bots}
    at_backup = {key: kept_in_backup(path, tmp_path) for key, path in backups.items()}
    assert at_backup["bob/three"], at_backup  # a trade to bring back
    h2.remove()

    text = dep.layout.read_text().replace("host: h2", "host: h1")
    placed = text.replace("\n  bob:\n", "\n  bob:\n    host: h1\n")
    assert placed != text, text
    dep.layout.write_text(placed)
    survivor = replace(dep, inventory=str(story.inventory("survivor", "h1")))
    refused = survivor.converge(check=False)  # the move would need h2's data
    assert refused.returncode != 0 and "--lost-host h2" in refused.output, refused.output[-3000:]
    code, output = dep.botpool("plan", str(dep.layout), "--lost-host", "h2")
    assert code == 0, output
    for pool in ("ann-pool-1", "bob-pool-1"):
        assert f"{pool} starts empty on h1" in output, output
    survivor.converge()
    assert {b.host for b in dep.plan().bots} == {"h1"}
    for bot in bots:
        code, output = survivor.botpool(
            "restore", survivor.inventory, bot.key, "--from", str(pulled), "--at", "latest"
        )
        assert code == 0, output
        assert f"{bot.key} restored from {backups[bot.key].name[:16]}" in output, output
        assert set(at_backup[bot.key]) <= set(trades(dep, h1, bot.pool, bot.name)), bot.key
    wait_for(lambda: answering(story), timeout=180, what="every bot answering on h1")
    code, output = drift(survivor, survivor.inventory)
    assert code == 0, output
    assert survivor.converge().operations == []


def test_one_host_down_and_the_other_stays_green(story):
    """After the test above: h2 is gone, h1 runs every pool."""
    dep, h1, h2 = story.dep, story.hosts["h1"], story.hosts["h2"]
    code, output = drift(dep, dep.inventory)
    assert code == 1, output  # drift says so, and still reports the other host
    assert f"{h2.name}: unreachable" in output and f"no drift on {h1.name}" in output, output
    outcomes = {name: outcome for name, (outcome, _) in dep.checks(dep.inventory).tests.items()}
    failed = {t for t, outcome in outcomes.items() if outcome == "failed"}
    assert failed and all(h2.name in t for t in failed), failed
    passed = [t for t, outcome in outcomes.items() if outcome == "passed" and h1.name in t]
    assert len(passed) >= 4, outcomes  # h1: reachable, as planned, and its bots checked


def test_the_dashboard_shows_the_host_that_is_down_as_unreachable_and_the_other_current(story):
    """After the tests above: h2 is gone, h1 runs every pool (monitoring off in this layout,
    so the dashboard shows h1's current state without history); in its JSON, then in a real
    browser."""
    dep, h1, h2 = story.dep, story.hosts["h1"], story.hosts["h2"]
    plan = dep.plan()
    with Dashboard(dep, refresh_s=5) as dashboard:
        fleet = wait_for(
            lambda: (f := dashboard.fleet())["refreshes"] >= 1 and f,
            timeout=180,
            what=f"a first refresh of both hosts\n{dashboard.output()}",
        )
        hosts = {h["name"]: h for h in fleet["hosts"]}
        assert f"{h2.name}: unreachable" in hosts[h2.name]["error"], hosts[h2.name]
        assert hosts[h1.name]["error"] is None and hosts[h1.name]["monitoring"] == "off"
        seen = {b["key"]: b for h in hosts.values() for p in h["pools"] for b in p["bots"]}
        assert seen.keys() == {b.key for b in plan.bots}
        for bot in plan.bots:
            assert bot.host == "h1" and seen[bot.key]["host"] == h1.name
            assert seen[bot.key]["state"] == "RUNNING", seen[bot.key]
        assert {r["pool"] for r in fleet["heat"]} == {p.name for p in plan.pools}
        assert all(v is None for r in fleet["heat"] for v in r["cells"])  # no history: no data

        # the same in a real browser: h1's row green with every bot, h2's unreachable
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(dashboard.url + "/")
            assert page.locator(f'tr.host.up[data-host="{h1.name}"]').count() == 1
            down = page.locator(f'tr.host.unreachable[data-host="{h2.name}"]')
            assert "unreachable" in down.inner_text(), down.inner_text()
            assert bot_rows(page) == {b.key: [b.key, b.pool, h1.name] for b in plan.bots}
            screenshot(page, "two-hosts-one-down")
    assert dashboard.process.returncode == 0, dashboard.output()
