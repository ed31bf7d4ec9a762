"""The README's dashboard screenshots, taken from a converged fleet with some history.

    BOTPOOL_LAYOUT=inventory/mine.yaml .venv/bin/python scripts/dashboard-screenshots.py \
        inventory/local.py docs/dashboard/example [--window 1h]

Starts `botpool dashboard INVENTORY --port 0`, waits for its first refresh, then saves the
fleet page, the first pool's page and the first bot's page (whole pages, 1400 px wide) with
Playwright driving Debian's chromium (Playwright's own browser download cannot work on these
machines). It only reads, as the dashboard does; the browser test
(tests/test_dashboard_e2e.py) is what proves the pages.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inventory")
    parser.add_argument("out", type=Path)
    parser.add_argument("--window", default="1h", choices=("1h", "1d", "1w"))
    args = parser.parse_args()
    server = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "botpool"), "dashboard", args.inventory, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split(" on ", 1)[1].strip().rstrip("/")
        deadline = time.monotonic() + 120
        while (fleet := httpx.get(f"{url}/api/fleet", timeout=60).json())["refreshes"] < 1:
            if time.monotonic() > deadline:
                raise SystemExit("the dashboard did not refresh within 120 s")
            time.sleep(1)
        host = fleet["hosts"][0]
        pool = host["pools"][0]
        bot = pool["bots"][0]["key"]
        pages = {
            "fleet": f"/?window={args.window}",
            "pool": f"/pool/{host['name']}/{pool['name']}?window={args.window}",
            "bot": f"/bot/{bot}?window={args.window}",
        }
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            for name, path in pages.items():
                page.goto(url + path, wait_until="networkidle")
                page.wait_for_timeout(1500)  # the charts draw after their data arrives
                page.screenshot(path=str(args.out / f"{name}.png"), full_page=True)
                print(args.out / f"{name}.png")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
