"""The layout: the one desired state, as typed, immutable objects (botpool.core.validate makes
them from a file; nothing downstream ever sees the raw YAML).

Settings that grow with freqtrade (a bot's, the checks') are built from their schema
section: every key of botpool.core.schema is there, with its default from there and nowhere
else, so a new bot setting is one schema entry (plus its line in the config template).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from botpool.core import schema
from botpool.core.runtimes import Runtime
from botpool.core.schema import REQUIRED, Key


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """over on top of base: mappings merge key by key, anything else (lists too) replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class Settings:
    """The values of one schema section, every key present (defaults from the schema).

    Attributes read the values; the annotations of a subclass only type those the Python
    code reads (a test keeps them a subset of the schema's keys).
    """

    KEYS: ClassVar[dict[str, Key]]
    __slots__ = ("values",)
    values: Mapping[str, Any]

    def __init__(self, values: Mapping[str, Any] | None = None, **more: Any) -> None:
        given = {**(values or {}), **more}
        unknown = given.keys() - self.KEYS.keys()
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown settings {sorted(unknown)}")
        filled = {}
        for name, key in self.KEYS.items():
            if name not in given and key.default is REQUIRED:
                raise TypeError(f"{type(self).__name__}: {name} is required")
            filled[name] = given.get(name, key.default)
        object.__setattr__(self, "values", filled)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no setting {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Settings)
            and type(other) is type(self)
            and other.values == self.values
        )

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self.values.items())))

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        return f"{type(self).__name__}({items})"


class BotSettings(Settings):
    """A bot's settings: every key of schema.BOT_SETTINGS."""

    KEYS = schema.BOT_SETTINGS
    exchange: str
    strategy: str
    pairs: tuple[str, ...] | None  # None: a dynamic pair list picks them
    stake_currency: str
    stake_amount: float
    dry_run: bool
    dry_run_wallet: float | None
    tradable_balance_ratio: float
    max_open_trades: int
    timeframe: str
    credentials: str | None
    freqtrade: dict[str, Any]
    notify: dict[str, dict[str, Any]]  # merged: service -> entry (botpool.core.notify)


class CheckSettings(Settings):
    """Thresholds of the checks: every key of schema.CHECKS."""

    KEYS = schema.CHECKS
    stagnant_after_minutes: int
    heartbeat_max_age_seconds: int
    max_exits_per_hour: int
    pool_memory_share: float
    host_min_available_mb: int


class MonitoringSettings(Settings):
    """Metrics and alerts on every host: every key of schema.MONITORING."""

    KEYS = schema.MONITORING
    enabled: bool
    base_port: int
    scrape_interval: str
    retention: str
    retention_size: str
    memory_limit_mb: int
    bot_down_for: str
    api_down_for: str
    pool_memory_share: float
    pool_memory_mb: int | None
    pool_memory_for: str
    crash_loop_restarts: int
    out_of_sync_for: str
    target_down_for: str
    heartbeat_max_age_seconds: int
    heartbeat_stale_for: str
    stagnant_after_minutes: int
    host_memory_min_available_mb: int
    host_memory_for: str
    host_disk_min_free_share: float
    host_disk_for: str
    webhook: str | None
    receivers: dict[str, str]
    operator: str | None
    user_receivers: dict[str, str]
    watchdog: str | None
    watchdog_interval: str
    group_wait: str
    group_interval: str
    repeat_interval: str

    @property
    def ports(self) -> dict[str, int]:
        """Each program's port on the host's 127.0.0.1 (schema.MONITORING_PORTS order)."""
        return {p: self.base_port + i for i, p in enumerate(schema.MONITORING_PORTS)}


class BackupSettings(Settings):
    """Scheduled backups of every bot's trade database: every key of schema.BACKUPS."""

    KEYS = schema.BACKUPS
    enabled: bool
    interval_minutes: int
    hourly: int
    daily: int


class UpgradeSettings(Settings):
    """How a changed pool image is rolled out on a host: every key of schema.UPGRADES."""

    KEYS = schema.UPGRADES
    canary: str | None
    health_timeout_seconds: int
    settle_seconds: int


@dataclass(frozen=True)
class Bot:
    user: str
    name: str
    settings: BotSettings
    line: int
    # its key path in the layout (`("users", "alice", "bots", 0)`): where a refused
    # `freqtrade:` setting is traced back to (botpool.core.freqtrade_validation)
    path: tuple[str | int, ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        """Unique across the layout: `user/bot`."""
        return f"{self.user}/{self.name}"

    @property
    def program(self) -> str:
        """The supervisor program name: `user-bot`."""
        return f"{self.user}-{self.name}"


@dataclass(frozen=True)
class User:
    name: str
    host: str | None
    freqtrade_version: str
    bots: tuple[Bot, ...]
    line: int
    pools: dict[str, str]  # pool name -> host (placement)
    runtime: str


@dataclass(frozen=True)
class Host:
    name: str
    memory_mb: int
    reserved_mb: int
    bot_memory_mb: int | None  # None: the figure measured for each runtime
    line: int
    labels: dict[str, Any] = field(compare=False, hash=False)  # shown by `botpool plan`

    def bot_mb(self, runtime: Runtime) -> int:
        """What one bot of that runtime is planned with here."""
        return self.bot_memory_mb or runtime.bot_mb

    @property
    def usable_mb(self) -> int:
        return self.memory_mb - self.reserved_mb


@dataclass(frozen=True)
class ExchangeProfile:
    name: str
    exchange: str
    sandbox: bool
    seed: int
    step_seconds: int
    volatility: float
    ccxt_config: dict[str, Any]
    max_bots_per_host: int | None  # None: no limit (the sandbox's default)


@dataclass(frozen=True)
class ImageSettings:
    base: str
    ca_bundle: str | None
    pip_index_url: str | None
    pip_packages: tuple[str, ...]
    frequi: bool
    ca_bundle_pem: str | None = field(default=None, repr=False)  # the checked file's text


@dataclass(frozen=True)
class Layout:
    file: str
    freqtrade_version: str
    max_bots_per_pool: int
    base_port: int
    max_port: int
    root: str
    project: str  # prefixes container and network names (botpool.core.names)
    runtime: str
    pool_memory_limit_mb: int | None
    image: ImageSettings
    hosts: dict[str, Host]
    exchanges: dict[str, ExchangeProfile]
    users: tuple[User, ...]
    strategies: dict[str, Path] = field(default_factory=dict)  # class name -> file
    checks: CheckSettings = field(default_factory=CheckSettings)
    frequi_origins: tuple[str, ...] = ()  # every bot's CORS origins, for FreqUI
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    backups: BackupSettings = field(default_factory=BackupSettings)
    upgrades: UpgradeSettings = field(default_factory=UpgradeSettings)
    # the line of every key path of the file, for problems found after validation
    lines: Mapping[tuple[str | int, ...], int] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def bots(self) -> tuple[Bot, ...]:
        return tuple(bot for user in self.users for bot in user.bots)
