"""Every bot's config as freqtrade itself judges it, before any bot restarts.

botpool validates the keys it knows; a `freqtrade:` setting can be any of freqtrade's, so
freqtrade's own checks (its JSON schema, deprecated and conflicting settings, consistency)
judge the rendered config. They run wherever freqtrade is importable (the controller of
`make test`, any controller with `pip install freqtrade`); elsewhere this says so and
returns nothing (the pool image still validates at the bot's start).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botpool.core.plan import BotPlan, Plan
from botpool.core.render import bot_config
from botpool.core.secretstore import ApiCredentials, SecretStore
from botpool.core.source import Problem

_PLACEHOLDER = "x" * 64  # long enough for freqtrade's own minimum lengths


class PlaceholderSecrets(SecretStore):
    """Stand-in credentials: the config's shape without any real secret in it."""

    def __init__(self) -> None:
        super().__init__(Path("/nonexistent"))

    def api_credentials(self, bot_key: str) -> ApiCredentials:
        return ApiCredentials("botpool", _PLACEHOLDER[:32], _PLACEHOLDER, _PLACEHOLDER[:32])

    def exchange_credentials(self, name: str) -> dict[str, str]:
        return {"key": "placeholder", "secret": "placeholder"}

    def notify_credentials(self, service: str, name: str) -> dict[str, str]:
        placeholders = {
            "telegram": {"token": "1:" + _PLACEHOLDER[:35], "chat_id": "1"},
            "discord": {"webhook_url": "https://placeholder.invalid/webhook"},
            "webhook": {"url": "https://placeholder.invalid/webhook"},
        }
        return placeholders[service]


def available() -> bool:
    try:
        import freqtrade.configuration.config_validation  # noqa: F401
    except ImportError:
        return False
    return True


def problems(plan: Plan) -> list[Problem]:
    """One problem per bot whose config freqtrade refuses, at the bot's line in the layout."""
    if not available():
        return []
    secrets = PlaceholderSecrets()
    found = []
    for bot in plan.bots:
        reason = refusal(json.loads(bot_config(plan, bot, secrets)))
        if reason:
            found.append(_problem(plan, bot, reason))
    return found


def refusal(config: dict[str, Any]) -> str | None:
    """freqtrade's reason to refuse this config, or None."""
    from freqtrade.configuration.config_validation import (
        validate_config_consistency,
        validate_config_schema,
    )
    from freqtrade.configuration.deprecated_settings import process_temporary_deprecated_settings
    from freqtrade.exceptions import ConfigurationError, OperationalException
    from jsonschema import ValidationError

    try:
        validate_config_schema(config)
        process_temporary_deprecated_settings(config)
        validate_config_consistency(config)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path)
        return f"{where}: {exc.message}" if where else exc.message
    except (ConfigurationError, OperationalException) as exc:
        return str(exc).strip().splitlines()[0]
    return None


def _problem(plan: Plan, bot: BotPlan, reason: str) -> Problem:
    return Problem(
        plan.layout.file,
        bot.bot.line,
        f"users.{bot.user}.bots",
        f"freqtrade refuses the config of bot {bot.name}: {reason[:500]}",
    )
