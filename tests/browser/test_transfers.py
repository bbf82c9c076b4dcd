"""Sending money from one wallet to another on the page: both balances, both histories with
the other wallet and the reference, refusals that change nothing, and a payment made once."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from typing import Any

from playwright.sync_api import Request, Route, expect

from tests.browser import api
from tests.browser.test_accessibility import (
    MINIMUM_TEXT_CONTRAST,
    VISIBLE_TEXT_COLOURS,
    contrast,
    rgb,
)
from tests.browser.test_screenshots import SCREENSHOTS, WIDEST_ELEMENT
from tests.browser.wallet_page import (
    DESKTOP,
    FOCUS_IS_VISIBLE,
    PHONE,
    OpenPage,
    WalletPage,
    is_transfer_post,
)
from tests.integration.servers import ServiceProcess

READ_CATALOGUE = '() => JSON.parse(document.getElementById("catalogue").textContent)'
TRANSFER_LOOKUP = re.compile(r"/api/v1/transfers/([0-9a-f-]+)$")


def title_of(wallet_page: WalletPage, code: str) -> str:
    """The problem's title as the service's catalogue, rendered into the page, gives it."""
    catalogue: dict[str, Any] = wallet_page.page.evaluate(READ_CATALOGUE)
    return str(catalogue["problems"][code]["title"])


def open_wallet(open_page: OpenPage, wallet_id: str) -> WalletPage:
    wallet_page = open_page(DESKTOP, path=f"/#wallet={wallet_id}")
    expect(wallet_page.wallet_id).to_have_text(wallet_id)
    return wallet_page


def posted_transfers(wallet_page: WalletPage) -> list[Request]:
    """The transfer POSTs the page sends from now on."""
    sent: list[Request] = []

    def note(request: Request) -> None:
        if is_transfer_post_request(request):
            sent.append(request)

    wallet_page.page.on("request", note)
    return sent


def is_transfer_post_request(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith("/api/v1/transfers")


def transfer_lookups(wallet_page: WalletPage) -> list[str]:
    """The transfer ids the page asks the service for from now on, one item per request."""
    asked: list[str] = []

    def note(request: Request) -> None:
        found = TRANSFER_LOOKUP.search(request.url)
        if request.method == "GET" and found:
            asked.append(found[1])

    wallet_page.page.on("request", note)
    return asked


def test_a_transfer_moves_money_and_both_histories_name_the_other_wallet(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    payer = api.create_wallet(service.url)
    payee = api.create_wallet(service.url)
    api.create_wallet(service.url, "EUR")  # listed, but not a payee a USD wallet can pay
    api.deposit(service.url, payer, "100")
    wallet_page = open_wallet(open_page, payer)
    lookups = transfer_lookups(wallet_page)
    expect(wallet_page.payee.locator("option")).to_have_text(["Choose a wallet", payee])

    answer = wallet_page.send("25.50", to=payee, reference="Invoice 7")

    assert answer.status == 201
    assert answer.request.headers.get("idempotency-key")
    transfer = answer.json()
    assert answer.request.post_data_json == {
        "fromWalletId": payer,
        "toWalletId": payee,
        "amount": "25.50",
        "reference": "Invoice 7",
    }
    expect(wallet_page.status).to_have_text(f"Sent 25.50 USD to wallet {payee} — balance 74.50 USD")
    expect(wallet_page.status).to_have_attribute("data-kind", "success")
    expect(wallet_page.balance).to_have_text("74.50 USD")
    expect(wallet_page.wallets.filter(has_text=payer)).to_contain_text("74.50 USD")
    expect(wallet_page.wallets.filter(has_text=payee)).to_contain_text("25.50 USD")
    expect(wallet_page.send_amount).to_have_value("")
    assert (api.balance(service.url, payer), api.balance(service.url, payee)) == ("74.50", "25.50")

    expect(wallet_page.operation_rows).to_have_count(2)
    sent = wallet_page.operation_rows.first
    expect(sent.locator(".badge")).to_have_text("TRANSFER OUT")
    expect(sent.locator(".badge")).to_have_class(re.compile(r"\bbadge-withdraw\b"))  # takes money
    expect(sent.get_by_test_id("counterparty")).to_have_text(f"To wallet {payee[:8]}")
    expect(sent.get_by_test_id("reference")).to_have_text("Reference: Invoice 7")
    expect(sent.locator("td.num")).to_have_text(["25.50 USD", "74.50 USD"])
    expect(wallet_page.chart_points).to_have_count(2)

    sent.get_by_role("link", name=payee[:8]).click()  # the other wallet opens on this page

    expect(wallet_page.wallet_id).to_have_text(payee)
    expect(wallet_page.balance).to_have_text("25.50 USD")
    history = wallet_page.page.get_by_role("region", name="Latest operations")
    expect(history).to_be_focused()  # the focused link left with the old history
    expect(wallet_page.operation_rows).to_have_count(1)
    received = wallet_page.operation_rows.first
    expect(received.locator(".badge")).to_have_text("TRANSFER IN")
    expect(received.locator(".badge")).to_have_class(re.compile(r"\bbadge-deposit\b"))
    expect(received.get_by_test_id("counterparty")).to_have_text(f"From wallet {payer[:8]}")
    expect(received.get_by_test_id("reference")).to_have_text("Reference: Invoice 7")
    expect(received.locator("td.num")).to_have_text(["25.50 USD", "25.50 USD"])
    # The payee's entry is the transfer's other half, as the service has it.
    [entry] = api.operations(service.url, payee)
    assert (entry["operationType"], entry["transferId"]) == ("TRANSFER_IN", transfer["id"])

    received.get_by_role("link", name=payer[:8]).click()
    expect(wallet_page.wallet_id).to_have_text(payer)
    expect(wallet_page.operation_rows.first.get_by_test_id("counterparty")).to_have_text(
        f"To wallet {payee[:8]}"
    )
    wallet_page.wallets.filter(has_text=payee).click()
    expect(wallet_page.wallet_id).to_have_text(payee)
    expect(wallet_page.operation_rows.first.get_by_test_id("counterparty")).to_have_text(
        f"From wallet {payer[:8]}"
    )
    # The page sent the transfer, so the service's answer names both sides: nothing to ask.
    assert lookups == []


def test_a_history_opened_afresh_looks_each_transfer_up_once(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    payer = api.create_wallet(service.url)
    payee = api.create_wallet(service.url)
    api.deposit(service.url, payer, "10", reference="Top-up")
    for amount in ("1", "2", "3"):
        api.post(
            f"{service.url}/api/v1/transfers",
            {"fromWalletId": payer, "toWalletId": payee, "amount": amount},
        )
    wallet_page = open_page(DESKTOP, path=f"/#wallet={payer}")
    expect(wallet_page.page.get_by_test_id("counterparty")).to_have_text(
        [f"To wallet {payee[:8]}"] * 3
    )  # this load's look-ups are over: count those of a fresh page only
    lookups = transfer_lookups(wallet_page)
    wallet_page.page.reload()

    expect(wallet_page.operation_rows).to_have_count(4)
    expect(wallet_page.page.get_by_test_id("counterparty")).to_have_text(
        [f"To wallet {payee[:8]}"] * 3
    )
    deposit = wallet_page.operation_rows.last
    expect(deposit.get_by_test_id("reference")).to_have_text("Reference: Top-up")
    expect(deposit.get_by_test_id("counterparty")).to_have_count(0)
    expect(wallet_page.balance).to_have_text("4.00 USD")
    entries = api.operations(service.url, payer)
    ids = {entry["transferId"] for entry in entries if entry["transferId"]}
    assert len(ids) == 3
    assert Counter(lookups) == dict.fromkeys(ids, 1)


def test_a_transfer_past_the_balance_is_refused_and_changes_nothing(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    payer = api.create_wallet(service.url)
    payee = api.create_wallet(service.url)
    api.deposit(service.url, payer, "10")
    wallet_page = open_wallet(open_page, payer)

    answer = wallet_page.send("25", to=payee)

    assert answer.status == 400
    title = title_of(wallet_page, "INSUFFICIENT_FUNDS")
    expect(wallet_page.status).to_have_text(re.compile(rf"^{re.escape(title)}: .*10\.00.*25\.00"))
    expect(wallet_page.status).to_have_attribute("data-kind", "error")
    expect(wallet_page.send_amount).to_have_value("25")  # kept, so it can be corrected
    expect(wallet_page.balance).to_have_text("10.00 USD")
    expect(wallet_page.operation_rows).to_have_count(1)
    expect(wallet_page.wallets.filter(has_text=payee)).to_contain_text("0.00 USD")
    assert (api.balance(service.url, payer), api.balance(service.url, payee)) == ("10.00", "0.00")
    assert api.operations(service.url, payee) == []


def test_a_wallet_of_another_currency_is_refused_by_name(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    payer = api.create_wallet(service.url, "USD")
    euros = api.create_wallet(service.url, "EUR")
    api.deposit(service.url, payer, "50")
    wallet_page = open_wallet(open_page, payer)
    expect(wallet_page.payee.locator("option")).to_have_text(["No other USD wallet in the list"])

    answer = wallet_page.send("5", pasted=euros)

    assert answer.status == 400
    assert answer.json()["code"] == "CURRENCY_MISMATCH"
    title = title_of(wallet_page, "CURRENCY_MISMATCH")
    expect(wallet_page.status).to_have_text(
        f"{title}: wallet {euros} holds EUR, not USD."
        " Money moves only between wallets of the same currency."
    )
    expect(wallet_page.payee_id).to_have_attribute("aria-invalid", "true")
    expect(wallet_page.balance).to_have_text("50.00 USD")
    expect(wallet_page.operation_rows).to_have_count(1)
    assert (api.balance(service.url, payer), api.balance(service.url, euros)) == ("50.00", "0.00")


def test_an_unknown_payee_is_named(service: ServiceProcess, open_page: OpenPage) -> None:
    payer = api.create_wallet(service.url)
    api.deposit(service.url, payer, "50")
    wallet_page = open_wallet(open_page, payer)
    nobody = str(uuid.uuid4())

    answer = wallet_page.send("5", pasted=nobody.upper())

    assert answer.status == 404
    title = title_of(wallet_page, "WALLET_NOT_FOUND")
    expect(wallet_page.status).to_have_text(f"{title}: no wallet has the payee's id {nobody}.")
    expect(wallet_page.payee_id).to_have_attribute("aria-invalid", "true")
    assert api.balance(service.url, payer) == "50.00"


def test_what_the_service_would_refuse_is_explained_before_sending(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    payer = api.create_wallet(service.url)
    payee = api.create_wallet(service.url)
    api.deposit(service.url, payer, "50")
    wallet_page = open_wallet(open_page, payer)
    sent = posted_transfers(wallet_page)

    wallet_page.send_amount.fill("5")
    wallet_page.send_button.click()
    expect(wallet_page.status).to_have_text(
        "Choose the payee wallet from the list, or paste its id."
    )
    expect(wallet_page.payee).to_be_focused()

    wallet_page.payee_id.fill(payer)
    wallet_page.send_button.click()
    expect(wallet_page.status).to_have_text(
        "Choose another wallet: a wallet cannot send money to itself."
    )
    expect(wallet_page.payee_id).to_have_attribute("aria-invalid", "true")

    wallet_page.payee_id.fill(payer[:20])
    wallet_page.send_button.click()
    expect(wallet_page.status).to_contain_text("Paste the payee's whole wallet id")

    wallet_page.payee.select_option(payee)
    expect(wallet_page.payee_id).to_have_value("")  # the list and the pasted id are one choice
    wallet_page.send_amount.fill("1.005")
    wallet_page.send_button.click()
    expect(wallet_page.status).to_have_text(
        "For USD, enter the amount as digits with at most two decimals after a dot,"
        " for example 10 or 10.50."
    )
    expect(wallet_page.send_amount).to_have_attribute("aria-invalid", "true")
    expect(wallet_page.send_amount).to_be_focused()

    wallet_page.send_amount.fill("1")
    wallet_page.reference.fill("x" * 129)
    wallet_page.send_button.click()
    expect(wallet_page.status).to_have_text("A reference is at most 128 characters.")
    expect(wallet_page.send_amount).not_to_have_attribute("aria-invalid", "true")

    assert sent == []
    assert api.balance(service.url, payer) == "50.00"


def test_a_double_click_sends_the_money_once(service: ServiceProcess, open_page: OpenPage) -> None:
    payer = api.create_wallet(service.url)
    payee = api.create_wallet(service.url)
    api.deposit(service.url, payer, "100")
    wallet_page = open_wallet(open_page, payer)
    sent = posted_transfers(wallet_page)
    wallet_page.payee.select_option(payee)
    wallet_page.send_amount.fill("10")

    with wallet_page.page.expect_response(is_transfer_post):
        wallet_page.send_button.dblclick()
    expect(wallet_page.transfer_form).to_have_attribute("aria-busy", "false")

    expect(wallet_page.status).to_have_text(f"Sent 10.00 USD to wallet {payee} — balance 90.00 USD")
    expect(wallet_page.balance).to_have_text("90.00 USD")
    expect(wallet_page.operation_rows).to_have_count(2)
    assert len(sent) == 1
    assert (api.balance(service.url, payer), api.balance(service.url, payee)) == ("90.00", "10.00")
    assert len(api.operations(service.url, payee)) == 1


def test_sending_again_after_a_lost_answer_moves_the_money_once(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    """The service made the transfer but its answer never arrived: the same submission,
    sent again, carries the same Idempotency-Key, and the service answers it again."""
    payer = api.create_wallet(service.url)
    payee = api.create_wallet(service.url)
    api.deposit(service.url, payer, "100")
    wallet_page = open_wallet(open_page, payer)
    sent = posted_transfers(wallet_page)

    def lose_the_answer(route: Route) -> None:
        answered = route.fetch()  # the service applies it...
        assert answered.status == 201
        route.abort("connectionreset")  # ...and the page never hears of it

    wallet_page.page.route("**/api/v1/transfers", lose_the_answer)
    wallet_page.payee.select_option(payee)
    wallet_page.send_amount.fill("20")
    wallet_page.send_button.click()
    expect(wallet_page.status).to_have_text(
        "Cannot reach the service. Check your connection and try again."
    )
    expect(wallet_page.send_amount).to_have_value("20")
    assert api.balance(service.url, payee) == "20.00"
    wallet_page.page.unroute("**/api/v1/transfers")

    with wallet_page.page.expect_response(is_transfer_post) as again:
        wallet_page.send_button.click()
    expect(wallet_page.transfer_form).to_have_attribute("aria-busy", "false")

    assert again.value.status == 201
    assert again.value.headers.get("idempotent-replayed") == "true"
    expect(wallet_page.status).to_have_text(
        f"Sent 20.00 USD to wallet {payee} — balance 80.00 USD"
        " (this transfer had already been made; it was not made again)"
    )
    keys = [request.headers["idempotency-key"] for request in sent]
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert (api.balance(service.url, payer), api.balance(service.url, payee)) == ("80.00", "20.00")
    assert len(api.operations(service.url, payee)) == 1
    expect(wallet_page.operation_rows).to_have_count(2)

    wallet_page.send("20", to=payee)  # a new submission is a new transfer
    expect(wallet_page.status).to_have_text(f"Sent 20.00 USD to wallet {payee} — balance 60.00 USD")
    assert sent[2].headers["idempotency-key"] != keys[0]


def test_a_keyboard_reaches_the_transfer_form_in_order_and_hears_the_outcome(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    payer = api.create_wallet(service.url)
    payee = api.create_wallet(service.url)
    api.deposit(service.url, payer, "30")
    wallet_page = open_wallet(open_page, payer)
    keyboard = wallet_page.page.keyboard
    wallet_page.withdraw_button.focus()

    for field in (wallet_page.payee, wallet_page.payee_id, wallet_page.send_amount):
        keyboard.press("Tab")  # each the very next stop, its focus visible
        expect(field).to_be_focused()
        assert wallet_page.page.evaluate(FOCUS_IS_VISIBLE)
    keyboard.press("Shift+Tab")
    keyboard.type(payee)
    keyboard.press("Tab")
    keyboard.type("12.5")
    keyboard.press("Tab")
    expect(wallet_page.reference).to_be_focused()
    keyboard.type("Rent")
    keyboard.press("Tab")
    expect(wallet_page.send_button).to_be_focused()
    with wallet_page.page.expect_response(is_transfer_post):
        keyboard.press("Enter")

    expect(wallet_page.status).to_have_attribute("aria-live", "polite")
    expect(wallet_page.status).to_have_text(f"Sent 12.50 USD to wallet {payee} — balance 17.50 USD")
    expect(wallet_page.send_button).to_be_focused()  # the busy button kept the focus
    expect(wallet_page.operation_rows.first.get_by_test_id("reference")).to_have_text(
        "Reference: Rent"
    )


def test_transfers_fit_a_phone_and_every_text_is_legible(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    """Screenshots in artifacts/screenshots/ to look at; what they cannot be trusted to show
    is checked: nothing wider than the screen, every text at 4.5:1 against its background."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    payer = api.create_wallet(service.url)
    payee = api.create_wallet(service.url)
    api.deposit(service.url, payer, "120", reference="Salary for November")
    for viewport in (PHONE, DESKTOP):
        for scheme in ("light", "dark"):
            wallet_page = open_page(viewport, color_scheme=scheme, path=f"/#wallet={payer}")
            expect(wallet_page.wallet_id).to_have_text(payer)
            wallet_page.send("10", to=payee, reference="Invoice 2026-117, flat 4B")
            wallet_page.send("1000", to=payee)  # refused: an error on screen too
            expect(wallet_page.status).to_contain_text(title_of(wallet_page, "INSUFFICIENT_FUNDS"))
            expect(wallet_page.page.get_by_test_id("counterparty").first).to_have_text(
                f"To wallet {payee[:8]}"
            )
            page = wallet_page.page

            width = viewport["width"]
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            assert page.evaluate(WIDEST_ELEMENT) <= width
            texts: list[dict[str, Any]] = page.evaluate(VISIBLE_TEXT_COLOURS)
            ratios = [
                (
                    item["text"],
                    contrast(rgb(item["colour"]), rgb(item["background"]), item["opacity"]),
                )
                for item in texts
            ]
            too_faint = [
                (text, round(ratio, 2)) for text, ratio in ratios if ratio < MINIMUM_TEXT_CONTRAST
            ]
            assert too_faint == [], f"{scheme} at {width} px: {too_faint}"

            page.evaluate("window.scrollTo(0, 0)")
            name = "phone" if viewport is PHONE else "desktop"
            path = SCREENSHOTS / f"transfers-{name}-{width}px-{scheme}.png"
            page.screenshot(path=path, full_page=True)
            assert path.stat().st_size > 10_000
