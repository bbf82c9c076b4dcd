"""One catalogue of problems: each declared once, on a domain error or in the HTTP layer,
and the problem bodies, the OpenAPI document and the page all made from it."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path
from typing import Any
from uuid import uuid4

import jinja2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from dependency_injector import providers

import wallet.domain
from wallet.config import Settings
from wallet.container import Container
from wallet.domain import errors
from wallet.domain.currency import ACCEPTED_DIGITS, CURRENCIES
from wallet.domain.model import OperationType
from wallet.domain.money import Money
from wallet.entrypoints.http import openapi, problems
from wallet.entrypoints.http.app import create_app
from wallet.entrypoints.http.pages import page_catalogue
from wallet.entrypoints.http.problems import (
    ANSWERED,
    CATALOGUE,
    CLIENT_CLOSED,
    HTTP_KINDS,
    PROBLEM_CONTENT_TYPE,
    Problem,
    ProblemKind,
    from_domain,
)
from wallet.entrypoints.http.render import REPLAYED_HEADER

Client = TestClient[web.Request, web.Application]

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_BLOCK = re.compile(
    r'<script type="application/json" id="catalogue">(.*?)</script>', re.DOTALL
)
CURRENCY_CHOICE = re.compile(r'<select id="new-wallet-currency"[^>]*>(.*?)</select>', re.DOTALL)
CURRENCY_OPTION = re.compile(r'<option value="([A-Z]{3})"( selected)?>([A-Z]{3})</option>')
TEN = Money(1000)

# One instance of each domain error, as the use cases raise them.
SAMPLES: dict[type[errors.WalletError], errors.WalletError] = {
    errors.ValidationFailed: errors.ValidationFailed.single("amount", "must be greater than 0"),
    errors.WalletNotFound: errors.WalletNotFound(uuid4()),
    errors.TransferNotFound: errors.TransferNotFound(uuid4()),
    errors.HoldNotFound: errors.HoldNotFound(uuid4()),
    errors.HoldNotActive: errors.HoldNotActive(uuid4(), "CAPTURED"),
    errors.EventsExpired: errors.EventsExpired(7, 42),
    errors.CurrencyMismatch: errors.CurrencyMismatch("wallets of USD and EUR"),
    errors.InsufficientFunds: errors.InsufficientFunds(TEN, Money(2500)),
    errors.BalanceLimitExceeded: errors.BalanceLimitExceeded(TEN, TEN, Money(1500)),
    errors.StorageUnavailable: errors.StorageUnavailable("the pool is exhausted"),
    errors.IdempotencyKeyInUse: errors.IdempotencyKeyInUse("still running"),
    errors.IdempotencyKeyReused: errors.IdempotencyKeyReused("used for another request"),
    errors.IdempotencyKeyTaken: errors.IdempotencyKeyTaken("recorded meanwhile"),
}


def subclasses(cls: type[errors.WalletError]) -> list[type[errors.WalletError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *subclasses(sub)]
    return found


def wallet_errors() -> list[type[errors.WalletError]]:
    """Every error class of the service, but Replayed (it takes its original's problem)."""
    for module in pkgutil.iter_modules(wallet.domain.__path__):
        importlib.import_module(f"wallet.domain.{module.name}")
    found = [e for e in subclasses(errors.WalletError) if e.__module__.startswith("wallet.")]
    return [e for e in found if e is not errors.Replayed]


def domain_errors() -> list[type[errors.WalletError]]:
    """The domain's error classes: each declares a problem of its own."""
    return [e for e in wallet_errors() if e.__module__.startswith("wallet.domain.")]


def body_of(response: web.Response) -> dict[str, Any]:
    assert response.text is not None
    body: dict[str, Any] = json.loads(response.text)
    return body


# --- declared once ----------------------------------------------------------------------


@pytest.mark.parametrize("error", domain_errors(), ids=lambda e: e.__name__)
def test_each_domain_error_declares_its_code_status_and_title_in_the_errors_module(
    error: type[errors.WalletError],
) -> None:
    assert error.__module__ == errors.__name__, "the catalogue reads wallet.domain.errors"
    declared = vars(error)
    assert isinstance(declared.get("code"), str)
    assert re.fullmatch(r"[A-Z]+(_[A-Z]+)*", error.code)
    assert isinstance(declared.get("status"), int)
    assert 400 <= error.status <= 599
    assert isinstance(declared.get("title"), str)
    assert error.title


@pytest.mark.parametrize("error", wallet_errors(), ids=lambda e: e.__name__)
def test_every_error_of_the_service_is_answered_with_a_problem_of_the_catalogue(
    error: type[errors.WalletError],
) -> None:
    """An adapter's own refinement of a domain error is answered as that error is."""
    assert error.code in CATALOGUE
    assert (error.status, error.title) == (
        CATALOGUE[error.code].status,
        CATALOGUE[error.code].title,
    )


def test_the_catalogue_is_the_domain_errors_kinds_and_the_http_layers_own() -> None:
    domain = {ProblemKind(e.status, e.code, e.title) for e in domain_errors()}

    assert set(CATALOGUE.values()) == domain | set(HTTP_KINDS)
    assert len(CATALOGUE) == len(domain) + len(HTTP_KINDS), "a code declared in both places"
    assert all(code == kind.code for code, kind in CATALOGUE.items())


def test_the_catalogue_goes_by_status() -> None:
    statuses = [kind.status for kind in CATALOGUE.values()]
    assert statuses == sorted(statuses)


def test_a_code_declared_twice_must_say_the_same_status_and_title(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert problems.kind_of(errors.IdempotencyKeyTaken) is problems.kind_of(
        errors.IdempotencyKeyInUse
    )
    monkeypatch.setattr(errors.IdempotencyKeyTaken, "title", "Idempotency key taken")

    with pytest.raises(TypeError, match="IDEMPOTENCY_KEY_IN_USE"):
        problems._catalogue()


def test_only_the_client_closed_problem_never_reaches_a_client() -> None:
    assert [kind for kind in CATALOGUE.values() if kind not in ANSWERED] == [CLIENT_CLOSED]


# --- the renderer -----------------------------------------------------------------------


def test_every_domain_error_has_a_sample_here() -> None:
    assert set(SAMPLES) == set(domain_errors())


@pytest.mark.parametrize("error", list(SAMPLES.values()), ids=lambda e: type(e).__name__)
def test_a_domain_error_is_answered_with_the_problem_it_declares(
    error: errors.WalletError,
) -> None:
    response = from_domain(error, retry_after=3).response("request-1")
    body = body_of(response)

    declared = type(error)
    assert response.status == declared.status
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert (body["status"], body["code"], body["title"]) == (
        declared.status,
        declared.code,
        declared.title,
    )
    assert body["type"] == CATALOGUE[declared.code].type
    assert body["requestId"] == "request-1"


def test_a_replayed_refusal_is_answered_as_its_original_was_and_says_so() -> None:
    original = SAMPLES[errors.InsufficientFunds]
    replayed = errors.Replayed(original, "first-request")

    response = from_domain(replayed, retry_after=3).response(replayed.request_id)

    assert (replayed.code, replayed.status, replayed.title) == (
        original.code,
        original.status,
        original.title,
    )
    assert body_of(response) == body_of(from_domain(original, 3).response("first-request"))
    assert response.headers[REPLAYED_HEADER] == "true"


def test_a_taken_key_is_answered_as_a_key_in_use() -> None:
    response = from_domain(SAMPLES[errors.IdempotencyKeyTaken], retry_after=3).response("r")
    assert (response.status, body_of(response)["code"]) == (409, "IDEMPOTENCY_KEY_IN_USE")


def test_a_hold_no_longer_held_is_a_conflict_whose_detail_names_its_status() -> None:
    response = from_domain(SAMPLES[errors.HoldNotActive], retry_after=3).response("r")
    body = body_of(response)
    assert (response.status, body["code"]) == (409, "HOLD_NOT_ACTIVE")
    assert "CAPTURED" in body["detail"]


def test_a_refinement_of_a_domain_error_is_answered_as_that_error() -> None:
    class PoolDrained(errors.StorageUnavailable):
        pass

    response = from_domain(PoolDrained("no connection"), retry_after=3).response("r")
    assert (response.status, body_of(response)["code"]) == (503, "SERVICE_UNAVAILABLE")
    assert response.headers["Retry-After"] == "3"


def test_an_error_outside_the_catalogue_is_an_internal_error() -> None:
    response = from_domain(errors.WalletError("no kind of its own"), retry_after=3).response("r")
    assert (response.status, body_of(response)["code"]) == (500, "INTERNAL_ERROR")


@pytest.mark.parametrize("kind", HTTP_KINDS, ids=lambda k: k.code)
def test_a_problem_of_the_http_layer_is_answered_as_the_catalogue_says(
    kind: ProblemKind,
) -> None:
    response = Problem(kind, "detail").response("r")
    body = body_of(response)
    assert response.status == kind.status
    assert body["type"] == "/problems/" + kind.code.lower().replace("_", "-")
    assert (body["status"], body["code"], body["title"]) == (kind.status, kind.code, kind.title)


# --- the OpenAPI document ---------------------------------------------------------------


def problem_responses(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every problem response of every operation: (where, status key, response)."""
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    response = document["components"]["responses"][response["$ref"].split("/")[-1]]
                if PROBLEM_CONTENT_TYPE in response.get("content", {}):
                    found.append((f"{method} {path}", status, response))
    return found


def test_the_documents_codes_are_exactly_those_a_client_can_get() -> None:
    problem = openapi.document()["components"]["schemas"]["Problem"]
    assert problem["properties"]["code"]["enum"] == [kind.code for kind in ANSWERED]


def test_each_documented_problem_is_listed_under_the_status_of_its_codes() -> None:
    found = problem_responses(openapi.document())
    assert len(found) > 20
    for where, status, response in found:
        schema = response["content"][PROBLEM_CONTENT_TYPE]["schema"]
        narrowed = schema["allOf"][1]["properties"]
        assert narrowed["status"]["const"] == int(status), (where, status)
        for code in narrowed["code"]["enum"]:
            assert CATALOGUE[code].status == int(status), (where, code)


def test_every_problem_a_client_can_get_is_documented_somewhere() -> None:
    documented = {
        code
        for _, _, response in problem_responses(openapi.document())
        for code in response["content"][PROBLEM_CONTENT_TYPE]["schema"]["allOf"][1]["properties"][
            "code"
        ]["enum"]
    }
    # No route answers NOT_FOUND: it is what a path outside the document gets.
    assert documented | {"NOT_FOUND"} == {kind.code for kind in ANSWERED}


# --- the page ---------------------------------------------------------------------------


async def test_the_page_carries_the_catalogue_as_json_data(client: Client) -> None:
    html = await (await client.get("/")).text()
    block = CATALOGUE_BLOCK.search(html)
    assert block is not None
    given = json.loads(block.group(1))

    assert given == page_catalogue()
    assert given["problems"] == {
        kind.code: {"status": kind.status, "title": kind.title} for kind in ANSWERED
    }
    assert given["entryTypes"] == {
        "DEPOSIT": {"sign": 1},
        "WITHDRAW": {"sign": -1},
        "TRANSFER_OUT": {"sign": -1},
        "TRANSFER_IN": {"sign": 1},
    }
    assert given["entryTypes"] == {t.value: {"sign": t.sign} for t in OperationType}
    assert given["currencies"] == {code: c.digits for code, c in CURRENCIES.items()}


def test_the_page_knows_every_currency_a_wallet_may_hold_with_its_decimals() -> None:
    currencies = page_catalogue()["currencies"]

    assert isinstance(currencies, dict)
    assert list(currencies) == sorted(CURRENCIES)
    assert {"JPY": 0, "USD": 2, "EUR": 2, "BHD": 3}.items() <= currencies.items()
    assert set(currencies.values()) == set(ACCEPTED_DIGITS)
    assert not {"XAU", "XXX", "XTS", "USN", "CLF"} & set(currencies)  # metals, special, funds


def test_the_default_currency_is_a_setting_not_part_of_the_cached_catalogue() -> None:
    assert "defaultCurrency" not in page_catalogue()
    assert page_catalogue() is page_catalogue()


def currency_choice(html: str) -> tuple[list[str], list[str]]:
    """The new wallet's currency select: every code it offers, and those preselected."""
    choice = CURRENCY_CHOICE.search(html)
    assert choice is not None
    options = CURRENCY_OPTION.findall(choice.group(1))
    assert len(options) == choice.group(1).count("<option")
    assert all(value == text for value, _, text in options)
    return [value for value, _, _ in options], [value for value, chosen, _ in options if chosen]


async def test_a_new_wallets_currency_is_chosen_among_all_with_the_default_preselected(
    client: Client,
) -> None:
    html = await (await client.get("/")).text()

    offered, preselected = currency_choice(html)

    assert offered == list(CURRENCIES)
    assert preselected == ["USD"]
    assert '<label for="new-wallet-currency">' in html


async def test_the_page_preselects_the_default_currency_of_its_own_service(
    aiohttp_client: Any, container: Container
) -> None:
    settings = Settings(
        database_url="postgresql://unused", redis_url="", default_currency=CURRENCIES["JPY"]
    )
    container.settings.override(providers.Object(settings))
    client: Client = await aiohttp_client(create_app(container))

    html = await (await client.get("/")).text()

    assert currency_choice(html)[1] == ["JPY"]
    block = CATALOGUE_BLOCK.search(html)
    assert block is not None
    assert json.loads(block.group(1)) == page_catalogue()  # the same for every service


def test_a_bare_status_stands_for_the_problem_the_service_answers_it_with() -> None:
    """A status two problems share and aiohttp never answers by itself (409: a key in use,
    a hold no longer held) stands for neither."""
    assert page_catalogue()["codeForStatus"] == {
        "400": "VALIDATION_ERROR",
        "401": "UNAUTHORIZED",
        "404": "NOT_FOUND",
        "405": "METHOD_NOT_ALLOWED",
        "410": "EVENTS_EXPIRED",
        "413": "PAYLOAD_TOO_LARGE",
        "415": "UNSUPPORTED_MEDIA_TYPE",
        "422": "IDEMPOTENCY_KEY_REUSED",
        "500": "INTERNAL_ERROR",
        "503": "SERVICE_UNAVAILABLE",
    }


def test_the_data_block_cannot_end_early_whatever_the_catalogue_says() -> None:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROOT / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    hostile = {"problems": {"X": {"status": 400, "title": "</script><script>alert(1)//&'"}}}

    html = environment.get_template("index.html").render(static_url="/s", catalogue=hostile)

    block = CATALOGUE_BLOCK.search(html)
    assert block is not None
    assert "<" not in block.group(1)
    assert json.loads(block.group(1)) == hostile


def test_the_pages_own_wording_is_for_codes_of_the_catalogue() -> None:
    source = (ROOT / "static" / "messages.js").read_text(encoding="utf-8")
    table = re.search(r"const PROBLEM_SENTENCES = \{(.*?)\n\};", source, re.DOTALL)
    assert table is not None
    worded = re.findall(r"^  ([A-Z_]+):", table.group(1), re.MULTILINE)
    assert worded
    assert set(worded) <= {kind.code for kind in ANSWERED}


@pytest.mark.parametrize("script", sorted((ROOT / "static").glob("*.js")), ids=lambda p: p.name)
def test_no_script_of_the_page_names_an_entry_type(script: Path) -> None:
    """The page draws entries by their sign in the catalogue, never by their name."""
    source = script.read_text(encoding="utf-8")
    for entry in OperationType:
        assert f'"{entry.value}"' not in source
        assert f"'{entry.value}'" not in source


# A problem code a script of the page words on its own: `problem.code === "X"`, `titleOf("X"`.
CODE_WORDED = re.compile(r'(?:\.code === |titleOf\()"([A-Z]+(?:_[A-Z]+)*)"')


def test_the_problems_the_pages_forms_word_are_problems_of_the_catalogue() -> None:
    """The transfer and hold forms word some refusals themselves; a code that is not in the
    catalogue (a typo, a code renamed) would never match, and its words never be said."""
    worded = {
        script.name: set(CODE_WORDED.findall(script.read_text(encoding="utf-8")))
        for script in (ROOT / "static").glob("*.js")
    }
    codes = {kind.code for kind in ANSWERED}

    assert {name: found - codes for name, found in worded.items() if found - codes} == {}
    assert {"HOLD_NOT_FOUND", "HOLD_NOT_ACTIVE", "CURRENCY_MISMATCH"} <= set().union(
        *worded.values()
    )
