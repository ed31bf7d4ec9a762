"""Notifications: `notify:` merged from defaults, user and bot, secrets read from the secrets
folder only, rendered into freqtrade's own sections, and never shown anywhere."""

from __future__ import annotations

import json
import os
import typing

import pytest

from botpool.cli import main
from botpool.core import notify
from botpool.core.freqtrade_validation import refusal
from botpool.core.plan import load_plan
from botpool.core.render import Artifact, render_pool
from botpool.core.secretstore import SecretsError, SecretStore
from botpool.hosts.drift import differing_keys

from .conftest import MINIMAL

TOKEN = "123456789:AAHk3pQ9xZc7VbN2mLq8RtY4uW0eSdFgJhK"  # the form BotFather gives
OTHER_TOKEN = "987654321:BBHk3pQ9xZc7VbN2mLq8RtY4uW0eSdFgJhK"
HOOK = "http://sink.example:8000/hook?key=SECRETQUERY"
DISCORD = "https://discord.com/api/webhooks/1234/SECRETDISCORDTOKEN"

NOTIFIED = """
defaults:
  bot:
    exchange: sandbox
    strategy: SampleStrategy
    stake_amount: 10
    dry_run_wallet: 1000
    pairs: [BTC/USDT]
    notify:
      webhook:
        credentials: hook
        messages: {startup: true, status: false}
users:
  alice:
    notify:
      webhook: {messages: {exit_fill: {text: "{bot_name} sold {pair}"}}}
    bots:
      - name: one
        notify:
          telegram: {credentials: tg-one, messages: {entry_fill: silent, exit: false}}
      - name: two
        notify: {webhook: null, discord: {credentials: disco}}
      - name: three
"""


def store_file(secrets: SecretStore, name: str, content: str | dict, mode: int = 0o600) -> None:
    folder = secrets.directory / "notify"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    secrets.directory.chmod(0o700)
    path = folder / f"{name}.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    path.chmod(mode)


@pytest.fixture
def stored(secrets: SecretStore) -> SecretStore:
    """The secret files NOTIFIED names."""
    store_file(secrets, "hook", {"url": HOOK})
    store_file(secrets, "tg-one", {"token": TOKEN, "chat_id": "-1001234567890"})
    store_file(secrets, "disco", {"webhook_url": DISCORD})
    return secrets


def configs(path, secrets) -> dict[str, dict]:
    plan = load_plan(path, secrets)
    (pool,) = plan.pools
    rendered = render_pool(plan, pool, "botpool/pool:test", secrets)
    return {
        a.path.split("/")[1]: json.loads(a.text)
        for a in rendered.files
        if a.path.endswith("config.json")
    }


def test_each_level_merges_entry_by_entry_and_an_empty_entry_turns_one_off(write_layout, stored):
    plan = load_plan(write_layout(NOTIFIED), stored)
    one, two, three = (b.settings.notify for b in plan.bots)
    assert set(one) == {"webhook", "telegram"}
    assert one["webhook"]["messages"] == {
        "startup": True,
        "status": False,
        "exit_fill": {"text": "{bot_name} sold {pair}"},
    }
    assert set(two) == {"discord"}  # the webhook it inherits is turned off
    assert three == {"webhook": one["webhook"]}


def test_sections_carry_the_secrets_and_freqtrade_accepts_them(write_layout, stored):
    one, two, three = configs(write_layout(NOTIFIED), stored).values()
    assert one["telegram"]["enabled"] and one["telegram"]["token"] == TOKEN
    assert one["telegram"]["chat_id"] == "-1001234567890"
    assert one["telegram"]["notification_settings"]["entry_fill"] == "silent"
    assert one["telegram"]["notification_settings"]["exit"] == "off"
    assert one["telegram"]["notification_settings"]["exit_fill"] == "on"
    assert one["webhook"]["url"] == HOOK and one["webhook"]["format"] == "json"
    assert two["discord"]["webhook_url"] == DISCORD
    assert "webhook" not in two and not two["telegram"]["enabled"]
    assert not three["telegram"]["enabled"] and three["telegram"]["token"] == ""
    for config in (one, two, three):
        assert refusal(config) is None  # freqtrade's own validation


def test_webhook_messages_name_the_bot_and_pair_with_defaults_and_overrides(write_layout, stored):
    one = configs(write_layout(NOTIFIED), stored)["one"]["webhook"]
    assert one["entry"] == {
        "bot": "alice-one",
        "event": "{type}",
        "pair": "{pair}",
        "trade_id": "{trade_id}",
        "text": "alice-one: entering {pair} ({direction}), {amount} at {order_rate} "
        "({stake_amount} {stake_currency})",
    }
    assert one["exit_fill"] == {"text": "alice-one sold {pair}"}  # the user's format
    assert "startup" in one and "status" not in one  # turned on, turned off
    assert "strategy_msg" not in one  # off unless turned on
    message = {"type": "entry", "pair": "ETH/USDT", "direction": "Long", "amount": 0.5}
    message |= {"order_rate": 3000, "stake_amount": 10, "stake_currency": "USDT"}
    assert one["entry"]["text"].format(**message) == (
        "alice-one: entering ETH/USDT (Long), 0.5 at 3000 (10 USDT)"
    )


def test_discord_fields_render_in_freqtrades_list_form(write_layout, stored):
    text = NOTIFIED.replace(
        "discord: {credentials: disco}",
        "discord: {credentials: disco, messages: {exit_fill: {Pair: '{pair}', "
        "Profit: '{profit_ratio:.2%}'}, entry: false}}",
    )
    discord = configs(write_layout(text), stored)["two"]["discord"]
    assert discord["exit_fill"] == [{"Pair": "{pair}"}, {"Profit": "{profit_ratio:.2%}"}]
    assert "entry" not in discord
    assert discord["entry_fill"] == [
        {"Bot": "{bot_name}"},
        {"Message": notify.TEXTS["entry_fill"].removeprefix("{bot_name}: ")},
    ]


def test_formats_of_raw_and_form_webhooks(write_layout, stored):
    raw = NOTIFIED.replace("credentials: hook\n", "credentials: hook\n        format: raw\n")
    raw = raw.replace('{text: "{bot_name} sold {pair}"}', '"{bot_name} sold {pair}"')
    webhook = configs(write_layout(raw), stored)["three"]["webhook"]
    assert webhook["exit_fill"] == {"data": "alice-three sold {pair}"}
    assert webhook["entry"] == {"data": notify.TEXTS["entry"].replace("{bot_name}", "alice-three")}
    bad = raw.replace('"{bot_name} sold {pair}"', "{text: x}")
    assert main(["validate", str(write_layout(bad))]) == 1


def test_bot_fields_are_filled_and_braces_stay_escaped():
    bot = {"bot_name": "alice-one", "strategy": "S", "timeframe": "5m"}
    assert notify._fill("{{literal}} {bot_name} {pair:>10} {strategy}/{timeframe}", bot) == (
        "{{literal}} alice-one {pair:>10} S/5m"
    )


FORMATS = {
    "unknown field": ("{pari}", "{pari} is not a field of entry messages"),
    "attribute": ("{pair.__class__}", "is not a field of entry messages"),
    "index": ("{pair[0]}", "is not a field of entry messages"),
    "positional": ("{} {0}", "is not a field of entry messages"),
    "unbalanced": ("{pair", "not a format"),
    "nested spec": ("{amount:{pair}}", "a format spec cannot hold a field"),
    "exit field in entry": ("{profit_ratio}", "{profit_ratio} is not a field of entry"),
    "control character": ("a\x1bb", "control characters"),
    "huge": ("x" * 2000, "at most 1024 characters"),
}


@pytest.mark.parametrize("case", FORMATS, ids=list(FORMATS))
def test_a_format_freqtrade_could_not_fill_is_a_layout_error(case):
    value, expected = FORMATS[case]
    _, problem = notify.check({"webhook": {"messages": {"entry": {"text": value}}}})
    assert problem is not None and expected in problem, problem
    assert problem.startswith("webhook.messages.entry.text: ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"slack": {}}, "unknown service"),
        ({"webhook": "hook"}, "expected a mapping such as {credentials: <name>}"),
        ({"webhook": {"credentials": "../x"}}, "letters, digits"),
        ({"webhook": {"credentials": "x\n"}}, "letters, digits"),
        ({"webhook": {"url": "http://x"}}, "unknown key: use credentials"),
        ({"webhook": {"format": "xml"}}, "expected one of json, form, raw"),
        ({"webhook": {"retries": 99}}, "from 0 to 5"),
        ({"webhook": {"retry_delay": float("nan")}}, "from 0 to 30"),
        ({"telegram": {"messages": {"entry": "loud"}}}, "true, false or silent"),
        ({"telegram": {"messages": {"exception": True}}}, "unknown message"),
        ({"discord": {"messages": {"entry": ["x"]}}}, "field titles to formats"),
        ({"discord": {"messages": {"entry": {"Pair": 5}}}}, "expected a text of at most"),
        ({"discord": {"messages": {"entry": {f"f{i}": "x" for i in range(26)}}}}, "1-25"),
        ({"webhook": {"messages": {"entry": [[[[[["deep"]]]]]]}}}, "4 deep"),
        ({"webhook": {"messages": {"entry": list(range(60))}}}, "at most 50 values"),
        ({"webhook": {"messages": {"entry": {"k": None}}}}, "expected a text, number"),
        ([], "expected a mapping of telegram"),
    ],
)
def test_every_key_of_notify_is_checked(value, expected):
    _, problem = notify.check(value)
    assert problem is not None and expected in problem, problem


def test_an_entry_without_credentials_at_any_level_is_an_error(write_layout, stored, capsys):
    text = NOTIFIED.replace(
        "      - name: three\n", "      - {name: three, notify: {discord: {}}}\n"
    )
    assert main(["validate", str(write_layout(text))]) == 1
    err = capsys.readouterr().err
    assert ":22: users.alice.bots[2].notify: notify.discord names no credentials" in err


SECRET_FILES = {
    "missing": (None, "no {path}: create it (mode 0600)"),
    "not JSON": ("{", "is not valid JSON"),
    "a list": ("[]", 'must be a JSON object with {"url": "..."}'),
    "unknown key": ({"url": HOOK, "headers": {"x": "y"}}, "unknown keys ['headers']"),
    "ftp URL": ({"url": "ftp://x/y"}, "url must be an http(s) URL"),
    "URL with a space": ({"url": "http://x/a b"}, "url must be an http(s) URL"),
    "URL with a user": ({"url": "http://u:p@x/"}, "url must be an http(s) URL"),
    "URL with a newline": ({"url": HOOK + "\n"}, "url must be an http(s) URL"),
    "huge URL": ({"url": "http://x/" + "a" * 5000}, "url must be an http(s) URL"),
    "URL a number": ({"url": 5}, "url must be an http(s) URL"),
    "readable by others": ({"url": HOOK}, "is readable by others"),
}


@pytest.mark.parametrize("case", SECRET_FILES, ids=list(SECRET_FILES))
def test_a_broken_secret_file_is_an_error_at_its_line_never_shown(
    write_layout, secrets, capsys, case
):
    content, expected = SECRET_FILES[case]
    store_file(secrets, "other", {"url": HOOK})  # the folder exists
    if content is not None:
        store_file(secrets, "hook", content, 0o644 if case == "readable by others" else 0o600)
    text = MINIMAL.replace("    pairs:", "    notify: {webhook: {credentials: hook}}\n    pairs:")
    path = write_layout(text)
    for argv in (["validate", str(path)], ["plan", str(path)]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        expected_text = expected.replace("{path}", str(secrets.directory / "notify" / "hook.json"))
        assert ":7: defaults.bot.notify.webhook.credentials: " in err, err
        assert expected_text in err, err
        assert "SECRETQUERY" not in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/zero", "folder", "huge"])
def test_a_secret_file_that_is_not_a_small_regular_file_ends_at_once(secrets, kind):
    store_file(secrets, "other", {"url": HOOK})
    path = secrets.directory / "notify" / "hook.json"
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "folder":
        path.mkdir(mode=0o700)
    elif kind == "huge":
        path.write_text('{"url": "' + "a" * (1 << 20) + '"}')
        path.chmod(0o600)
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(SecretsError) as caught:
        secrets.notify_credentials("webhook", "hook")
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "x\n", "", "-x"])
def test_a_notify_credentials_name_is_a_plain_name(secrets, name):
    secrets.directory.mkdir(mode=0o700)
    with pytest.raises(SecretsError, match="is not a credentials name"):
        secrets.notify_credentials("webhook", name)


def test_a_secrets_folder_whose_notify_folder_others_can_open_is_refused(stored):
    (stored.directory / "notify").chmod(0o755)
    with pytest.raises(SecretsError, match="is open to other users"):
        stored.notify_credentials("webhook", "hook")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"token": "abc", "chat_id": "1"}, "token must be a Telegram bot token"),
        ({"token": TOKEN, "chat_id": 12345}, "chat_id must be a chat id as a string"),
        ({"token": TOKEN}, 'with {"chat_id": "...", "token": "..."}'),
        ({"token": TOKEN, "chat_id": "1", "topic_id": "x"}, "topic_id must be"),
    ],
)
def test_a_telegram_file_holds_a_token_and_a_chat_id(secrets, content, expected):
    store_file(secrets, "tg", content)
    with pytest.raises(SecretsError) as caught:
        secrets.notify_credentials("telegram", "tg")
    assert expected in str(caught.value) and TOKEN not in str(caught.value)


def test_two_bots_on_one_telegram_token_is_an_error_naming_both_lines(write_layout, stored, capsys):
    shared = NOTIFIED.replace(
        "      - name: three\n",
        "      - {name: three, notify: {telegram: {credentials: tg-one}}}\n",
    )
    assert main(["validate", str(write_layout(shared))]) == 1
    err = capsys.readouterr().err
    assert ":22: users.alice.bots[2].notify: alice/three and alice/one (line 17) would share" in err
    store_file(stored, "tg-three", {"token": TOKEN, "chat_id": "42"})  # same token, other file
    copied = shared.replace("credentials: tg-one}}}", "credentials: tg-three}}}")
    assert main(["validate", str(write_layout(copied))]) == 1
    err = capsys.readouterr().err
    assert "alice/three and alice/one (line 17) would share one Telegram bot token" in err
    assert TOKEN not in err
    store_file(stored, "tg-three", {"token": OTHER_TOKEN, "chat_id": "42"})
    assert main(["validate", str(write_layout(copied))]) == 0


def test_a_shared_telegram_file_is_caught_without_the_secrets_folder_too(write_layout):
    text = NOTIFIED.replace("telegram: {credentials: tg-one,", "telegram: {credentials: tg,")
    text = text.replace(
        "    notify:\n      webhook: {messages",
        "    notify:\n      telegram: {credentials: tg}\n      webhook: {messages",
    )
    found = []
    try:
        load_plan(write_layout(text))
    except Exception as exc:  # LayoutError
        found = [str(p) for p in exc.problems]  # type: ignore[attr-defined]
    assert len(found) == 2 and all("would share one Telegram bot token" in p for p in found)


def test_no_token_or_url_in_plan_validate_or_status_output(write_layout, stored, capsys):
    path = write_layout(NOTIFIED)
    for argv in (["validate", str(path)], ["plan", str(path)], ["plan", str(path), "--json"]):
        assert main(argv) == 0
    printed = capsys.readouterr()
    for secret in (TOKEN, HOOK, "SECRETQUERY", DISCORD, "-1001234567890"):
        assert secret not in printed.out + printed.err
    assert "telegram,webhook" in printed.out  # which services a bot uses is shown


def test_drift_names_the_nested_keys_that_differ_never_their_values(write_layout, stored):
    want = configs(write_layout(NOTIFIED), stored)["one"]
    have = json.loads(json.dumps(want))
    have["webhook"]["url"] = "http://elsewhere/SECRET2"
    have["telegram"]["token"] = OTHER_TOKEN
    have["webhook"]["entry"]["text"] = "changed by hand"
    keys = differing_keys(Artifact("bots/one/config.json", json.dumps(want)), json.dumps(have))
    assert keys == ["telegram.token", "webhook.entry.text", "webhook.url"]
    assert not any(s in " ".join(keys) for s in (TOKEN, OTHER_TOKEN, HOOK, "SECRET2"))


def test_changing_one_bots_notify_changes_only_that_bots_files(write_layout, stored):
    def files(text):
        plan = load_plan(write_layout(text), stored)
        return {a.path: a.text for a in render_pool(plan, plan.pools[0], "i", stored).files}

    before = files(NOTIFIED)
    after = files(NOTIFIED.replace("entry_fill: silent", "entry_fill: true"))
    assert {p for p in before if before[p] != after[p]} == {
        "bots/one/config.json",
        "programs/alice-one.conf",
    }
    store_file(stored, "disco", {"webhook_url": DISCORD + "x"})  # a secret file changed
    rotated = files(NOTIFIED)
    assert {p for p in before if before[p] != rotated[p]} == {
        "bots/two/config.json",
        "programs/alice-two.conf",
    }


@pytest.mark.parametrize(
    "setting",
    ["telegram: {enabled: true}", "webhook: {url: 'http://x'}", "discord: {webhook_url: x}"],
)
def test_notifications_are_set_with_notify_not_freqtrade(write_layout, setting, capsys):
    text = MINIMAL.replace("    pairs:", f"    freqtrade: {{{setting}}}\n    pairs:")
    assert main(["validate", str(write_layout(text))]) == 1
    assert "botpool owns freqtrade's" in capsys.readouterr().err


def test_the_fields_table_is_freqtrades_own():
    """FIELDS says which `{field}` a format may use: what freqtrade 2026.9 sends."""
    from freqtrade.rpc import rpc_types

    types = {
        "status": rpc_types.RPCStatusMsg,
        "entry": rpc_types.RPCEntryMsg,
        "entry_fill": rpc_types.RPCEntryMsg,
        "entry_cancel": rpc_types.RPCCancelMsg,
        "exit": rpc_types.RPCExitMsg,
        "exit_fill": rpc_types.RPCExitMsg,
        "exit_cancel": rpc_types.RPCExitCancelMsg,
        "protection_trigger": rpc_types.RPCProtectionMsg,
        "liquidation_warning": rpc_types.RPCLiquidationWarningMsg,
        "strategy_msg": rpc_types.RPCStrategyMsg,
    }
    for message, typed in types.items():
        assert notify.FIELDS[message] == set(typing.get_type_hints(typed)), message


def test_the_telegram_messages_are_freqtrades_notification_settings():
    from freqtrade.config_schema.config_schema import CONF_SCHEMA

    telegram = CONF_SCHEMA["properties"]["telegram"]["properties"]
    assert set(notify.MESSAGES["telegram"]) == set(telegram["notification_settings"]["properties"])
