"""Holds on the page: placing one moves money from available to held, capturing pays (a
payee, or as a withdrawal) and releases the rest, voiding and expiry release it all; each
refusal is said in words, and changes nothing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
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
from tests.browser.test_transfers import open_wallet, title_of
from tests.browser.wallet_page import (
    DESKTOP,
    FOCUS_IS_VISIBLE,
    HOLD_POST,
    PHONE,
    OpenPage,
    WalletPage,
    is_hold_post,
)
from tests.integration.servers import ServiceProcess

CAPTURE_HINT = re.compile(r"^Capture takes the amount typed beside it, or the whole hold")


def posted_holds(wallet_page: WalletPage) -> list[Request]:
    """The holds the page places, captures or voids from now on."""
    sent: list[Request] = []

    def note(request: Request) -> None:
        if request.method == "POST" and HOLD_POST.search(request.url):
            sent.append(request)

    wallet_page.page.on("request", note)
    return sent


def expect_amounts(wallet_page: WalletPage, balance: str, held: str, available: str) -> None:
    expect(wallet_page.balance).to_have_text(balance)
    expect(wallet_page.held).to_have_text(held)
    expect(wallet_page.available).to_have_text(available)


def test_a_hold_moves_money_from_available_to_held_and_is_listed(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    payer = api.create_wallet(service.url)
    payee = api.create_wallet(service.url)
    api.deposit(service.url, payer, "100")
    wallet_page = open_wallet(open_page, payer)
    expect_amounts(wallet_page, "100.00 USD", "0.00 USD", "100.00 USD")
    expect(wallet_page.page.get_by_text("No holds yet.")).to_be_visible()

    answer = wallet_page.place_hold("30", payee=payee, expires_in="3600", reference="Room 12")

    assert answer.status == 201
    assert answer.request.headers.get("idempotency-key")
    assert answer.request.post_data_json == {
        "amount": "30",
        "toWalletId": payee,
        "expiresIn": 3600,
        "reference": "Room 12",
    }
    hold = answer.json()
    expect(wallet_page.status).to_have_text(
        f"Held 30.00 USD for wallet {payee} — available 70.00 USD"
    )
    expect(wallet_page.status).to_have_attribute("data-kind", "success")
    expect_amounts(wallet_page, "100.00 USD", "30.00 USD", "70.00 USD")
    expect(wallet_page.holds).to_have_count(1)
    item = wallet_page.hold(hold["id"])
    expect(item.get_by_test_id("hold-status")).to_have_text("HELD")
    expect(item.get_by_test_id("held-amount")).to_have_text("30.00 USD")
    expect(item.get_by_test_id("hold-captured")).to_have_text("None")
    expect(item.get_by_test_id("hold-payee")).to_have_text(payee[:8])
    expect(item.get_by_test_id("hold-reference-text")).to_have_text("Room 12")
    expect(item.locator("time")).to_have_attribute("datetime", hold["expiresAt"])
    expect(wallet_page.hold_button(hold["id"], "Capture")).to_be_visible()
    expect(wallet_page.hold_button(hold["id"], "Void")).to_be_visible()
    expect(wallet_page.hold_amount).to_have_value("")  # sent, so cleared
    expect(wallet_page.operation_rows).to_have_count(1)  # a hold writes no ledger entry
    held = api.wallet(service.url, payer)
    assert (held["balance"], held["heldBalance"], held["availableBalance"]) == (
        "100.00",
        "30.00",
        "70.00",
    )

    wallet_page.page.reload()

    expect(wallet_page.hold(hold["id"]).get_by_test_id("hold-status")).to_have_text("HELD")
    expect_amounts(wallet_page, "100.00 USD", "30.00 USD", "70.00 USD")


def test_capturing_part_of_a_hold_pays_its_payee_and_releases_the_rest(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    payer = api.create_wallet(service.url)
    payee = api.create_wallet(service.url)
    api.deposit(service.url, payer, "100")
    hold = api.place_hold(service.url, payer, "30", toWalletId=payee, reference="Order 7")
    short = hold["id"][:8]
    wallet_page = open_wallet(open_page, payer)
    expect_amounts(wallet_page, "100.00 USD", "30.00 USD", "70.00 USD")
    item = wallet_page.hold(hold["id"])
    field = item.get_by_label(f"How much of hold {short} to capture", exact=True)
    expect(field).to_have_accessible_description(CAPTURE_HINT)

    field.fill("10")
    with wallet_page.page.expect_response(is_hold_post) as answer:
        field.press("Enter")  # the one thing the field is for

    assert answer.value.status == 200
    assert answer.value.request.post_data_json == {"amount": "10"}
    expect(wallet_page.status).to_have_text(
        f"Captured 10.00 USD of hold {short} for wallet {payee} — balance 90.00 USD"
    )
    expect_amounts(wallet_page, "90.00 USD", "0.00 USD", "90.00 USD")  # the rest released
    expect(item.get_by_test_id("hold-status")).to_have_text("CAPTURED")
    expect(item.get_by_test_id("hold-captured")).to_have_text("10.00 USD")
    expect(item.get_by_role("button")).to_have_count(0)
    expect(item).to_be_focused()  # the focused field left with the old item
    top = wallet_page.operation_rows.first
    expect(top.locator(".badge")).to_have_text("TRANSFER OUT")
    expect(top.get_by_test_id("hold-note")).to_have_text(f"Hold {short}")
    expect(top.get_by_test_id("hold-note")).to_have_attribute("title", hold["id"])
    expect(top.get_by_test_id("counterparty")).to_have_text(f"To wallet {payee[:8]}")
    expect(top.get_by_test_id("reference")).to_have_text("Reference: Order 7")
    expect(top.locator("td.num")).to_have_text(["10.00 USD", "90.00 USD"])
    expect(wallet_page.wallets.filter(has_text=payee)).to_contain_text("10.00 USD")
    assert api.balance(service.url, payee) == "10.00"

    top.get_by_role("link", name=payee[:8]).click()  # the payee's history names the hold too

    expect(wallet_page.wallet_id).to_have_text(payee)
    received = wallet_page.operation_rows.first
    expect(received.locator(".badge")).to_have_text("TRANSFER IN")
    expect(received.get_by_test_id("hold-note")).to_have_text(f"Hold {short}")
    expect(received.get_by_test_id("counterparty")).to_have_text(f"From wallet {payer[:8]}")
    expect(wallet_page.holds).to_have_count(0)  # the hold is its payer's


def test_capturing_a_whole_hold_without_a_payee_withdraws_it(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    wallet_id = api.create_wallet(service.url)
    api.deposit(service.url, wallet_id, "50")
    hold = api.place_hold(service.url, wallet_id, "20")
    wallet_page = open_wallet(open_page, wallet_id)
    expect(wallet_page.hold(hold["id"]).get_by_test_id("hold-payee")).to_have_text(
        "None: a capture withdraws"
    )

    answer = wallet_page.act_on_hold(hold["id"], "Capture")  # its amount field left empty

    assert answer.status == 200
    assert answer.request.post_data_json == {}
    expect(wallet_page.status).to_have_text(
        f"Captured 20.00 USD of hold {hold['id'][:8]} — balance 30.00 USD"
    )
    expect_amounts(wallet_page, "30.00 USD", "0.00 USD", "30.00 USD")
    top = wallet_page.operation_rows.first
    expect(top.locator(".badge")).to_have_text("WITHDRAW")
    expect(top.get_by_test_id("hold-note")).to_have_text(f"Hold {hold['id'][:8]}")
    expect(top.get_by_test_id("counterparty")).to_have_count(0)
    expect(wallet_page.chart_points).to_have_count(2)
    expect(wallet_page.hold(hold["id"]).get_by_test_id("hold-captured")).to_have_text("20.00 USD")


def test_voiding_a_hold_makes_its_amount_available_again_and_is_done_once(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    wallet_id = api.create_wallet(service.url)
    api.deposit(service.url, wallet_id, "40")
    wallet_page = open_wallet(open_page, wallet_id)
    hold_id = wallet_page.place_hold("15").json()["id"]
    expect_amounts(wallet_page, "40.00 USD", "15.00 USD", "25.00 USD")
    sent = posted_holds(wallet_page)

    with wallet_page.page.expect_response(is_hold_post) as answer:
        wallet_page.hold_button(hold_id, "Void").dblclick()

    assert answer.value.status == 200
    expect(wallet_page.status).to_have_text(
        f"Voided hold {hold_id[:8]}: 15.00 USD is no longer held"
    )
    expect_amounts(wallet_page, "40.00 USD", "0.00 USD", "40.00 USD")
    item = wallet_page.hold(hold_id)
    expect(item.get_by_test_id("hold-status")).to_have_text("VOIDED")
    expect(item.get_by_test_id("hold-captured")).to_have_text("None")
    expect(item.get_by_role("button")).to_have_count(0)
    expect(wallet_page.operation_rows).to_have_count(1)  # a void writes no ledger entry
    assert len(sent) == 1
    assert api.hold(service.url, hold_id)["status"] == "VOIDED"


def test_a_hold_no_longer_held_is_said_so_and_shown_as_it_is_now(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    wallet_id = api.create_wallet(service.url)
    api.deposit(service.url, wallet_id, "10")
    hold = api.place_hold(service.url, wallet_id, "4")
    wallet_page = open_wallet(open_page, wallet_id)
    expect_amounts(wallet_page, "10.00 USD", "4.00 USD", "6.00 USD")
    api.void_hold(service.url, hold["id"])  # elsewhere, while the page still shows it held

    answer = wallet_page.act_on_hold(hold["id"], "Capture")

    assert answer.status == 409
    assert answer.json()["code"] == "HOLD_NOT_ACTIVE"
    title = title_of(wallet_page, "HOLD_NOT_ACTIVE")
    expect(wallet_page.status).to_have_text(
        f"{title}: hold {hold['id'][:8]} is already voided,"
        " so it can no longer be captured or voided."
    )
    expect(wallet_page.status).to_have_attribute("data-kind", "error")
    item = wallet_page.hold(hold["id"])
    expect(item.get_by_test_id("hold-status")).to_have_text("VOIDED")
    expect(item.get_by_role("button")).to_have_count(0)
    expect_amounts(wallet_page, "10.00 USD", "0.00 USD", "10.00 USD")
    expect(wallet_page.operation_rows).to_have_count(1)


def answer_with_problem(code: str, status: int, detail: str) -> Callable[[Route], None]:
    """A route that answers as the service does with this problem, sending nothing on."""

    def fulfil(route: Route) -> None:
        problem = {"title": code, "status": status, "detail": detail, "code": code}
        route.fulfill(status=status, content_type="application/problem+json", json=problem)

    return fulfil


def test_refusals_a_page_cannot_easily_bring_about_have_words_too(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    """A payee at its maximum balance, a hold gone: answered here as the service would."""
    payer = api.create_wallet(service.url)
    payee = api.create_wallet(service.url)
    api.deposit(service.url, payer, "10")
    hold = api.place_hold(service.url, payer, "5", toWalletId=payee)
    short = hold["id"][:8]
    wallet_page = open_wallet(open_page, payer)
    page = wallet_page.page
    page.route(
        "**/capture",
        answer_with_problem("BALANCE_LIMIT_EXCEEDED", 400, "Balance 9… plus 5.00 would exceed"),
    )
    page.route("**/void", answer_with_problem("HOLD_NOT_FOUND", 404, "Hold does not exist"))

    wallet_page.act_on_hold(hold["id"], "Capture")

    expect(wallet_page.status).to_have_text(
        f"{title_of(wallet_page, 'BALANCE_LIMIT_EXCEEDED')}: the payee's wallet {payee} would"
        f" pass its maximum balance; hold {short} is still held."
    )

    wallet_page.act_on_hold(hold["id"], "Void")

    expect(wallet_page.status).to_have_text(
        f"{title_of(wallet_page, 'HOLD_NOT_FOUND')}: the service has no hold {short}."
    )
    expect(wallet_page.hold(hold["id"]).get_by_test_id("hold-status")).to_have_text("HELD")
    expect_amounts(wallet_page, "10.00 USD", "5.00 USD", "5.00 USD")
    assert api.hold(service.url, hold["id"])["status"] == "HELD"


def test_a_hold_past_the_available_balance_is_refused_and_reserves_nothing(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    wallet_id = api.create_wallet(service.url)
    api.deposit(service.url, wallet_id, "50")
    api.place_hold(service.url, wallet_id, "30")
    wallet_page = open_wallet(open_page, wallet_id)

    answer = wallet_page.place_hold("25")

    assert answer.status == 400
    title = title_of(wallet_page, "INSUFFICIENT_FUNDS")
    expect(wallet_page.status).to_have_text(re.compile(rf"^{re.escape(title)}: .*20\.00.*25\.00"))
    expect(wallet_page.status).to_have_attribute("data-kind", "error")
    expect(wallet_page.hold_amount).to_have_attribute("aria-invalid", "true")
    expect(wallet_page.hold_amount).to_have_value("25")  # kept, so it can be corrected
    expect_amounts(wallet_page, "50.00 USD", "30.00 USD", "20.00 USD")
    expect(wallet_page.holds).to_have_count(1)
    assert api.wallet(service.url, wallet_id)["heldBalance"] == "30.00"


def test_a_payee_of_another_currency_or_of_no_wallet_is_named(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    payer = api.create_wallet(service.url, "USD")
    euros = api.create_wallet(service.url, "EUR")
    api.deposit(service.url, payer, "50")
    wallet_page = open_wallet(open_page, payer)

    answer = wallet_page.place_hold("5", payee=euros)

    assert (answer.status, answer.json()["code"]) == (400, "CURRENCY_MISMATCH")
    expect(wallet_page.status).to_have_text(
        f"{title_of(wallet_page, 'CURRENCY_MISMATCH')}: wallet {euros} holds EUR, not USD."
        " Money moves only between wallets of the same currency."
    )
    expect(wallet_page.hold_payee).to_have_attribute("aria-invalid", "true")

    nobody = str(uuid.uuid4())
    answer = wallet_page.place_hold("5", payee=nobody.upper())

    assert answer.status == 404
    expect(wallet_page.status).to_have_text(
        f"{title_of(wallet_page, 'WALLET_NOT_FOUND')}: no wallet has the payee's id {nobody}."
    )
    expect(wallet_page.hold_payee).to_have_attribute("aria-invalid", "true")
    expect(wallet_page.holds).to_have_count(0)
    expect_amounts(wallet_page, "50.00 USD", "0.00 USD", "50.00 USD")


def test_what_the_service_would_refuse_is_explained_before_sending(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    wallet_id = api.create_wallet(service.url)
    api.deposit(service.url, wallet_id, "50")
    hold = api.place_hold(service.url, wallet_id, "30")
    wallet_page = open_wallet(open_page, wallet_id)
    sent = posted_holds(wallet_page)

    wallet_page.place_hold_button.click()
    expect(wallet_page.status).to_have_text("Enter an amount.")
    expect(wallet_page.hold_amount).to_be_focused()

    wallet_page.hold_amount.fill("5")
    wallet_page.hold_payee.fill(wallet_id)
    wallet_page.place_hold_button.click()
    expect(wallet_page.status).to_have_text(
        "Name another wallet as the payee: a hold cannot pay its own wallet."
    )
    expect(wallet_page.hold_payee).to_have_attribute("aria-invalid", "true")
    expect(wallet_page.hold_amount).not_to_have_attribute("aria-invalid", "true")

    wallet_page.hold_payee.fill(wallet_id[:20])
    wallet_page.place_hold_button.click()
    expect(wallet_page.status).to_contain_text("Paste the payee's whole wallet id")

    wallet_page.hold_payee.fill("")
    for expiry in ("0", "1.5", "2592001", "soon"):
        wallet_page.hold_expires_in.fill(expiry)  # typing clears the mark of the last refusal
        expect(wallet_page.hold_expires_in).not_to_have_attribute("aria-invalid", "true")
        wallet_page.place_hold_button.click()
        expect(wallet_page.hold_expires_in).to_have_attribute("aria-invalid", "true")
    expect(wallet_page.status).to_have_text(
        "Enter the expiry in whole seconds from 1 to 2592000 (30 days),"
        " or leave it empty for 7 days."
    )

    wallet_page.hold_expires_in.fill("")
    wallet_page.hold_reference.fill("x" * 129)
    wallet_page.place_hold_button.click()
    expect(wallet_page.status).to_have_text("A reference is at most 128 characters.")

    capture_field = wallet_page.hold(hold["id"]).get_by_role("textbox")
    capture_field.fill("1.005")
    wallet_page.hold_button(hold["id"], "Capture").click()
    expect(wallet_page.status).to_have_text(
        "For USD, enter the amount as digits with at most two decimals after a dot,"
        " for example 10 or 10.50."
    )
    expect(capture_field).to_have_attribute("aria-invalid", "true")

    assert sent == []
    expect_amounts(wallet_page, "50.00 USD", "30.00 USD", "20.00 USD")


def test_capturing_more_than_the_hold_is_refused_in_the_pages_words(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    wallet_id = api.create_wallet(service.url)
    api.deposit(service.url, wallet_id, "50")
    hold = api.place_hold(service.url, wallet_id, "30")
    short = hold["id"][:8]
    wallet_page = open_wallet(open_page, wallet_id)
    capture_field = wallet_page.hold(hold["id"]).get_by_role("textbox")
    capture_field.fill("40")

    answer = wallet_page.act_on_hold(hold["id"], "Capture")

    assert (answer.status, answer.json()["code"]) == (400, "VALIDATION_ERROR")
    expect(wallet_page.status).to_have_text(
        re.compile(rf"^The hold {short} was not captured: the amount to capture .*30\.00\.$")
    )
    expect(capture_field).to_have_attribute("aria-invalid", "true")
    expect(capture_field).to_have_value("40")
    expect(wallet_page.hold(hold["id"]).get_by_test_id("hold-status")).to_have_text("HELD")
    expect_amounts(wallet_page, "50.00 USD", "30.00 USD", "20.00 USD")


def test_a_hold_that_expires_is_shown_expired_and_released_without_a_reload(
    wallet_page: WalletPage,
) -> None:
    wallet_page.create_wallet()
    wallet_page.deposit("10")
    wallet_page.page.evaluate("window.notReloaded = true")

    hold_id = wallet_page.place_hold("4", expires_in="2").json()["id"]

    expect(wallet_page.status).to_have_text("Held 4.00 USD — available 6.00 USD")
    item = wallet_page.hold(hold_id)
    expect(item.get_by_test_id("hold-status")).to_have_text("EXPIRED", timeout=15_000)
    expect_amounts(wallet_page, "10.00 USD", "0.00 USD", "10.00 USD")
    expect(item.get_by_role("button")).to_have_count(0)
    assert wallet_page.page.evaluate("window.notReloaded") is True


def test_a_keyboard_places_and_voids_a_hold_in_order_and_hears_the_outcome(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    wallet_id = api.create_wallet(service.url)
    api.deposit(service.url, wallet_id, "30")
    wallet_page = open_wallet(open_page, wallet_id)
    keyboard = wallet_page.page.keyboard
    wallet_page.send_button.focus()

    for field, typed in (
        (wallet_page.hold_amount, "12.5"),
        (wallet_page.hold_payee, ""),
        (wallet_page.hold_expires_in, "600"),
        (wallet_page.hold_reference, "Deposit for the bike"),
    ):
        keyboard.press("Tab")  # each the very next stop, its focus visible
        expect(field).to_be_focused()
        assert wallet_page.page.evaluate(FOCUS_IS_VISIBLE)
        keyboard.type(typed)
    keyboard.press("Tab")
    expect(wallet_page.place_hold_button).to_be_focused()
    with wallet_page.page.expect_response(is_hold_post) as placed:
        keyboard.press("Enter")

    expect(wallet_page.status).to_have_text("Held 12.50 USD — available 17.50 USD")
    expect(wallet_page.place_hold_button).to_be_focused()  # the busy button kept the focus
    hold_id = placed.value.json()["id"]
    item = wallet_page.hold(hold_id)
    for stop in (item.get_by_role("textbox"), wallet_page.hold_button(hold_id, "Capture")):
        keyboard.press("Tab")
        expect(stop).to_be_focused()
    wallet_page.tab_to(wallet_page.hold_button(hold_id, "Void"))
    with wallet_page.page.expect_response(is_hold_post):
        keyboard.press("Enter")

    expect(wallet_page.status).to_have_text(
        f"Voided hold {hold_id[:8]}: 12.50 USD is no longer held"
    )
    expect(item).to_be_focused()  # the focused button left with the old item
    assert wallet_page.page.evaluate(FOCUS_IS_VISIBLE)
    expect_amounts(wallet_page, "30.00 USD", "0.00 USD", "30.00 USD")


def test_holds_fit_a_phone_and_every_text_is_legible(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    """Screenshots in artifacts/screenshots/ to look at; what they cannot be trusted to show
    is checked: nothing wider than the screen, every text at 4.5:1 against its background."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    payer = api.create_wallet(service.url)
    payee = api.create_wallet(service.url)
    api.deposit(service.url, payer, "500")
    captured = api.place_hold(
        service.url, payer, "40", toWalletId=payee, reference="Hotel, 3 nights"
    )
    api.post(f"{service.url}/api/v1/holds/{captured['id']}/capture", {"amount": "35.50"})
    voided = api.place_hold(service.url, payer, "12")
    api.void_hold(service.url, voided["id"])
    api.place_hold(service.url, payer, "99.99", toWalletId=payee, reference="Car rental deposit")
    views = [(viewport, scheme) for viewport in (PHONE, DESKTOP) for scheme in ("light", "dark")]
    for placed, (viewport, scheme) in enumerate(views, start=1):
        wallet_page = open_page(viewport, color_scheme=scheme, path=f"/#wallet={payer}")
        expect(wallet_page.wallet_id).to_have_text(payer)
        wallet_page.place_hold("25", expires_in="86400")
        wallet_page.place_hold("100000")  # refused: an error on screen too
        expect(wallet_page.status).to_contain_text(title_of(wallet_page, "INSUFFICIENT_FUNDS"))
        statuses = wallet_page.holds.get_by_test_id("hold-status")
        expect(statuses).to_have_text(["HELD"] * (placed + 1) + ["VOIDED", "CAPTURED"])
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
        path = SCREENSHOTS / f"holds-{name}-{width}px-{scheme}.png"
        page.screenshot(path=path, full_page=True)
        assert path.stat().st_size > 10_000
