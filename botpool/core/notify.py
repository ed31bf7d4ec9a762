"""Notifications: a bot's `notify:` rendered into freqtrade's own `telegram`, `discord` and
`webhook` sections.

`notify:` may be set in `defaults.bot`, per user and per bot; the levels merge entry by
entry (a bot's `webhook:` overrides the user's, `messages` merge message by message, and an
empty entry turns off what a level above set). Each entry names a file of the secrets folder
(`credentials:`, read by botpool.core.secretstore) for its bot token and chat id, or its URL: the
layout never holds them, and neither does anything botpool prints.

A message is on (`true`: botpool's default format), off (`false`), or, for Discord and
webhooks, a format of your own: text with `{field}` placeholders that freqtrade fills from
the message (FIELDS lists them per message; a typo is a layout error, never a message that
silently fails). `{bot_name}`, `{strategy}` and `{timeframe}` name the bot in every message.
Telegram formats its messages itself: there a message is on, off or `silent`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from typing import Any

SERVICES = ("telegram", "discord", "webhook")
SECRETS_FOLDER = "notify"  # notify/<credentials>.json in the secrets folder
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_FORMAT = 1024  # characters in one format string
MAX_VALUES = 50  # strings, numbers and containers in one webhook payload
MAX_DEPTH = 4  # nesting of one webhook payload
MAX_DISCORD_FIELDS = 25  # Discord shows at most 25 fields in an embed

# What freqtrade 2026.9 fills into each message (freqtrade/rpc/rpc_types.py; a test compares
# this table with freqtrade's own).
_TRADE = frozenset(
    {
        "type",
        "trade_id",
        "buy_tag",
        "enter_tag",
        "exchange",
        "pair",
        "base_currency",
        "quote_currency",
        "leverage",
        "direction",
        "limit",
        "order_rate",
        "open_rate",
        "order_type",
        "stake_amount",
        "stake_currency",
        "fiat_currency",
        "amount",
        "open_date",
        "current_rate",
        "sub_trade",
    }
)
_OUTCOME = frozenset({"gain", "profit_amount", "profit_ratio", "exit_reason", "close_date"})
_EXIT = _TRADE | _OUTCOME | {"cumulative_profit", "close_rate", "final_profit_ratio"}
_EXIT |= {"is_final_exit"}
_PROTECTION = frozenset(
    {
        "type",
        "id",
        "pair",
        "base_currency",
        "lock_time",
        "lock_timestamp",
        "lock_end_time",
        "lock_end_timestamp",
        "reason",
        "side",
        "active",
    }
)
_STATUS = frozenset({"type", "status"})
FIELDS: dict[str, frozenset[str]] = {
    "status": _STATUS,
    "warning": _STATUS,
    "startup": _STATUS,
    "exception": _STATUS,
    "entry": _TRADE,
    "entry_fill": _TRADE,
    "entry_cancel": _TRADE | {"reason"},
    "exit": _EXIT,
    "exit_fill": _EXIT,
    "exit_cancel": _TRADE | _OUTCOME | {"reason"},
    "protection_trigger": _PROTECTION,
    "protection_trigger_global": _PROTECTION,
    "liquidation_warning": frozenset(
        {
            "type",
            "exchange",
            "margin_mode",
            "trade_id",
            "pair",
            "base_currency",
            "quote_currency",
            "direction",
            "leverage",
            "current_rate",
            "liquidation_price",
            "remaining_ratio",
            "warn_ratio",
            "positions_at_risk",
            "open_positions",
        }
    ),
    "strategy_msg": frozenset({"type", "msg"}),
}
# named in every message: botpool fills them into webhook formats, freqtrade into Discord's
BOT_FIELDS = ("bot_name", "strategy", "timeframe")
# the messages each service can send (Telegram: the keys of its notification_settings)
MESSAGES: dict[str, tuple[str, ...]] = {
    "telegram": tuple(m for m in FIELDS if m not in ("exception", "strategy_msg")),
    "discord": tuple(FIELDS),
    "webhook": tuple(FIELDS),
}
# on unless a layout turns them off; the others (startup: a few messages at every restart;
# strategy_msg: whatever the strategy sends) only when turned on
DEFAULT_ON = frozenset(FIELDS) - {"startup", "strategy_msg"}
WEBHOOK_FORMATS = ("json", "form", "raw")

# default texts; every trade message also carries bot, event, pair and trade id as fields
TEXTS = {
    "status": "{bot_name}: {status}",
    "warning": "{bot_name}: warning: {status}",
    "startup": "{bot_name}: {status}",
    "exception": "{bot_name}: error: {status}",
    "entry": "{bot_name}: entering {pair} ({direction}), {amount} at {order_rate} "
    "({stake_amount} {stake_currency})",
    "entry_fill": "{bot_name}: entered {pair} ({direction}), {amount} at {open_rate}",
    "entry_cancel": "{bot_name}: entry order for {pair} cancelled: {reason}",
    "exit": "{bot_name}: exiting {pair} ({exit_reason}) at {order_rate}, profit {profit_ratio:.2%}",
    "exit_fill": "{bot_name}: exited {pair} ({exit_reason}) at {close_rate}, "
    "profit {profit_amount:.8g} {stake_currency} ({profit_ratio:.2%})",
    "exit_cancel": "{bot_name}: exit order for {pair} cancelled: {reason}",
    "protection_trigger": "{bot_name}: {pair} locked until {lock_end_time}: {reason}",
    "protection_trigger_global": "{bot_name}: all pairs locked until {lock_end_time}: {reason}",
    "liquidation_warning": "{bot_name}: {pair} is {remaining_ratio:.0%} from liquidation",
    "strategy_msg": "{bot_name}: {msg}",
}


# --- checking one level's `notify:` ----------------------------------------------------------

_ENTRY_KEYS: dict[str, tuple[str, ...]] = {
    "telegram": ("credentials", "messages"),
    "discord": ("credentials", "messages"),
    "webhook": ("credentials", "messages", "format", "retries", "retry_delay"),
}


class _Bad(Exception):
    """A problem in a `notify:` value: where (below notify) and what to change."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)


def check(value: Any) -> tuple[Any, str | None]:
    """One level's `notify:` as written: every key and format checked; None when empty."""
    try:
        return _check(value), None
    except _Bad as exc:
        return value, str(exc)


def _check(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Bad("", f"expected a mapping of {', '.join(SERVICES)}, got {_kind(value)}")
    out: dict[str, Any] = {}
    for service, entry in value.items():
        if service not in SERVICES:
            raise _Bad(str(service)[:64], f"unknown service: use {', '.join(SERVICES)}")
        out[service] = None if entry is None else _entry(service, entry)
    return out


def _entry(service: str, entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise _Bad(
            service,
            f"expected a mapping such as {{credentials: <name>}}, or empty to turn an inherited "
            f"{service} off; got {_kind(entry)}",
        )
    out: dict[str, Any] = {}
    for key, value in entry.items():
        where = f"{service}.{str(key)[:64]}"
        if key not in _ENTRY_KEYS[service]:
            raise _Bad(where, f"unknown key: use {', '.join(_ENTRY_KEYS[service])}")
        if key == "credentials":
            if not (isinstance(value, str) and NAME_RE.fullmatch(value)):
                raise _Bad(
                    where,
                    f"expected the name of {SECRETS_FOLDER}/<name>.json in the secrets folder: "
                    "letters, digits, '_', '.' and '-'",
                )
            out[key] = value
        elif key == "messages":
            out[key] = _messages(service, value)
        elif key == "format":
            if value not in WEBHOOK_FORMATS:
                raise _Bad(where, f"expected one of {', '.join(WEBHOOK_FORMATS)}")
            out[key] = value
        elif key == "retries":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
                raise _Bad(where, "expected a whole number from 0 to 5")
            out[key] = value
        else:  # retry_delay
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _Bad(where, "expected a number of seconds from 0 to 30")
            if not 0 <= value <= 30:
                raise _Bad(where, "expected a number of seconds from 0 to 30")
            out[key] = value
    return out


def _messages(service: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{service}.messages", f"expected a mapping of messages, got {_kind(value)}")
    out: dict[str, Any] = {}
    for message, setting in value.items():
        where = f"{service}.messages.{str(message)[:64]}"
        if message not in MESSAGES[service]:
            raise _Bad(where, f"unknown message: use {', '.join(MESSAGES[service])}")
        if isinstance(setting, bool):
            out[message] = setting
        elif service == "telegram":
            if setting != "silent":
                raise _Bad(where, "expected true, false or silent (Telegram formats messages)")
            out[message] = setting
        elif service == "discord":
            out[message] = _discord_fields(where, message, setting)
        else:
            out[message] = _payload(where, message, setting)
    return out


def _discord_fields(where: str, message: str, value: Any) -> dict[str, str]:
    """Discord: a mapping of field titles to formats, shown in the order written."""
    if not isinstance(value, dict) or not value or len(value) > MAX_DISCORD_FIELDS:
        raise _Bad(
            where,
            f"expected true, false, or a mapping of 1-{MAX_DISCORD_FIELDS} field titles to "
            "formats, e.g. {Pair: '{pair}', Profit: '{profit_ratio:.2%}'}",
        )
    for title, text in value.items():
        if not (isinstance(title, str) and 0 < len(title) <= 256 and title.isprintable()):
            raise _Bad(where, "each field title is a line of at most 256 characters")
        _format(f"{where}.{title}", message, text)
    return dict(value)


def _payload(where: str, message: str, value: Any) -> Any:
    """A webhook: a text, or a payload of mappings, lists and texts (formats), and numbers."""
    count = 0

    def walk(item: Any, at: str, depth: int) -> None:
        nonlocal count
        count += 1
        if count > MAX_VALUES or depth > MAX_DEPTH:
            raise _Bad(where, f"a payload holds at most {MAX_VALUES} values, {MAX_DEPTH} deep")
        if isinstance(item, str):
            _format(at, message, item)
        elif isinstance(item, dict):
            for key, inner in item.items():
                if not (isinstance(key, str) and 0 < len(key) <= 64 and key.isprintable()):
                    raise _Bad(at, "payload keys are texts of at most 64 characters")
                walk(inner, f"{at}.{key}", depth + 1)
        elif isinstance(item, list):
            for index, inner in enumerate(item):
                walk(inner, f"{at}[{index}]", depth + 1)
        elif not isinstance(item, bool | int | float) or item != item:
            raise _Bad(at, f"expected a text, number, list or mapping, got {_kind(item)}")

    if not isinstance(value, str | dict | list):
        raise _Bad(where, "expected true, false, a text, or a payload mapping")
    walk(value, where, 0)
    return value


def _format(where: str, message: str, text: Any) -> None:
    """A format freqtrade can fill: known fields only, no attribute or index lookups."""
    if not isinstance(text, str) or len(text) > MAX_FORMAT:
        raise _Bad(where, f"expected a text of at most {MAX_FORMAT} characters")
    if any(not (c.isprintable() or c in "\n\t") for c in text):
        raise _Bad(where, "holds control characters (only newlines and tabs may be in a format)")
    known = FIELDS[message] | set(BOT_FIELDS)
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        brace = "write {{ and }} for a literal brace"
        raise _Bad(where, f"not a format: {exc} ({brace})") from None
    for _, field, spec, _conversion in parts:
        if field is None:
            continue
        if field not in known:
            hint = ", ".join(sorted(known))
            raise _Bad(where, f"{{{field}}} is not a field of {message} messages: use {hint}")
        if spec and "{" in spec:
            raise _Bad(where, f"{{{field}:{spec}}}: a format spec cannot hold a field")


_KINDS = {bool: "a boolean", int: "a number", float: "a number", str: "a text", list: "a list"}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), "a mapping" if isinstance(value, dict) else "an empty value")


# --- merging the levels ----------------------------------------------------------------------


def merge(*levels: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """defaults.bot, user and bot `notify:` (each checked) -> the bot's entries.

    Entry keys override; `messages` merge message by message (a message's format is
    replaced whole); an empty entry removes the service a level above set."""
    out: dict[str, dict[str, Any]] = {}
    for level in levels:
        for service, entry in level.items():
            if entry is None:
                out.pop(service, None)
                continue
            merged = {**out.get(service, {}), **entry}
            merged["messages"] = {
                **out.get(service, {}).get("messages", {}),
                **entry.get("messages", {}),
            }
            out[service] = merged
    return out


def problems(entries: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """What the merged entries of one bot still lack: (service, message)."""
    found = []
    for service, entry in entries.items():
        if "credentials" not in entry:
            found.append(
                (
                    service,
                    f"notify.{service} names no credentials: set credentials: <name> "
                    f"({SECRETS_FOLDER}/<name>.json in the secrets folder) here or a level above",
                )
            )
        if service == "webhook":
            found += [(service, m) for m in _webhook_shape(entry)]
    return found


def _webhook_shape(entry: Mapping[str, Any]) -> list[str]:
    """Messages a webhook's format cannot send: raw sends one text, form flat text fields."""
    form = entry.get("format", "json")
    found = []
    for message, setting in entry.get("messages", {}).items():
        where = f"notify.webhook.messages.{message}"
        if form == "raw" and not isinstance(setting, bool | str):
            found.append(f"{where}: format raw sends one text: write the message as a text")
        flat = isinstance(setting, dict) and all(isinstance(v, str) for v in setting.values())
        if form == "form" and not (isinstance(setting, bool | str) or flat):
            found.append(
                f"{where}: format form sends text fields: write a text or a mapping of texts"
            )
    return found


# --- rendering -------------------------------------------------------------------------------

Secrets = Callable[[str, str], Mapping[str, str]]  # (service, credentials name) -> its keys


def freqtrade_sections(
    entries: Mapping[str, Mapping[str, Any]],
    bot: Mapping[str, str],
    secrets: Secrets,
) -> dict[str, Any]:
    """freqtrade's `telegram`, `discord` and `webhook` sections for one bot.

    bot: bot_name, strategy and timeframe (filled into webhook formats here; freqtrade fills
    them into Discord's). secrets reads a credentials file of the secrets folder."""
    sections: dict[str, Any] = {}
    for service, entry in entries.items():
        keys = dict(secrets(service, entry["credentials"]))
        messages = {m: entry["messages"].get(m, m in DEFAULT_ON) for m in MESSAGES[service]}
        sections[service] = _RENDER[service](keys, messages, entry, bot)
    return sections


def _telegram(
    keys: dict[str, str], messages: dict[str, Any], entry: Mapping[str, Any], bot: Mapping[str, str]
) -> dict[str, Any]:
    settings = {m: "on" if s is True else "off" if s is False else s for m, s in messages.items()}
    return {"enabled": True, **keys, "notification_settings": settings}


def _discord(
    keys: dict[str, str], messages: dict[str, Any], entry: Mapping[str, Any], bot: Mapping[str, str]
) -> dict[str, Any]:
    section: dict[str, Any] = {"enabled": True, **keys}
    for message, setting in messages.items():
        if setting is True:
            setting = {"Bot": "{bot_name}", "Message": TEXTS[message].removeprefix("{bot_name}: ")}
        if setting:  # freqtrade sends the messages that have fields
            section[message] = [{title: text} for title, text in setting.items()]
    return section


def _webhook(
    keys: dict[str, str], messages: dict[str, Any], entry: Mapping[str, Any], bot: Mapping[str, str]
) -> dict[str, Any]:
    form = entry.get("format", "json")
    section: dict[str, Any] = {
        "enabled": True,
        **keys,
        "format": form,
        "retries": entry.get("retries", 1),
        "retry_delay": entry.get("retry_delay", 1),
    }
    for message, setting in messages.items():
        if setting is False:
            continue  # freqtrade sends the messages that have a payload
        if setting is True:
            setting = TEXTS[message] if form == "raw" else default_payload(message)
        if isinstance(setting, str):
            setting = {"data": setting} if form == "raw" else {"text": setting}
        section[message] = _fill(setting, bot)
    return section


_RENDER = {"telegram": _telegram, "discord": _discord, "webhook": _webhook}


def default_payload(message: str) -> dict[str, str]:
    """botpool's webhook payload: the bot and event, the pair and trade of trade messages,
    and a line of text."""
    payload = {"bot": "{bot_name}", "event": "{type}"}
    if "trade_id" in FIELDS[message]:
        payload.update(pair="{pair}", trade_id="{trade_id}")
    return {**payload, "text": TEXTS[message]}


def _fill(value: Any, bot: Mapping[str, str]) -> Any:
    """The payload with `{bot_name}`, `{strategy}` and `{timeframe}` filled in (freqtrade's
    webhook messages lack them); every other field is left for freqtrade."""
    if isinstance(value, dict):
        return {k: _fill(v, bot) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, bot) for v in value]
    if not isinstance(value, str):
        return value
    out = []
    for literal, field, spec, conversion in string.Formatter().parse(value):
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if field is None:
            continue
        if field in bot and not spec and not conversion:
            out.append(bot[field].replace("{", "{{").replace("}", "}}"))
        else:  # as written, for freqtrade
            conversion = f"!{conversion}" if conversion else ""
            out.append(f"{{{field}{conversion}{f':{spec}' if spec else ''}}}")
    return "".join(out)


# --- the JSON Schema of `notify:`, for editors (JSON_SCHEMA refers to DEFINITIONS) ---------


def _message_json(service: str) -> dict[str, Any]:
    """What one message may be: true, false, or the service's own kind of format."""
    text: dict[str, Any] = {"type": "string", "maxLength": MAX_FORMAT}
    customs: dict[str, dict[str, Any]] = {
        "telegram": {"const": "silent"},
        "discord": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": MAX_DISCORD_FIELDS,
            "additionalProperties": text,
        },
        "webhook": {"type": ["string", "object", "array"]},
    }
    return {"anyOf": [{"type": "boolean"}, customs[service]]}


def _entry_json(service: str) -> dict[str, Any]:
    message = {"$ref": f"#/$defs/notify_{service}_message"}
    properties: dict[str, Any] = {
        "credentials": {"type": "string", "pattern": f"^(?:{NAME_RE.pattern})$"},
        "messages": {
            "type": "object",
            "additionalProperties": False,
            "properties": {m: message for m in MESSAGES[service]},
        },
    }
    if service == "webhook":
        properties |= {
            "format": {"enum": list(WEBHOOK_FORMATS)},
            "retries": {"type": "integer", "minimum": 0, "maximum": 5},
            "retry_delay": {"type": "number", "minimum": 0, "maximum": 30},
        }
    return {
        "anyOf": [
            {"type": "null"},
            {"type": "object", "additionalProperties": False, "properties": properties},
        ]
    }


DEFINITIONS: dict[str, Any] = {
    "notify": {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {service: _entry_json(service) for service in SERVICES},
    },
    **{f"notify_{service}_message": _message_json(service) for service in SERVICES},
}
JSON_SCHEMA: dict[str, Any] = {"$ref": "#/$defs/notify"}
