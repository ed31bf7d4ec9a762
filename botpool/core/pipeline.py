"""One host's pipeline: which layout it follows, what it should run, and how that differs
from what it runs.

    layout ──plan──> Plan ──render one host──> Desired ──compare with a Snapshot──> HostChanges

Converge (tasks/context.py), drift and the checks (botpool/drift.py), status and render all
go through here, so "no drift" means "a converge would change nothing" by construction:
both are the same `compare` of the same `Desired` with the same snapshot. Pure but for
reading the layout's files and the secret store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from botpool.core import snapshot
from botpool.core.image import ImageSpec, pool_images
from botpool.core.monitoring import RenderedMonitoring, render_monitoring
from botpool.core.plan import HostPlan, Plan, load_plan
from botpool.core.reconcile import Difference, HostChanges, reconcile
from botpool.core.render import (
    Artifact,
    RenderedExchange,
    RenderedJob,
    RenderedPool,
    render_backup_job,
    render_host,
)
from botpool.core.secretstore import SecretStore
from botpool.core.source import LayoutError, Problem

# the vocabulary its callers use to talk about a host (they import nothing further down)
__all__ = [
    "Artifact",
    "Desired",
    "Difference",
    "HostChanges",
    "HostNotDeclared",
    "HostRef",
    "desired",
    "host_ref",
    "plan_of",
]
DEFAULT_LAYOUT = "inventory/layout.yaml"


class HostNotDeclared(LayoutError):
    """An inventory host that maps to no host of its layout: never "a host that should run
    nothing" (that would archive everything it runs)."""


@dataclass(frozen=True)
class HostRef:
    """Where an inventory host's desired state comes from."""

    layout: str  # the layout file
    host: str  # its name in the layout's hosts:


def host_ref(inventory_name: str, data: Mapping[str, Any]) -> HostRef:
    """The layout an inventory host follows: $BOTPOOL_LAYOUT, else its `botpool_layout` data,
    else inventory/layout.yaml; its name there: `botpool_host`, else the inventory name."""
    layout = os.environ.get("BOTPOOL_LAYOUT") or data.get("botpool_layout") or DEFAULT_LAYOUT
    return HostRef(str(layout), str(data.get("botpool_host") or inventory_name))


@cache
def plan_of(layout: str) -> Plan:
    """Layout + lock -> Plan, read once per process (LayoutError with every problem)."""
    return load_plan(layout, SecretStore.from_env())


@dataclass(frozen=True)
class Desired:
    """Everything one host should run: its plan, images, rendered pools, exchanges and
    monitoring."""

    plan: Plan
    host: HostPlan
    images: dict[str, ImageSpec]  # freqtrade version -> pool image
    pools: list[RenderedPool]
    exchanges: list[RenderedExchange]
    jobs: list[RenderedJob]  # the backup job, unless backups are off or no bot runs here
    monitoring: RenderedMonitoring | None = None  # None: monitoring is off

    @property
    def root(self) -> str:
        return self.plan.layout.root

    def snapshot_command(self) -> str:
        """The one shell command that reads what this host runs under its root."""
        return snapshot.command(self.root)

    def compare(self, snap: snapshot.Snapshot) -> HostChanges:
        """What a converge would change on a host that shows snap (drift is the same list)."""
        return reconcile(
            snap, self.pools, self.exchanges, jobs=self.jobs, monitoring=self.monitoring
        )


def desired(ref: HostRef, plan: Plan | None = None) -> Desired:
    """Plan and render one host; HostNotDeclared if its layout does not declare it."""
    plan = plan or plan_of(ref.layout)
    if ref.host not in plan.hosts:
        raise HostNotDeclared(
            [
                Problem(
                    plan.layout.file,
                    1,
                    "hosts",
                    f"no host {ref.host!r} (hosts: {', '.join(plan.hosts)}): set the "
                    "inventory host's botpool_host data to one of them, or declare it",
                )
            ]
        )
    images = pool_images(plan.layout)
    tags = {version: spec.tag for version, spec in images.items()}
    secrets = SecretStore.from_env()
    host = plan.hosts[ref.host]
    pools, exchanges = render_host(plan, host, tags, secrets)
    monitoring = render_monitoring(plan, host, pools, secrets)
    job = render_backup_job(plan, host, tags[plan.layout.freqtrade_version])
    return Desired(plan, host, images, pools, exchanges, [job] if job else [], monitoring)
