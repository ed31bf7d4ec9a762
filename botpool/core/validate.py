"""Validation: a layout file -> Layout, with every problem of the file reported at once.

Each problem names file, line and key and says what to change. The keys, their types and
defaults come from botpool.core.schema; this module adds what needs several keys at once (a
stake the wallet cannot cover, a strategy the folder does not hold, credentials that do
not exist) and reads the files a layout names (strategies, the CA bundle) within bounds.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from botpool.core import names, notify, schema
from botpool.core.layout import (
    BackupSettings,
    Bot,
    BotSettings,
    CheckSettings,
    ExchangeProfile,
    Host,
    ImageSettings,
    Layout,
    MonitoringSettings,
    UpgradeSettings,
    User,
    deep_merge,
)
from botpool.core.schema import REQUIRED, SECRET_WORD, Key
from botpool.core.secretstore import SecretsError
from botpool.core.source import Document, LayoutError, Path_, Problem, decode, read, read_bytes
from botpool.payloads.sandbox import DEFAULT_PAIRS as SANDBOX_PAIRS

# ccxt settings that carry credentials or could (headers carry tokens): compared with key
# names lowercased and stripped of '_' and '-', at any depth, inside lists too
CCXT_SECRET_KEYS = {"apikey", "secret", "password", "uid", "privatekey", "walletaddress", "token"}
CCXT_SECRET_NAMES = {"headers", "auth", "authorization", "cookie", "cookies", "login"}
STRATEGY_MAX_BYTES = 1 << 20
STRATEGY_MAX_FILES = 500
CA_BUNDLE_MAX_BYTES = 4 << 20
PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----"
)


class SecretFiles(Protocol):
    """The files of the secrets folder a layout names (botpool.core.secretstore.SecretStore)."""

    def credentials_exist(self, name: str) -> bool: ...

    def notify_credentials(self, service: str, name: str) -> dict[str, str]: ...

    def alert_receiver(self, kind: str, name: str) -> dict[str, str]: ...

    def alert_webhook_url(self, name: str, key: str = "webhook") -> str: ...


def read_layout(
    path: str | Path, secrets: SecretFiles | None = None
) -> tuple[Layout | None, list[Problem]]:
    """Parse and validate a layout file; return what is valid of it and every problem found.

    secrets: the secrets folder (botpool.core.secretstore), to check that the exchange
    credentials and notification files the layout names exist and are well formed (their
    content is never shown); without it, only what the YAML itself says is checked.
    """
    path = Path(path)
    doc = read(path, "layout")
    validator = _Validator(doc, path.parent, secrets)
    layout = validator.layout()
    return layout, doc.problems + validator.problems


def load_layout(path: str | Path, secrets: SecretFiles | None = None) -> Layout:
    """Like read_layout, but raise LayoutError unless the layout is entirely valid."""
    layout, problems = read_layout(path, secrets)
    if problems or layout is None:
        raise LayoutError(problems)
    return layout


def filled(values: dict[str, Any], keys: dict[str, Key] = schema.DEFAULTS) -> dict[str, Any]:
    """Values with the schema's default for every key that is missing (or was invalid)."""
    return {k: values.get(k, key.default) for k, key in keys.items()}


def _fmt(value: float) -> str:
    return f"{value:,.8g}".replace(",", "")


class _Validator:
    def __init__(self, doc: Document, base_dir: Path, secrets: SecretFiles | None):
        self.doc = doc
        self.base_dir = base_dir
        self.secrets = secrets
        self.problems: list[Problem] = []
        self.bot_paths: dict[str, Path_] = {}  # USER/BOT -> where the bot is in the layout
        # (service, credentials name) -> who the file makes the bot (its Telegram token's
        # hash), or None when the file is missing or malformed (reported once per bot)
        self.notify_files: dict[tuple[str, str], tuple[str | None, str | None]] = {}

    def report(self, path: Path_, message: str) -> None:
        self.problems.append(self.doc.problem(path, message))

    def section(
        self, raw: Any, path: Path_, keys: dict[str, Key], fill: bool = True
    ) -> dict[str, Any]:
        """Check one mapping against its keys; return clean values (defaults filled if fill)."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.report(path, f"expected a mapping of keys, got {raw!r}")
            return {}
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in keys:
                self.unknown_key(path, str(key), keys)
                continue
            if (*path, key) in self.doc.refused:
                continue  # unreadable, reported when it was read
            clean, problem = keys[key].check(value)
            if problem:
                self.report((*path, key), problem)
            else:
                out[key] = clean
        if fill:
            for key, spec in keys.items():
                if key not in raw and spec.default is REQUIRED:
                    self.report(path, f"{key} is missing: {spec.doc}")
                elif key not in raw:
                    out[key] = spec.default
        return out

    def unknown_key(self, path: Path_, key: str, keys: dict[str, Key]) -> None:
        if SECRET_WORD.search(key):
            message = (
                f"{key} looks like a secret, and secrets do not belong in the layout (it is "
                "committed to git): remove it, put exchange keys in the secrets directory as "
                "credentials/<name>.json and refer to them with `credentials: <name>`"
            )
        else:
            close = difflib.get_close_matches(key, keys, n=1, cutoff=0.75)
            hint = f"did you mean {close[0]}?" if close else f"valid keys: {', '.join(keys)}"
            message = f"unknown key {key!r}: {hint}"
        self.report((*path, key), message)

    # --- the layout, top-down ----------------------------------------------------------

    def layout(self) -> Layout | None:
        data = self.doc.data
        if not isinstance(data, dict):
            self.report((), "a layout is a mapping with at least `users:`; see the README")
            return None
        top = self.section(data, (), schema.TOP)
        # a value that was invalid is reported; its schema default stands in for it, so that
        # the rest of the layout is still checked (and returned, as read_layout promises)
        defaults = filled(self.section(top.get("defaults"), ("defaults",), schema.DEFAULTS))
        image = self.section(defaults["image"], ("defaults", "image"), schema.IMAGE)
        checks = self.section(top.get("checks"), ("checks",), schema.CHECKS)
        monitoring = self.section(top.get("monitoring"), ("monitoring",), schema.MONITORING)
        backups = self.section(top.get("backups"), ("backups",), schema.BACKUPS)
        upgrades = self.section(top.get("upgrades"), ("upgrades",), schema.UPGRADES)
        base_port = defaults["base_port"]
        max_port = defaults["max_port"] or min(base_port + 999, 65535)
        if base_port > max_port or max_port > 65535:
            self.report(
                ("defaults", "max_port"), f"must be between base_port ({base_port}) and 65535"
            )
        self.check_monitoring_ports(monitoring, base_port, max_port)
        hosts = self.hosts(top.get("hosts") or {})
        exchanges = self.exchanges(top.get("exchanges") or {})
        strategies = self.strategies(defaults["strategies_dir"])
        bot_defaults = self.section(
            defaults["bot"], ("defaults", "bot"), schema.BOT_SETTINGS, fill=False
        )
        self.check_freqtrade(bot_defaults.get("freqtrade", {}), ("defaults", "bot", "freqtrade"))
        invalid = set(defaults["bot"] if isinstance(defaults["bot"], dict) else ())
        context = _BotContext(bot_defaults, invalid - bot_defaults.keys(), exchanges, strategies)
        users = tuple(
            user
            for user_name, raw in (top.get("users") or {}).items()
            if (user := self.user(str(user_name), raw, defaults, hosts, context))
        )
        self.check_telegram_tokens([bot for user in users for bot in user.bots])
        self.check_alert_delivery(monitoring, {user.name for user in users})
        image = filled(image, schema.IMAGE)
        if image["frequi"] and image["base"] != "local":
            self.report(
                ("defaults", "image", "frequi"),
                "the official freqtrade image ships FreqUI already; frequi installs it into "
                "images of base local only: remove it",
            )
        return Layout(
            file=self.doc.file,
            freqtrade_version=defaults["freqtrade_version"],
            max_bots_per_pool=defaults["max_bots_per_pool"],
            base_port=base_port,
            max_port=max_port,
            root=defaults["root"],
            project=names.project(defaults["root"], defaults["project"]),
            runtime=defaults["runtime"],
            pool_memory_limit_mb=defaults["pool_memory_limit_mb"],
            image=ImageSettings(**image, ca_bundle_pem=self.ca_bundle(image["ca_bundle"])),
            hosts=hosts,
            exchanges=exchanges,
            users=users,
            strategies=strategies,
            checks=CheckSettings(**checks),
            frequi_origins=defaults["frequi_origins"],
            monitoring=MonitoringSettings(**monitoring),
            backups=BackupSettings(**backups),
            upgrades=UpgradeSettings(**upgrades),
            lines=self.doc.lines,
        )

    def check_monitoring_ports(
        self, monitoring: dict[str, Any], base_port: int, max_port: int
    ) -> None:
        """The monitoring ports must stay clear of the bots' port range."""
        first = monitoring.get("base_port")
        if first is None or not monitoring.get("enabled", True):
            return
        last = first + len(schema.MONITORING_PORTS) - 1
        if first <= max_port and base_port <= last:
            self.report(
                ("monitoring", "base_port"),
                f"ports {first}-{last} overlap the bot ports {base_port}-{max_port}: "
                f"pick a base_port above {max_port} or at most "
                f"{base_port - len(schema.MONITORING_PORTS)}",
            )

    def check_alert_delivery(self, monitoring: dict[str, Any], users: set[str]) -> None:
        """Receivers named are declared, users routed exist, and every secrets file the
        monitoring section names is there and well formed (its content never shown)."""
        if not monitoring.get("enabled", True):
            return
        declared = monitoring.get("receivers") or {}
        named = [(("monitoring", "operator"), monitoring.get("operator"))] + [
            (("monitoring", "user_receivers", user), receiver)
            for user, receiver in (monitoring.get("user_receivers") or {}).items()
        ]
        for path, receiver in named:
            if receiver is not None and receiver not in declared:
                self.report(
                    path,
                    f"no receiver {receiver!r} in monitoring.receivers "
                    f"(declared: {', '.join(sorted(declared)) or 'none'})",
                )
        for user in monitoring.get("user_receivers") or {}:
            if user not in users:
                self.report(("monitoring", "user_receivers", user), f"no user {user!r}")
        if self.secrets is None:
            return
        for name, kind in declared.items():
            try:
                self.secrets.alert_receiver(kind, name)
            except SecretsError as error:
                self.report(("monitoring", "receivers", name), str(error))
        for key in ("webhook", "watchdog"):
            if monitoring.get(key):
                try:
                    self.secrets.alert_webhook_url(monitoring[key], key)
                except SecretsError as error:
                    self.report(("monitoring", key), str(error))

    def hosts(self, raw: dict[str, Any]) -> dict[str, Host]:
        if not raw:  # no hosts: section this machine, every value its default
            return {"local": Host("local", line=1, **filled({}, schema.HOST))}
        hosts = {}
        for host_name, spec in raw.items():
            path = ("hosts", str(host_name))
            if not (isinstance(host_name, str) and schema.HOST_RE.fullmatch(host_name)):
                self.report(path, f"{host_name!r} is not a host name: use the inventory's name")
                continue
            values = self.section(spec, path, schema.HOST)
            if len(values) == len(schema.HOST):
                if values["reserved_mb"] >= values["memory_mb"]:
                    self.report((*path, "reserved_mb"), "must be less than memory_mb")
                hosts[host_name] = Host(host_name, line=self.doc.line(path), **values)
        return hosts

    def exchanges(self, raw: dict[str, Any]) -> dict[str, ExchangeProfile]:
        profiles = {}
        for profile_name in {**schema.BUILTIN_EXCHANGES, **raw}:
            path = ("exchanges", str(profile_name))
            spec = raw.get(profile_name)
            builtin = schema.BUILTIN_EXCHANGES.get(profile_name, {})
            if builtin and isinstance(spec, dict | None):
                spec = {**builtin, **(spec or {})}
            _, problem = schema.name(profile_name)
            if problem:
                self.report(path, problem)
                continue
            values = self.section(spec, path, schema.EXCHANGE)
            self.refuse_ccxt_secrets(values.get("ccxt_config", {}), (*path, "ccxt_config"))
            if len(values) == len(schema.EXCHANGE):
                if values["max_bots_per_host"] is None and not values["sandbox"]:
                    values["max_bots_per_host"] = schema.REAL_EXCHANGE_BOTS_PER_HOST
                profiles[profile_name] = ExchangeProfile(name=profile_name, **values)
        return profiles

    def refuse_ccxt_secrets(self, config: Any, path: Path_) -> None:
        """Credentials anywhere in ccxt settings, however their key is spelled, are refused."""
        items = config.items() if isinstance(config, dict) else enumerate(config or ())
        if not isinstance(config, dict | list):
            return
        for key, value in items:
            plain = re.sub(r"[^a-z]", "", str(key).lower())
            if plain in CCXT_SECRET_KEYS | CCXT_SECRET_NAMES or (
                isinstance(key, str) and SECRET_WORD.search(plain)
            ):
                self.report(
                    (*path, key),
                    "credentials do not belong in the layout: use "
                    "`credentials: <name>` and the secrets directory",
                )
            else:
                self.refuse_ccxt_secrets(value, (*path, key))

    def check_freqtrade(self, settings: dict[str, Any], path: Path_, prefix: str = "") -> None:
        """Refuse what botpool owns in a `freqtrade:` mapping (saying where to set it) and
        any secret, however deep (secrets never belong in the layout)."""
        for key, value in settings.items():
            dotted = f"{prefix}{key}"
            owner = schema.OWNED_FREQTRADE_KEYS.get(dotted)
            plain = re.sub(r"[^a-z]", "", str(key).lower())
            if owner:
                self.report((*path, key), f"botpool owns freqtrade's {dotted}: {owner}")
            elif schema.FREQTRADE_SECRET_WORD.search(plain):
                self.report(
                    (*path, key),
                    f"{dotted} looks like a secret, and secrets do not belong in the layout",
                )
            elif isinstance(value, dict):
                self.check_freqtrade(value, (*path, key), f"{dotted}.")
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, dict):
                        self.check_freqtrade(item, (*path, key, index), f"{dotted}[{index}].")

    def ca_bundle(self, name: str | None) -> str | None:
        """The CA bundle's text: a PEM file of certificates and nothing else (it is copied
        into image builds, so a private key or the master key must never pass)."""
        if name is None:
            return None
        where = ("defaults", "image", "ca_bundle")
        path = (self.base_dir / name).expanduser()
        try:
            text = decode(read_bytes(path, "CA bundle", CA_BUNDLE_MAX_BYTES), str(path))
        except LayoutError as exc:
            self.report(where, exc.problems[0].message)
            return None
        rest = PEM_CERTIFICATE.sub("", text)
        if not PEM_CERTIFICATE.search(text) or rest.strip():
            self.report(
                where,
                f"{path} must hold PEM certificates only (-----BEGIN CERTIFICATE----- "
                "blocks), nothing else",
            )
            return None
        return text

    def strategies(self, directory: str) -> dict[str, Path]:
        folder = self.base_dir / directory
        if not folder.is_dir():
            self.report(
                ("defaults", "strategies_dir"),
                f"strategies folder {folder} does not exist: create it or fix the path",
            )
            return {}
        found: dict[str, Path] = {}
        files = sorted(folder.glob("*.py"))
        if len(files) > STRATEGY_MAX_FILES:
            self.report(
                ("defaults", "strategies_dir"),
                f"{folder} holds {len(files)} .py files, more than {STRATEGY_MAX_FILES}",
            )
            return {}
        for file in files:
            try:
                text = decode(read_bytes(file, "strategy", STRATEGY_MAX_BYTES), str(file))
            except LayoutError as exc:
                self.report(("defaults", "strategies_dir"), str(exc.problems[0]))
                continue
            for class_name in re.findall(r"^class\s+(\w+)\s*\(", text, re.M):
                found.setdefault(class_name, file)
        return found

    def user(
        self,
        user_name: str,
        raw: Any,
        defaults: dict[str, Any],
        hosts: dict[str, Host],
        context: _BotContext,
    ) -> User | None:
        path: Path_ = ("users", user_name)
        _, problem = schema.name(user_name)
        if problem:
            self.report(path, problem)
            return None
        values = self.section(raw, path, schema.USER)
        self.check_freqtrade(values.get("freqtrade", {}), (*path, "freqtrade"))
        host = values.get("host")
        if host is not None and host not in hosts:
            self.report(
                (*path, "host"),
                f"unknown host {host!r}: declare it under hosts: (known: {', '.join(hosts)})",
            )
            host = None
        pools: dict[str, str] = {}
        for pool, pool_host in (values.get("pools") or {}).items():
            if not re.fullmatch(rf"{re.escape(user_name)}-pool-[1-9][0-9]*", str(pool)):
                self.report(
                    (*path, "pools", pool),
                    f"{pool!r} is not a pool of {user_name}: pool names are "
                    f"{user_name}-pool-1, {user_name}-pool-2, ... (see `botpool plan`)",
                )
            elif not isinstance(pool_host, str) or pool_host not in hosts:
                self.report(
                    (*path, "pools", pool),
                    f"unknown host {pool_host!r}: declare it under hosts: "
                    f"(known: {', '.join(hosts)})",
                )
            else:
                pools[str(pool)] = str(pool_host)
        bots: list[Bot] = []
        first_line: dict[str, int] = {}
        for index, raw_bot in enumerate(values.get("bots") or []):
            bot = self.bot(user_name, raw_bot, (*path, "bots", index), context, values)
            if bot is None:
                continue
            if bot.name in first_line:
                self.report(
                    (*path, "bots", index, "name"),
                    f"duplicate bot name {bot.name!r} (first on line "
                    f"{first_line[bot.name]}): bot names must be unique within a user",
                )
                continue
            first_line[bot.name] = bot.line
            self.bot_paths[bot.key] = (*path, "bots", index)
            bots.append(bot)
        if "bots" not in values:
            return None
        version = values.get("freqtrade_version") or defaults["freqtrade_version"]
        runtime = values.get("runtime") or defaults["runtime"]
        return User(user_name, host, version, tuple(bots), self.doc.line(path), pools, runtime)

    def bot(
        self,
        user: str,
        raw: Any,
        path: Path_,
        context: _BotContext,
        user_values: dict[str, Any],
    ) -> Bot | None:
        if not isinstance(raw, dict):
            self.report(path, "expected a bot mapping with at least `name:`")
            return None
        before = len(self.problems)
        own = self.section(raw, path, schema.BOT, fill=False)
        if "name" not in raw:
            self.report(path, "name is missing: every bot needs a name")
        self.check_freqtrade(own.get("freqtrade", {}), (*path, "freqtrade"))
        merged = {**context.defaults, **own}
        # freqtrade settings merge, defaults.bot under the user's under the bot's own
        merged["freqtrade"] = deep_merge(
            deep_merge(context.defaults.get("freqtrade", {}), user_values.get("freqtrade", {})),
            own.get("freqtrade", {}),
        )
        # so do notifications, entry by entry (botpool.core.notify.merge)
        notify_levels = (
            (("defaults", "bot", "notify"), context.defaults.get("notify", {})),
            ((*path[:2], "notify"), user_values.get("notify", {})),
            ((*path, "notify"), own.get("notify", {})),
        )
        merged["notify"] = notify.merge(*(level for _, level in notify_levels))
        self.check_notify(merged["notify"], path, notify_levels)
        for key, spec in schema.BOT_SETTINGS.items():
            if key in merged:
                continue
            if key in raw or key in context.invalid_defaults:
                return None  # present but invalid: already reported
            if spec.default is REQUIRED:
                self.report(path, f"{key} is missing: set it here or in defaults.bot ({spec.doc})")
            merged[key] = spec.default
        if len(self.problems) > before or "name" not in own:
            return None
        merged.pop("name")
        settings = BotSettings(**merged)
        self.check_bot(settings, path, raw, context)
        if len(self.problems) > before:
            return None
        return Bot(user, own["name"], settings, self.doc.line(path), path)

    def check_bot(self, s: BotSettings, path: Path_, raw: dict[str, Any], ctx: _BotContext) -> None:
        """Checks that need several settings at once; each reported where it can be fixed."""

        def where(key: str) -> Path_:
            return (
                (*path, key)
                if key in raw
                else ("defaults", "bot", key)
                if key in ctx.defaults
                else path
            )

        profile = ctx.exchanges.get(s.exchange)
        if profile is None:
            self.report(
                where("exchange"),
                f"unknown exchange profile {s.exchange!r}: declare it "
                f"under exchanges: (known: {', '.join(ctx.exchanges)})",
            )
        if s.strategy not in ctx.strategies:
            known = difflib.get_close_matches(s.strategy, ctx.strategies, n=1)
            hint = f"did you mean {known[0]}?" if known else "add its file to the strategies folder"
            self.report(
                where("strategy"),
                f"no strategy class {s.strategy!r} in the strategies folder: {hint}",
            )
        self.check_pairs(s, where, profile)
        for pair in s.pairs or ():
            if pair.split("/")[1] != s.stake_currency:
                self.report(
                    where("pairs"),
                    f"pair {pair} is not quoted in the stake currency "
                    f"{s.stake_currency}: use {pair.split('/')[0]}/{s.stake_currency} or "
                    "change stake_currency",
                )
                break
        if s.dry_run:
            self.check_wallet(s, where)
        elif profile is not None and profile.sandbox:
            self.report(
                where("dry_run"),
                "the sandbox exchange cannot trade real money: set "
                "dry_run: true or use a real exchange profile",
            )
        elif s.credentials is None:
            self.report(
                where("dry_run"),
                "a live bot (dry_run: false) needs exchange credentials: "
                "store them in the secrets directory as credentials/<name>.json and set "
                "`credentials: <name>`",
            )
        elif self.secrets is not None and not self.secrets.credentials_exist(s.credentials):
            self.report(
                where("credentials"),
                f"no credentials named {s.credentials!r} in the "
                "secrets directory: create credentials/"
                f"{s.credentials}.json (mode 0600)",
            )

    def check_notify(
        self,
        entries: dict[str, dict[str, Any]],
        path: Path_,
        levels: tuple[tuple[Path_, dict[str, Any]], ...],
    ) -> None:
        """A bot's merged notifications: complete, and each credentials file well formed.

        A problem is reported where the entry's credentials were set (or the bot, if
        nowhere); a file's content is never shown."""

        def where(service: str) -> Path_:
            for at, level in reversed(levels):
                if "credentials" in (level.get(service) or {}):
                    return (*at, service, "credentials")
            return (*path, "notify")

        for service, message in notify.problems(entries):
            self.report(where(service), message)
        if self.secrets is None:
            return
        for service, entry in entries.items():
            if "credentials" in entry:
                _, problem = self.notify_file(service, entry["credentials"])
                if problem:
                    self.report(where(service), problem)

    def notify_file(self, service: str, name: str) -> tuple[str | None, str | None]:
        """(a hash of its Telegram token, or "" for the other services; problem), read once."""
        if (service, name) not in self.notify_files:
            assert self.secrets is not None
            try:
                keys = self.secrets.notify_credentials(service, name)
            except SecretsError as exc:
                self.notify_files[service, name] = (None, str(exc))
            else:
                token = keys.get("token", "")
                digest = hashlib.sha256(token.encode()).hexdigest() if token else ""
                self.notify_files[service, name] = (digest, None)
        return self.notify_files[service, name]

    def check_telegram_tokens(self, bots: list[Bot]) -> None:
        """One Telegram bot token per freqtrade bot: Telegram hands a token's updates to one
        reader only (freqtrade issue #3600), so two bots on one token both miss commands."""
        first: dict[str, Bot] = {}
        for bot in bots:
            entry = bot.settings.notify.get("telegram")
            if entry is None:
                continue
            if self.secrets is None:
                identity: str | None = f"file {entry['credentials']}"
            else:
                identity, _ = self.notify_file("telegram", entry["credentials"])
            if not identity:
                continue  # its file is missing or malformed: reported already
            if identity in first:
                other = first[identity]
                self.report(
                    (*self.bot_paths[bot.key], "notify"),
                    f"{bot.key} and {other.key} (line {other.line}) would share one Telegram "
                    "bot token: Telegram lets one reader take a token's messages (freqtrade "
                    "issue #3600), so both bots would miss commands. Give each bot a Telegram "
                    "bot of its own (@BotFather) and its own notify/<name>.json",
                )
            else:
                first[identity] = bot

    def check_pairs(
        self, s: BotSettings, where: Callable[[str], Path_], profile: ExchangeProfile | None
    ) -> None:
        """A static list, or a dynamic one from freqtrade's pair lists; on the sandbox, only
        the pairs its fixed market list has (freqtrade would drop the others silently)."""
        pairlists = s.freqtrade.get("pairlists")
        if pairlists is not None and not isinstance(pairlists, list):
            self.report(
                where("freqtrade"),
                "freqtrade.pairlists is a list of pair list methods, e.g. "
                "[{method: VolumePairList, number_assets: 5}]",
            )
            pairlists = None
        methods = [p.get("method") for p in pairlists or () if isinstance(p, dict)]
        dynamic = bool(methods) and methods[0] != "StaticPairList"
        if s.pairs is None and not dynamic:
            self.report(
                where("pairs"),
                "pairs is missing: list the pairs, e.g. pairs: [BTC/USDT], or start "
                "freqtrade.pairlists with a dynamic method such as VolumePairList",
            )
        if profile is not None and profile.sandbox:
            unlisted = [p for p in s.pairs or () if p not in SANDBOX_PAIRS]
            if unlisted:
                self.report(
                    where("pairs"),
                    f"pair {unlisted[0]} is not listed on the sandbox exchange: use one of its "
                    'fixed market list (README, "The sandbox exchange")',
                )
            if s.freqtrade.get("trading_mode", "spot") != "spot":
                self.report(
                    where("freqtrade"),
                    "the sandbox exchange serves spot markets only: trading_mode "
                    f"{s.freqtrade['trading_mode']!r} needs a real exchange profile",
                )

    def check_wallet(self, s: BotSettings, where: Callable[[str], Path_]) -> None:
        """The old system's "Invalid initial balance", with the numbers and the key to change."""
        wallet = s.dry_run_wallet
        if wallet is None:
            self.report(
                where("dry_run_wallet"),
                "dry_run_wallet is missing: a dry-run bot needs "
                "a starting balance, e.g. dry_run_wallet: 1000",
            )
            return
        if wallet <= 0:
            self.report(
                where("dry_run_wallet"),
                f"dry_run_wallet is {_fmt(wallet)}: a dry-run "
                "bot needs a starting balance above 0, e.g. dry_run_wallet: 1000",
            )
            return
        available = wallet * s.tradable_balance_ratio
        cur = s.stake_currency
        numbers = (
            f"dry_run_wallet {_fmt(wallet)} x tradable_balance_ratio "
            f"{_fmt(s.tradable_balance_ratio)} = {_fmt(available)} {cur}"
        )
        if s.stake_amount > available:
            self.report(
                where("stake_amount"),
                f"stake_amount {_fmt(s.stake_amount)} {cur} is "
                f"more than freqtrade will ever make available ({numbers}): this bot "
                f"could never trade; lower stake_amount to at most "
                f"{_fmt(available / s.max_open_trades)} or raise dry_run_wallet to at "
                f"least {_fmt(s.stake_amount * s.max_open_trades / s.tradable_balance_ratio)}",
            )
        elif s.stake_amount * s.max_open_trades > available * (1 + 1e-9):
            slots = int(available // s.stake_amount)
            self.report(
                where("stake_amount"),
                f"stake_amount {_fmt(s.stake_amount)} {cur} x "
                f"max_open_trades {s.max_open_trades} needs "
                f"{_fmt(s.stake_amount * s.max_open_trades)} {cur}, more than the "
                f"{numbers} available: only {slots} of {s.max_open_trades} trade slots "
                f"could ever fill; lower stake_amount to at most "
                f"{_fmt(available / s.max_open_trades)}, set max_open_trades: {slots}, or "
                f"raise dry_run_wallet to at least "
                f"{_fmt(s.stake_amount * s.max_open_trades / s.tradable_balance_ratio)}",
            )


@dataclass(frozen=True)
class _BotContext:
    defaults: dict[str, Any]
    invalid_defaults: set[str]
    exchanges: dict[str, ExchangeProfile]
    strategies: dict[str, Path]
