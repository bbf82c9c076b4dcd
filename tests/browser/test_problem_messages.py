"""The page's messages and ledger come from the service's catalogue, as the page shows them."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Route, expect

from tests.browser.wallet_page import WalletPage
from wallet.entrypoints.http.pages import page_catalogue

# problemMessage as the page's own module says it, for each (body, status) case.
MESSAGES = """async (cases) => {
  const { problemMessage } = await import("/static/messages.js");
  return cases.map(([body, status]) => problemMessage(body, new Headers(), status));
}"""
READ_CATALOGUE = '() => JSON.parse(document.getElementById("catalogue").textContent)'
CATALOGUE_BLOCK = re.compile(r'(<script type="application/json" id="catalogue">)(.*?)(</script>)')


def messages(wallet_page: WalletPage, cases: list[tuple[dict[str, Any] | None, int]]) -> list[str]:
    said: list[str] = wallet_page.page.evaluate(MESSAGES, cases)
    return said


def problem(code: str, status: int, title: str, detail: str = "") -> dict[str, Any]:
    return {"title": title, "status": status, "detail": detail, "code": code, "requestId": "r-1"}


def test_the_page_reads_the_catalogue_the_service_renders(wallet_page: WalletPage) -> None:
    assert wallet_page.page.evaluate(READ_CATALOGUE) == page_catalogue()


def test_every_problem_of_the_catalogue_has_a_message_on_the_page(
    wallet_page: WalletPage,
) -> None:
    kinds = wallet_page.page.evaluate(READ_CATALOGUE)["problems"]
    assert len(kinds) >= 13
    cases = [
        (problem(code, kind["status"], kind["title"]), kind["status"])
        for code, kind in kinds.items()
    ]
    cases.append((problem("NO_SUCH_CODE", 418, "I'm a teapot"), 418))

    *said, unknown = messages(wallet_page, cases)

    for code, message in zip(kinds, said, strict=True):
        assert message.strip(), code
        assert "(HTTP " not in message, (code, message)  # the wording for a code it lacks
    assert unknown == "I'm a teapot (HTTP 418)."


def test_a_problem_the_page_has_no_words_of_its_own_for_is_said_by_its_title(
    wallet_page: WalletPage,
) -> None:
    said = messages(
        wallet_page,
        [
            (
                problem(
                    "INSUFFICIENT_FUNDS",
                    400,
                    "Insufficient funds",
                    "Balance 1.00 is less than 2.00",
                ),
                400,
            ),
            (problem("BALANCE_LIMIT_EXCEEDED", 400, "Balance limit exceeded"), 400),
        ],
    )
    assert said == [
        "Insufficient funds: Balance 1.00 is less than 2.00",
        "Balance limit exceeded.",
    ]


def test_an_answer_without_a_code_is_said_by_the_problem_its_status_stands_for(
    wallet_page: WalletPage,
) -> None:
    stands_for = wallet_page.page.evaluate(READ_CATALOGUE)["codeForStatus"]
    statuses = [int(status) for status in stands_for]
    bare = [(None, status) for status in statuses]
    named = [({"code": stands_for[str(status)], "status": status}, status) for status in statuses]

    said = messages(wallet_page, bare + named)

    assert said[: len(statuses)] == said[len(statuses) :]
    gateway = messages(wallet_page, [(None, 502), (None, 503), (None, 504), (None, 403)])
    assert gateway[0] == gateway[1] == gateway[2]
    assert gateway[1].startswith("The service is temporarily unavailable")
    assert gateway[3] == "Unexpected answer (HTTP 403)."


def test_the_ledger_is_drawn_by_the_signs_of_the_entry_types(wallet_page: WalletPage) -> None:
    wallet_page.create_wallet()
    wallet_page.deposit("10")
    wallet_page.withdraw("4")

    badges = wallet_page.operations.locator("tbody .badge")
    expect(badges.nth(0)).to_have_text("WITHDRAW")
    expect(badges.nth(0)).to_have_class("badge badge-withdraw")
    expect(badges.nth(1)).to_have_text("DEPOSIT")
    expect(badges.nth(1)).to_have_class("badge badge-deposit")


def flip_signs(route: Route) -> None:
    """The page as a service whose entry types had the opposite signs would send it."""
    page = route.fetch()

    def flipped(block: re.Match[str]) -> str:
        catalogue = json.loads(block.group(2))
        for entry in catalogue["entryTypes"].values():
            entry["sign"] = -entry["sign"]
        return block.group(1) + json.dumps(catalogue) + block.group(3)

    route.fulfill(response=page, body=CATALOGUE_BLOCK.sub(flipped, page.text()))


def test_the_page_follows_the_signs_the_service_gives_not_the_names(
    wallet_page: WalletPage,
) -> None:
    page = wallet_page.page
    page.route(lambda url: urlsplit(url).path == "/", flip_signs)
    page.reload()
    assert page.evaluate(READ_CATALOGUE)["entryTypes"]["DEPOSIT"]["sign"] == -1
    wallet_page.create_wallet()

    wallet_page.deposit("10")

    expect(wallet_page.status).to_have_text("Withdrew 10.00 USD — balance 10.00 USD")
    badge = wallet_page.operations.locator("tbody .badge").first
    expect(badge).to_have_text("DEPOSIT")
    expect(badge).to_have_class("badge badge-withdraw")
