"""The converge stories' layouts: both runtimes side by side in every step.

ann (three bots) and ben (one) have zygote pools, cid and dot the same bots in process pools.
Every step changes both sides in the same converge, and every assertion is made for each.
Shared by tests/test_converge_e2e.py (changes to bots) and tests/test_recreate_e2e.py
(changes that recreate pools), two deployments that run side by side.
"""

from __future__ import annotations

from .e2e import Deployment, docker

SIDES = {"zygote": ("ann", "ben"), "process": ("cid", "dot")}  # runtime -> (main, solo) users
OTHER = {"zygote": "process", "process": "zygote"}
SOLO = "{name: solo, pairs: [SOL/USDT]}"


def users(
    *,
    stake: int = 20,
    two: bool = True,
    four: bool = False,
    solo: bool = True,
    switched: bool = False,
) -> str:
    """The layout's users at one step of the story, both sides alike."""
    text = ""
    for runtime, (main, alone) in SIDES.items():
        runtime = OTHER[runtime] if switched else runtime
        bots = ["- name: one"]
        if two:
            bots.append("- {name: two, pairs: [ETH/USDT]}")
        bots.append(f"- {{name: three, stake_amount: {stake}}}")
        if four:
            bots.append("- name: four")
        text += f"{main}:\n  runtime: {runtime}\n  bots:\n" + "".join(f"    {b}\n" for b in bots)
        if solo:
            text += f"{alone}:\n  runtime: {runtime}\n  bots:\n    - {SOLO}\n"
    return text


def write(dep: Deployment, **step: bool | int) -> None:
    """Write one step of the story."""
    dep.write(users(**step))


def pool(user: str) -> str:
    return f"{user}-pool-1"


MAINS = [main for main, _ in SIDES.values()]
ALL_POOLS = sorted(pool(user) for side in SIDES.values() for user in side)


def container_id(name: str) -> str:
    return docker("inspect", "-f", "{{.Id}}", name).strip()


def memory_limit(dep: Deployment, pool_name: str) -> int:
    return int(docker("inspect", "-f", "{{.HostConfig.Memory}}", dep.container(pool_name)))
