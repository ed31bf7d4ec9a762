"""Secrets live outside the repository, in one 0600 directory on the controller.

`$BOTPOOL_SECRETS_DIR` (default `~/.config/botpool`) holds:
- `master.key`: 32 random bytes (hex), created on first use. Every bot's API password, JWT
  secret and websocket token is derived from it with HMAC-SHA256, so they are strong, stable
  across runs and never stored or committed. Replacing it rotates every bot's credentials.
- `rotations.json`: per-bot generation numbers; `botpool secrets rotate USER/BOT` bumps one,
  which rotates that bot's credentials only.
- `credentials/<name>.json`: exchange keys for live bots, `{"key": ..., "secret": ...}`
  (plus `password`/`uid` where an exchange needs them), referred to by `credentials: <name>`.
- `notify/<name>.json`: what a notification needs, referred to by a bot's
  `notify: {<service>: {credentials: <name>}}`: Telegram `{"token": ..., "chat_id": ...}`,
  Discord `{"webhook_url": ...}`, a webhook `{"url": ...}` (NOTIFY_KEYS).
- `alerts/<name>.url`: the URL of a webhook alerts are posted to (`monitoring.webhook: <name>`),
  or the heartbeat URL the watchdog is posted to (`monitoring.watchdog: <name>`).
- `alerts/<name>.json`: what an alert receiver needs (`monitoring.receivers: {<name>: <kind>}`):
  RECEIVER_KEYS per kind (webhook, slack, discord, telegram, email).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets as random
import stat
from dataclasses import dataclass
from pathlib import Path

API_USERNAME = "botpool"
MASTER_KEY_BYTES = 32
# what a credentials file may hold: the keys freqtrade passes to ccxt, nothing else
CREDENTIAL_KEYS = {"key", "secret", "password", "uid", "walletAddress", "privateKey"}
CREDENTIALS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SECRET_FILE_MAX_BYTES = 64 * 1024
# what a notification credentials file holds, per service: (required, optional) keys, each
# with the pattern its value must match in full (described for the message; never shown)
_HTTP_URL = re.compile(
    r"https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?"
    r"(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?(\?[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?"
)
NOTIFY_VALUES: dict[str, tuple[re.Pattern[str], str]] = {
    "token": (
        re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}"),
        "a Telegram bot token as @BotFather gives it (digits, ':', then letters)",
    ),
    "chat_id": (
        re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}"),
        'a chat id as a string, e.g. "-1001234567890", or a channel\'s "@name"',
    ),
    "topic_id": (re.compile(r"[0-9]{1,20}"), 'a topic id as a string, e.g. "42"'),
    "webhook_url": (_HTTP_URL, "an http(s) URL without spaces, user or fragment"),
    "url": (_HTTP_URL, "an http(s) URL without spaces, user or fragment"),
}
NOTIFY_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "telegram": (frozenset({"token", "chat_id"}), frozenset({"topic_id"})),
    "discord": (frozenset({"webhook_url"}), frozenset()),
    "webhook": (frozenset({"url"}), frozenset()),
}
# what an alert receiver's file holds, per kind: (required, optional) keys (RECEIVER_VALUES)
RECEIVER_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "webhook": (frozenset({"url"}), frozenset()),
    "slack": (frozenset({"url"}), frozenset({"channel"})),
    "discord": (frozenset({"url"}), frozenset()),
    "telegram": (frozenset({"token", "chat_id"}), frozenset({"api_url"})),
    "email": (frozenset({"to", "from", "smarthost"}), frozenset({"username", "password"})),
}
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}")
RECEIVER_VALUES: dict[str, tuple[re.Pattern[str], str]] = {
    "url": NOTIFY_VALUES["url"],
    "api_url": NOTIFY_VALUES["url"],  # Telegram's Bot API server (a self-hosted one, a proxy)
    "channel": (re.compile(r"[#@]?[A-Za-z0-9._-]{1,80}"), "a Slack channel such as #alerts"),
    "token": NOTIFY_VALUES["token"],
    "chat_id": (re.compile(r"-?[0-9]{1,19}"), 'a numeric chat id as a string, e.g. "-100123"'),
    "to": (_EMAIL, "an e-mail address"),
    "from": (_EMAIL, "an e-mail address"),
    "smarthost": (
        re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?:[0-9]{1,5}"),
        "the SMTP server as host:port, e.g. smtp.example.org:587",
    ),
    "username": (re.compile(r"[!-~]{1,256}"), "printable characters without spaces"),
    "password": (re.compile(r"[ -~]{1,1024}"), "printable characters on one line"),
}
URL_MAX = 2048
WEBHOOK_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]{1,2000}")


class SecretsError(Exception):
    pass


@dataclass(frozen=True)
class ApiCredentials:
    username: str
    password: str
    jwt_secret_key: str
    ws_token: str

    def __repr__(self) -> str:  # never print a secret by accident
        return f"ApiCredentials(username={self.username!r}, ...)"


class SecretStore:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    @classmethod
    def from_env(cls) -> SecretStore:
        default = Path.home() / ".config" / "botpool"
        return cls(os.environ.get("BOTPOOL_SECRETS_DIR") or default)

    def _check_directory(self) -> None:
        """The folder must be the user's own and closed to everyone else."""
        for folder in (
            self.directory,
            self.directory / "credentials",
            self.directory / "notify",
            self.directory / "alerts",
        ):
            try:
                info = folder.lstat()
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(info.st_mode):
                raise SecretsError(f"{folder} is not a folder")
            if info.st_uid != os.getuid():
                raise SecretsError(f"{folder} belongs to uid {info.st_uid}, not to you")
            if stat.S_IMODE(info.st_mode) & 0o077:
                raise SecretsError(
                    f"{folder} is open to other users (mode {stat.S_IMODE(info.st_mode):o}): "
                    f"run chmod 700 {folder}"
                )

    def _private_file(self, name: str) -> Path:
        self._check_directory()
        path = self.directory / name
        if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise SecretsError(f"{path} is readable by others: run chmod 600 {path}")
        return path

    def _read(self, path: Path) -> str:
        """A private file's text: a regular file, bounded, UTF-8 (its content never shown)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError as exc:
            raise SecretsError(f"cannot read {path}: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a folder, a FIFO, a device
            os.close(fd)
            raise SecretsError(f"{path} is not a regular file")
        with os.fdopen(fd, "rb") as f:
            data = f.read(SECRET_FILE_MAX_BYTES + 1)
        if len(data) > SECRET_FILE_MAX_BYTES:
            raise SecretsError(f"{path} is larger than {SECRET_FILE_MAX_BYTES // 1024} KiB")
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise SecretsError(f"{path} is not UTF-8 text") from None

    def master_key(self) -> bytes:
        """The key every bot's credentials derive from: created once, checked every time.

        Format: 64 or more hex digits (32+ random bytes) on one line. A short, empty or
        non-hex key would give every bot a password anyone can compute, so it is refused
        (its content is never shown).
        """
        path = self._private_file("master.key")
        if not path.exists():
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_private(path, random.token_hex(MASTER_KEY_BYTES) + "\n")
        text = self._read(path).strip()
        fix = (
            f"it must hold at least {2 * MASTER_KEY_BYTES} hex digits ({MASTER_KEY_BYTES} random "
            "bytes), e.g. from `openssl rand -hex 32`; replacing it rotates every bot's "
            "API credentials at the next converge"
        )
        if not re.fullmatch(rf"([0-9a-fA-F]{{2}}){{{MASTER_KEY_BYTES},}}", text):
            raise SecretsError(f"{path} is not a valid master key: {fix}")
        key = bytes.fromhex(text)
        if len(set(key)) < MASTER_KEY_BYTES // 2:
            raise SecretsError(f"{path} does not look random (too few distinct bytes): {fix}")
        return key

    def _generations(self) -> dict[str, int]:
        path = self._private_file("rotations.json")
        if not path.exists():
            return {}
        try:
            data = json.loads(self._read(path))
        except ValueError:
            data = None
        if not isinstance(data, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31 for v in data.values()
        ):
            raise SecretsError(f"{path} must be a JSON object of USER/BOT -> generation number")
        return data

    def generation(self, bot_key: str) -> int:
        return self._generations().get(bot_key, 0)

    def rotate(self, bot_key: str) -> int:
        """Give one bot new API credentials on the next converge; return its new generation."""
        gens = self._generations()
        gens[bot_key] = gens.get(bot_key, 0) + 1
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(
            self.directory / "rotations.json", json.dumps(gens, indent=2, sort_keys=True) + "\n"
        )
        return gens[bot_key]

    def api_credentials(self, bot_key: str) -> ApiCredentials:
        """The API login of one bot (`user/bot`), derived from the master key."""
        key = self.master_key()
        gen = self.generation(bot_key)

        def derive(purpose: str, length: int) -> str:
            msg = f"botpool/{purpose}/{bot_key}/{gen}".encode()
            return hmac.new(key, msg, hashlib.sha256).hexdigest()[:length]

        return ApiCredentials(
            API_USERNAME,
            derive("api-password", 32),
            derive("jwt-secret", 64),
            derive("ws-token", 32),
        )

    def credentials_exist(self, name: str) -> bool:
        if not CREDENTIALS_NAME.fullmatch(name):
            return False
        return (self.directory / "credentials" / f"{name}.json").is_file()

    def exchange_credentials(self, name: str) -> dict[str, str]:
        """Exchange keys of a live bot: only the keys ccxt needs, plain strings."""
        if not CREDENTIALS_NAME.fullmatch(name):
            raise SecretsError(f"{name!r} is not a credentials name (letters, digits, _ . -)")
        path = self._private_file(f"credentials/{name}.json")
        try:
            data = json.loads(self._read(path))
        except ValueError:
            raise SecretsError(f"{path} is not valid JSON") from None
        allowed = ", ".join(sorted(CREDENTIAL_KEYS))
        if not isinstance(data, dict) or not {"key", "secret"} <= data.keys():
            raise SecretsError(f"{path} must be a JSON object with at least key and secret")
        unknown = sorted(data.keys() - CREDENTIAL_KEYS)
        if unknown:
            raise SecretsError(
                f"{path}: unknown keys {unknown}: a credentials file holds {allowed}"
            )
        for key, value in data.items():
            if not isinstance(value, str) or not value.isprintable() or len(value) > 4096:
                raise SecretsError(f"{path}: {key} must be a string without control characters")
        return dict(data)

    def notify_credentials(self, service: str, name: str) -> dict[str, str]:
        """What one notification needs (NOTIFY_KEYS), read from `notify/<name>.json`: plain
        strings of the expected form, nothing else. Errors never show a value."""
        if service not in NOTIFY_KEYS:
            raise SecretsError(f"{service!r} is not a notification service")
        return self._json_secret(f"notify/{name}.json", name, service, NOTIFY_KEYS, NOTIFY_VALUES)

    def alert_receiver(self, kind: str, name: str) -> dict[str, str]:
        """What the alert receiver `name` of this kind needs (RECEIVER_KEYS), read from
        `alerts/<name>.json`; errors never show a value."""
        if kind not in RECEIVER_KEYS:
            raise SecretsError(f"{kind!r} is not a receiver kind")
        return self._json_secret(f"alerts/{name}.json", name, kind, RECEIVER_KEYS, RECEIVER_VALUES)

    def _json_secret(
        self,
        relative: str,
        name: str,
        kind: str,
        keys: dict[str, tuple[frozenset[str], frozenset[str]]],
        values: dict[str, tuple[re.Pattern[str], str]],
    ) -> dict[str, str]:
        """A JSON object of strings, each key allowed for kind and of its form."""
        if not CREDENTIALS_NAME.fullmatch(name):
            raise SecretsError(f"{name!r} is not a credentials name (letters, digits, _ . -)")
        path = self._private_file(relative)
        required, optional = keys[kind]
        example = ", ".join(f'"{key}": "..."' for key in sorted(required))
        if not path.exists():
            raise SecretsError(f"no {path}: create it (mode 0600) with {{{example}}} for {kind}")
        try:
            data = json.loads(self._read(path))
        except ValueError:
            raise SecretsError(f"{path} is not valid JSON") from None
        if not isinstance(data, dict) or not required <= data.keys():
            raise SecretsError(f"{path} must be a JSON object with {{{example}}} for {kind}")
        unknown = sorted(str(k)[:64] for k in data.keys() - required - optional)
        if unknown:
            allowed = ", ".join(sorted(required | optional))
            raise SecretsError(f"{path}: unknown keys {unknown}: for {kind} it holds {allowed}")
        for key, value in data.items():
            pattern, what = values[key]
            if not (isinstance(value, str) and len(value) <= URL_MAX and pattern.fullmatch(value)):
                raise SecretsError(f"{path}: {key} must be {what} (its value is not shown)")
        return dict(data)

    def alert_webhook_url(self, name: str, key: str = "webhook") -> str:
        """The URL `monitoring.<key>: <name>` names (never shown: it often holds a token, as
        Slack's and Telegram's do)."""
        if not CREDENTIALS_NAME.fullmatch(name):
            raise SecretsError(f"{name!r} is not a webhook name (letters, digits, _ . -)")
        path = self._private_file(f"alerts/{name}.url")
        if not path.exists():
            raise SecretsError(
                f"monitoring.{key} is {name!r} but {path} does not exist: write the "
                f"URL into it (one line, chmod 600)"
            )
        url = self._read(path).strip()
        if not WEBHOOK_URL.fullmatch(url):
            raise SecretsError(f"{path} must hold one http:// or https:// URL on one line")
        return url


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
