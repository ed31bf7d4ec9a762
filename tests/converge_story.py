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
WHEEL = "image: {ca_bundle: /etc/ssl/certs/ca-certificates.crt, pip_packages: [wheel]}"


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


GATE = "upgrades: {settle_seconds: 5}\n"  # a new image: each pool gated, briefly


def write(dep: Deployment, wheel: bool = False, **step: bool | int) -> None:
    """Write one step; wheel: an extra package in the image (a new image, new containers)."""
    dep.write(users(**step), GATE)
    if wheel:
        text = dep.layout.read_text()
        dep.layout.write_text(
            text.replace("image: {ca_bundle: /etc/ssl/certs/ca-certificates.crt}", WHEEL)
        )
        assert WHEEL in dep.layout.read_text()


def pool(user: str) -> str:
    return f"{user}-pool-1"


MAINS = [main for main, _ in SIDES.values()]
RUNTIME = {pool(user): runtime for runtime, side in SIDES.items() for user in side}
ALL_POOLS = sorted(RUNTIME)


def container_id(name: str) -> str:
    return docker("inspect", "-f", "{{.Id}}", name).strip()


def memory_limit(dep: Deployment, pool_name: str) -> int:
    return int(docker("inspect", "-f", "{{.HostConfig.Memory}}", dep.container(pool_name)))


def image_of(dep: Deployment, pool_name: str) -> str:
    return docker("inspect", "-f", "{{.Config.Image}}", dep.container(pool_name)).strip()
