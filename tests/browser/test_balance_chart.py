"""The balance-over-time chart: one point per operation in the table, placed by balance."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser import api
from tests.browser.wallet_page import DESKTOP, OpenPage, WalletPage
from tests.integration.servers import ServiceProcess


def point_heights(wallet_page: WalletPage) -> list[float]:
    """Each point's distance above the chart's bottom edge, oldest first, in pixels."""
    chart = wallet_page.chart.bounding_box()
    assert chart is not None
    bottom = chart["y"] + chart["height"]
    heights = []
    for point in wallet_page.chart_points.all():
        box = point.bounding_box()
        assert box is not None
        heights.append(bottom - (box["y"] + box["height"] / 2))
    return heights


def test_the_chart_appears_with_the_first_operation_and_grows_with_each(
    wallet_page: WalletPage,
) -> None:
    wallet_page.create_wallet()
    expect(wallet_page.chart).to_have_count(0)

    wallet_page.deposit("100")
    expect(wallet_page.chart).to_be_visible()
    expect(wallet_page.chart_points).to_have_count(1)

    wallet_page.withdraw("30")
    wallet_page.withdraw("500")  # refused: no point for it
    expect(wallet_page.status).to_contain_text("Insufficient funds")
    wallet_page.deposit("5.50")

    expect(wallet_page.chart_points).to_have_count(3)
    expect(wallet_page.chart).to_have_accessible_name("Balance over time")
    expect(wallet_page.chart).to_have_accessible_description(
        "Balance over 3 operations, from 100.00 USD to 75.50 USD; highest 100.00 USD,"
        " lowest 70.00 USD."
    )
    expect(wallet_page.chart).to_contain_text("100.00")  # the top of the scale
    first, second, third = point_heights(wallet_page)
    assert first > third > second > 0  # 100.00 above 75.50 above 70.00


def test_the_chart_follows_the_table_when_older_operations_load(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    [wallet_id] = api.create_wallets(service.url, 1)
    for amount in range(1, 13):
        api.deposit(service.url, wallet_id, str(amount))

    wallet_page = open_page(DESKTOP, path=f"/#wallet={wallet_id}")
    expect(wallet_page.operation_rows).to_have_count(10)
    expect(wallet_page.chart_points).to_have_count(10)

    wallet_page.page.get_by_role("button", name="More").click()

    expect(wallet_page.operation_rows).to_have_count(12)
    expect(wallet_page.chart_points).to_have_count(12)
    expect(wallet_page.chart).to_have_accessible_description(
        "Balance over 12 operations, from 1.00 USD to 78.00 USD; highest 78.00 USD,"
        " lowest 1.00 USD."
    )
    heights = point_heights(wallet_page)
    assert heights == sorted(heights)  # only deposits: the line only climbs
