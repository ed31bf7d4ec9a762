"""Isolation inside and between pools, on the real engine (issue 11: a bot could take over its
pool, and reach every other user's bot).

One deployment, two users, one per runtime: ivy's pool forks its bots from a zygote, kai's
runs one freqtrade process per bot. Inside each running pool, as each bot's own uid (the way
`docker exec -u UID:GID` enters), the bot tries everything the issue names; the processes
are read from /proc; the networks are tried from inside the pools. Then drift and the
converge meet owners and modes changed by hand. (A host of an older botpool, uid 1000 owning
everything, migrated without losing a trade: tests/test_migration_e2e.py.)
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from botpool.core.names import BOT_UID_BASE
from botpool.core.plan import BotPlan

from .e2e import Deployment, docker, mode_of, new_deployment

pytestmark = pytest.mark.e2e(minutes=1.1)

USERS = """
ivy:
  runtime: zygote
  bots:
    - name: one
    - {name: two, pairs: [ETH/USDT]}
kai:
  runtime: process
  bots:
    - name: solo
      pairs: [SOL/USDT]
    - {name: duo, pairs: [ETH/USDT]}
"""
LEV = "lev:\n  runtime: process\n  bots:\n    - name: third\n"
POOLS = {"ivy": "ivy-pool-1", "kai": "kai-pool-1"}


@pytest.fixture(scope="module")
def dep(tmp_path_factory) -> Deployment:
    deployment = new_deployment(tmp_path_factory.mktemp("isolation"), "e2eiso", 19900)
    deployment.write(USERS)
    try:  # a converge that fails here must not leave its containers and networks behind
        deployment.converge()
        deployment.wait_answering()
        yield deployment
    finally:
        deployment.teardown()


def bots_of(dep: Deployment, user: str) -> list[BotPlan]:
    return [b for b in dep.plan().bots if b.user == user]


def in_pool(dep: Deployment, pool: str, script: str, *args: str, uid: int | None = None) -> object:
    """Run a Python script inside a pool (as root, or as a bot's uid and gid); its JSON."""
    user = ["-u", f"{uid}:{uid}"] if uid is not None else []
    return json.loads(docker("exec", *user, dep.container(pool), "python3", "-c", script, *args))


# --- what a bot may do with files ------------------------------------------------------------

ATTEMPTS = r"""
import json, os, sys
bot, others = sys.argv[1], sys.argv[2:]
home = f"/botpool/bots/{bot}"
result = {}

def attempt(what, action):
    try:
        action()
        result[what] = "allowed"
    except OSError as error:
        result[what] = type(error).__name__

def create(folder):
    path = os.path.join(folder, "planted.conf")
    with open(path, "x") as f:
        f.write("[program:evil]\ncommand=id\nuser=root\n")
    os.unlink(path)

# every file the bot can see outside its own data: it must change none of them
for folder, dirs, files in os.walk("/botpool"):
    dirs[:] = [d for d in dirs if os.path.join(folder, d) != f"{home}/user_data"]
    for name in files:
        path = os.path.join(folder, name)
        attempt(f"modify {path}", lambda: open(path, "r+").close())
    attempt(f"create in {folder}", lambda: create(folder))
for name in ("chmod", "rename", "unlink"):
    action = {"chmod": lambda: os.chmod(f"{home}/config.json", 0o666),
              "rename": lambda: os.rename(f"{home}/config.json", f"{home}/config.old"),
              "unlink": lambda: os.unlink(f"{home}/config.json")}[name]
    attempt(f"{name} {home}/config.json", action)
attempt(f"read {home}/config.json", lambda: json.load(open(f"{home}/config.json"))["api_server"])
for other in others:
    attempt(f"read /botpool/bots/{other}/config.json",
            lambda: open(f"/botpool/bots/{other}/config.json").read())
    attempt(f"list /botpool/bots/{other}", lambda: os.listdir(f"/botpool/bots/{other}"))
def write_data():
    with open(f"{home}/user_data/isolation-probe", "w") as f:
        f.write("mine")
    os.unlink(f"{home}/user_data/isolation-probe")
attempt(f"write {home}/user_data", write_data)
print(json.dumps(result))
"""


@pytest.mark.parametrize("user", ["ivy", "kai"])
def test_a_bot_changes_nothing_root_reads_and_reads_no_other_bots_secrets(dep, user):
    pool = POOLS[user]
    bots = bots_of(dep, user)
    root_reads = {  # what supervisord and the zygote read, as seen from the host
        f"/botpool/{p.relative_to(dep.root / 'pools' / pool)}"
        for folder in ("programs", "runtime", "strategies")
        for p in (dep.root / "pools" / pool / folder).glob("*")
    } | {"/botpool/supervisord.conf"}
    assert "/botpool/runtime/zygote.py" in root_reads  # both runtimes run their bots through it
    # a zygote pool's bot programs are launchers (root's file too, run as each bot's uid)
    assert ("/botpool/runtime/launcher.py" in root_reads) == (user == "ivy")
    for bot in bots:
        others = [b.name for b in bots if b != bot]
        result = in_pool(dep, pool, ATTEMPTS, bot.name, *others, uid=bot.uid)
        home = f"/botpool/bots/{bot.name}"
        allowed = {what for what, outcome in result.items() if outcome == "allowed"}
        assert allowed == {f"read {home}/config.json", f"write {home}/user_data"}, result
        modified = {w.removeprefix("modify ") for w in result if w.startswith("modify ")}
        assert root_reads | {f"{home}/config.json"} <= modified  # each was really tried
        assert {f"create in {f}" for f in ("/botpool", "/botpool/programs", home)} <= set(result)
        assert all(f"read /botpool/bots/{o}/config.json" in result for o in others)


# --- who runs as whom --------------------------------------------------------------------------

PS = r"""
import json, os
rows = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == os.getpid():  # this very look (run as root by docker exec)
        continue
    try:
        status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
        args = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    except OSError:
        continue
    ids = {key: sorted(set(status[key].split())) for key in ("Uid", "Gid")}
    rows.append({"pid": int(pid), "ppid": int(status["PPid"]), "args": args.strip(),
                 "uids": ids["Uid"], "gids": ids["Gid"], "groups": status["Groups"].split(),
                 "caps": int(status["CapEff"], 16)})
listening = {}
for line in open("/proc/net/tcp").readlines()[1:]:
    fields = line.split()
    if fields[3] == "0A":  # LISTEN: its owner is the uid of the process that opened it
        listening[int(fields[1].split(":")[1], 16)] = int(fields[7])
print(json.dumps({"processes": rows, "listening": listening}))
"""


@pytest.mark.parametrize("user", ["ivy", "kai"])
def test_each_bot_runs_as_its_own_uid_without_capabilities(dep, user):
    pool = POOLS[user]
    seen = in_pool(dep, pool, PS)
    processes = {p["pid"]: p for p in seen["processes"]}
    programs = dep.programs(pool)
    for bot in bots_of(dep, user):
        want = [str(bot.uid)]
        assert bot.uid == BOT_UID_BASE + bot.host_port
        state, pid = programs[bot.program]
        assert state == "RUNNING" and pid in processes
        program = processes[pid]  # the freqtrade process, or the bot's launcher
        assert (program["uids"], program["gids"], program["groups"]) == (want, want, [])
        assert program["caps"] == 0
        # the bot's API socket belongs to its uid: the process serving it is the bot's
        assert seen["listening"][str(bot.container_port)] == bot.uid
    bot_uids = {str(b.uid) for b in bots_of(dep, user)}
    for process in processes.values():
        if process["uids"] == ["0"]:  # root: supervisord and the zygote, nothing else
            args = process["args"]
            assert "bin/supervisord -n -c" in args or "zygote.py serve" in args, process
        else:
            assert len(process["uids"]) == 1 and process["uids"][0] in bot_uids, process
            assert process["caps"] == 0, process
    if user == "ivy":  # every bot forked by the zygote became its launcher's uid
        # (a forked bot keeps the zygote's command line: only the zygote itself is root)
        (zygote,) = [
            p for p in processes.values() if "zygote.py serve" in p["args"] and p["uids"] == ["0"]
        ]
        children = [p for p in processes.values() if p["ppid"] == zygote["pid"]]
        assert sorted(c["uids"][0] for c in children) == sorted(bot_uids)


# --- who reaches whom --------------------------------------------------------------------------

CALL = r"""
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as response:
        print(json.dumps({"status": response.status}))
except Exception as error:
    print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
"""


def call_from(dep: Deployment, pool: str, uid: int, url: str) -> dict[str, object]:
    result = in_pool(dep, pool, CALL, url, uid=uid)
    assert isinstance(result, dict)
    return result


def address(container: str, network: str) -> str:
    return docker(
        "inspect",
        "-f",
        f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}',
        container,
    ).strip()


def test_a_bot_reaches_its_exchange_but_no_other_users_bot(dep):
    exchange = dep.exchange_container()
    for user, other in (("ivy", "kai"), ("kai", "ivy")):
        bot = bots_of(dep, user)[0]
        reply = call_from(dep, POOLS[user], bot.uid, f"http://{exchange}:8000/api/v3/ping")
        assert reply == {"status": 200}
        for name in (POOLS[other], dep.container(POOLS[other])):  # hostname, container name
            by_name = call_from(dep, POOLS[user], bot.uid, f"http://{name}:8080/api/v1/ping")
            unknown = ("Name or service not known", "Temporary failure in name resolution")
            assert any(reason in str(by_name.get("error")) for reason in unknown), by_name
        # not by address either (the pools are on different bridges, isolated by Docker)
        target = address(dep.container(POOLS[other]), dep.network(other))
        assert target
        by_address = call_from(dep, POOLS[user], bot.uid, f"http://{target}:8080/api/v1/ping")
        assert "error" in by_address, by_address
    assert set(networks_of(dep.container(POOLS["ivy"]))) == {dep.network("ivy")}
    assert set(networks_of(dep.container(POOLS["kai"]))) == {dep.network("kai")}
    assert set(networks_of(exchange)) == {dep.network("ivy"), dep.network("kai")}


def networks_of(container: str) -> list[str]:
    text = docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", container)
    return sorted(json.loads(text))


def container_id(name: str) -> str:
    return docker("inspect", "-f", "{{.Id}}", name).strip()


def test_a_new_user_joins_the_exchange_live_and_leaves_no_network_behind(dep):
    exchange = dep.exchange_container()
    before = container_id(exchange)
    dep.write(USERS + LEV)
    dep.converge()
    dep.wait_answering()
    assert container_id(exchange) == before  # joined live, never recreated
    users = {dep.network("ivy"), dep.network("kai")}
    assert set(networks_of(exchange)) == users | {dep.network("lev")}
    (third,) = bots_of(dep, "lev")
    ping = f"http://{exchange}:8000/api/v3/ping"
    assert call_from(dep, "lev-pool-1", third.uid, ping) == {"status": 200}
    ivy = f"http://{dep.container('ivy-pool-1')}:8080/api/v1/ping"
    assert "error" in call_from(dep, "lev-pool-1", third.uid, ivy)
    dep.write(USERS)
    dep.converge()
    assert container_id(exchange) == before
    assert set(networks_of(exchange)) == users
    gone = subprocess.run(["docker", "network", "inspect", dep.network("lev")], capture_output=True)
    assert gone.returncode != 0, "the network of a user who left is still there"
    assert dep.converge().operations == []


# --- drift and repair --------------------------------------------------------------------------


def drift(dep: Deployment) -> tuple[int, list[str]]:
    """`botpool drift --json`: its exit code and each difference as `subject: kind: detail`."""
    code, output = dep.botpool("drift", "inventory/local.py", "--json")
    assert code in (0, 2), output
    (host,) = json.loads(output)
    return code, [f"{d['subject']}: {d['kind']}: {d['detail']}" for d in host["differences"]]


def test_drift_reports_an_owner_or_mode_changed_by_hand_and_converge_repairs_it(dep):
    pool = dep.root / "pools" / "kai-pool-1"
    solo, duo = bots_of(dep, "kai")
    program = pool / "programs" / f"{solo.program}.conf"
    program.chmod(0o666)  # anyone could now write what root loads
    config = pool / "bots" / duo.name / "config.json"
    os.chown(config, 0, 1000)  # the secrets readable by another group
    code, found = drift(dep)
    assert code == 2 and sorted(found) == [
        f"file pools/kai-pool-1/bots/{duo.name}/config.json: changed: "
        f"owner 0:1000 mode 0640, want owner 0:{duo.uid} mode 0640",
        f"file pools/kai-pool-1/programs/{solo.program}.conf: changed: "
        "owner 0:0 mode 0666, want owner 0:0 mode 0644",
    ], found
    before = dep.pids("kai-pool-1")
    dep.converge()
    assert mode_of(program) == (0, 0, 0o644) and mode_of(config) == (0, duo.uid, 0o640)
    assert dep.pids("kai-pool-1") == before  # an owner or a mode restarts no bot
    assert drift(dep) == (0, [])
