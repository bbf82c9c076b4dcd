"""The wallet page's everyday flows, judged by what the page shows."""

from __future__ import annotations

import asyncio
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import asyncpg
from playwright.sync_api import expect

from tests.browser import api
from tests.browser.wallet_page import DESKTOP, WALLETS_PER_PAGE, OpenPage, WalletPage
from tests.integration.servers import ServiceProcess

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_creating_a_wallet_shows_it_with_a_zero_balance(wallet_page: WalletPage) -> None:
    wallet_id = wallet_page.create_wallet()

    assert UUID.match(wallet_id)
    expect(wallet_page.status).to_have_text(f"Created wallet {wallet_id} — balance 0.00 USD")
    expect(wallet_page.balance).to_have_text("0.00 USD")
    expect(wallet_page.wallets).to_have_count(1)
    expect(wallet_page.wallets.first).to_contain_text(wallet_id)
    expect(wallet_page.page.get_by_text("No operations yet.")).to_be_visible()


def test_a_deposit_raises_the_balance_and_says_so(wallet_page: WalletPage) -> None:
    wallet_page.create_wallet()

    wallet_page.deposit("150.5")

    expect(wallet_page.status).to_have_text("Deposited 150.50 USD — balance 150.50 USD")
    expect(wallet_page.balance).to_have_text("150.50 USD")
    expect(wallet_page.wallets.first).to_contain_text("150.50 USD")
    expect(wallet_page.amount).to_have_value("")


def test_a_withdrawal_lowers_the_balance_and_says_so(wallet_page: WalletPage) -> None:
    wallet_page.create_wallet()
    wallet_page.deposit("100")

    wallet_page.withdraw("0.10")

    expect(wallet_page.status).to_have_text("Withdrew 0.10 USD — balance 99.90 USD")
    expect(wallet_page.balance).to_have_text("99.90 USD")


def test_withdrawing_more_than_the_balance_is_refused_with_a_clear_message(
    wallet_page: WalletPage,
) -> None:
    wallet_page.create_wallet()
    wallet_page.deposit("10")

    wallet_page.withdraw("25")

    expect(wallet_page.status).to_have_text("Insufficient funds: Balance 10.00 is less than 25.00")
    expect(wallet_page.status).to_have_attribute("data-kind", "error")
    expect(wallet_page.balance).to_have_text("10.00 USD")
    expect(wallet_page.operation_rows).to_have_count(1)
    expect(wallet_page.amount).to_have_value("25")  # kept, so it can be corrected


def test_an_amount_the_service_would_refuse_is_explained_before_sending(
    wallet_page: WalletPage,
) -> None:
    wallet_page.create_wallet()
    wallet_page.amount.fill("1.005")

    wallet_page.deposit_button.click()

    expect(wallet_page.status).to_contain_text("at most two decimals")
    expect(wallet_page.amount).to_have_attribute("aria-invalid", "true")
    expect(wallet_page.balance).to_have_text("0.00 USD")


def test_the_history_lists_every_operation_newest_first_and_survives_a_reload(
    wallet_page: WalletPage,
) -> None:
    wallet_id = wallet_page.create_wallet()
    wallet_page.deposit("100")
    wallet_page.withdraw("30")
    wallet_page.deposit("5.50")
    expected = [
        ["DEPOSIT", "5.50 USD", "75.50 USD"],
        ["WITHDRAW", "30.00 USD", "70.00 USD"],
        ["DEPOSIT", "100.00 USD", "100.00 USD"],
    ]
    expect(wallet_page.operation_rows).to_have_count(3)
    assert wallet_page.ledger() == expected

    wallet_page.page.reload()  # the address keeps the wallet: the history now comes from the API

    expect(wallet_page.wallet_id).to_have_text(wallet_id)
    expect(wallet_page.operation_rows).to_have_count(3)
    assert wallet_page.ledger() == expected
    expect(wallet_page.balance).to_have_text("75.50 USD")


def test_older_operations_load_on_demand(service: ServiceProcess, open_page: OpenPage) -> None:
    [wallet_id] = api.create_wallets(service.url, 1)
    for cents in range(1, 13):
        api.deposit(service.url, wallet_id, f"0.{cents:02d}")

    wallet_page = open_page(DESKTOP, path=f"/#wallet={wallet_id}")
    expect(wallet_page.operation_rows).to_have_count(10)
    wallet_page.page.get_by_role("button", name="More").click()

    expect(wallet_page.operation_rows).to_have_count(12)
    assert wallet_page.ledger()[-1] == ["DEPOSIT", "0.01 USD", "0.01 USD"]
    assert wallet_page.ledger()[0] == ["DEPOSIT", "0.12 USD", "0.78 USD"]


def test_paging_through_wallets_forward_and_back(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    ids = api.create_wallets(service.url, WALLETS_PER_PAGE + 2)
    wallet_page = open_page(DESKTOP)

    expect(wallet_page.wallets).to_have_count(WALLETS_PER_PAGE)
    expect(wallet_page.wallets).to_contain_text(ids[:WALLETS_PER_PAGE])
    expect(wallet_page.page_number).to_have_text("Page 1")
    expect(wallet_page.previous_button).to_be_disabled()

    wallet_page.next_button.click()
    expect(wallet_page.page_number).to_have_text("Page 2")
    expect(wallet_page.wallets).to_have_count(2)
    expect(wallet_page.wallets).to_contain_text(ids[WALLETS_PER_PAGE:])
    expect(wallet_page.next_button).to_be_disabled()

    wallet_page.wallets.last.click()
    expect(wallet_page.wallet_id).to_have_text(ids[-1])
    expect(wallet_page.wallets.last).to_have_attribute("aria-current", "true")

    wallet_page.previous_button.click()
    expect(wallet_page.page_number).to_have_text("Page 1")
    expect(wallet_page.wallets).to_contain_text(ids[:WALLETS_PER_PAGE])
    expect(wallet_page.previous_button).to_be_disabled()
    expect(wallet_page.next_button).to_be_enabled()


def test_amounts_are_shown_with_their_digits_grouped(wallet_page: WalletPage) -> None:
    wallet_page.create_wallet()
    wallet_page.deposit("1234567.89")

    expect(wallet_page.status).to_have_text("Deposited 1,234,567.89 USD — balance 1,234,567.89 USD")
    expect(wallet_page.balance).to_have_text("1,234,567.89 USD")
    assert wallet_page.ledger() == [["DEPOSIT", "1,234,567.89 USD", "1,234,567.89 USD"]]
    expect(wallet_page.page.locator("[aria-current=true] .wallet-item-balance")).to_have_text(
        "1,234,567.89 USD"
    )


async def insert_wallet(database_url: str, balance_cents: int, amount_cents: int) -> str:
    """A wallet whose balance no API call could reach in a test's time (the ledger disagrees)."""
    wallet_id = uuid.uuid4()
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "INSERT INTO wallets (id, balance, version) VALUES ($1, $2, 1)",
            wallet_id,
            balance_cents,
        )
        await connection.execute(
            "INSERT INTO operations (id, wallet_id, operation_type, amount, balance_after,"
            " currency, created_at) VALUES ($1, $2, 'DEPOSIT', $3, $4, 'USD', clock_timestamp())",
            uuid.uuid4(),
            wallet_id,
            amount_cents,
            balance_cents,
        )
    finally:
        await connection.close()
    return str(wallet_id)


def test_a_balance_past_what_a_double_holds_is_shown_to_the_cent(
    service: ServiceProcess, open_page: OpenPage, migrated_url: str
) -> None:
    """8999999999999999.99 as a double is 9000000000000000: the page must never make one."""
    with ThreadPoolExecutor(1) as thread:  # the browser's driver runs an event loop here
        inserted = thread.submit(
            asyncio.run, insert_wallet(migrated_url, 899_999_999_999_999_999, 99_999_999_999_999)
        )
        wallet_id = inserted.result(timeout=30)

    wallet_page = open_page(DESKTOP, path=f"/#wallet={wallet_id}")

    expect(wallet_page.balance).to_have_text("8,999,999,999,999,999.99 USD")
    expect(wallet_page.operation_rows).to_have_count(1)
    assert wallet_page.ledger() == [
        ["DEPOSIT", "999,999,999,999.99 USD", "8,999,999,999,999,999.99 USD"]
    ]
    expect(wallet_page.wallets.filter(has_text=wallet_id)).to_contain_text(
        "8,999,999,999,999,999.99 USD"
    )


def test_the_footer_links_to_the_api_reference(wallet_page: WalletPage) -> None:
    footer = wallet_page.page.get_by_role("contentinfo")
    reference = footer.get_by_role("link", name="API reference")

    expect(reference).to_have_attribute("href", "/api/docs")
    answer = wallet_page.page.request.get("/api/docs")
    assert (answer.status, answer.headers["content-type"]) == (200, "text/html; charset=utf-8")
