"""Secrets: derived per bot, rotated per bot, never shown by accident."""

from __future__ import annotations

from botpool.cli import main
from botpool.core.secretstore import SecretStore

from .conftest import MINIMAL


def test_credentials_never_show_in_a_repr_or_a_format(secrets: SecretStore):
    creds = secrets.api_credentials("alice/one")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        for secret in (creds.password, creds.jwt_secret_key, creds.ws_token):
            assert secret not in text
    assert "botpool" in repr(creds)  # the username is not secret


def test_each_bot_gets_its_own_strong_stable_credentials(secrets: SecretStore):
    one, two = secrets.api_credentials("alice/one"), secrets.api_credentials("alice/two")
    assert one == secrets.api_credentials("alice/one")  # stable across calls
    assert len({one.password, one.jwt_secret_key, one.ws_token, two.password}) == 4
    assert len(one.password) == 32 and len(one.jwt_secret_key) == 64


def test_rotate_changes_one_bot_only_and_exits_0(write_layout, secrets, capsys):
    path = write_layout(MINIMAL + "      - name: two\n")
    before = {b: secrets.api_credentials(f"alice/{b}") for b in ("one", "two")}
    assert main(["rotate", str(path), "alice/one"]) == 0
    assert "generation 1" in capsys.readouterr().out
    assert secrets.api_credentials("alice/one") != before["one"]
    assert secrets.api_credentials("alice/two") == before["two"]
    assert (secrets.directory / "rotations.json").stat().st_mode & 0o777 == 0o600


def test_rotate_of_an_unknown_bot_exits_1_and_changes_nothing(write_layout, secrets, capsys):
    path = write_layout(MINIMAL)
    assert main(["rotate", str(path), "alice/nope"]) == 1
    assert "no bot 'alice/nope'" in capsys.readouterr().err
    assert not (secrets.directory / "rotations.json").exists()
