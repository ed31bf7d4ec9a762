"""Memory of pool containers as the kernel accounts it: PSS from /proc/<pid>/smaps_rollup.

PSS (proportional set size) splits every shared page among the processes sharing it, so
the PSS of all processes of a pool adds up to what the pool really costs; RSS would count
the zygote's shared pages once per bot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.soak_inside import pss_kib  # standard library only: it runs in the VPS too
from tests.e2e import docker


@dataclass
class PoolMemory:
    """PSS (KiB) of one pool container's processes, by role."""

    total: int = 0
    supervisord: int = 0
    zygote: int = 0
    bots: list[int] = field(default_factory=list)  # each bot: its process (+ its launcher)

    @property
    def per_bot_mib(self) -> float:
        return self.total / len(self.bots) / 1024 if self.bots else 0.0


def pool_memory(name: str) -> PoolMemory:
    """Whatever the runtime: freqtrade processes, or zygote children plus their launchers."""
    rows = []
    for line in docker("top", name, "-eo", "pid,ppid,args", check=False).splitlines()[1:]:
        pid, ppid, args = line.split(None, 2)
        rows.append((int(pid), int(ppid), args, pss_kib(int(pid))))
    return classify(rows)


def classify(rows: list[tuple[int, int, str, int]]) -> PoolMemory:
    """A pool's processes `(pid, ppid, args, PSS KiB)` by role, wherever they were read (here,
    or inside a VPS by bench/soak.py)."""
    memory = PoolMemory(total=sum(r[3] for r in rows))
    zygotes = {pid for pid, ppid, args, _ in rows if " serve " in args and "zygote.py" in args}
    launchers = [kib for _, _, args, kib in rows if "launcher.py" in args]
    for pid, ppid, args, kib in rows:
        if "supervisord" in args:
            memory.supervisord += kib
        elif pid in zygotes and ppid not in zygotes:
            memory.zygote += kib
        elif ppid in zygotes or "zygote.py run" in args or "freqtrade trade" in args:
            memory.bots.append(kib)
    if launchers and len(launchers) == len(memory.bots):
        memory.bots = [b + launcher for b, launcher in zip(memory.bots, launchers, strict=True)]
    return memory
