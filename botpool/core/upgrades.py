"""Safe pool upgrades: which pools move to another image, in what order, which are held, and
the shell that moves one pool behind a health gate and rolls it back. Pure: no host, no Docker.

A pool *transitions* when a converge recreates its container on another image (a new
freqtrade version, `pip_packages`, base): freqtrade then migrates every bot's database
forward, and an older freqtrade cannot read it any more (freqtrade #12045). So, per host:

- the pools that transition go one at a time, a *canary* first (`upgrades.canary` when it is
  one of them, else the one with the fewest bots), after every other change of the host;
- each one is stopped, each bot's database is backed up by the backup payload with the old
  image (`backups/<user>/<bot>/pre-upgrade/<stamp>-from-<old tag>.sqlite.gz`), the old
  container is kept aside (renamed, stopped), and the new one must pass a *health gate*:
  every program RUNNING and every bot's API answering within `health_timeout_seconds` (a
  program FATAL fails it at once), then no program restarting or stopping for
  `settle_seconds`;
- a pool that fails its gate is rolled back (new container removed, each bot's database put
  aside as `tradesv3.sqlite.after-failed-upgrade-<stamp>`, never deleted, the pre-upgrade
  backup restored, the old container renamed back and started), the failure is recorded on
  the host (`<root>/upgrades/failed/<new tag>`) and the converge of that host stops (exit 1);
- a transition to an image recorded as failed is *held* (not tried again) unless the
  converge runs with `--data botpool_retry_upgrade=true`; so is a *downgrade* (an older
  freqtrade version than the pool runs), which would start an older freqtrade on migrated
  databases, unless `--data botpool_downgrade=restore`: then each bot gets back its newest
  pre-upgrade backup taken from an image of that version (its current database kept aside).

After a host's transitions passed, images its upgrades left behind and images that failed
are removed when no container of the engine uses them, but for the newest one left behind
(the way back of the last upgrade).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from botpool import payloads
from botpool.core import names
from botpool.core.image import REPOSITORY
from botpool.core.layout import UpgradeSettings
from botpool.core.plan import BotPlan
from botpool.core.reconcile import UnitChanges
from botpool.core.render import RenderedPool
from botpool.core.snapshot import Snapshot

UPGRADES_DIR = "upgrades"  # under the root: failed/<tag> and retired (one image a line)
ASIDE = "-before-upgrade"  # the old container's name while its successor is gated
RETRY = "botpool_retry_upgrade"  # host data: try an upgrade recorded as failed again
DOWNGRADE = "botpool_downgrade"  # host data: `restore` allows going back to an older freqtrade
_VERSION = re.compile(r"([0-9]+(?:\.[0-9]+)*)")


def tag_of(image: str) -> str:
    """`botpool/pool:2026.9-0123456789ab` -> `2026.9-0123456789ab` (names files on the host)."""
    return image.rpartition(":")[2]


def version_of(image: str) -> tuple[int, ...] | None:
    """The freqtrade release a pool image's tag names (`<version>-<hash>`), as numbers."""
    match = _VERSION.match(tag_of(image))
    return tuple(int(n) for n in match.group(1).split(".")) if match else None


@dataclass(frozen=True)
class Transition:
    """One pool moving from the image it runs to the image the plan wants."""

    pool: str
    container: str
    source: str  # the image it runs
    target: str  # the image the plan wants
    bots: tuple[BotPlan, ...]
    programs: tuple[str, ...]  # every program the gate must see RUNNING (bots and services)

    @property
    def downgrade(self) -> bool:
        """To an older freqtrade than the one that migrated its databases."""
        old, new = version_of(self.source), version_of(self.target)
        return old is not None and new is not None and new < old

    @property
    def target_version(self) -> str:
        return tag_of(self.target).partition("-")[0]


@dataclass(frozen=True)
class Rollout:
    """What a host's converge does with its transitions."""

    run: tuple[Transition, ...]  # in this order, canary first
    held: tuple[tuple[Transition, str], ...]  # not tried, and why

    @property
    def canary(self) -> Transition | None:
        return self.run[0] if self.run else None


def transitions(
    units: Iterable[UnitChanges], rendered: Iterable[RenderedPool], snap: Snapshot
) -> list[Transition]:
    """The pools whose container is recreated on another image than the one it runs."""
    pools = {r.container.name: r for r in rendered}
    found = []
    for unit in units:
        current = snap.containers.get(unit.name)
        if unit.container != "recreate" or current is None or unit.name not in pools:
            continue
        if not current.image or current.image == unit.spec.image:
            continue
        pool = pools[unit.name].pool
        found.append(
            Transition(
                pool.name,
                unit.name,
                current.image,
                unit.spec.image,
                pool.bots,
                tuple(unit.wait_for),
            )
        )
    return found


def order(found: Iterable[Transition], canary: str | None) -> list[Transition]:
    """The canary first (the one named, if it transitions; else the fewest bots), then the
    others in the order they came."""
    found = list(found)
    if not found:
        return []
    named = [t for t in found if t.pool == canary]
    first = named[0] if named else min(found, key=lambda t: (len(t.bots), t.pool))
    return [first, *[t for t in found if t is not first]]


def rollout(
    found: Iterable[Transition],
    settings: UpgradeSettings,
    failed: dict[str, str],
    retry: bool = False,
    downgrade: str = "",
) -> Rollout:
    """Which transitions run (canary first) and which are held, with the reason."""
    run, held = [], []
    for t in order(found, settings.canary):
        reason = hold_reason(t, failed, retry, downgrade)
        if reason:
            held.append((t, reason))
        else:
            run.append(t)
    return Rollout(tuple(run), tuple(held))


def hold_reason(t: Transition, failed: dict[str, str], retry: bool, downgrade: str) -> str:
    """Why a transition must not run now ("" when it may)."""
    if t.downgrade and downgrade != "restore":
        return (
            f"pool {t.pool}: the layout asks for freqtrade {t.target_version}, older than the "
            f"{tag_of(t.source)} it runs. That freqtrade migrated the bots' databases forward "
            "and an older one cannot read them (freqtrade #12045): refused. Keep the newer "
            "version in the layout, or go back to each bot's pre-upgrade backup (trades made "
            f"since the upgrade stay aside, not live) with `--data {DOWNGRADE}=restore`; "
            "`botpool restore INVENTORY USER/BOT` lists the backups"
        )
    why = failed.get(tag_of(t.target))
    if why and not retry:
        return (
            f"pool {t.pool}: the upgrade to {t.target} failed before and was rolled back "
            f"({why}); not retried blindly. Change the layout (another version or packages), "
            f"or try the same image again with `--data {RETRY}=true`"
        )
    return ""


def gate_command(
    t: Transition,
    spec_run: str,
    prepare: str,
    settings: UpgradeSettings,
    root: str,
    stamp: str,
    job: str,
) -> str:
    """The shell that moves one pool to its target image behind the health gate.

    spec_run: the shell that creates the new container (and joins its networks); prepare:
    the shell that readies the pool's folders once the old container stopped; job: a folder
    on the host holding the backup payload and a schedule of the pool's bots.
    """
    bots = "\n".join(f"{b.user} {b.name} {b.uid} {b.container_port} {b.program}" for b in t.bots)
    restore_glob = f"*-from-{t.target_version}-*.sqlite.gz" if t.downgrade else ""
    return payloads.shell(
        "upgrade.sh",
        root=root,
        pool=t.pool,
        container=t.container,
        aside=t.container + ASIDE,
        source=t.source,
        target=t.target,
        source_tag=tag_of(t.source),
        target_tag=tag_of(t.target),
        stamp=stamp,
        bots=bots,
        programs=" ".join(t.programs),
        timeout=settings.health_timeout_seconds,
        settle=settings.settle_seconds,
        mount=names.MOUNT,
        supervisor_status=payloads.source("supervisor_status.py"),
        root_label=names.ROOT,
        prepare=prepare,
        run_new=spec_run,
        job=job,
        restore_glob=restore_glob,
        database=names.DATABASE,
    )


def prune_command(root: str, wanted: Iterable[str]) -> str:
    """The shell that removes the pool images this root's upgrades left behind or that
    failed, once no container of the engine (any root) uses them; the newest image left
    behind stays (the way back of the last upgrade), and so does every image the plan wants."""
    folder = f"{root}/{UPGRADES_DIR}"
    keep = " ".join(sorted(wanted))  # tags: no spaces, no quotes
    return payloads.shell("prune-images.sh", folder=folder, keep=keep, repository=REPOSITORY)
