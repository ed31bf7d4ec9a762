"""`make mutants`: break the lines that matter, one at a time, and see a fast test fail.

Each mutant is one small edit of botpool's code that a real bug could make (a hash that
forgets an input, an off-by-one, a check that stops counting). For each, the tree is copied,
the edit applied, and the unit tests that guard it are run; a mutant that survives means
those tests cannot tell the bug from the code. Exit 0 when every mutant is killed.

    .venv/bin/python scripts/mutants.py [NAME_SUBSTRING ...]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COPIED = (
    "botpool",
    "tasks",
    "tests",
    "templates",
    "checks",
    "inventory",
    "pyproject.toml",
    "README.md",
)


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    original: str  # must occur exactly once in file
    mutated: str
    tests: tuple[str, ...]  # the test files that must kill it


MUTANTS = (
    Mutant(
        "a moved pool never keeps its port block",
        "botpool/core/allocate.py",
        "first = _free_block(layout, host, block.size, pools, prefer=block.first_port)",
        "first = _free_block(layout, host, block.size, pools)",
        ("tests/test_allocate.py",),
    ),
    Mutant(
        "the stake check uses the wallet, not wallet x tradable_balance_ratio",
        "botpool/core/validate.py",
        "available = wallet * s.tradable_balance_ratio",
        "available = wallet",
        ("tests/test_layout.py",),
    ),
    Mutant(
        "an off-by-one in the stake check",
        "botpool/core/validate.py",
        "elif s.stake_amount * s.max_open_trades > available * (1 + 1e-9):",
        "elif s.stake_amount * (s.max_open_trades + 1) > available * (1 + 1e-9):",
        ("tests/test_layout.py",),
    ),
    Mutant(
        "the secret type prints its secrets",
        "botpool/core/secretstore.py",
        "    def __repr__(self) -> str:  # never print a secret by accident",
        "    def __repr_off__(self) -> str:  # never print a secret by accident",
        ("tests/test_secrets.py",),
    ),
    Mutant(
        "a lock's port blocks may overlap",
        "botpool/core/allocate.py",
        "if after.first_port < before.first_port + before.size:",
        "if after.first_port < before.first_port:",
        ("tests/test_hostile_inputs.py", "-k", "lock"),
    ),
    Mutant(
        "the spec hash ignores the memory limit",
        "botpool/core/render.py",
        '        spec.pop("labels")\n',
        '        spec.pop("labels")\n        spec.pop("memory_limit_mb")\n',
        ("tests/test_render.py", "tests/test_reconcile.py"),
    ),
    Mutant(
        "the spec hash ignores supervisord.conf",
        "botpool/core/render.py",
        'inputs=(("supervisord.conf", sha256(supervisord)),),',
        "inputs=(),",
        ("tests/test_render.py", "tests/test_reconcile.py"),
    ),
    Mutant(
        "a strategy edit restarts none of its bots",
        "botpool/core/render.py",
        "inputs = sha256(config.hash + strategy_hash[bot.settings.strategy])[:16]",
        "inputs = sha256(config.hash)[:16]",
        ("tests/test_render.py", "tests/test_reconcile.py"),
    ),
    Mutant(
        "a stopped container is never started",
        "botpool/core/reconcile.py",
        "        if not current.running:",
        "        if False:",
        ("tests/test_reconcile.py",),
    ),
    Mutant(
        "FATAL is not counted as down",
        "botpool/core/reconcile.py",
        'DOWN_STATES = {"STOPPED", "EXITED", "FATAL"}',
        'DOWN_STATES = {"STOPPED", "EXITED"}',
        ("tests/test_reconcile.py",),
    ),
    Mutant(
        "the snapshot sees every container running",
        "botpool/core/snapshot.py",
        'seen["state"] == "running",',
        "True,",
        ("tests/test_snapshot.py", "tests/test_reconcile.py"),
    ),
    Mutant(
        "the crash-loop check ignores the exit count",
        "botpool/core/health.py",
        'bot.state not in ("FATAL", "BACKOFF") and exits <= limit,',
        'bot.state not in ("FATAL", "BACKOFF"),',
        ("tests/test_health.py",),
    ),
    Mutant(
        "FATAL is no crash loop",
        "botpool/core/health.py",
        'bot.state not in ("FATAL", "BACKOFF") and exits <= limit,',
        'bot.state not in ("BACKOFF",) and exits <= limit,',
        ("tests/test_health.py",),
    ),
    Mutant(
        "drift shows the values that differ",
        "botpool/hosts/drift.py",
        'return [] if a == b else [prefix.rstrip(".")]',
        "return [] if a == b else [f\"{prefix.rstrip('.')}={b}\"]",
        ("tests/test_drift.py",),
    ),
    Mutant(
        "an older botpool's root keeps a planted program file through its upgrade converge",
        "botpool/core/reconcile.py",
        "    if not snap.marked and snap.containers:",
        "    if False:",
        ("tests/test_reconcile.py",),
    ),
    Mutant(
        "a root without botpool's marker has its folders deleted",
        "botpool/core/reconcile.py",
        "    elif not snap.marked:\n        _hold_deletions(changes, report)",
        "    elif False:\n        _hold_deletions(changes, report)",
        ("tests/test_reconcile.py",),
    ),
    Mutant(
        "a pattern accepts a trailing newline again",
        "botpool/core/schema.py",
        "if isinstance(value, str) and NAME_RE.fullmatch(value):",
        "if isinstance(value, str) and re.match(NAME_RE.pattern + '$', value):",
        ("tests/test_hostile_inputs.py", "-k", "newline"),
    ),
    Mutant(
        "a new launcher.py never restarts the launchers",
        "botpool/core/runtimes.py",
        "        return _hash(launcher.__file__)",
        '        return ""',
        ("tests/test_render.py", "-k", "runtime_code"),
    ),
    Mutant(
        "an image with extra packages is built without its parent first",
        "botpool/core/image.py",
        "return [*(self.parent.build_order if self.parent else []), self]",
        "return [self]",
        ("tests/test_image.py",),
    ),
    Mutant(
        "the exporter keeps a pool's supervisor status though its processes changed",
        "botpool/payloads/exporter.py",
        "if last is None or now - last.at >= self.every or pids != last.pids:",
        "if last is None or now - last.at >= self.every:",
        ("tests/test_monitoring.py", "-k", "status"),
    ),
    Mutant(
        "the exporter keeps a pool's status while a program is between states",
        "botpool/payloads/exporter.py",
        "if any(p.state not in STEADY for p in last.programs.values()):",
        "if False:",
        ("tests/test_monitoring.py", "-k", "status"),
    ),
)


def run(mutant: Mutant) -> tuple[int, float]:
    """(pytest's exit code, seconds): the mutant applied to a copy of the tree, its tests run.

    1 (tests failed) kills it; 0 means it survived; anything else (a collection error, no
    tests) says the mutant is broken, not that a test caught it."""
    with tempfile.TemporaryDirectory(prefix="botpool-mutant-") as temp:
        tree = Path(temp)
        tree.chmod(0o755)  # the zygote's tests run files of the tree as bots' uids
        for name in COPIED:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, tree / name)
        target = tree / mutant.file
        text = target.read_text()
        if text.count(mutant.original) != 1:
            raise SystemExit(f"{mutant.name}: the original line is not in {mutant.file} once")
        if mutant.mutated:  # (the empty mutant: the tree as it is, whose tests must pass)
            target.write_text(text.replace(mutant.original, mutant.mutated))
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                "-m",
                "not e2e",
                *mutant.tests,
            ],
            cwd=tree,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree), "HOME": temp},
            capture_output=True,
            text=True,
        )
        return proc.returncode, time.monotonic() - started


def main(filters: list[str]) -> int:
    chosen = [m for m in MUTANTS if not filters or any(f in m.name for f in filters)]
    files = tuple(sorted({t for m in chosen for t in m.tests if t.startswith("tests/")}))
    baseline, _ = run(Mutant("the tree as it is", chosen[0].file, chosen[0].original, "", files))
    if baseline != 0:
        print(f"the unmutated tree fails its own tests (pytest exit {baseline}): fix that first")
        return 1
    survivors = []
    for mutant in chosen:
        code, seconds = run(mutant)
        verdict = {0: "SURVIVED", 1: "killed"}.get(code, f"BROKEN (pytest exit {code})")
        print(f"{verdict:9} {seconds:5.1f}s  {mutant.name}")
        if code != 1:
            survivors.append(mutant.name)
    print(f"{len(chosen) - len(survivors)} of {len(chosen)} mutants killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
