"""Every key a layout may hold: its type, built-in default and meaning, in one place.

The README's layout reference documents exactly these keys (a test keeps the two in step).
A checker turns a raw YAML value into a clean one or returns a message that says what is
wrong and what to write instead.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botpool.core import notify
from botpool.core.runtimes import DEFAULT as DEFAULT_RUNTIME
from botpool.core.runtimes import RUNTIMES

# Every pattern is applied with fullmatch: `re.match("^x$")` also accepts "x\n", and a
# name ending in a newline would make supervisord refuse to start a whole pool.
NAME_RE = re.compile(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?")  # never ending in "-"
PAIR_RE = re.compile(r"[A-Z0-9]{1,20}/[A-Z0-9]{1,20}")
HOST_RE = re.compile(r"@?[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
CREDENTIALS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
VERSION_RE = re.compile(r"[0-9]+(\.[0-9]+){1,3}((a|b|rc|\.post|\.dev)[0-9]+)?")
# a docker image reference: [registry[:port]/]path[:tag][@digest]; `{version}` may stand
# anywhere in the tag (it becomes the pool's freqtrade version)
IMAGE_RE = re.compile(
    r"([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?/)?"
    r"[a-z0-9]+([._-]{1,2}[a-z0-9]+)*(/[a-z0-9]+([._-]{1,2}[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?"
)
# a pip requirement: a project name, optional extras, optional version specifiers; no
# URLs, markers, spaces or options (a leading `-` would be a pip option)
REQUIREMENT_RE = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(\[[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*\])?"
    r"((~=|==|!=|<=|>=|<|>|===)[A-Za-z0-9.*+!_-]+(,(~=|==|!=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+)*)?"
)
HTTPS_URL_RE = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+-]*)?")
# a browser origin as browsers send it: scheme, lowercase host, a port unless the default
ORIGIN_RE = re.compile(
    r"https?://(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}"
    r"[a-z0-9])?)*|\[[0-9a-f:.]{2,45}\])(?::[0-9]{1,5})?"
)
MAX_ORIGINS = 20
TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")
SECRET_WORD = re.compile(r"(key|secret|password|passphrase|token|uid|private|mnemonic)", re.I)
MAX_TEXT = 1024  # characters in any free-form string
MEMORY_MB_MAX = 16 * 1024 * 1024  # 16 TiB: anything above is a typo
MONEY_MAX = 1e12  # stake and wallet amounts
# freqtrade's maintainers: about 3-4 bots with real data per IP on Binance (#12441, #6449)
REAL_EXCHANGE_BOTS_PER_HOST = 4
# root folders that are never a botpool root, nor (the first group) hold one
SYSTEM_TREES = (
    "/proc",
    "/sys",
    "/dev",
    "/etc",
    "/boot",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/run",
    "/usr",
)
SYSTEM_FOLDERS = (
    "/",
    "/var",
    "/var/lib",
    "/home",
    "/opt",
    "/srv",
    "/root",
    "/tmp",
    "/mnt",
    "/media",
    "/usr/local",
)


class Required:
    """Marks a key that has no built-in default."""

    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = Required()


@dataclass(frozen=True)
class Check:
    """A checker: (raw value) -> (clean value, problem or None), and the same rule as a JSON
    Schema fragment, so that editors check layouts as people type by the rules botpool uses."""

    fn: Callable[[Any], tuple[Any, str | None]]
    json: dict[str, Any]

    def __call__(self, value: Any) -> tuple[Any, str | None]:
        return self.fn(value)


Checker = Check


@dataclass(frozen=True)
class Key:
    """One layout key. `keys`: the fixed keys of a mapping value; `entries`: the keys of each
    named entry of a mapping value (hosts, users); `items`: the keys of each list item."""

    check: Check
    default: Any
    doc: str
    keys: dict[str, Key] | None = None
    entries: dict[str, Key] | None = None
    items: dict[str, Key] | None = None


def anchored(pattern: re.Pattern[str]) -> str:
    """A Python fullmatch pattern as a JSON Schema pattern (which is a search)."""
    return f"^(?:{pattern.pattern})$"


# --- checkers ------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a whole number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "empty",
    }.get(type(value), "a value")


def _name(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, str) and NAME_RE.fullmatch(value):
        return value, None
    return value, (
        f"{value!r} is not a valid name: use 1-32 lowercase letters, digits and '-', "
        "starting with a letter and not ending with '-' (it becomes a container, program "
        "and directory name)"
    )


name = Check(_name, {"type": "string", "pattern": anchored(NAME_RE)})


def _text(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, str) or not value.strip():
        return value, f"expected a non-empty string, got {_type_name(value)}"
    if len(value) > MAX_TEXT:
        return value, f"longer than {MAX_TEXT} characters"
    if not value.isprintable():
        return value, f"{value!r} holds control characters (a newline, an escape): remove them"
    return value, None


TEXT_JSON = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
text = Check(_text, TEXT_JSON)


def matching(pattern: re.Pattern[str], what: str) -> Check:
    """A string that fully matches pattern (so never one with a trailing newline)."""

    def check(value: Any) -> tuple[Any, str | None]:
        if isinstance(value, str) and len(value) <= MAX_TEXT and pattern.fullmatch(value):
            return value, None
        return value, f"expected {what}, got {value!r}"

    return Check(check, {"type": "string", "pattern": anchored(pattern)})


def optional(check: Check) -> Check:
    """None (an empty value in YAML), or what check accepts."""
    return Check(
        lambda value: (None, None) if value is None else check(value),
        {"anyOf": [check.json, {"type": "null"}]},
    )


def _root_folder(value: Any) -> tuple[Any, str | None]:
    """Where everything lives on a host: converges create and archive under it as root."""
    value, problem = _text(value)
    if problem:
        return value, problem
    if not value.startswith("/") or posixpath.normpath(value) != value or "//" in value:
        return value, f"{value!r} must be an absolute, normalised path such as /opt/botpool"
    if any(c in value for c in ":~\\") or " " in value:
        return value, f"{value!r} must not hold ':', '~', '\\' or spaces"
    system = value in SYSTEM_FOLDERS or any(
        value == tree or value.startswith(tree + "/") for tree in SYSTEM_TREES
    )
    if system and not value.startswith("/usr/local/"):
        return value, f"{value!r} is a system folder: use a folder of its own, e.g. /opt/botpool"
    return value, None


root_folder = Check(_root_folder, {"type": "string", "pattern": "^/[^:~\\\\ ]*$"})


def _image_base(value: Any) -> tuple[Any, str | None]:
    if value == "local":
        return value, None
    if isinstance(value, str) and IMAGE_RE.fullmatch(value.replace("{version}", "0")):
        return value, None
    return value, (
        f"{value!r} is not an image reference: use `local` or one such as "
        "freqtradeorg/freqtrade:{version}"
    )


image_base = Check(_image_base, {"type": "string", "minLength": 1})
optional_text = optional(text)


def _version(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, str) and VERSION_RE.fullmatch(value):
        return value, None
    if isinstance(value, (int, float)):
        return value, f'write the version in quotes, e.g. "{value}": unquoted, YAML reads a number'
    return value, f'expected a version string such as "2026.9", got {value!r}'


version = Check(_version, {"type": "string", "pattern": anchored(VERSION_RE)})


def _boolean(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return value, None
    return value, f"expected true or false, got {value!r}"


boolean = Check(_boolean, {"type": "boolean"})


def integer(low: int, high: int) -> Check:
    def check(value: Any) -> tuple[Any, str | None]:
        if isinstance(value, bool) or not isinstance(value, int):
            return value, f"expected a whole number, got {_type_name(value)} {value!r}"
        if not low <= value <= high:
            return value, f"must be between {low} and {high}, got {value}"
        return value, None

    return Check(check, {"type": "integer", "minimum": low, "maximum": high})


def number(low: float, high: float, low_inclusive: bool = False) -> Check:
    def check(value: Any) -> tuple[Any, str | None]:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value, f"expected a number, got {_type_name(value)} {value!r}"
        if not math.isfinite(value):
            return value, f"expected a finite number, got {value!r}"
        if value < low or (value == low and not low_inclusive):
            return (
                value,
                f"must be {'at least' if low_inclusive else 'more than'} {low}, got {value}",
            )
        if value > high:
            return value, f"must be at most {high:g}, got {value:g}"
        return float(value) if isinstance(value, float) else value, None

    lower = "minimum" if low_inclusive else "exclusiveMinimum"
    return Check(check, {"type": "number", lower: low, "maximum": high})


def optional_integer(low: int, high: int) -> Check:
    return optional(integer(low, high))


def _timeframe(value: Any) -> tuple[Any, str | None]:
    if value in TIMEFRAMES:
        return value, None
    return (
        value,
        f"{value!r} is not a timeframe freqtrade knows: use one of {', '.join(TIMEFRAMES)}",
    )


timeframe = Check(_timeframe, {"enum": list(TIMEFRAMES)})


def _pairs(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, list) or not value:
        return value, "expected a non-empty list of pairs such as [BTC/USDT, ETH/USDT]"
    if len(value) > 1000:
        return value, "more than 1000 pairs: use a dynamic pair list"
    bad = [p for p in value if not (isinstance(p, str) and PAIR_RE.fullmatch(p))]
    if bad:
        return value, f"malformed pair {bad[0]!r}: write BASE/QUOTE in capitals, e.g. BTC/USDT"
    dupes = sorted({p for p in value if value.count(p) > 1})
    if dupes:
        return value, f"pair {dupes[0]} is listed twice: list each pair once"
    return tuple(value), None


pairs = Check(
    _pairs,
    {
        "type": "array",
        "minItems": 1,
        "maxItems": 1000,
        "uniqueItems": True,
        "items": {"type": "string", "pattern": anchored(PAIR_RE)},
    },
)
currency = matching(re.compile(r"[A-Z0-9]{2,20}"), "a currency code in capitals such as USDT")
strategy = matching(
    re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}"), "a strategy class name such as SampleStrategy"
)


def _mapping(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, dict):
        return value, None
    return value, f"expected a mapping, got {_type_name(value)}"


mapping = Check(_mapping, {"type": "object"})


def _requirements(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, list) or len(value) > 100:
        return (
            value,
            "expected a list (at most 100) of pip requirements such as [scikit-learn==1.5.2]",
        )
    for item in value:
        if not (isinstance(item, str) and len(item) <= 200 and REQUIREMENT_RE.fullmatch(item)):
            return value, (
                f"{item!r} is not a pip requirement botpool accepts: a project name with "
                "optional extras and versions, e.g. scikit-learn==1.5.2 (no URLs, options, "
                "markers or spaces)"
            )
    return tuple(value), None


requirements = Check(
    _requirements,
    {
        "type": "array",
        "maxItems": 100,
        "items": {"type": "string", "maxLength": 200, "pattern": anchored(REQUIREMENT_RE)},
    },
)
LABEL_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,63}")


def _labels(value: Any) -> tuple[Any, str | None]:
    fine = (
        isinstance(value, dict)
        and len(value) <= 50
        and all(
            isinstance(k, str)
            and LABEL_NAME_RE.fullmatch(k)
            and isinstance(v, (str, int, float))
            and not isinstance(v, bool)
            and len(str(v)) <= 256
            and str(v).isprintable()
            for k, v in value.items()
        )
    )
    if fine:
        return value, None
    return value, (
        "expected a mapping of names to plain values, e.g. {region: eu-west} (at most 50; "
        "names of letters, digits, '_', '.' and '-'; no control characters)"
    )


labels = Check(
    _labels,
    {
        "type": "object",
        "maxProperties": 50,
        "propertyNames": {"pattern": anchored(LABEL_NAME_RE)},
        "additionalProperties": {"type": ["string", "number"], "maxLength": 256},
    },
)


def _origins(value: Any) -> tuple[Any, str | None]:
    """FreqUI's origins: what a browser sends as `Origin`, or CORS never matches."""
    if not isinstance(value, list) or len(value) > MAX_ORIGINS:
        return (
            value,
            f"expected a list of at most {MAX_ORIGINS} origins such as [http://127.0.0.1:8080]",
        )
    for origin in value:
        if not (isinstance(origin, str) and ORIGIN_RE.fullmatch(origin)):
            return value, (
                f"{origin!r} is not an origin: write scheme, host and port only, in lowercase, "
                "e.g. http://127.0.0.1:8080 (no path, no trailing slash)"
            )
        scheme, _, authority = origin.partition("://")
        bracketed = authority.endswith("]")  # an IPv6 address without a port
        port = authority.rsplit(":", 1)[1] if ":" in authority and not bracketed else None
        if port is not None and not 1 <= int(port) <= 65535:
            return value, f"{origin!r}: port {port} is not between 1 and 65535"
        if port is not None and int(port) == {"http": 80, "https": 443}[scheme]:
            return value, (
                f"{origin!r}: browsers leave the default port out of an origin: write "
                f"{origin.rsplit(':', 1)[0]}"
            )
    if len(set(value)) < len(value):
        return value, "an origin is listed twice: list each once"
    return tuple(value), None


origins = Check(
    _origins,
    {
        "type": "array",
        "maxItems": MAX_ORIGINS,
        "uniqueItems": True,
        "items": {"type": "string", "pattern": anchored(ORIGIN_RE)},
    },
)


def _runtime(value: Any) -> tuple[Any, str | None]:
    if value in RUNTIMES:
        return value, None
    return value, f"unknown runtime {value!r}: use {' or '.join(RUNTIMES)}"


runtime = Check(_runtime, {"enum": list(RUNTIMES)})
RUNTIME_DOC = "; ".join(f"`{r.name}`: {r.doc}" for r in RUNTIMES.values())


def _bots(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, list) and value:
        return value, None
    return value, "expected a non-empty list of bots, each with at least a name"


bots = Check(_bots, {"type": "array", "minItems": 1})


# Keys of a bot's freqtrade config that botpool owns, each with where to set it instead.
# `freqtrade:` may set any other freqtrade setting (dotted: a key inside a section).
_BOT_SETTING = "set the bot setting {key} instead"
OWNED_FREQTRADE_KEYS: dict[str, str] = {
    "api_server": "botpool runs every bot's API: its port and login come from botpool",
    "bot_name": "botpool names every bot <user>-<bot>",
    "db_url": "every bot keeps its trades in its own user_data folder",
    "user_data_dir": "every bot has its own user_data folder",
    "strategy_path": "strategies come from defaults.strategies_dir",
    "initial_state": "botpool starts every bot running",
    **{
        key: _BOT_SETTING.format(key=key)
        for key in (
            "dry_run",
            "dry_run_wallet",
            "strategy",
            "stake_currency",
            "stake_amount",
            "tradable_balance_ratio",
            "max_open_trades",
            "timeframe",
        )
    },
    "exchange.name": "set the exchange profile's `exchange` (exchanges: in the layout)",
    "exchange.pair_whitelist": _BOT_SETTING.format(key="pairs"),
    **{
        f"exchange.{key}": "exchange keys live in the secrets folder: `credentials: <name>`"
        for key in ("key", "secret", "password", "uid", "walletAddress", "privateKey")
    },
    **{
        f"exchange.{key}": "set the exchange profile's `ccxt_config` (credentials refused there)"
        for key in ("ccxt_config", "ccxt_async_config", "ccxt_sync_config")
    },
    **{
        f"{service}.enabled": f"set notify.{service} instead (README: Notifications)"
        for service in notify.SERVICES
    },
    **{
        key: "notification secrets live in the secrets folder, not in the layout: "
        "notify: {<service>: {credentials: <name>}}"
        for key in (
            "telegram.token",
            "telegram.chat_id",
            "telegram.topic_id",
            "discord.webhook_url",
            "webhook.url",
        )
    },
}
# a secret however deep, in a key freqtrade has no business reading from a layout
FREQTRADE_SECRET_WORD = re.compile(r"(token|password|passphrase|secret|apikey|privatekey)")

freqtrade_settings = Check(
    _mapping,
    {
        "type": "object",
        "propertyNames": {
            "not": {"enum": sorted({k for k in OWNED_FREQTRADE_KEYS if "." not in k})}
        },
    },
)


# --- the keys ------------------------------------------------------------------------------

BOT_SETTINGS: dict[str, Key] = {
    "exchange": Key(name, REQUIRED, "exchange profile: `sandbox` or a name under `exchanges:`"),
    "strategy": Key(strategy, REQUIRED, "strategy class, found in `strategies_dir`"),
    "pairs": Key(
        optional(pairs),
        None,
        "static pair whitelist, quoted in `stake_currency`; required unless "
        "`freqtrade.pairlists` starts with a dynamic method (VolumePairList, ...)",
    ),
    "stake_currency": Key(currency, "USDT", "currency the bot stakes and every pair is quoted in"),
    "stake_amount": Key(number(0, MONEY_MAX), REQUIRED, "stake per trade, in `stake_currency`"),
    "dry_run": Key(
        boolean, True, "simulate orders; `false` trades real money and needs `credentials`"
    ),
    "dry_run_wallet": Key(
        number(-MONEY_MAX, MONEY_MAX, low_inclusive=True),
        None,
        'starting balance of a dry-run bot (the "initial balance"); required '
        "when `dry_run` is true",
    ),
    "tradable_balance_ratio": Key(number(0, 1), 0.99, "share of the wallet freqtrade may stake"),
    "max_open_trades": Key(integer(1, 1000), 3, "trade slots; each needs `stake_amount` available"),
    "timeframe": Key(timeframe, "5m", "candle timeframe"),
    "freqtrade": Key(
        freqtrade_settings,
        {},
        "any other freqtrade setting, merged into the bot's config last (mappings merge, "
        "lists replace): `pairlists`, `protections`, `order_types`, ...; keys botpool owns "
        "are refused with where to set them instead",
    ),
    "credentials": Key(
        optional(matching(CREDENTIALS_RE, "a plain name such as alice-binance")),
        None,
        "name of the exchange credentials file in the secrets directory "
        "(`credentials/<name>.json`); required by live bots",
    ),
    "notify": Key(
        Check(notify.check, notify.JSON_SCHEMA),
        {},
        "notifications: `telegram`, `discord` and `webhook` entries, each naming its "
        "credentials file in the secrets folder (`notify/<name>.json`), with optional "
        "`messages`; merged over the user's and `defaults.bot`'s",
    ),
}

BOT: dict[str, Key] = {
    "name": Key(name, REQUIRED, "bot name, unique within its user"),
    **BOT_SETTINGS,
}

IMAGE: dict[str, Key] = {
    "base": Key(
        image_base,
        "local",
        "`local` builds a Debian + PyPI base on the host (no registry needed); otherwise an "
        "image such as `freqtradeorg/freqtrade:{version}` ({version}: the freqtrade version)",
    ),
    "ca_bundle": Key(
        optional_text,
        None,
        "path (on the controller) to an extra CA bundle that pip and uv trust during builds: a PEM "
        "file of certificates only",
    ),
    "pip_index_url": Key(
        optional(matching(HTTPS_URL_RE, "an https URL such as https://pypi.example.com/simple")),
        None,
        "package index used during image builds (https), by pip and uv",
    ),
    "pip_packages": Key(requirements, (), "extra Python packages the strategies need"),
    "frequi": Key(
        boolean,
        False,
        "base `local` only: run `freqtrade install-ui` at build time, so that every bot serves "
        "FreqUI (it downloads FreqUI from GitHub; the official image ships it already)",
    ),
}

DEFAULTS: dict[str, Key] = {
    "freqtrade_version": Key(version, "2026.9", "freqtrade release every pool runs"),
    "max_bots_per_pool": Key(integer(1, 50), 10, "bots per pool container (and ports it reserves)"),
    "base_port": Key(integer(1024, 65535), 9000, "first host port for bot APIs"),
    "max_port": Key(
        optional_integer(1024, 65535),
        None,
        "last host port for bot APIs; default `base_port` + 999 (room for 100 pools of 10)",
    ),
    "root": Key(
        root_folder, "/opt/botpool", "directory on each host holding pools and the archive"
    ),
    "project": Key(
        optional(name),
        None,
        "prefix of this deployment's container and network names; default `botpool` for "
        "root /opt/botpool, else the root's last folder and a hash of its path",
    ),
    "strategies_dir": Key(text, "strategies", "strategy files, relative to the layout file"),
    "runtime": Key(runtime, DEFAULT_RUNTIME.name, f"how a pool runs its bots ({RUNTIME_DOC})"),
    "pool_memory_limit_mb": Key(
        optional_integer(256, MEMORY_MB_MAX),
        None,
        "memory limit of each pool container; default 1.5 x "
        "(the runtime's pool memory + `max_bots_per_pool` x its bot memory)",
    ),
    "frequi_origins": Key(
        origins,
        (),
        "origins FreqUI is opened from (e.g. `http://127.0.0.1:9000`, a bot's tunnel): every "
        "bot allows them (CORS), so FreqUI's multi-bot view logs into all bots at once",
    ),
    "image": Key(mapping, {}, "how pool images are built (keys below)", keys=IMAGE),
    "bot": Key(mapping, {}, "settings every bot inherits (keys below)", keys=BOT_SETTINGS),
}

HOST: dict[str, Key] = {
    "memory_mb": Key(integer(256, MEMORY_MB_MAX), 8192, "memory of the host"),
    "reserved_mb": Key(integer(0, MEMORY_MB_MAX), 512, "memory kept free for the OS and Docker"),
    "bot_memory_mb": Key(
        optional_integer(16, MEMORY_MB_MAX),
        None,
        "memory one bot is planned with; default: the figure measured for its pool's "
        "runtime (see Capacity planning)",
    ),
    "labels": Key(
        labels,
        {},
        "free-form labels such as region or exchange IP, shown by `botpool plan`",
    ),
}

EXCHANGE: dict[str, Key] = {
    "exchange": Key(
        matching(re.compile(r"[a-z][a-z0-9_]{1,31}"), "a ccxt exchange id such as binance"),
        "binance",
        "ccxt exchange id",
    ),
    "sandbox": Key(boolean, False, "point bots at botpool's sandbox exchange (a test double)"),
    "seed": Key(integer(0, 2**32 - 1), 42, "sandbox: seed of the synthetic prices"),
    "step_seconds": Key(integer(1, 3600), 5, "sandbox: seconds between price steps"),
    "volatility": Key(number(0, 0.05), 0.001, "sandbox: about the relative std of one price step"),
    "ccxt_config": Key(mapping, {}, "extra ccxt settings (never credentials)"),
    "max_bots_per_host": Key(
        optional_integer(1, 10_000),
        None,
        "most bots of this profile on one host (its bots share the host's IP, which the "
        f"exchange rate-limits); default {REAL_EXCHANGE_BOTS_PER_HOST} for a real exchange, "
        "no limit for the sandbox",
    ),
}

USER: dict[str, Key] = {
    "host": Key(
        optional(matching(HOST_RE, "a host name")),
        None,
        "pin this user's pools to a host under `hosts:`",
    ),
    "pools": Key(
        Check(
            _mapping,
            {
                "type": "object",
                "propertyNames": {"pattern": f"^(?:{NAME_RE.pattern})-pool-[1-9][0-9]*$"},
                "additionalProperties": {"type": "string", "pattern": anchored(HOST_RE)},
            },
        ),
        {},
        "place single pools on hosts, `{<user>-pool-<n>: <host>}`; wins over `host`",
    ),
    "freqtrade_version": Key(version, None, "override `defaults.freqtrade_version` for this user"),
    "runtime": Key(runtime, None, "override `defaults.runtime` for this user's pools"),
    "freqtrade": Key(
        freqtrade_settings,
        {},
        "freqtrade settings for this user's bots: merged over `defaults.bot.freqtrade`, "
        "under each bot's own",
    ),
    "notify": Key(
        Check(notify.check, notify.JSON_SCHEMA),
        {},
        "notifications of this user's bots: merged over `defaults.bot.notify`, under each "
        "bot's own",
    ),
    "bots": Key(bots, REQUIRED, "the user's bots", items=BOT),
}

CHECKS: dict[str, Key] = {
    "stagnant_after_minutes": Key(
        integer(1, 525_600), 60, "a bot running this long with 0 trades is reported stagnant"
    ),
    "heartbeat_max_age_seconds": Key(
        integer(10, 86_400), 180, "a bot loop silent this long is reported not heartbeating"
    ),
    "max_exits_per_hour": Key(
        integer(0, 10_000), 3, "more program exits than this in the last hour is a crash loop"
    ),
    "pool_memory_share": Key(
        number(0, 1), 0.9, "a pool using more than this share of its memory limit is reported"
    ),
    "host_min_available_mb": Key(
        integer(0, MEMORY_MB_MAX), 256, "a host with less memory available than this is reported"
    ),
}

DURATION_RE = re.compile(r"[1-9][0-9]{0,5}(ms|s|m|h|d|w|y)")
DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
DURATION_MIN, DURATION_MAX = 1, 10 * DURATION_SECONDS["y"]  # Go's durations end at 292 years


def _duration(value: Any) -> tuple[Any, str | None]:
    """A Prometheus duration between a second and ten years: Prometheus and Alertmanager
    would refuse (or crash-loop on) one beyond 292 years, and below a second a scrape
    interval or an alert would keep the host busy."""
    what = "a Prometheus duration such as 30s, 5m, 2h or 15d"
    found = DURATION_RE.fullmatch(value) if isinstance(value, str) else None
    if not found:
        return value, f"expected {what}, got {value!r}"
    unit = found.group(1)
    seconds = int(value[: -len(unit)]) * DURATION_SECONDS[unit]
    if not DURATION_MIN <= seconds <= DURATION_MAX:
        return value, f"{value!r} is not between 1s and 10y"
    return value, None


duration = Check(_duration, {"type": "string", "pattern": anchored(DURATION_RE)})
SIZE_RE = re.compile(r"[1-9][0-9]{0,5}(KB|MB|GB|TB)")
MONITORING_PORTS = ("prometheus", "alertmanager", "node exporter", "botpool exporter")
RECEIVER_KINDS = ("webhook", "slack", "discord", "telegram", "email")
MAX_RECEIVERS = 100


def _receivers(value: Any) -> tuple[Any, str | None]:
    kinds = ", ".join(RECEIVER_KINDS)
    if not isinstance(value, dict):
        return value, f"expected a mapping of receiver name to kind ({kinds}), got " + (
            _type_name(value)
        )
    if len(value) > MAX_RECEIVERS:
        return value, f"at most {MAX_RECEIVERS} receivers"
    for name, kind in value.items():
        if not (isinstance(name, str) and CREDENTIALS_RE.fullmatch(name)):
            return value, f"{str(name)[:80]!r} is not a receiver name (letters, digits, _ . -)"
        if kind not in RECEIVER_KINDS:
            return value, f"receiver {name}: {str(kind)[:80]!r} is not a kind: one of {kinds}"
    return value, None


receivers = Check(
    _receivers,
    {
        "type": "object",
        "maxProperties": MAX_RECEIVERS,
        "propertyNames": {"pattern": anchored(CREDENTIALS_RE)},
        "additionalProperties": {"enum": list(RECEIVER_KINDS)},
    },
)


def _user_receivers(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, dict):
        return value, f"expected a mapping of user name to receiver name, got {_type_name(value)}"
    for user, receiver in value.items():
        if not (isinstance(user, str) and NAME_RE.fullmatch(user)):
            return value, f"{str(user)[:80]!r} is not a user name"
        if not (isinstance(receiver, str) and CREDENTIALS_RE.fullmatch(receiver)):
            return value, f"user {user}: {str(receiver)[:80]!r} is not a receiver name"
    return value, None


user_receivers = Check(
    _user_receivers,
    {
        "type": "object",
        "propertyNames": {"pattern": anchored(NAME_RE)},
        "additionalProperties": {"type": "string", "pattern": anchored(CREDENTIALS_RE)},
    },
)

MONITORING: dict[str, Key] = {
    "enabled": Key(
        boolean,
        True,
        "run Prometheus, Alertmanager, node exporter and botpool's exporter on "
        "every host (one container); `false` removes it and archives its data",
    ),
    "base_port": Key(
        integer(1024, 65532),
        19090,
        f"first of {len(MONITORING_PORTS)} ports on the host's 127.0.0.1, in this order: "
        f"{', '.join(MONITORING_PORTS)}; outside the bot port range",
    ),
    "scrape_interval": Key(duration, "15s", "how often metrics are collected and rules evaluated"),
    "retention": Key(duration, "15d", "how long Prometheus keeps samples"),
    "retention_size": Key(
        matching(SIZE_RE, "a size such as 512MB or 2GB"),
        "1GB",
        "disk budget of Prometheus' samples: the oldest go first beyond it",
    ),
    "memory_limit_mb": Key(
        integer(128, MEMORY_MB_MAX), 512, "memory limit of the monitoring container"
    ),
    "bot_down_for": Key(duration, "2m", "a planned bot not RUNNING this long alerts BotDown"),
    "api_down_for": Key(
        duration, "5m", "a running bot whose API does not answer this long alerts BotApiDown"
    ),
    "pool_memory_share": Key(
        number(0, 1), 0.9, "a pool using more than this share of its memory limit alerts"
    ),
    "pool_memory_mb": Key(
        optional_integer(1, MEMORY_MB_MAX),
        None,
        "a pool using more MiB than this alerts PoolMemoryAbove (the seed's 'pool memory > "
        "500MB'); none: only the share of its limit alerts (pool_memory_share)",
    ),
    "pool_memory_for": Key(duration, "5m", "for this long (PoolMemoryHigh, PoolMemoryAbove)"),
    "crash_loop_restarts": Key(
        integer(1, 10_000), 3, "more bot starts than this within an hour alert BotCrashLooping"
    ),
    "out_of_sync_for": Key(
        duration,
        "10m",
        "files of the host differing from the last converge this long alert HostOutOfSync",
    ),
    "target_down_for": Key(
        duration, "2m", "an exporter (or Alertmanager) not scraped this long alerts"
    ),
    "heartbeat_max_age_seconds": Key(
        integer(10, 86_400), 180, "a running bot whose loop last ran longer ago than this"
    ),
    "heartbeat_stale_for": Key(duration, "2m", "for this long alerts BotHeartbeatStale"),
    "stagnant_after_minutes": Key(
        integer(1, 525_600),
        60,
        "a bot running this long with no trade open and none opened or closed within as long "
        "alerts BotStagnant",
    ),
    "host_memory_min_available_mb": Key(
        integer(0, MEMORY_MB_MAX), 256, "a host with less memory available than this"
    ),
    "host_memory_for": Key(duration, "5m", "for this long alerts HostMemoryLow"),
    "host_disk_min_free_share": Key(
        number(0, 1), 0.1, "a host file system with less than this share free"
    ),
    "host_disk_for": Key(duration, "10m", "for this long alerts HostDiskLow"),
    "webhook": Key(
        optional(matching(CREDENTIALS_RE, "a plain name such as ops")),
        None,
        "name of a file `alerts/<name>.url` in the secrets folder holding the URL of a "
        "webhook every alert is posted to (Alertmanager's webhook format); none: alerts "
        "show in Alertmanager only",
    ),
    "receivers": Key(
        receivers,
        {},
        "alert receivers by name, each of a kind: webhook, slack, discord, telegram or email; "
        "what it needs (URL, token, address) is in `alerts/<name>.json` in the secrets folder",
    ),
    "operator": Key(
        optional(matching(CREDENTIALS_RE, "a receiver name such as ops")),
        None,
        "the receiver of fleet alerts (hosts, monitoring) and of the bot alerts of every "
        "user without one of their own",
    ),
    "user_receivers": Key(
        user_receivers,
        {},
        "user name -> receiver of that user's bot alerts (instead of the operator)",
    ),
    "watchdog": Key(
        optional(matching(CREDENTIALS_RE, "a plain name such as deadman")),
        None,
        "name of a file `alerts/<name>.url` in the secrets folder: a heartbeat URL "
        "(healthchecks-style; `{host}` in it becomes the host's name) the always-firing "
        "Watchdog alert is posted to every watchdog_interval, so a silent host is noticed",
    ),
    "watchdog_interval": Key(duration, "5m", "how often the Watchdog alert is posted"),
    "group_wait": Key(duration, "30s", "Alertmanager waits this long to group a new alert"),
    "group_interval": Key(
        duration, "5m", "Alertmanager sends changes of a group (and resolutions) this often"
    ),
    "repeat_interval": Key(duration, "4h", "a still-firing alert is sent again this often"),
}

BACKUPS: dict[str, Key] = {
    "enabled": Key(
        boolean,
        True,
        "back up every bot's trade database on its host, on a schedule (a job container)",
    ),
    "interval_minutes": Key(
        integer(5, 1440), 60, "minutes between two scheduled backups of every bot"
    ),
    "hourly": Key(
        integer(1, 10_000), 24, "keep the newest backup of each of this many most recent hours"
    ),
    "daily": Key(
        integer(0, 10_000), 14, "keep the newest backup of each of this many most recent days"
    ),
}

POOL_NAME_RE = re.compile(rf"(?:{NAME_RE.pattern})-pool-[1-9][0-9]{{0,3}}")

UPGRADES: dict[str, Key] = {
    "canary": Key(
        optional(matching(POOL_NAME_RE, "a pool name such as alice-pool-1")),
        None,
        "the pool each host upgrades first when its image changes (a pool of that host); "
        "none, or not on the host: the host's pool with the fewest bots",
    ),
    "health_timeout_seconds": Key(
        integer(10, 3600),
        180,
        "an upgraded pool fails its health gate unless every bot's supervisor program is "
        "RUNNING and its API answers within this time",
    ),
    "settle_seconds": Key(
        integer(0, 3600),
        60,
        "then no bot of it may restart or stop during this time, or it fails its gate",
    ),
}

TOP: dict[str, Key] = {
    "defaults": Key(mapping, {}, "settings shared by everything below", keys=DEFAULTS),
    "hosts": Key(
        mapping, {}, "hosts by pyinfra inventory name; default: one host `local`", entries=HOST
    ),
    "exchanges": Key(mapping, {}, "exchange profiles bots refer to by name", entries=EXCHANGE),
    "users": Key(mapping, REQUIRED, "users and their bots", entries=USER),
    "checks": Key(mapping, {}, "thresholds of `pytest checks/` (keys below)", keys=CHECKS),
    "monitoring": Key(
        mapping, {}, "metrics and alerts on every host (keys below)", keys=MONITORING
    ),
    "backups": Key(
        mapping, {}, "scheduled trade-database backups on each host (keys below)", keys=BACKUPS
    ),
    "upgrades": Key(
        mapping,
        {},
        "how a changed pool image is rolled out: canary, health gate (keys below)",
        keys=UPGRADES,
    ),
}
ENTRY_NAMES = {"hosts": HOST_RE, "exchanges": NAME_RE, "users": NAME_RE}


def json_schema() -> dict[str, Any]:
    """The layout as a JSON Schema (draft 2020-12), for editors: built from the keys above."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://botpool.dev/layout.schema.json",
        "title": "botpool layout",
        "description": "One YAML file, the desired state of a fleet of freqtrade bots.",
        **_object(TOP, required=("users",)),
        "$defs": notify.DEFINITIONS,
    }


def _object(keys: dict[str, Key], required: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A mapping with exactly these keys; required ones default to the REQUIRED keys."""
    if required is None:
        required = tuple(k for k, key in keys.items() if key.default is REQUIRED)
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {k: _property(k, key) for k, key in keys.items()},
        **({"required": list(required)} if required else {}),
    }


def _property(name: str, key: Key) -> dict[str, Any]:
    out = {**key.check.json, "description": key.doc}
    if key.default is not REQUIRED and key.default is not None:
        out["default"] = list(key.default) if isinstance(key.default, tuple) else key.default
    if key.keys is not None:  # bot defaults may leave out what each bot then sets
        out.update(_object(key.keys, required=() if key.keys is BOT_SETTINGS else None))
    if key.entries is not None:
        out["additionalProperties"] = _object(key.entries)
        if name in ENTRY_NAMES:
            out["propertyNames"] = {"pattern": anchored(ENTRY_NAMES[name])}
    if key.items is not None:  # a bot needs its name; the rest may come from defaults.bot
        out["items"] = _object(key.items, required=("name",))
    return out


BUILTIN_EXCHANGES: dict[str, dict[str, Any]] = {"sandbox": {"sandbox": True}}
