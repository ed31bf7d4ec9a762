"""The dashboard in a real browser: Playwright driving Debian's chromium against a real
deployment converged with monitoring (Prometheus, the exporters), read through `botpool
dashboard inventory/local.py` exactly as a user starts it.

Screenshots of each page go to reports/dashboard/ (CI's artifacts; the README's pictures
come from there). Every answer the browser got, and every JSON endpoint, is scanned for the
bots' API credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .e2e import (
    Dashboard,
    Deployment,
    bot_rows,
    chromium,
    healthy_everywhere,
    new_deployment,
    screenshot,
    wait_for,
)

pytestmark = pytest.mark.e2e(minutes=2.0)

BOT_PORT = 20700
MONITORING_PORT = 18960  # one set per host: not the monitoring test's 18990
REFRESH_S = 3
USERS = """
alice:
  bots:
    - name: btc-trend
    - name: eth-scalp
    - name: majors
bob:
  bots:
    - name: sol-trend
"""


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = new_deployment(tmp_path_factory.mktemp("dashboard"), "e2edash", BOT_PORT)
    deployment.monitoring = f"{{base_port: {MONITORING_PORT}, scrape_interval: 2s}}"
    deployment.write(USERS)
    deployment.converge()
    deployment.wait_answering()
    yield deployment
    deployment.teardown()


@pytest.fixture(scope="module")
def dashboard(dep: Deployment) -> Iterator[Dashboard]:
    running = Dashboard(dep, refresh_s=REFRESH_S)
    yield running
    running.stop()
    assert running.process.returncode == 0, running.output()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as running:
        yield running


@pytest.fixture
def page(browser: Any, dashboard: Dashboard) -> Iterator[Any]:
    """A page whose every answer's body is kept (page.bodies, for the secret scan): each
    request goes through a route that fetches it, keeps the body, then hands it on."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.bodies = []

    def keep(route: Any) -> None:
        answer = route.fetch()
        page.bodies.append(answer.body())
        route.fulfill(response=answer)

    page.route("**/*", keep)
    yield page
    page.unroute_all(behavior="ignoreErrors")  # a poll may be in flight as the test ends
    context.close()


def secrets_of(dep: Deployment) -> list[str]:
    out = []
    for bot in dep.plan().bots:
        creds = dep.secrets.api_credentials(bot.key)
        out += [creds.password, creds.jwt_secret_key, creds.ws_token]
    return out


def test_the_fleet_page_lists_every_bot_with_its_pool_and_host_and_a_heat_row_per_pool(
    dep, dashboard, page
):
    bots = wait_for(
        lambda: healthy_everywhere(dashboard),
        timeout=120,
        what=f"every bot healthy on the dashboard\n{dashboard.output()}",
    )
    plan = dep.plan()
    assert {k: (b["pool"], b["host"]) for k, b in bots.items()} == {
        b.key: (b.pool, "@local") for b in plan.bots
    }
    wait_for(  # Prometheus has scraped the pools: the heatmap's last cells have data
        lambda: all(any(v is not None for v in row["cells"]) for row in dashboard.fleet()["heat"]),
        timeout=90,
        what="pool memory in the heatmap",
    )
    page.goto(dashboard.url + "/")
    assert page.locator("tr.bot").count() == len(plan.bots)
    assert bot_rows(page) == {b.key: [b.key, b.pool, "@local"] for b in plan.bots}
    heat = page.locator("tr.heatrow")
    assert sorted(heat.nth(i).get_attribute("data-pool") for i in range(heat.count())) == sorted(
        p.name for p in plan.pools
    )
    assert page.locator("tr.heatrow .cell:not(.hn)").count() >= len(plan.pools)
    assert page.locator("tr.host.up").count() == 1
    screenshot(page, "fleet")

    page.goto(dashboard.url + "/?user=bob")
    assert page.locator("tr.bot").all_inner_texts()[0].startswith("bob/sol-trend")
    assert page.locator("tr.bot").count() == 1 and page.locator("tr.heatrow").count() == 1


def test_a_bot_stopped_by_hand_turns_down_within_one_refresh_then_healthy_again(
    dep, dashboard, page
):
    wait_for(lambda: healthy_everywhere(dashboard), timeout=120, what="every bot healthy")
    page.goto(dashboard.url + "/")
    dep.ctl("alice-pool-1", "stop", "alice-btc-trend")
    # the refresh under way may have read the host before the stop; the next one began after
    done = refreshes(dashboard)
    wait_for(
        lambda: refreshes(dashboard) >= done + 2,
        timeout=60,
        what="the first refresh that began after the stop",
    )
    bot = dashboard.bots()["alice/btc-trend"]
    assert bot["health"] == "down" and bot["state"] == "STOPPED", bot
    assert {f["check"] for f in bot["failed"]} >= {"running", "api"}
    # the open page follows without a reload
    cell = page.locator('tr.bot[data-bot="alice/btc-trend"] .health')
    cell.filter(has_text="down").wait_for(timeout=REFRESH_S * 1000 * 3)
    assert page.locator('.count[data-health="down"] b').inner_text() == "1"
    screenshot(page, "fleet-bot-down")

    dep.converge()  # the next converge starts it again
    wait_for(lambda: healthy_everywhere(dashboard), timeout=120, what="healthy after converge")
    cell.filter(has_text="healthy").wait_for(timeout=REFRESH_S * 1000 * 5)


def refreshes(dashboard: Dashboard) -> int:
    return int(dashboard.fleet()["refreshes"])


def test_the_pool_page_draws_memory_and_cpu_and_keeps_them_current(dep, dashboard, page):
    page.goto(dashboard.url + "/pool/@local/alice-pool-1")
    page.locator("#memory-chart .uplot canvas").wait_for(timeout=60_000)
    page.locator("#cpu-chart .uplot canvas").wait_for(timeout=60_000)
    programs = page.locator("#programs").inner_text()
    assert "zygote" in programs and "alice-btc-trend" in programs and "RUNNING" in programs
    assert page.locator("#memory-chart .u-legend").inner_text().count("limit") == 1
    live = page.locator("#live-pool")
    first = live.get_attribute("data-updated")
    assert first  # updated again, without a reload:
    page.locator(f'#live-pool:not([data-updated="{first}"])').wait_for(
        state="attached", timeout=REFRESH_S * 1000 * 4
    )
    screenshot(page, "pool")


def test_the_bot_page_shows_health_settings_and_how_to_open_frequi(dep, dashboard, page):
    page.goto(dashboard.url + "/bot/alice/eth-scalp")
    assert "healthy" in page.locator("#bot-health").inner_text()
    checks = page.locator("#checks").inner_text()
    for check in ("running", "api", "heartbeat", "stagnant", "crash-loop"):
        assert check in checks
    settings = page.locator("#settings").inner_text()
    assert "SandboxScalper" in settings and "stake_amount" in settings
    (bot,) = [b for b in dep.plan().bots if b.key == "alice/eth-scalp"]
    assert f"http://127.0.0.1:{bot.host_port}" in page.locator("#tunnel").inner_text()
    page.locator("#live-bot[data-updated]").wait_for(state="attached", timeout=30_000)
    screenshot(page, "bot")


def test_nothing_secret_in_any_page_or_answer(dep, dashboard, page):
    wait_for(lambda: dashboard.fleet()["refreshes"] >= 1, timeout=120, what="a first refresh")
    for path in ("/", "/?window=1d", "/pool/@local/bob-pool-1", "/bot/bob/sol-trend"):
        page.goto(dashboard.url + path)
        page.wait_for_load_state("networkidle")
    bodies = list(page.bodies)  # pages, scripts, styles and the JSON the scripts fetched
    assert len(bodies) >= 4 * 4
    plan = dep.plan()
    paths = ["/api/fleet", "/api/fleet?window=1w"]
    paths += [f"/api/pool/@local/{p.name}" for p in plan.pools]
    paths += [f"/api/bot/{b.user}/{b.name}?window=1d" for b in plan.bots]
    paths += [f"/bot/{b.user}/{b.name}" for b in plan.bots]
    for path in paths:
        answer = dashboard.get(path)
        assert answer.status_code == 200, path
        bodies.append(answer.content)
    assert len(bodies) > len(paths)
    secrets = secrets_of(dep)
    leaked = [s for s in secrets for body in bodies if s.encode() in body]
    assert not leaked, f"{len(leaked)} secret(s) in the dashboard's answers"
    assert all(s not in dashboard.output() for s in secrets)
