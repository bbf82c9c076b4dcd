"""Screenshots of the page at phone and desktop widths, light and dark, for people to look at.

They land in ``artifacts/screenshots/`` (git-ignored). The test also checks what a
screenshot cannot be trusted to show: nothing is wider than the screen.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.browser import api
from tests.browser.wallet_page import DESKTOP, PHONE, OpenPage
from tests.integration.servers import ServiceProcess

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

WIDEST_ELEMENT = """() => Math.max(...Array.from(document.querySelectorAll("body *"))
  .filter((e) => !e.closest(".sr-only, .skip-link, .table-wrap"))
  .map((e) => e.getBoundingClientRect().right))"""


def test_screenshots_at_phone_and_desktop_width(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    wallet_id, *_ = api.create_wallets(service.url, 4)
    for amount in ("120", "35.50", "80", "12.25", "60"):
        api.deposit(service.url, wallet_id, amount)

    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        for scheme in ("light", "dark"):
            wallet_page = open_page(viewport, color_scheme=scheme, path=f"/#wallet={wallet_id}")
            expect(wallet_page.chart_points).to_have_count(5)
            wallet_page.withdraw("1000")  # refused: shows an error message, changes nothing
            expect(wallet_page.status).to_contain_text("Insufficient funds")
            page = wallet_page.page

            width = viewport["width"]
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            assert page.evaluate(WIDEST_ELEMENT) <= width
            chart = wallet_page.chart.bounding_box()
            assert chart is not None
            assert chart["x"] >= 0
            assert chart["x"] + chart["width"] <= width

            page.evaluate("window.scrollTo(0, 0)")  # the sticky message where it belongs
            path = SCREENSHOTS / f"wallet-page-{name}-{width}px-{scheme}.png"
            page.screenshot(path=path, full_page=True)
            assert path.stat().st_size > 10_000
