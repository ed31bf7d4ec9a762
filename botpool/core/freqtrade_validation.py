"""Every bot's config as freqtrade itself judges it, before any bot restarts.

botpool validates the keys it knows; a `freqtrade:` setting can be any of freqtrade's, so
freqtrade's own checks (its JSON schema, deprecated and conflicting settings, consistency:
botpool/payloads/freqtrade_check.py) judge the rendered config, and a refusal is traced
back to the layout's FILE:LINE and key that set the refused value.

Where they run: on the controller when freqtrade is importable there (`judge`, for
`validate` and the converge); otherwise the converge runs them on each host, inside the
pool image the bots will run, before it touches a pool (`bots_to_check`, `check_command`,
`check_input`, `read_check_output`; tasks/freqtrade_check.py). Either way the configs are
rendered with placeholder credentials: no secret ever reaches the check.

A config the controller's freqtrade accepted is remembered (ACCEPTED: one empty file named
by the hash of the config, under the freqtrade version and this checker's own hash; no
config and no secret is stored), so a converge whose configs were all judged before imports
no freqtrade at all: that import was half of a converge with nothing to do. A refusal is
never remembered: it is judged again, and said again, until the layout is fixed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from botpool import payloads
from botpool.core.pipeline import Desired, HostChanges
from botpool.core.plan import BotPlan, Plan
from botpool.core.render import bot_config
from botpool.core.secretstore import ApiCredentials, SecretStore
from botpool.core.source import Path_, Problem, dotted
from botpool.payloads import freqtrade_check

_PLACEHOLDER = "x" * 64  # long enough for freqtrade's own minimum lengths
CHECK_SECONDS = 120  # freqtrade's import takes ~10 s on a small host; checking is quick
CHECK_MEMORY_MB = 512  # the import needs ~170 MB
CHECK_OUTPUT_BYTES = 1 << 20  # one line of at most ~700 bytes per refused bot, and one more


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
    """Can the controller run freqtrade's checks itself?"""
    try:
        import freqtrade.configuration.config_validation  # noqa: F401
    except ImportError:
        return False
    return True


def placeholder_config(plan: Plan, bot: BotPlan) -> dict[str, Any]:
    """The bot's config as it will be rendered, with placeholder credentials."""
    config: dict[str, Any] = json.loads(bot_config(plan, bot, PlaceholderSecrets()))
    return config


def accepted_folder() -> Path | None:
    """Where the controller's accepted configs are remembered: $BOTPOOL_CACHE_DIR (default
    ~/.cache/botpool) / freqtrade-accepted / <freqtrade version>-<this checker's hash>; None
    when freqtrade is not installed here."""
    try:
        version = metadata.version("freqtrade")
    except metadata.PackageNotFoundError:
        return None
    checker = hashlib.sha256(Path(freqtrade_check.__file__).read_bytes()).hexdigest()[:16]
    root = os.environ.get("BOTPOOL_CACHE_DIR") or os.path.expanduser("~/.cache/botpool")
    return Path(root) / "freqtrade-accepted" / f"{version}-{checker}"


def fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Judgement:
    problems: list[Problem]
    here: bool  # every config was judged by the controller's freqtrade (now or before)


def judge(plan: Plan) -> Judgement:
    """Every bot's config judged by the controller's freqtrade: one problem per refused
    config, at the layout key that set the refused value. Configs accepted before are not
    judged again; without an importable freqtrade, nothing is judged (`here` False: the
    converge leaves it to each host)."""
    folder = accepted_folder()
    pending = []
    for bot in plan.bots:
        config = placeholder_config(plan, bot)
        key = fingerprint(config)
        if folder is None or not (folder / key).is_file():
            pending.append((bot, config, key))
    if not pending:
        return Judgement([], True)
    if not available():
        return Judgement([], False)
    found = []
    for bot, config, key in pending:
        refused = freqtrade_check.refusal(config)
        if refused:
            found.append(refusal_problem(plan, bot, *refused))
        elif folder is not None:
            _remember(folder / key)
    return Judgement(found, True)


def _remember(path: Path) -> None:
    """An accepted config's mark; a cache that cannot be written only costs a later import."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch()
    except OSError:
        pass


def problems(plan: Plan) -> list[Problem]:
    """The configs the controller's freqtrade refuses (none if it has no freqtrade)."""
    return judge(plan).problems


def refusal(config: dict[str, Any]) -> str | None:
    """freqtrade's reason to refuse this config, as one line, or None."""
    refused = freqtrade_check.refusal(config)
    if refused is None:
        return None
    setting, message = refused
    return f"{dotted(tuple(setting))}: {message}" if setting else message


# --- from freqtrade's key path back to the layout -----------------------------------------


def origin(plan: Plan, bot: BotPlan, setting: Sequence[str | int]) -> Path_:
    """The layout key that set the value freqtrade refused (`setting`, its key path in the
    bot's config), or the nearest one: the bot's own `freqtrade:` before its user's before
    `defaults.bot`'s (the merge order), the deepest key any of them has first. Mappings
    merge and lists replace, so the deepest level that holds a path is the one whose value
    the config has. A setting none of them holds (freqtrade named no key, or one botpool
    renders) is traced to the nearest `freqtrade:` mapping, else to the bot."""
    own = bot.bot.path
    levels = [(*own, "freqtrade"), (*own[:2], "freqtrade"), ("defaults", "bot", "freqtrade")]
    lines = plan.layout.lines
    for depth in range(len(setting), -1, -1):
        for level in levels:
            where = (*level, *setting[:depth])
            if where in lines:
                return where
    return own


def refusal_problem(
    plan: Plan, bot: BotPlan, setting: Sequence[str | int], message: str, where: str = ""
) -> Problem:
    """A refusal as a layout problem: FILE:LINE: key: what freqtrade said (and where)."""
    key = origin(plan, bot, setting)
    line = plan.layout.lines.get(key, bot.bot.line)
    what = f"{dotted(tuple(setting))}: " if setting else ""
    return Problem(
        plan.layout.file,
        line,
        dotted(key),
        f"freqtrade{where} refuses the config of bot {bot.key}: {what}{message[:500]}",
    )


# --- on a host, inside its pool image -----------------------------------------------------


def bots_to_check(want: Desired, changes: HostChanges) -> dict[str, list[BotPlan]]:
    """Pool image tag -> the bots whose config this converge would start anew: every bot of
    a pool whose container is (re)created, and each bot whose config file changes."""
    rendered = {pool.container.name: pool for pool in want.pools}
    found: dict[str, list[BotPlan]] = {}
    for unit in changes.pools:
        pool = rendered[unit.name]
        uploads = {upload.artifact.path for upload in unit.uploads}
        for bot in pool.pool.bots:
            fresh = unit.container in ("create", "recreate")
            if fresh or f"bots/{bot.name}/config.json" in uploads:
                found.setdefault(pool.container.image, []).append(bot)
    return found


def check_input(plan: Plan, bots: Sequence[BotPlan]) -> str:
    """What the check reads on stdin: {bot key: config}, placeholder credentials only."""
    return json.dumps({bot.key: placeholder_config(plan, bot) for bot in bots})


def check_command(image: str) -> str:
    """Shell that runs the check in a throwaway container of `image`: no network, read-only,
    no capability, an unprivileged user, bounded in memory, processes, time and output.
    The configs come on stdin, so nothing of them is in any process's arguments."""
    script = (resources.files(payloads) / "freqtrade_check.py").read_text()
    docker = [
        *("docker", "run", "--rm", "-i", "--network", "none", "--read-only"),
        *("--user", "65534:65534", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"),
        *("--memory", f"{CHECK_MEMORY_MB}m", "--memory-swap", f"{CHECK_MEMORY_MB}m"),
        *("--pids-limit", "64", "--log-driver", "none", "--tmpfs", "/tmp:size=16m,noexec"),
        image,
        *("timeout", "-k", "5", str(CHECK_SECONDS), "python3", "-c", script),
    ]
    return f"{shlex.join(docker)} 2>&1 | head -c {CHECK_OUTPUT_BYTES}"


def read_check_output(
    plan: Plan, bots: Sequence[BotPlan], image: str, output: Sequence[str]
) -> list[Problem]:
    """The check's verdict as layout problems; one problem if it did not finish (its last
    lines tell why), so a check cut short never passes for "all valid"."""
    by_key = {bot.key: bot for bot in bots}
    found, finished = [], False
    for line in output:
        record = _record(line)
        if record.get(freqtrade_check.MARK) == "checked":
            finished = record.get("count") == len(bots)
        elif record.get(freqtrade_check.MARK) == "refused" and record.get("bot") in by_key:
            setting = [p for p in record.get("path", []) if isinstance(p, (str, int))]
            message = str(record.get("message", ""))
            bot = by_key[record["bot"]]
            found.append(refusal_problem(plan, bot, setting, message, f" (in {image})"))
    if not finished:
        tail = " | ".join(line.strip() for line in output[-5:] if line.strip())[-1000:]
        message = (
            f"freqtrade's check of {len(bots)} bot config(s) in {image} did not finish: "
            f"{tail or 'no output'}"
        )
        found.append(Problem(plan.layout.file, 1, "", message))
    return found


def _record(line: str) -> dict[str, Any]:
    """A line of the check's as a JSON object, or {} (freqtrade's own noise, a traceback)."""
    if not line.startswith("{"):
        return {}
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}
