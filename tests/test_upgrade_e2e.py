"""Safe upgrades on the real engine: a canary that fails its health gate is rolled back with
every trade, the other pools never touched; the same image is then held; an image that works
goes pool by pool, canary first, and the images left behind are pruned.

The failing image is a real pool image whose freqtrade cannot start: `pip_packages:
[SQLAlchemy==1.4.54]` installs over freqtrade's SQLAlchemy 2 (pip warns and succeeds), and
freqtrade's import of `sqlalchemy.orm.DeclarativeBase` then fails, so no bot's program stays
RUNNING and no API answers, exactly as a strategy's pinned dependency or a broken freqtrade
release would. It takes a `pip install` (about a minute), not a build of another freqtrade
version (many), and it goes through the same path: a new image tag, so a new container spec,
so each pool's container recreated on it. The working image adds a harmless extra package
(`wheel`). Both runtimes: ann's pool runs a process a bot, ben's a zygote.
"""

from __future__ import annotations

import gzip

import pytest

from .e2e import Deployment, docker, kept_trades_in, new_deployment, wait_for

pytestmark = pytest.mark.e2e(minutes=3.2)

# both runtimes: ann's pool runs a freqtrade process a bot, ben's (the canary: the fewest
# bots) forks its bot from a zygote
USERS = """
ann:
  runtime: process
  bots:
    - name: one
    - {name: two, pairs: [ETH/USDT]}
ben:
  runtime: zygote
  bots:
    - name: solo
"""
# the broken image is waited for until the gate's end, so that gate is short; a working image
# passes as soon as every bot answers, so its gate is only a bound, long enough for a zygote's
# preload and the bots' start on a machine that is busy (a full test run beside a soak took
# more than 60 s)
GATE = "upgrades: {health_timeout_seconds: 60, settle_seconds: 10}\n"
WORKING_GATE = "upgrades: {health_timeout_seconds: 300, settle_seconds: 10}\n"
BASE = "image: {ca_bundle: /etc/ssl/certs/ca-certificates.crt}"
BROKEN = (
    "image: {ca_bundle: /etc/ssl/certs/ca-certificates.crt, pip_packages: [SQLAlchemy==1.4.54]}"
)
WORKS = "image: {ca_bundle: /etc/ssl/certs/ca-certificates.crt, pip_packages: [wheel]}"
BOTS = (("ann", "one"), ("ann", "two"), ("ben", "solo"))


@pytest.fixture(scope="module")
def dep(tmp_path_factory) -> Deployment:
    deployment = new_deployment(tmp_path_factory.mktemp("upgrade"), "e2eupg", 20400)
    deployment.write(USERS, GATE)
    yield deployment
    deployment.teardown()


def use_image(dep: Deployment, image: str, gate: str = GATE) -> None:
    dep.write(USERS, gate)
    text = dep.layout.read_text()
    dep.layout.write_text(text.replace(BASE, image))
    assert image in dep.layout.read_text()


def image_of(dep: Deployment, pool: str) -> str:
    return docker("inspect", "-f", "{{.Config.Image}}", dep.container(pool)).strip()


def container_id(dep: Deployment, pool: str) -> str:
    return docker("inspect", "-f", "{{.Id}}", dep.container(pool)).strip()


def kept(dep: Deployment) -> dict[tuple[str, str], set[int]]:
    """Each bot's trades with a fill: the ones no upgrade may lose (tests/e2e.py says why)."""
    return {(u, b): dep.kept_trades(u, b) for u, b in BOTS}


def database(dep: Deployment, user: str, bot: str):  # noqa: ANN201
    return dep.root / "pools" / f"{user}-pool-1" / "bots" / bot / "user_data" / "tradesv3.sqlite"


def test_the_fleet_trades_on_its_first_image(dep):
    dep.converge()
    dep.wait_answering()
    for user, bot in BOTS:
        wait_for(
            lambda u=user, b=bot: dep.kept_trades(u, b),
            timeout=360,  # the sandbox scalper trades within minutes, on a busy machine too
            what=f"a filled trade of {user}/{bot}",
            then=lambda u=user, b=bot: dep.log_tail(u, b),
        )


def test_a_canary_that_fails_its_gate_is_rolled_back_with_every_trade(dep):
    old = image_of(dep, "ben-pool-1")
    ann = container_id(dep, "ann-pool-1")
    ann_pids = dep.pids("ann-pool-1")
    before = kept(dep)
    use_image(dep, BROKEN)
    run = dep.converge(check=False)
    assert run.returncode != 0, run.output[-3000:]
    # the canary is the smallest pool, named with what failed and the bot's own log
    assert "pool ben-pool-1 FAILED its upgrade to botpool/pool:2026.9-" in run.output
    # FATAL (supervisor gave up on it) fails the gate at once, not after its 60 s
    assert "ben-solo is FATAL: it exited at every start and supervisor gave up" in run.output
    assert "the last lines of ben/solo's log" in run.output
    assert "It was rolled back" in run.output
    # rolled back: its old image, its old container (renamed back), its bots answering
    assert image_of(dep, "ben-pool-1") == old
    dep.wait_answering()
    after = dep.kept_trades("ben", "solo")
    assert before[("ben", "solo")] <= after  # every trade it had, and it trades on
    # the pre-upgrade backup is what it runs on again; the failed attempt's database is aside
    (backup,) = (dep.root / "backups" / "ben" / "solo" / "pre-upgrade").iterdir()
    assert backup.name.endswith(f"-from-{old.rpartition(':')[2]}.sqlite.gz")
    copy = dep.directory / "pre-upgrade.sqlite"
    copy.write_bytes(gzip.decompress(backup.read_bytes()))
    assert before[("ben", "solo")] <= {t[0] for t in kept_trades_in(copy)} <= after
    aside = list(database(dep, "ben", "solo").parent.glob("tradesv3.sqlite.after-failed-upgrade-*"))
    assert aside, "the failed attempt's database was not kept"
    # the other pool was never touched: same container, same processes, old image
    assert container_id(dep, "ann-pool-1") == ann and image_of(dep, "ann-pool-1") == old
    assert dep.pids("ann-pool-1") == ann_pids
    assert not (dep.root / "backups" / "ann").joinpath("one", "pre-upgrade").exists()
    # the failure is recorded on the host
    (record,) = (dep.root / "upgrades" / "failed").iterdir()
    assert record.read_text().startswith("ben-solo: ")


def test_the_next_converge_does_not_retry_the_failed_image_blindly(dep):
    ids = {p: container_id(dep, p) for p in ("ann-pool-1", "ben-pool-1")}
    run = dep.converge(check=False)
    assert run.returncode != 0
    assert "failed before and was rolled back" in run.output
    assert "--data botpool_retry_upgrade=true" in run.output
    assert {p: container_id(dep, p) for p in ids} == ids  # nothing recreated


def test_an_image_that_works_goes_pool_by_pool_canary_first_and_keeps_every_trade(dep):
    old = image_of(dep, "ben-pool-1")
    broken = sorted((dep.root / "upgrades" / "failed").iterdir())[0].name
    before = kept(dep)
    use_image(dep, WORKS, WORKING_GATE)
    run = dep.converge()
    new = image_of(dep, "ann-pool-1")
    gated = [op.split(" | ")[-1] for op in run.operations if ": upgrade from " in op]
    # one pool after the other, the canary (the fewest bots) first, each held to its gate with
    # every program: ben's bot and its zygote, ann's two bots
    assert gated == [
        f"{dep.container('ben-pool-1')}: upgrade from {old} to {new}, gated (2 programs)",
        f"{dep.container('ann-pool-1')}: upgrade from {old} to {new}, gated (2 programs)",
    ], run.operations
    assert new != old and image_of(dep, "ben-pool-1") == new
    dep.wait_answering()
    for user, bot in BOTS:
        assert before[(user, bot)] <= dep.kept_trades(user, bot)
        assert list((dep.root / "backups" / user / bot / "pre-upgrade").glob("*-from-*"))
    # no container aside is left; the old image stays (the way back), the failed one went
    assert not [
        n for n in docker("ps", "-a", "--format", "{{.Names}}").split() if "before-upgrade" in n
    ]
    assert (dep.root / "upgrades" / "retired").read_text().splitlines()[-1] == old
    assert docker("image", "inspect", old, check=False)
    assert not docker("image", "inspect", f"botpool/pool:{broken}", check=False).strip("[]\n ")
    assert dep.converge().operations == []
