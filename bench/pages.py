"""Where a zygote bot's memory goes, page by page.

    sudo .venv/bin/python bench/pages.py

For every zygote on this machine (any pool, any engine: the processes of containers, nested
ones included, are this kernel's) and each bot it forked, the bot's resident pages by what
the zygote has at the same address (/proc/<pid>/pagemap, which gives page frame numbers to
root only):
    shared  the zygote's very page: the bot costs it nothing more (PSS divides it)
    copied  the zygote has a page there and the bot its own copy (copy-on-write: the bot
            wrote to it, or CPython did for it, e.g. a reference count)
    new     the zygote has no page there: what the bot allocated or touched first
in MiB, split by mapping (heap: glibc's brk heap; anon: other anonymous memory, where
CPython's small-object allocator and numpy live; lib: shared libraries and other files).
One line a bot, and a mean per zygote. Reads only.
"""

from __future__ import annotations

import os
import struct
import sys
from collections import Counter

PAGE = os.sysconf("SC_PAGE_SIZE")
PRESENT = 1 << 63
FRAME = (1 << 55) - 1
HUGE = 1 << 30  # address ranges larger than this are reservations, not memory: skipped


def command(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def kind(name: str) -> str:
    if name == "[heap]":
        return "heap"
    return "lib" if name.startswith("/") else "anon"


def frames(pid: int) -> dict[int, tuple[int, str]]:
    """address -> (page frame, mapping kind) of every resident page."""
    found: dict[int, tuple[int, str]] = {}
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if end - start > HUGE:
                continue
            pagemap.seek(start // PAGE * 8)
            data = pagemap.read((end - start) // PAGE * 8)
            what = kind(fields[5] if len(fields) > 5 else "")
            for i, (entry,) in enumerate(struct.iter_unpack("<Q", data)):
                if entry & PRESENT:
                    found[start + i * PAGE] = (entry & FRAME, what)
    return found


def classify(bot: dict[int, tuple[int, str]], zygote: dict[int, tuple[int, str]]) -> Counter:
    pages: Counter = Counter()
    for address, (frame, what) in bot.items():
        mine = zygote.get(address)
        pages["shared" if mine and mine[0] == frame else "copied" if mine else "new", what] += 1
    return pages


def mib(pages: float) -> str:
    return f"{pages * PAGE / 2**20:.0f}"


def main() -> int:
    if os.geteuid() != 0:
        print("pages.py: page frame numbers are given to root only", file=sys.stderr)
        return 1
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    links: dict[int, int] = {}
    for pid in pids:
        try:
            links[pid] = parent(pid)
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
    zygotes = []
    for pid, ppid in links.items():
        try:
            if "zygote.py serve" in command(pid) and "zygote.py serve" not in command(ppid):
                zygotes.append(pid)
        except OSError:
            continue
    print("zygote  bot     shared  copied  new  (MiB; copied: heap/anon, new: heap/anon/lib)")
    for zygote in sorted(zygotes):
        try:
            theirs = frames(zygote)
        except OSError:
            continue
        totals: Counter = Counter()
        bots = 0
        for bot in sorted(p for p, pp in links.items() if pp == zygote):
            try:
                pages = classify(frames(bot), theirs)
            except OSError:
                continue
            bots += 1
            totals.update(pages)
            print(row(zygote, str(bot), pages, 1))
        if bots:
            print(row(zygote, "mean", totals, bots))
    return 0


def row(zygote: int, bot: str, pages: Counter, n: int) -> str:
    def total(cls: str) -> str:
        return mib(sum(v for (c, _), v in pages.items() if c == cls) / n)

    def split(cls: str, kinds: tuple[str, ...]) -> str:
        return "/".join(mib(pages[cls, k] / n) for k in kinds)

    return (
        f"{zygote:<7} {bot:<7} {total('shared'):>6}  {total('copied'):>6}  {total('new'):>4}"
        f"  ({split('copied', ('heap', 'anon'))}; {split('new', ('heap', 'anon', 'lib'))})"
    )


if __name__ == "__main__":
    sys.exit(main())
