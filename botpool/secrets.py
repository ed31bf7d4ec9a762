"""Secrets live outside the repository, in one 0600 directory on the controller.

`$BOTPOOL_SECRETS_DIR` (default `~/.config/botpool`) holds:
- `master.key`: 32 random bytes (hex), created on first use. Every bot's API password, JWT
  secret and websocket token is derived from it with HMAC-SHA256, so they are strong, stable
  across runs and never stored or committed. Replacing it rotates every bot's credentials.
- `rotations.json`: per-bot generation numbers; `botpool secrets rotate USER/BOT` bumps one,
  which rotates that bot's credentials only.
- `credentials/<name>.json`: exchange keys for live bots, `{"key": ..., "secret": ...}`
  (plus `password`/`uid` where an exchange needs them), referred to by `credentials: <name>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets as random
import stat
from dataclasses import dataclass
from pathlib import Path

API_USERNAME = "botpool"


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

    def _private_file(self, name: str) -> Path:
        path = self.directory / name
        if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise SecretsError(f"{path} is readable by others: run chmod 600 {path}")
        return path

    def master_key(self) -> bytes:
        path = self._private_file("master.key")
        if not path.exists():
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            _write_private(path, random.token_hex(32) + "\n")
        return bytes.fromhex(path.read_text().strip())

    def generation(self, bot_key: str) -> int:
        path = self._private_file("rotations.json")
        return int(json.loads(path.read_text()).get(bot_key, 0)) if path.exists() else 0

    def rotate(self, bot_key: str) -> int:
        """Give one bot new API credentials on the next converge; return its new generation."""
        path = self._private_file("rotations.json")
        gens = json.loads(path.read_text()) if path.exists() else {}
        gens[bot_key] = int(gens.get(bot_key, 0)) + 1
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_private(path, json.dumps(gens, indent=2, sort_keys=True) + "\n")
        return int(gens[bot_key])

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
        return (self.directory / "credentials" / f"{name}.json").is_file()

    def exchange_credentials(self, name: str) -> dict[str, str]:
        path = self._private_file(f"credentials/{name}.json")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SecretsError(f"cannot read exchange credentials {path}: {exc}") from None
        if not isinstance(data, dict) or not {"key", "secret"} <= data.keys():
            raise SecretsError(f"{path} must be a JSON object with at least key and secret")
        return {k: str(v) for k, v in data.items()}


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
