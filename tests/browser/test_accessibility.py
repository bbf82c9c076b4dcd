"""The page for keyboard and assistive-technology users: names, focus, contrast, live news."""

from __future__ import annotations

import re
from typing import Any, Literal

import pytest
from playwright.sync_api import expect

from tests.browser import api
from tests.browser.wallet_page import (
    DESKTOP,
    PHONE,
    WALLETS_PER_PAGE,
    OpenPage,
    WalletPage,
    is_operation_post,
)
from tests.integration.servers import ServiceProcess

MINIMUM_TEXT_CONTRAST = 4.5  # WCAG 2.2 AA, 1.4.3, for text of any size

LABELLED_FIELDS = (
    "Currency of a new wallet",
    "Open a wallet by id",
    "Amount",
    "How much to hold",
    "Payee's wallet id (optional)",
    "Expires in seconds (optional)",
    "Hold reference (optional)",
    "API key",
)
NAMED_BUTTONS = (
    "Create wallet",
    "Open",
    "Previous",
    "Next",
    "Copy wallet id",
    "Deposit",
    "Withdraw",
    "Place hold",
    "Use this key",
)

# Every visible element with text of its own: its colour, its opacity and the colour
# behind it (the first opaque background up the tree; none of ours is translucent).
VISIBLE_TEXT_COLOURS = """() => {
  const visible = (element) => {
    const box = element.getBoundingClientRect();
    return box.width > 1 && box.height > 1 && box.right > 0 && box.bottom > 0
      && getComputedStyle(element).visibility === "visible";
  };
  const background = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const colour = getComputedStyle(node).backgroundColor;
      if (!/^rgba\\(.*, 0\\)$/.test(colour) && colour !== "transparent") return colour;
    }
    return getComputedStyle(document.documentElement).backgroundColor;
  };
  const opacity = (element) => {
    let value = 1;
    for (let node = element; node; node = node.parentElement) {
      value *= parseFloat(getComputedStyle(node).opacity);
    }
    return value;
  };
  const found = [];
  for (const element of document.body.querySelectorAll("*")) {
    const ownText = Array.from(element.childNodes)
      .filter((node) => node.nodeType === Node.TEXT_NODE)
      .map((node) => node.textContent.trim()).join(" ").trim();
    if (!ownText || !visible(element) || element.closest(":disabled, .sr-only, title, desc")) {
      continue;
    }
    const style = getComputedStyle(element);
    const svgText = element instanceof SVGElement;
    found.push({
      text: ownText.slice(0, 40),
      colour: svgText ? style.fill : style.color,
      opacity: opacity(element),
      background: background(element),
    });
  }
  for (const input of document.querySelectorAll("input[placeholder]")) {
    if (visible(input) && !input.value) {
      const placeholder = getComputedStyle(input, "::placeholder");
      found.push({
        text: "placeholder " + input.placeholder,
        colour: placeholder.color,
        opacity: opacity(input) * parseFloat(placeholder.opacity),
        background: background(input),
      });
    }
  }
  return found;
}"""


def rgb(css: str) -> tuple[float, ...]:
    numbers = [float(n) for n in re.findall(r"[0-9.]+", css)]
    assert len(numbers) in (3, 4), css
    if len(numbers) == 4:
        assert numbers[3] == 1, f"translucent colour {css}: blend it before measuring"
    return tuple(numbers[:3])


def luminance(colour: tuple[float, ...]) -> float:
    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(text: tuple[float, ...], background: tuple[float, ...], opacity: float) -> float:
    shown = tuple(opacity * t + (1 - opacity) * b for t, b in zip(text, background, strict=True))
    light, dark = sorted((luminance(shown), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_every_field_has_a_label_and_every_button_a_name(wallet_page: WalletPage) -> None:
    page = wallet_page.page
    wallet_page.create_wallet()
    wallet_page.deposit("1")
    wallet_page.place_hold("0.50")  # its own amount field, Capture and Void

    for label in LABELLED_FIELDS:
        expect(page.get_by_label(label, exact=True)).to_have_count(1)
    for name in NAMED_BUTTONS:
        button = page.get_by_role("button", name=name, exact=True, include_hidden=True)
        expect(button).to_have_count(1)
    # A placeholder or a title is not a label: each field needs a <label> or aria-label(ledby).
    unlabelled = page.locator("input:not([type=hidden]), select, textarea").evaluate_all(
        "fields => fields.filter(f => !f.labels.length && !f.ariaLabel"
        " && !f.hasAttribute('aria-labelledby')).map(f => f.outerHTML)"
    )
    assert unlabelled == []
    every_button = page.get_by_role("button", include_hidden=True)
    named_buttons = page.get_by_role("button", name=re.compile(r"\S"), include_hidden=True)
    assert every_button.count() == named_buttons.count() > len(NAMED_BUTTONS)
    expect(page.get_by_role("table", name="Operations on this wallet")).to_be_visible()
    expect(page.get_by_role("img", name="Balance over time")).to_be_visible()


def test_news_is_announced_in_a_polite_live_region(wallet_page: WalletPage) -> None:
    status = wallet_page.page.get_by_role("status")
    expect(status).to_have_attribute("aria-live", "polite")

    wallet_page.create_wallet()
    wallet_page.withdraw("5")

    expect(status).to_have_text("Insufficient funds: Balance 0.00 is less than 5.00")


def test_a_person_with_only_a_keyboard_can_create_deposit_and_withdraw(
    wallet_page: WalletPage,
) -> None:
    """Every stop on the way must show where the focus is (checked by ``tab_to``)."""
    page = wallet_page.page
    keyboard = page.keyboard

    wallet_page.tab_to(page.get_by_role("link", name="Skip to main content"))
    keyboard.press("Enter")
    wallet_page.tab_to(wallet_page.create_button)
    keyboard.press("Enter")
    expect(wallet_page.status).to_contain_text("Created wallet")
    expect(wallet_page.balance).to_have_text("0.00 USD")
    expect(wallet_page.create_button).to_be_focused()  # the busy button kept the focus

    wallet_page.tab_to(wallet_page.amount)
    keyboard.type("42.50")
    wallet_page.tab_to(wallet_page.deposit_button)
    with page.expect_response(is_operation_post):
        keyboard.press("Enter")
    expect(wallet_page.status).to_have_text("Deposited 42.50 USD — balance 42.50 USD")
    expect(wallet_page.balance).to_have_text("42.50 USD")
    expect(wallet_page.deposit_button).to_be_focused()

    wallet_page.tab_to(wallet_page.amount, key="Shift+Tab")
    keyboard.type("50")
    wallet_page.tab_to(wallet_page.withdraw_button)
    with page.expect_response(is_operation_post):
        keyboard.press("Space")
    expect(wallet_page.status).to_have_text("Insufficient funds: Balance 42.50 is less than 50.00")

    wallet_page.tab_to(wallet_page.amount, key="Shift+Tab")
    keyboard.press("ControlOrMeta+A")
    keyboard.type("2.50")
    wallet_page.tab_to(wallet_page.withdraw_button)
    with page.expect_response(is_operation_post):
        keyboard.press("Enter")
    expect(wallet_page.status).to_have_text("Withdrew 2.50 USD — balance 40.00 USD")
    expect(wallet_page.operation_rows).to_have_count(2)


def test_the_wallet_pages_turn_with_the_keyboard_and_the_focus_stays_on_the_pager(
    service: ServiceProcess, open_page: OpenPage
) -> None:
    ids = api.create_wallets(service.url, WALLETS_PER_PAGE + 1)
    wallet_page = open_page(DESKTOP)
    expect(wallet_page.wallets).to_have_count(WALLETS_PER_PAGE)

    wallet_page.tab_to(wallet_page.next_button)
    wallet_page.page.keyboard.press("Enter")

    expect(wallet_page.page_number).to_have_text("Page 2")
    expect(wallet_page.wallets).to_contain_text(ids[WALLETS_PER_PAGE:])
    expect(wallet_page.previous_button).to_be_focused()  # Next is disabled on the last page

    wallet_page.page.keyboard.press("Enter")

    expect(wallet_page.page_number).to_have_text("Page 1")
    expect(wallet_page.next_button).to_be_focused()
    wallet_page.tab_to(wallet_page.wallets.first, key="Shift+Tab")
    wallet_page.page.keyboard.press("Enter")
    expect(wallet_page.wallet_id).to_have_text(ids[0])


def test_enter_in_the_amount_field_does_not_choose_for_the_user(wallet_page: WalletPage) -> None:
    wallet_page.create_wallet()
    wallet_page.amount.fill("10")

    wallet_page.amount.press("Enter")

    expect(wallet_page.status).to_have_text("Choose Deposit or Withdraw to apply the amount.")
    expect(wallet_page.balance).to_have_text("0.00 USD")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_all_visible_text_has_enough_contrast(
    open_page: OpenPage, scheme: Literal["light", "dark"]
) -> None:
    for viewport in (PHONE, DESKTOP):
        wallet_page = open_page(viewport, color_scheme=scheme)
        wallet_page.create_wallet()
        wallet_page.deposit("12.34")
        wallet_page.withdraw("99")  # an error message on screen too
        expect(wallet_page.status).to_contain_text("Insufficient funds")

        texts: list[dict[str, Any]] = wallet_page.page.evaluate(VISIBLE_TEXT_COLOURS)

        assert len(texts) > 20
        too_faint = [
            (item["text"], round(ratio, 2))
            for item in texts
            if (ratio := contrast(rgb(item["colour"]), rgb(item["background"]), item["opacity"]))
            < MINIMUM_TEXT_CONTRAST
        ]
        assert too_faint == [], f"{scheme} at {viewport['width']} px: {too_faint}"
