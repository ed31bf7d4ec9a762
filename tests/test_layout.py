"""Validation: every mistake is reported at once, as FILE:LINE: key.path: what to change."""

from __future__ import annotations

import pytest

from botpool.core.plan import load_plan
from botpool.core.source import LayoutError
from botpool.core.validate import load_layout, read_layout

from .conftest import MINIMAL


def problems_of(path, **kwargs) -> list[str]:
    try:
        load_plan(path, **kwargs)
    except LayoutError as exc:
        return [str(p) for p in exc.problems]
    return []


def one_problem(path, **kwargs) -> str:
    found = problems_of(path, **kwargs)
    assert len(found) == 1, found
    return found[0]


def test_minimal_layout_is_valid_and_fills_defaults(write_layout):
    layout = load_layout(write_layout(MINIMAL))
    (bot,) = layout.bots
    assert bot.program == "alice-one"
    assert bot.settings.timeframe == "5m"
    assert bot.settings.tradable_balance_ratio == 0.99
    assert bot.settings.max_open_trades == 3
    assert layout.max_bots_per_pool == 10 and layout.base_port == 9000
    assert list(layout.hosts) == ["local"]


def test_bot_overrides_defaults(write_layout):
    path = write_layout(
        MINIMAL.replace("- name: one", "- {name: one, stake_amount: 25, timeframe: 1h}")
    )
    (bot,) = load_layout(path).bots
    assert (bot.settings.stake_amount, bot.settings.timeframe) == (25, "1h")


def test_yaml_syntax_error_names_its_line(write_layout):
    path = write_layout("users:\n  alice:\n    bots: [\n  bob: {}\n")
    problem = one_problem(path)
    assert problem.startswith(f"{path}:5: YAML syntax error: expected ',' or ']'")
    assert problem.endswith("(while parsing a flow sequence that starts on line 3)")


def test_unknown_key_suggests_the_right_one(write_layout):
    path = write_layout(MINIMAL.replace("- name: one", "- name: one\n        stake_ammount: 5"))
    assert one_problem(path) == (
        f"{path}:12: users.alice.bots[0].stake_ammount: unknown key 'stake_ammount': "
        "did you mean stake_amount?"
    )


def test_wrong_type_is_reported_with_what_was_found(write_layout):
    path = write_layout(MINIMAL.replace("stake_amount: 10", "stake_amount: ten"))
    assert one_problem(path) == (
        f"{path}:5: defaults.bot.stake_amount: expected a number, got a string 'ten'"
    )


def test_missing_required_value_says_where_to_set_it(write_layout):
    path = write_layout(MINIMAL.replace("    stake_amount: 10\n", ""))
    problem = one_problem(path)
    assert problem.startswith(
        f"{path}:10: users.alice.bots[0]: stake_amount is missing: set it here or in"
    )


def test_pairs_may_be_left_out_only_for_a_dynamic_pair_list(write_layout):
    path = write_layout(MINIMAL.replace("    pairs: [BTC/USDT]\n", ""))
    assert "pairs is missing: list the pairs" in one_problem(path)
    dynamic = MINIMAL.replace(
        "    pairs: [BTC/USDT]\n",
        "    freqtrade: {pairlists: [{method: VolumePairList, number_assets: 3}]}\n",
    )
    (bot,) = load_layout(write_layout(dynamic)).bots
    assert bot.settings.pairs is None


def test_a_sandbox_bot_trades_only_listed_spot_pairs(write_layout):
    unlisted = write_layout(MINIMAL.replace("pairs: [BTC/USDT]", "pairs: [NOPE/USDT]"))
    assert "pair NOPE/USDT is not listed on the sandbox exchange" in one_problem(unlisted)
    futures = MINIMAL.replace(
        "    pairs: [BTC/USDT]\n", "    pairs: [BTC/USDT]\n    freqtrade: {trading_mode: futures}\n"
    )
    assert "serves spot markets only" in one_problem(write_layout(futures))


def test_unquoted_version_asks_for_quotes(write_layout):
    path = write_layout(
        "defaults:\n  freqtrade_version: 2026.10\n" + MINIMAL.replace("defaults:\n", "")
    )
    assert "write the version in quotes" in one_problem(path)


@pytest.mark.parametrize(
    "bad",
    [
        "Alice",
        "1bot",
        "a_b",
        "a b",
        "bot-",
        "x" * 33,
        "a;rm -rf",
        "../etc",
        "a]\\n[program:x]",
        "a$(id)",
        "ä",
    ],
)
def test_names_that_could_inject_are_refused(write_layout, bad):
    user_path = write_layout(MINIMAL.replace("alice:", f'"{bad}":'))
    assert "is not a valid name" in one_problem(user_path)
    bot_path = write_layout(MINIMAL.replace("name: one", f'name: "{bad}"'))
    assert "is not a valid name" in one_problem(bot_path)


def test_longest_valid_name_is_accepted(write_layout):
    name = "a" + "b1-" * 10 + "z"
    assert len(name) == 32
    assert problems_of(write_layout(MINIMAL.replace("name: one", f"name: {name}"))) == []


def test_duplicate_bot_names_within_a_user(write_layout):
    path = write_layout(MINIMAL + "      - name: one\n")
    assert one_problem(path) == (
        f"{path}:12: users.alice.bots[1].name: duplicate bot name 'one' (first on line 11): "
        "bot names must be unique within a user"
    )


def test_same_bot_name_under_two_users_is_fine(write_layout):
    path = write_layout(MINIMAL + "  bob:\n    bots:\n      - name: one\n")
    assert problems_of(path) == []


def test_duplicate_user_is_not_silently_dropped(write_layout):
    path = write_layout(MINIMAL + "  alice:\n    bots:\n      - name: two\n")
    problem = one_problem(path)
    assert problem.startswith(f"{path}:12: users.alice: duplicate key (first defined on line 9)")


@pytest.mark.parametrize(
    ("wallet", "expected"),
    [
        (None, "dry_run_wallet is missing: a dry-run bot needs a starting balance"),
        ("0", "dry_run_wallet is 0: a dry-run bot needs a starting balance above 0"),
        ("-50", "dry_run_wallet is -50: a dry-run bot needs a starting balance above 0"),
    ],
)
def test_initial_balance_missing_zero_or_negative(write_layout, wallet, expected):
    text = MINIMAL.replace(
        "    dry_run_wallet: 1000\n", "" if wallet is None else f"    dry_run_wallet: {wallet}\n"
    )
    assert expected in one_problem(write_layout(text))


def test_stake_above_available_balance_names_the_numbers(write_layout):
    path = write_layout(
        MINIMAL.replace("dry_run_wallet: 1000", "dry_run_wallet: 100").replace(
            "stake_amount: 10", "stake_amount: 500"
        )
    )
    assert one_problem(path) == (
        f"{path}:5: defaults.bot.stake_amount: stake_amount 500 USDT is more than freqtrade will "
        "ever make available (dry_run_wallet 100 x tradable_balance_ratio 0.99 = 99 USDT): this "
        "bot could never trade; lower stake_amount to at most 33 or raise dry_run_wallet to at "
        "least 1515.1515"
    )


def test_stake_that_cannot_fill_every_slot(write_layout):
    path = write_layout(MINIMAL.replace("- name: one", "- {name: one, stake_amount: 400}"))
    problem = one_problem(path)
    assert problem.startswith(f"{path}:11: users.alice.bots[0].stake_amount: stake_amount 400 USDT")
    assert "only 2 of 3 trade slots could ever fill" in problem
    assert "set max_open_trades: 2" in problem


@pytest.mark.parametrize(
    ("stake", "ok"),
    [(50, True), (50.0001, False), (40, True), (100, False)],
    ids=["exactly the tradable share", "a hair above", "below", "the whole wallet"],
)
def test_stakes_are_checked_against_wallet_times_tradable_ratio_at_the_boundary(
    write_layout, stake, ok
):
    """wallet 300 x ratio 0.5 = 150 tradable, 3 slots: 50 each is the most that fills them."""
    text = MINIMAL.replace("dry_run_wallet: 1000", "dry_run_wallet: 300").replace(
        "stake_amount: 10", f"stake_amount: {stake}\n    tradable_balance_ratio: 0.5"
    )
    found = problems_of(write_layout(text))
    assert (found == []) == ok, found


def test_unknown_strategy(write_layout):
    path = write_layout(MINIMAL.replace("- name: one", "- {name: one, strategy: TrendFolow}"))
    assert one_problem(path) == (
        f"{path}:11: users.alice.bots[0].strategy: no strategy class 'TrendFolow' in the "
        "strategies folder: did you mean TrendFollow?"
    )


def test_bad_timeframe(write_layout):
    path = write_layout(MINIMAL.replace("- name: one", "- {name: one, timeframe: 7m}"))
    assert "'7m' is not a timeframe freqtrade knows" in one_problem(path)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ("[]", "expected a non-empty list of pairs"),
        ("[btc/usdt]", "malformed pair 'btc/usdt'"),
        ("[BTCUSDT]", "malformed pair 'BTCUSDT'"),
        ("[BTC/USDT, BTC/USDT]", "pair BTC/USDT is listed twice"),
        ("[ETH/BTC]", "pair ETH/BTC is not quoted in the stake currency USDT"),
    ],
)
def test_bad_pair_lists(write_layout, pairs, expected):
    path = write_layout(MINIMAL.replace("- name: one", f"- {{name: one, pairs: {pairs}}}"))
    assert expected in one_problem(path)


def test_live_bot_needs_credentials_from_outside_the_layout(write_layout, secrets):
    live = (
        MINIMAL.replace("exchange: sandbox", "exchange: binance").replace(
            "- name: one", "- {name: one, dry_run: false}"
        )
        + "exchanges:\n  binance: {}\n"
    )
    path = write_layout(live)
    assert "a live bot (dry_run: false) needs exchange credentials" in one_problem(path)
    named = write_layout(live.replace("dry_run: false}", "dry_run: false, credentials: alice-bn}"))
    assert "no credentials named 'alice-bn'" in one_problem(named, secrets=secrets)
    (secrets.directory / "credentials").mkdir(parents=True, mode=0o700)
    (secrets.directory / "credentials" / "alice-bn.json").write_text("{}")
    assert problems_of(named, secrets=secrets) == []


def test_live_bot_on_the_sandbox_is_refused(write_layout):
    path = write_layout(MINIMAL.replace("- name: one", "- {name: one, dry_run: false}"))
    assert "the sandbox exchange cannot trade real money" in one_problem(path)


@pytest.mark.parametrize(
    ("snippet", "where"),
    [
        (
            "- {name: one, api_key: abcdef}",
            "users.alice.bots[0].api_key: api_key looks like a secret",
        ),
        ("- {name: one, secret: abcdef}", "users.alice.bots[0].secret: secret looks like a secret"),
        ("- {name: one, password: hunter2}", "password looks like a secret"),
    ],
)
def test_secrets_in_the_layout_are_refused(write_layout, snippet, where):
    problem = one_problem(write_layout(MINIMAL.replace("- name: one", snippet)))
    assert where in problem and "do not belong in the layout" in problem


def test_credentials_inside_ccxt_config_are_refused(write_layout):
    path = write_layout(MINIMAL + "exchanges:\n  kraken:\n    ccxt_config: {apiKey: abc}\n")
    assert one_problem(path) == (
        f"{path}:14: exchanges.kraken.ccxt_config.apiKey: credentials do not belong in the "
        "layout: use `credentials: <name>` and the secrets directory"
    )


def test_unknown_exchange_profile(write_layout):
    path = write_layout(MINIMAL.replace("exchange: sandbox", "exchange: binanse"))
    assert "unknown exchange profile 'binanse'" in one_problem(path)


def test_more_bots_than_the_port_range_holds(write_layout):
    bots = "".join(f"      - name: b{i}\n" for i in range(3))
    text = MINIMAL.replace("defaults:\n", "defaults:\n  max_bots_per_pool: 1\n  max_port: 9001\n")
    path = write_layout(text.replace("      - name: one\n", bots))
    problem = one_problem(path)
    assert problem.startswith(
        f"{path}:15: users.alice.bots: no room for bot b2: host local's "
        "port range 9000-9001 has no free block of 1 ports"
    )


def test_more_bots_than_the_host_memory_holds(write_layout):
    bots = "".join(f"      - name: b{i}\n" for i in range(12))
    text = MINIMAL.replace("users:", "hosts:\n  vps1: {memory_mb: 2048}\nusers:")
    path = write_layout(text.replace("      - name: one\n", bots))
    assert one_problem(path) == (
        f"{path}:9: hosts.vps1: host vps1 cannot hold its bots: 12 bots in 2 pools need about "
        "1800 MiB (2 zygote pools x 200 MiB + 12 bots x 100 MiB + exchanges + monitoring), more "
        "than its 1536 "
        "MiB usable (memory_mb 2048 - reserved_mb 512); declare the host's real memory_mb, add a "
        "host, or remove bots"
    )


def test_capacity_uses_each_runtimes_figures_and_a_hosts_own_bot_memory(write_layout):
    bots = "".join(f"      - name: b{i}\n" for i in range(12))
    text = MINIMAL.replace("users:", "hosts:\n  vps1: {memory_mb: 3072}\nusers:")
    text = text.replace("      - name: one\n", bots)
    assert problems_of(write_layout(text)) == []  # 12 zygote bots: 1720 MiB
    process = text.replace("  alice:\n", "  alice:\n    runtime: process\n")
    assert "(2 process pools x 40 MiB + 12 bots x 260 MiB + exchanges + monitoring)" in one_problem(
        write_layout(process)
    )
    heavy = text.replace("{memory_mb: 3072}", "{memory_mb: 3072, bot_memory_mb: 400}")
    assert "(2 zygote pools x 200 MiB + 12 bots x 400 MiB + exchanges + monitoring)" in one_problem(
        write_layout(heavy)
    )


def test_fifty_bots_fit_the_seed_vps_under_the_zygote_runtime_only(write_layout):
    """The old system's target: 50 bots on its 7.8 GB VPS."""
    bots = "".join(f"      - name: b{i}\n" for i in range(50))
    text = MINIMAL.replace("users:", "hosts:\n  seed: {memory_mb: 7800}\nusers:")
    text = text.replace("      - name: one\n", bots)
    assert problems_of(write_layout(text)) == []  # 5 x 200 + 50 x 100 + 40 + 160 = 6200 MiB
    process = text.replace("  alice:\n", "  alice:\n    runtime: process\n")
    assert "need about 13400 MiB" in one_problem(write_layout(process))


def test_an_unknown_runtime_names_the_choices(write_layout):
    path = write_layout(MINIMAL.replace("defaults:", "defaults:\n  runtime: fork"))
    assert one_problem(path).endswith(
        "defaults.runtime: unknown runtime 'fork': use zygote or process"
    )


def test_every_problem_is_reported_at_once_in_line_order(write_layout):
    text = MINIMAL.replace("stake_amount: 10", "stake_ammount: 10").replace(
        "- name: one", "- {name: One, timeframe: 2m}\n      - {name: two, pairs: []}"
    )
    found = [p.split(": ", 2)[:2] for p in problems_of(write_layout(text))]
    assert [(where.rsplit(":", 1)[1], key) for where, key in found] == [
        ("5", "defaults.bot.stake_ammount"),
        ("11", "users.alice.bots[0]"),  # stake_amount missing
        ("11", "users.alice.bots[0].name"),
        ("11", "users.alice.bots[0].timeframe"),
        ("12", "users.alice.bots[1]"),
        ("12", "users.alice.bots[1].pairs"),
    ]


def test_user_pinned_to_an_unknown_host(write_layout):
    path = write_layout(MINIMAL.replace("  alice:\n", "  alice:\n    host: nowhere\n"))
    assert "unknown host 'nowhere'" in one_problem(path)


def test_pool_placement_names_a_pool_of_the_user_and_a_known_host(write_layout):
    placement = "    pools: {bob-pool-1: local, alice-pool-0: local, alice-pool-2: nowhere}\n"
    path = write_layout(MINIMAL.replace("  alice:\n", "  alice:\n" + placement))
    found = problems_of(path)
    assert len(found) == 3, found
    for expected in (
        "users.alice.pools.bob-pool-1: 'bob-pool-1' is not a pool of alice",
        "users.alice.pools.alice-pool-0: 'alice-pool-0' is not a pool of alice",
        "users.alice.pools.alice-pool-2: unknown host 'nowhere'",
    ):
        assert any(expected in f for f in found), (expected, found)


def test_host_labels_are_plain_values(write_layout):
    hosts = "hosts:\n  vps1: {memory_mb: 4096, labels: {region: eu, ips: [1, 2]}}\nusers:"
    path = write_layout(MINIMAL.replace("users:", hosts))
    assert "hosts.vps1.labels: expected a mapping of names to plain values" in one_problem(path)
    good = write_layout(MINIMAL.replace("users:", hosts.replace(", ips: [1, 2]", "")))
    assert load_layout(good).hosts["vps1"].labels == {"region": "eu"}


def test_read_layout_keeps_the_valid_part(write_layout):
    path = write_layout(MINIMAL + "      - {name: bad, timeframe: 9m}\n")
    layout, problems = read_layout(path)
    assert [b.name for b in layout.bots] == ["one"] and len(problems) == 1


def test_example_layouts_are_valid():
    for name, bots in (("inventory/layout.yaml", 5), ("inventory/loadtest.yaml", 36)):
        assert len(load_plan(name).bots) == bots


FREQTRADE = """
defaults:
  bot:
    exchange: sandbox
    strategy: SampleStrategy
    stake_amount: 10
    dry_run_wallet: 1000
    pairs: [BTC/USDT]
    freqtrade:
      order_types: {entry: limit, exit: limit, stoploss: market}
      pairlists: [{method: StaticPairList}]
      unfilledtimeout: {entry: 10, exit: 10}
users:
  alice:
    freqtrade:
      unfilledtimeout: {entry: 5}
      protections: [{method: CooldownPeriod, stop_duration_candles: 2}]
    bots:
      - name: one
        freqtrade:
          pairlists: [{method: VolumePairList, number_assets: 5}]
      - name: two
"""


def test_freqtrade_settings_merge_defaults_then_user_then_bot(write_layout):
    one, two = load_layout(write_layout(FREQTRADE)).bots
    assert one.settings.freqtrade == {
        "order_types": {"entry": "limit", "exit": "limit", "stoploss": "market"},
        "pairlists": [{"method": "VolumePairList", "number_assets": 5}],  # lists replace
        "unfilledtimeout": {"entry": 5, "exit": 10},  # mappings merge
        "protections": [{"method": "CooldownPeriod", "stop_duration_candles": 2}],
    }
    assert two.settings.freqtrade["pairlists"] == [{"method": "StaticPairList"}]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("api_server: {listen_port: 1}", "botpool owns freqtrade's api_server: botpool runs"),
        ("db_url: 'sqlite:////tmp/x'", "botpool owns freqtrade's db_url"),
        ("stake_amount: 5", "botpool owns freqtrade's stake_amount: set the bot setting"),
        ("exchange: {name: kraken}", "set the exchange profile's `exchange`"),
        ("exchange: {key: abc}", "exchange keys live in the secrets folder"),
        ("exchange: {pair_whitelist: [ETH/USDT]}", "set the bot setting pairs instead"),
        ("telegram: {token: x}", "notification secrets live in the secrets"),
        ("telegram: {enabled: true}", "set notify.telegram instead"),
        ("webhook: {url: 'https://x'}", "notification secrets live in the secrets"),
        ("pairlists: [{method: X, api_token: x}]", "pairlists[0].api_token looks like a secret"),
    ],
)
def test_keys_botpool_owns_are_refused_with_where_to_set_them(write_layout, setting, expected):
    text = FREQTRADE.replace(
        "      - name: two", f"      - name: two\n        freqtrade: {{{setting}}}"
    )
    problem = one_problem(write_layout(text))
    assert ":22: users.alice.bots[1].freqtrade." in problem and expected in problem, problem


def test_owned_keys_are_refused_at_every_level(write_layout):
    text = FREQTRADE.replace("      unfilledtimeout: {entry: 5}", "      bot_name: mine")
    text = text.replace("      pairlists: [{method: StaticPairList}]", "      dry_run: false")
    found = problems_of(write_layout(text))
    assert [p.split(": ", 2)[1] for p in found] == [
        "defaults.bot.freqtrade.dry_run",
        "users.alice.freqtrade.bot_name",
    ], found


def test_backups_default_to_hourly_for_a_day_and_daily_for_two_weeks(write_layout):
    backups = load_layout(write_layout(MINIMAL)).backups
    assert (backups.enabled, backups.interval_minutes, backups.hourly, backups.daily) == (
        True,
        60,
        24,
        14,
    )
    path = write_layout(MINIMAL + "backups: {hourly: 6, daily: 0, enabled: false}\n")
    backups = load_layout(path).backups
    assert (backups.enabled, backups.hourly, backups.daily) == (False, 6, 0)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("backups: {hourly: 0}", "backups.hourly: must be between 1 and 10000, got 0"),
        ("backups: {daily: -1}", "backups.daily: must be between 0 and 10000, got -1"),
        ("backups: {interval_minutes: 1}", "backups.interval_minutes: must be between 5 and"),
        ("backups: {enabled: 'yes'}", "backups.enabled: expected true or false, got 'yes'"),
        ("backups: {dayly: 3}", "backups.dayly: unknown key 'dayly': did you mean daily?"),
        ("backups: [hourly]", "backups: expected a mapping, got a list"),
    ],
)
def test_a_bad_backups_section_is_reported_with_its_line(write_layout, section, expected):
    path = write_layout(MINIMAL + section + "\n")
    problem = one_problem(path)
    line = len(path.read_text().splitlines())  # the section is the last line
    assert problem.startswith(f"{path}:{line}: "), problem
    assert expected in problem
