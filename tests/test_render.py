"""Rendering: freqtrade configs freqtrade itself accepts, supervisor programs, container specs."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path

import pytest

from botpool.cli import main
from botpool.core import render as render_module
from botpool.core import runtimes
from botpool.core.plan import load_plan
from botpool.core.render import render_host, render_pool
from botpool.payloads.launcher import __file__ as LAUNCHER_FILE
from botpool.payloads.zygote import __file__ as ZYGOTE_FILE

from .conftest import MINIMAL

IMAGE = "botpool/pool:test"
TWO_BOTS = MINIMAL + (
    "      - {name: two, stake_amount: 20, pairs: [ETH/USDT, BTC/USDT], freqtrade: {"
    "order_types: {entry: limit, exit: limit, stoploss: market, stoploss_on_exchange: false}, "
    "cancel_open_orders_on_exit: true, "
    "unfilledtimeout: {entry: 5}}}\n"
)


def rendered(path, secrets, image=IMAGE):
    plan = load_plan(path)
    (pool,) = plan.pools
    return plan, render_pool(plan, pool, image, secrets)


def files_of(pool) -> dict[str, str]:
    return {a.path: a.text for a in pool.files}


def test_freqtrade_config_carries_the_declared_settings(write_layout, secrets):
    _, pool = rendered(write_layout(TWO_BOTS), secrets)
    config = json.loads(files_of(pool)["bots/two/config.json"])
    assert config["bot_name"] == "alice-two"
    assert (config["dry_run"], config["dry_run_wallet"], config["stake_amount"]) == (True, 1000, 20)
    assert config["exchange"]["pair_whitelist"] == ["ETH/USDT", "BTC/USDT"]
    assert config["strategy"] == "SampleStrategy" and config["initial_state"] == "running"
    assert config["entry_pricing"]["price_side"] == "other"
    api = config["api_server"]
    assert api["enabled"] and api["listen_ip_address"] == "0.0.0.0"
    assert api["listen_port"] == 8081  # slot 1
    assert len(api["jwt_secret_key"]) >= 32 and len(api["password"]) >= 32
    assert config["db_url"] == "sqlite:///user_data/tradesv3.sqlite"


def test_freqtrade_settings_go_into_the_config_last_and_restart_only_their_bot(
    write_layout, secrets
):
    _, pool = rendered(write_layout(TWO_BOTS), secrets)
    files = files_of(pool)
    two = json.loads(files["bots/two/config.json"])
    assert two["order_types"]["stoploss"] == "market"
    assert two["cancel_open_orders_on_exit"] is True
    # a mapping merges into what botpool renders: the exit timeout stays
    assert two["unfilledtimeout"]["entry"] == 5 and two["unfilledtimeout"]["exit"] == 10
    assert "order_types" not in json.loads(files["bots/one/config.json"])
    _, before = rendered(write_layout(TWO_BOTS.replace("unfilledtimeout: {entry: 5}", "")), secrets)
    changed = {a.path for a in pool.files if a.text != files_of(before).get(a.path)}
    assert changed == {"bots/two/config.json", "programs/alice-two.conf"}


def test_rendered_config_passes_freqtrades_own_validation(
    write_layout, secrets, layout_dir, tmp_path, monkeypatch
):
    from freqtrade.configuration import Configuration
    from freqtrade.configuration.config_validation import validate_config_consistency
    from freqtrade.enums import RunMode
    from freqtrade.resolvers import StrategyResolver

    _, pool = rendered(write_layout(TWO_BOTS), secrets)
    bot_dir = tmp_path / "pool" / "bots" / "two"
    (bot_dir / "user_data").mkdir(parents=True)
    (bot_dir / "config.json").write_text(files_of(pool)["bots/two/config.json"])
    (tmp_path / "pool" / "strategies").symlink_to(layout_dir / "strategies")
    monkeypatch.chdir(bot_dir)  # the program runs in its bot directory
    args = {"config": ["config.json"], "user_data_dir": "user_data"}
    config = Configuration(args, RunMode.DRY_RUN).get_config()
    StrategyResolver.load_strategy(config)
    validate_config_consistency(config)
    assert config["api_server"]["enabled"] and config["dry_run"] is True


def test_a_config_freqtrade_rejects_is_caught_by_the_same_check(write_layout, secrets, tmp_path):
    from freqtrade.configuration.config_validation import validate_config_schema
    from freqtrade.enums import RunMode
    from freqtrade.exceptions import ConfigurationError

    _, pool = rendered(write_layout(MINIMAL), secrets)
    config = json.loads(files_of(pool)["bots/one/config.json"])
    config["runmode"] = RunMode.DRY_RUN
    config["timeframe"] = 5  # what a broken template would produce
    with pytest.raises(ConfigurationError):
        validate_config_schema(config)


def test_sandbox_bots_point_at_the_hosts_sandbox_and_real_ones_do_not(write_layout, secrets):
    text = TWO_BOTS.replace("- {name: two,", "- {name: two, exchange: kraken,") + (
        "exchanges:\n  kraken: {exchange: kraken}\n"
    )
    _, pool = rendered(write_layout(text), secrets)
    sandboxed = json.loads(files_of(pool)["bots/one/config.json"])["exchange"]
    real = json.loads(files_of(pool)["bots/two/config.json"])["exchange"]
    assert "http://botpool_exchange_sandbox:8000" in json.dumps(sandboxed["ccxt_config"])
    assert real["name"] == "kraken" and real["ccxt_config"] == {}
    assert "botpool_exchange" not in json.dumps(real)


def test_live_bot_gets_its_exchange_keys_from_the_secrets_directory(write_layout, secrets):
    (secrets.directory / "credentials").mkdir(parents=True, mode=0o700)
    secrets.directory.chmod(0o700)
    (secrets.directory / "credentials" / "alice-bn.json").write_text(
        '{"key": "K3Y", "secret": "S3CRET"}'
    )
    (secrets.directory / "credentials" / "alice-bn.json").chmod(0o600)
    text = (
        MINIMAL.replace(
            "- name: one", "- {name: one, exchange: binance, dry_run: false, credentials: alice-bn}"
        )
        + "exchanges:\n  binance: {}\n"
    )
    _, pool = rendered(write_layout(text), secrets)
    exchange = json.loads(files_of(pool)["bots/one/config.json"])["exchange"]
    assert (exchange["key"], exchange["secret"]) == ("K3Y", "S3CRET")
    config = {a.path: a for a in pool.files}["bots/one/config.json"]
    assert (config.uid, config.gid, config.mode) == (0, 209000, 0o640)  # root and its bot only


def test_secrets_are_stable_per_bot_and_differ_between_bots(write_layout, secrets):
    path = write_layout(TWO_BOTS)
    first = files_of(rendered(path, secrets)[1])
    again = files_of(rendered(path, secrets)[1])
    assert first == again
    one = json.loads(first["bots/one/config.json"])["api_server"]
    two = json.loads(first["bots/two/config.json"])["api_server"]
    assert one["password"] != two["password"] and one["jwt_secret_key"] != two["jwt_secret_key"]


def test_rotating_one_bot_changes_only_its_credentials(write_layout, secrets):
    path = write_layout(TWO_BOTS)
    before = files_of(rendered(path, secrets)[1])
    secrets.rotate("alice/one")
    after = files_of(rendered(path, secrets)[1])
    assert before["bots/one/config.json"] != after["bots/one/config.json"]
    assert before["bots/two/config.json"] == after["bots/two/config.json"]


def test_program_restarts_on_every_exit_and_logs_with_rotation(write_layout, secrets):
    _, pool = rendered(write_layout(MINIMAL), secrets)
    program = files_of(pool)["programs/alice-one.conf"]
    assert "[program:alice-one]" in program
    assert "autorestart=true" in program and "startretries=5" in program
    assert "stdout_logfile_maxbytes=10MB" in program and "stopwaitsecs=30" in program
    # the default runtime: the program is the bot's launcher, asking the pool's zygote; it
    # runs as the bot's own uid and gid (200000 + its port), and HOME is its data folder
    assert (
        "command=setpriv --reuid=209000 --regid=209000 --clear-groups -- python3 -I -S "
        "/botpool/runtime/launcher.py /run/zygote.sock -- trade "
        "--config config.json --userdir user_data\n" in program
    )
    assert 'HOME="/botpool/bots/one/user_data"' in program and "\nuser=" not in program


def test_a_zygote_pool_has_its_zygote_program_a_process_pool_runs_each_bot_itself(
    write_layout, secrets
):
    _, pool = rendered(write_layout(MINIMAL), secrets)
    files = files_of(pool)
    assert files["runtime/zygote.py"] == Path(ZYGOTE_FILE).read_text()
    assert files["runtime/launcher.py"] == Path(LAUNCHER_FILE).read_text()
    zygote = files["programs/zygote.conf"]
    # root, refusing launchers below the bots' uids; no passwd user, no HOME of ftuser
    assert (
        "command=python3 /botpool/runtime/zygote.py serve /run/zygote.sock --min-uid 200000\n"
        in zygote
    )
    assert "\nuser=" not in zygote and "ftuser" not in zygote and "priority=1\n" in zygote
    assert pool.programs == {"alice-one", "zygote"}
    text = MINIMAL.replace("defaults:", "defaults:\n  runtime: process")
    _, process = rendered(write_layout(text), secrets)
    files = files_of(process)
    # no zygote: each bot runs freqtrade in its own process, through the same file (run)
    assert files["runtime/zygote.py"] == Path(ZYGOTE_FILE).read_text()
    assert "programs/zygote.conf" not in files and "runtime/launcher.py" not in files
    assert (
        "command=setpriv --reuid=209000 --regid=209000 --clear-groups -- python3 "
        "/botpool/runtime/zygote.py run -- trade --config config.json --userdir user_data\n"
        in files["programs/alice-one.conf"]
    )
    assert process.programs == {"alice-one"}
    # each runtime has its own memory limit: a switch recreates the container
    assert process.container.memory_limit_mb > pool.container.memory_limit_mb


def test_supervisord_listens_on_a_unix_socket_only(write_layout, secrets):
    _, pool = rendered(write_layout(MINIMAL), secrets)
    conf = files_of(pool)["supervisord.conf"]
    assert "[unix_http_server]" in conf and "inet_http_server" not in conf
    # in /run (root's), never in /tmp, where a bot could plant a link under the name first
    assert "file=/run/supervisor.sock" in conf and "pidfile=/run/supervisord.pid" in conf
    assert "=/tmp" not in conf and "unix:///tmp" not in conf


def test_each_bot_has_its_own_uid_and_nothing_supervisord_reads_is_a_bots(write_layout, secrets):
    plan, pool = rendered(write_layout(TWO_BOTS), secrets)
    uids = {bot.name: bot.uid for bot in plan.bots}
    assert uids == {"one": 209000, "two": 209001}  # 200000 + the host port
    access = {a.path: (a.uid, a.gid, a.mode) for a in pool.files}
    for name, uid in uids.items():
        assert access.pop(f"bots/{name}/config.json") == (0, uid, 0o640)
    assert access and set(access.values()) == {(0, 0, 0o644)}  # programs, runtime, strategies
    folders = {d.path: (d.uid, d.gid, d.mode, d.tree) for d in pool.directories}
    root_folder, root_tree = (0, 0, 0o755, False), (0, 0, 0o755, True)
    assert folders == {
        **dict.fromkeys(("", "bots", "programs", "runtime", "strategies"), root_folder),
        "logs": root_tree,  # supervisord writes there: all of it is root's
        **{f"bots/{n}": (0, uid, 0o750, False) for n, uid in uids.items()},
        **{f"bots/{n}/user_data": (uid, uid, 0o700, True) for n, uid in uids.items()},
        **{f"bots/{n}/logs": root_tree for n in uids},
    }


def test_a_pool_has_its_users_network_and_an_exchange_joins_every_user_live(write_layout, secrets):
    path = write_layout(MINIMAL)
    plan = load_plan(path)
    (pool,), (exchange,) = render_host(plan, plan.hosts["local"], {"2026.9": IMAGE}, secrets)
    assert pool.container.networks == ("botpool_alice",)
    assert exchange.container.networks == ("botpool_alice",)
    # root with only what starting and signalling bots of other uids needs: no DAC_OVERRIDE
    assert pool.container.capabilities == ("SETUID", "SETGID", "KILL")
    args = pool.container.run_args()
    assert args[args.index("--network") + 1] == "botpool_alice"
    path.write_text(MINIMAL + "  bob:\n    bots:\n      - name: x\n")
    plan = load_plan(path)
    pools, (joined,) = render_host(plan, plan.hosts["local"], {"2026.9": IMAGE}, secrets)
    assert [p.container.networks for p in pools] == [("botpool_alice",), ("botpool_bob",)]
    assert joined.container.networks == ("botpool_alice", "botpool_bob")
    assert joined.container.hash == exchange.container.hash  # joining is live: no recreate
    moved = dataclasses.replace(pool.container, networks=("elsewhere",))
    assert moved.hash == pool.container.hash


def test_changing_one_bot_changes_only_that_bots_files(write_layout, secrets):
    path = write_layout(TWO_BOTS)
    before = files_of(rendered(path, secrets)[1])
    path.write_text(path.read_text().replace("stake_amount: 20", "stake_amount: 30"))
    after = files_of(rendered(path, secrets)[1])
    assert {p for p in before if before[p] != after[p]} == {
        "bots/two/config.json",
        "programs/alice-two.conf",
    }


def test_container_publishes_its_whole_port_block_on_loopback_only(write_layout, secrets):
    _, pool = rendered(write_layout(MINIMAL), secrets)
    spec = pool.container
    assert spec.ports[0] == ("127.0.0.1", 9000, 8080) and len(spec.ports) == 10
    assert all(ip == "127.0.0.1" for ip, _, _ in spec.ports)
    assert spec.restart == "unless-stopped" and spec.memory_limit_mb > 0
    labels = spec.all_labels()
    assert labels["botpool.managed"] == "true" and labels["botpool.pool"] == "alice-pool-1"
    assert labels["botpool.spec-hash"] == spec.hash
    args = spec.run_args()
    assert "127.0.0.1:9000:8080" in args and "/opt/botpool/pools/alice-pool-1:/botpool:rw" in args


def test_adding_a_bot_to_a_free_slot_keeps_the_container_spec(write_layout, secrets):
    path = write_layout(MINIMAL)
    before = rendered(path, secrets)[1].container.hash
    path.write_text(TWO_BOTS)
    assert rendered(path, secrets)[1].container.hash == before


def test_a_new_image_changes_the_container_spec(write_layout, secrets):
    path = write_layout(MINIMAL)
    assert (
        rendered(path, secrets)[1].container.hash
        != rendered(path, secrets, "other:1")[1].container.hash
    )


def test_render_writes_secret_files_0600_and_plan_shows_no_secret(
    write_layout, secrets, tmp_path, capsys
):
    path = write_layout(TWO_BOTS)
    out = tmp_path / "out"
    assert main(["render", str(path), "--out", str(out)]) == 0
    config = out / "local" / "pools" / "alice-pool-1" / "bots" / "one" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # no bot's group here: owner only
    program = out / "local" / "pools" / "alice-pool-1" / "programs" / "alice-one.conf"
    assert stat.S_IMODE(program.stat().st_mode) == 0o644
    password = json.loads(config.read_text())["api_server"]["password"]
    capsys.readouterr()
    assert main(["plan", str(path)]) == 0
    assert main(["plan", str(path), "--json"]) == 0
    assert main(["validate", str(path)]) == 0
    printed = capsys.readouterr()
    assert password not in printed.out + printed.err
    assert secrets.master_key().hex() not in printed.out + printed.err


def test_the_spec_hash_covers_the_memory_limit_and_supervisords_config(
    write_layout, secrets, monkeypatch
):
    """Both are baked into the running container: a change must recreate it."""
    _, pool = rendered(write_layout(TWO_BOTS), secrets)
    _, bigger = rendered(
        write_layout(TWO_BOTS.replace("defaults:\n", "defaults:\n  pool_memory_limit_mb: 4096\n")),
        secrets,
    )
    assert bigger.container.memory_limit_mb == 4096
    assert bigger.container.hash != pool.container.hash

    real = render_module.render_template

    def reworded(name, **values):
        text = real(name, **values)
        return text + "; a new line\n" if name == "supervisord.conf.j2" else text

    monkeypatch.setattr(render_module, "render_template", reworded)
    _, changed = rendered(write_layout(TWO_BOTS), secrets)
    assert changed.container.hash != pool.container.hash


def test_a_strategy_edit_restarts_exactly_the_bots_that_use_it(write_layout, layout_dir, secrets):
    (layout_dir / "strategies" / "other.py").write_text(
        "from sample import SampleStrategy\n\n\nclass Other(SampleStrategy):\n    pass\n"
    )
    path = write_layout(TWO_BOTS.replace("{name: two,", "{name: two, strategy: Other,"))
    _, before = rendered(path, secrets)
    (layout_dir / "strategies" / "other.py").write_text(
        "from sample import SampleStrategy\n\n\nclass Other(SampleStrategy):\n    stoploss = -0.2\n"
    )
    _, after = rendered(path, secrets)
    changed = {a.path for a in after.files if a.text != files_of(before).get(a.path)}
    assert changed == {"strategies/other.py", "programs/alice-two.conf"}


@pytest.mark.parametrize(
    "runtime, code, restarted",
    [
        ("zygote", ZYGOTE_FILE, {"programs/zygote.conf"}),
        ("zygote", LAUNCHER_FILE, {"programs/alice-one.conf"}),
        ("process", ZYGOTE_FILE, {"programs/alice-one.conf"}),
    ],
)
def test_new_runtime_code_restarts_what_runs_it(
    write_layout, secrets, monkeypatch, runtime, code, restarted
):
    """A new zygote.py restarts a zygote pool's zygote (its bots restart with it) and every
    bot program of a process pool, each of which runs the file itself; a new launcher.py
    restarts a zygote pool's bot programs (each is a launcher), not its zygote."""
    path = write_layout(MINIMAL.replace("defaults:", f"defaults:\n  runtime: {runtime}"))
    _, before = rendered(path, secrets)
    released = Path(code).read_text() + "# a new release\n"
    read = runtimes._code
    monkeypatch.setattr(runtimes, "_code", lambda path: released if path == code else read(path))
    _, after = rendered(path, secrets)
    changed = {a.path for a in after.files if a.text != files_of(before).get(a.path)}
    assert changed == {f"runtime/{Path(code).name}", *restarted}
