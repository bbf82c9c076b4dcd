"""Wallets in other currencies on the page: chosen at creation, shown with their code and
their own decimals, and each amount checked against the selected wallet's currency."""

from __future__ import annotations

import pytest
from playwright.sync_api import Request, expect

from tests.browser.wallet_page import WalletPage
from wallet.domain.currency import CURRENCIES

GROUPED = """async (amounts) => {
  const { groupDigits } = await import("/static/format.js");
  return amounts.map(groupDigits);
}"""


def is_wallet_creation(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith("/api/v1/wallets")


def test_the_default_currency_is_preselected_among_all_the_service_accepts(
    wallet_page: WalletPage,
) -> None:
    expect(wallet_page.currency).to_have_value("USD")
    expect(wallet_page.currency.locator("option")).to_have_count(len(CURRENCIES))

    with wallet_page.page.expect_request(is_wallet_creation) as created:
        wallet_id = wallet_page.create_wallet()

    assert created.value.post_data_json == {"currency": "USD"}
    expect(wallet_page.status).to_have_text(f"Created wallet {wallet_id} — balance 0.00 USD")


@pytest.mark.service_env(WALLET_DEFAULT_CURRENCY="BHD")
def test_the_page_preselects_the_default_its_service_is_configured_with(
    wallet_page: WalletPage,
) -> None:
    expect(wallet_page.currency).to_have_value("BHD")

    wallet_page.create_wallet()

    expect(wallet_page.balance).to_have_text("0.000 BHD")


def test_a_yen_wallet_takes_and_shows_whole_units(wallet_page: WalletPage) -> None:
    with wallet_page.page.expect_request(is_wallet_creation) as created:
        wallet_id = wallet_page.create_wallet("JPY")
    assert created.value.post_data_json == {"currency": "JPY"}
    assert created.value.headers["content-type"] == "application/json"
    expect(wallet_page.status).to_have_text(f"Created wallet {wallet_id} — balance 0 JPY")
    expect(wallet_page.amount).to_have_accessible_description(
        "A positive amount in JPY, in whole units (no decimals), for example 1500."
    )
    expect(wallet_page.amount).to_have_attribute("placeholder", "0")

    wallet_page.deposit("1500")

    expect(wallet_page.status).to_have_text("Deposited 1,500 JPY — balance 1,500 JPY")
    expect(wallet_page.balance).to_have_text("1,500 JPY")
    assert wallet_page.ledger() == [["DEPOSIT", "1,500 JPY", "1,500 JPY"]]
    expect(wallet_page.wallets.filter(has_text=wallet_id)).to_contain_text("1,500 JPY")
    expect(wallet_page.chart).to_have_accessible_description(
        "Balance 1500 JPY after the only operation shown."
    )


def test_a_dinar_wallet_shows_three_decimals(wallet_page: WalletPage) -> None:
    wallet_id = wallet_page.create_wallet("BHD")
    expect(wallet_page.balance).to_have_text("0.000 BHD")

    wallet_page.deposit("1.5")
    expect(wallet_page.status).to_have_text("Deposited 1.500 BHD — balance 1.500 BHD")
    wallet_page.deposit("1234.125")
    wallet_page.withdraw("0.005")

    expect(wallet_page.balance).to_have_text("1,235.620 BHD")
    assert wallet_page.ledger() == [
        ["WITHDRAW", "0.005 BHD", "1,235.620 BHD"],
        ["DEPOSIT", "1,234.125 BHD", "1,235.625 BHD"],
        ["DEPOSIT", "1.500 BHD", "1.500 BHD"],
    ]
    expect(wallet_page.wallets.filter(has_text=wallet_id)).to_contain_text("1,235.620 BHD")
    expect(wallet_page.chart_points).to_have_count(3)
    expect(wallet_page.chart).to_have_accessible_description(
        "Balance over 3 operations, from 1.500 BHD to 1235.620 BHD; highest 1235.625 BHD,"
        " lowest 1.500 BHD."
    )
    expect(wallet_page.chart).to_contain_text("0.000")  # the baseline, in the wallet's decimals


def test_decimals_a_yen_wallet_cannot_hold_are_refused_before_sending(
    wallet_page: WalletPage,
) -> None:
    usd_id = wallet_page.create_wallet()
    wallet_page.create_wallet("JPY")
    sent: list[str] = []
    wallet_page.page.on(
        "request", lambda request: sent.append(request.url) if request.method == "POST" else None
    )
    wallet_page.amount.fill("15.5")

    wallet_page.deposit_button.click()

    expect(wallet_page.status).to_have_text(
        "For JPY, enter whole units, with no decimals, for example 1500."
    )
    expect(wallet_page.status).to_have_attribute("data-kind", "error")
    expect(wallet_page.amount).to_have_attribute("aria-invalid", "true")
    expect(wallet_page.amount).to_have_value("15.5")  # kept, so it can be corrected
    expect(wallet_page.balance).to_have_text("0 JPY")
    assert sent == []

    wallet_page.wallets.filter(has_text=usd_id).click()  # the same amount suits a USD wallet
    expect(wallet_page.wallet_id).to_have_text(usd_id)
    wallet_page.deposit("15.5")

    expect(wallet_page.status).to_have_text("Deposited 15.50 USD — balance 15.50 USD")
    assert len(sent) == 1


def test_more_decimals_than_the_wallets_currency_has_are_refused_in_its_terms(
    wallet_page: WalletPage,
) -> None:
    wallet_page.create_wallet("BHD")
    wallet_page.amount.fill("1.0005")

    wallet_page.deposit_button.click()

    expect(wallet_page.status).to_have_text(
        "For BHD, enter the amount as digits with at most three decimals after a dot,"
        " for example 10 or 10.500."
    )
    wallet_page.amount.fill("1000000000000.001")
    wallet_page.withdraw_button.click()
    expect(wallet_page.status).to_have_text("The amount must be at most 1000000000000.000 BHD.")
    expect(wallet_page.operation_rows).to_have_count(0)


def test_digits_are_grouped_whatever_the_decimals(wallet_page: WalletPage) -> None:
    amounts = ["1500", "1.500", "1234567", "1234567.890", "999", "0.05"]

    grouped = wallet_page.page.evaluate(GROUPED, amounts)

    assert grouped == ["1,500", "1.500", "1,234,567", "1,234,567.890", "999", "0.05"]
