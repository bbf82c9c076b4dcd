"""The wallet page as a person sees it: controls found by their labels and roles."""

from __future__ import annotations

import re
from typing import Literal

from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Response,
    ViewportSize,
    expect,
)

PHONE = ViewportSize(width=390, height=844)
DESKTOP = ViewportSize(width=1280, height=800)
MAX_TAB_STOPS = 60
WALLETS_PER_PAGE = 10  # WALLETS_PAGE_SIZE in static/wallet-list.js
HOLD_POST = re.compile(r"/api/v1/(wallets/[^/]+/holds|holds/[^/]+/(capture|void))$")

FOCUS_IS_VISIBLE = """() => {
  const element = document.activeElement;
  const style = getComputedStyle(element);
  return element.matches(":focus-visible") && style.outlineStyle !== "none"
    && parseFloat(style.outlineWidth) >= 2;
}"""


def is_operation_post(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/operation")


def is_transfer_post(response: Response) -> bool:
    return response.request.method == "POST" and response.url.endswith("/api/v1/transfers")


def is_hold_post(response: Response) -> bool:
    """Placing a hold, capturing or voiding one."""
    return response.request.method == "POST" and bool(HOLD_POST.search(response.url))


class WalletPage:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.status = page.get_by_role("status")
        self.create_button = page.get_by_role("button", name="Create wallet")
        self.currency = page.get_by_label("Currency of a new wallet")
        self.amount = page.get_by_label("Amount")
        self.deposit_button = page.get_by_role("button", name="Deposit", exact=True)
        self.withdraw_button = page.get_by_role("button", name="Withdraw", exact=True)
        self.wallet_id = page.get_by_test_id("wallet-id")
        self.balance = page.get_by_test_id("wallet-balance")
        self.operations = page.get_by_role("table", name="Operations on this wallet")
        self.operation_rows = self.operations.locator("tbody tr")
        self.chart = page.get_by_role("img", name="Balance over time")
        self.chart_points = self.chart.locator("circle")
        self.wallets = page.get_by_role("list", name="Wallets, oldest first").get_by_role("button")
        self.previous_button = page.get_by_role("button", name="Previous")
        self.next_button = page.get_by_role("button", name="Next")
        self.page_number = page.get_by_text(re.compile(r"^Page [0-9]+$"))
        self.transfer_form = page.get_by_role("form", name="Send money")
        self.payee = page.get_by_label("Payee wallet", exact=True)
        self.payee_id = page.get_by_label("Or paste the payee's wallet id", exact=True)
        self.send_amount = page.get_by_label("How much to send", exact=True)
        self.reference = page.get_by_label("Reference (optional)", exact=True)
        self.send_button = page.get_by_role("button", name="Send", exact=True)
        self.held = page.get_by_test_id("wallet-held")
        self.available = page.get_by_test_id("wallet-available")
        self.hold_form = page.get_by_role("form", name="Place a hold")
        self.hold_amount = page.get_by_label("How much to hold", exact=True)
        self.hold_payee = page.get_by_label("Payee's wallet id (optional)", exact=True)
        self.hold_expires_in = page.get_by_label("Expires in seconds (optional)", exact=True)
        self.hold_reference = page.get_by_label("Hold reference (optional)", exact=True)
        self.place_hold_button = page.get_by_role("button", name="Place hold", exact=True)
        self.holds = page.get_by_role("list", name="Holds on this wallet").get_by_role("listitem")

    def create_wallet(self, currency: str | None = None) -> str:
        """Click "Create wallet" (in ``currency`` if given, else in the one preselected) and
        return the new wallet's id, as the details show it."""
        before = self.wallet_id.text_content() or ""
        if currency is not None:
            self.currency.select_option(currency)
        self.create_button.click()
        expect(self.status).to_contain_text("Created wallet")
        expect(self.wallet_id).not_to_have_text(before)
        return self.wallet_id.inner_text()

    def deposit(self, amount: str) -> None:
        self._operate(self.deposit_button, amount)

    def withdraw(self, amount: str) -> None:
        self._operate(self.withdraw_button, amount)

    def _operate(self, button: Locator, amount: str) -> None:
        """Type the amount, press the button, wait until the page has shown the answer."""
        self.amount.fill(amount)
        with self.page.expect_response(is_operation_post):
            button.click()
        expect(self.page.locator("#operation-form")).to_have_attribute("aria-busy", "false")

    def send(
        self,
        amount: str,
        *,
        to: str | None = None,
        pasted: str | None = None,
        reference: str | None = None,
    ) -> Response:
        """Fill the "Send money" form (payee ``to`` from the list, or a ``pasted`` id), press
        Send, wait until the page has shown the answer; return the service's answer."""
        if to is not None:
            self.payee.select_option(to)
        if pasted is not None:
            self.payee_id.fill(pasted)
        self.send_amount.fill(amount)
        if reference is not None:
            self.reference.fill(reference)
        with self.page.expect_response(is_transfer_post) as answer:
            self.send_button.click()
        expect(self.transfer_form).to_have_attribute("aria-busy", "false")
        return answer.value

    def place_hold(
        self,
        amount: str,
        *,
        payee: str | None = None,
        expires_in: str | None = None,
        reference: str | None = None,
    ) -> Response:
        """Fill the "Place a hold" form, press Place hold, wait until the page has shown the
        answer; return the service's answer."""
        self.hold_amount.fill(amount)
        if payee is not None:
            self.hold_payee.fill(payee)
        if expires_in is not None:
            self.hold_expires_in.fill(expires_in)
        if reference is not None:
            self.hold_reference.fill(reference)
        with self.page.expect_response(is_hold_post) as answer:
            self.place_hold_button.click()
        expect(self.hold_form).to_have_attribute("aria-busy", "false")
        return answer.value

    def hold(self, hold_id: str) -> Locator:
        """The item of the holds list that shows this hold."""
        return self.holds.filter(has=self.page.get_by_title(hold_id, exact=True))

    def hold_button(self, hold_id: str, action: Literal["Capture", "Void"]) -> Locator:
        """Capture or Void on the hold's item, named with the hold it acts on."""
        return self.hold(hold_id).get_by_role("button", name=f"{action} hold {hold_id[:8]}")

    def act_on_hold(self, hold_id: str, action: Literal["Capture", "Void"]) -> Response:
        """Press Capture or Void on the hold's item; return the service's answer."""
        with self.page.expect_response(is_hold_post) as answer:
            self.hold_button(hold_id, action).click()
        return answer.value

    def ledger(self) -> list[list[str]]:
        """The table's rows, newest first, as (type, amount, balance after)."""
        return [row.locator("td").all_inner_texts()[1:] for row in self.operation_rows.all()]

    def tab_to(self, target: Locator, key: str = "Tab") -> None:
        """Press Tab until ``target`` has the focus; every stop on the way must show it."""
        for _ in range(MAX_TAB_STOPS):
            self.page.keyboard.press(key)
            active = self.page.evaluate("() => document.activeElement.outerHTML.slice(0, 120)")
            assert self.page.evaluate(FOCUS_IS_VISIBLE), f"focus is not visible on {active}"
            if target.evaluate("element => element === document.activeElement"):
                return
        raise AssertionError(f"{key} never reached {target} in {MAX_TAB_STOPS} presses")


class OpenPage:
    """Opens the page as often as a test needs, each in its own context, and collects errors.

    Errors are uncaught exceptions and console errors (a CSP violation is one); a
    refused API request's "Failed to load resource" line is the page working as meant.
    """

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.errors: list[str] = []
        self._pages: list[Page] = []

    def __call__(
        self,
        viewport: ViewportSize,
        color_scheme: Literal["light", "dark"] = "light",
        path: str = "/",
    ) -> WalletPage:
        context = self.browser.new_context(
            base_url=self.base_url,
            viewport=viewport,
            color_scheme=color_scheme,
            locale="en-GB",
            timezone_id="UTC",
            reduced_motion="reduce",
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("console", self._console)
        self._pages.append(page)
        page.goto(path)
        return WalletPage(page)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {message.text}")

    def close(self) -> None:
        for page in self._pages:
            page.context.close()
