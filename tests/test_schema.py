"""The schema is the only source of keys and defaults, and ships as a JSON Schema for editors."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import jsonschema
import pytest
import yaml

from botpool.cli import main
from botpool.core import layout, schema
from botpool.core.source import LayoutError
from botpool.core.validate import load_layout

from .conftest import MINIMAL

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "inventory" / "layout.schema.json"


@pytest.mark.parametrize(
    ("model", "keys"),
    [
        (layout.BotSettings, schema.BOT_SETTINGS),
        (layout.CheckSettings, schema.CHECKS),
        (layout.MonitoringSettings, schema.MONITORING),
        (layout.BackupSettings, schema.BACKUPS),
        (layout.UpgradeSettings, schema.UPGRADES),
    ],
)
def test_typed_settings_read_only_schema_keys(model, keys):
    assert set(typing.get_type_hints(model)) - {"KEYS", "values"} <= keys.keys()


@pytest.mark.parametrize(
    ("model", "keys", "extra"),
    [
        (layout.Host, schema.HOST, {"name", "line"}),
        (layout.ExchangeProfile, schema.EXCHANGE, {"name"}),
        (layout.ImageSettings, schema.IMAGE, {"ca_bundle_pem"}),
    ],
)
def test_model_fields_are_the_schema_keys_and_restate_no_default(model, keys, extra):
    fields = {f.name: f for f in dataclasses.fields(model)}
    assert fields.keys() == keys.keys() | extra
    restated = [
        f.name
        for f in fields.values()
        if f.default is not dataclasses.MISSING and f.name not in extra
    ]
    assert restated == []


def test_every_default_comes_from_the_schema(write_layout):
    bot = load_layout(write_layout(MINIMAL)).bots[0].settings
    for key, spec in schema.BOT_SETTINGS.items():
        if spec.default is not schema.REQUIRED and key not in ("dry_run_wallet", "pairs"):
            assert bot.values[key] == spec.default, key
    assert layout.CheckSettings().values == {k: s.default for k, s in schema.CHECKS.items()}


def test_a_new_bot_setting_is_one_schema_entry(write_layout, monkeypatch):
    """Adding a key to the schema is enough for a layout to set it and a bot to carry it."""
    entry = schema.Key(schema.integer(1, 10), 5, "a setting added in a test")
    monkeypatch.setitem(schema.BOT_SETTINGS, "new_setting", entry)
    monkeypatch.setitem(schema.BOT, "new_setting", entry)  # (a file edit updates both)
    path = write_layout(MINIMAL.replace("- name: one", "- {name: one, new_setting: 7}"))
    (bot,) = load_layout(path).bots
    assert bot.settings.new_setting == 7
    assert load_layout(write_layout(MINIMAL)).bots[0].settings.new_setting == 5


def test_settings_are_immutable_and_refuse_unknown_keys():
    settings = layout.CheckSettings(max_exits_per_hour=1)
    with pytest.raises(AttributeError):
        settings.max_exits_per_hour = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match="unknown settings"):
        layout.CheckSettings(nope=1)
    with pytest.raises(AttributeError, match="no setting 'nope'"):
        _ = settings.nope


def test_the_shipped_json_schema_is_current():
    """`botpool schema > inventory/layout.schema.json` after changing a key."""
    assert json.loads(SHIPPED.read_text()) == schema.json_schema()


def test_the_cli_prints_the_json_schema(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == schema.json_schema()


def _validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema.json_schema())
    cls.check_schema(schema.json_schema())
    return cls(schema.json_schema())


@pytest.mark.parametrize("name", ["layout", "loadtest", "production"])
def test_example_layouts_pass_the_json_schema(name):
    data = yaml.safe_load((REPO / "inventory" / f"{name}.yaml").read_text())
    assert list(_validator().iter_errors(data)) == []
    assert (
        (REPO / "inventory" / f"{name}.yaml")
        .read_text()
        .startswith("# yaml-language-server: $schema=layout.schema.json\n")
    )


@pytest.mark.parametrize(
    "edit",
    [
        ("stake_amount: 10", "stake_ammount: 10"),  # a typo
        ("- name: one", "- name: One"),  # not a name
        ("pairs: [BTC/USDT]", "pairs: [btc-usdt]"),
        ("stake_amount: 10", "stake_amount: -1"),
        ("users:", "checks: {max_exits_per_hour: -1}\nusers:"),
        ("users:", "hosts: {h: {memory_mb: 1}}\nusers:"),
    ],
)
def test_mistakes_are_caught_by_the_json_schema_as_by_botpool(write_layout, edit):
    data = yaml.safe_load(MINIMAL.replace(*edit))
    assert list(_validator().iter_errors(data)), edit
    with pytest.raises(LayoutError):
        load_layout(write_layout(MINIMAL.replace(*edit)))
