"""Group-commit planning: decisions in arrival order, and the range where they hold."""

from __future__ import annotations

import random

import pytest

from wallet.domain.batch import plan_batch
from wallet.domain.errors import BalanceLimitExceeded, InsufficientFunds
from wallet.domain.model import OperationRequest, OperationType, next_balance
from wallet.domain.money import MAX_BALANCE_MINOR, Money

DEPOSIT, WITHDRAW = OperationType.DEPOSIT, OperationType.WITHDRAW


def op(kind: OperationType, minor: int) -> OperationRequest:
    return OperationRequest(kind, Money(minor))


def one_by_one(start: int, requests: list[OperationRequest]) -> list[int | None]:
    """The reference: apply each request alone; None where it is refused."""
    balance, results = Money(start), []
    for request in requests:
        try:
            balance = next_balance(balance, request)
        except (InsufficientFunds, BalanceLimitExceeded):
            results.append(None)
        else:
            results.append(balance.minor)
    return results


def planned(start: int, requests: list[OperationRequest]) -> list[int | None]:
    plan = plan_batch(Money(start), requests)
    return [start + d.offset_after if d.accepted else None for d in plan.decisions]


def test_a_withdrawal_that_would_overdraw_is_refused_alone() -> None:
    requests = [op(DEPOSIT, 100), op(WITHDRAW, 250), op(WITHDRAW, 50), op(DEPOSIT, 10)]

    plan = plan_batch(Money(100), requests)

    assert [d.accepted for d in plan.decisions] == [True, False, True, True]
    assert plan.net == 60
    assert plan.accepted == 3
    refusal = plan.decisions[1].refusal(Money(100))
    assert isinstance(refusal, InsufficientFunds)
    assert str(refusal) == "Balance 2.00 is less than 2.50"


def test_a_deposit_past_the_maximum_is_refused_alone() -> None:
    requests = [op(DEPOSIT, 5), op(DEPOSIT, 10), op(WITHDRAW, 1)]

    plan = plan_batch(Money(MAX_BALANCE_MINOR - 7), requests)

    assert [d.accepted for d in plan.decisions] == [True, False, True]
    assert isinstance(plan.decisions[1].refusal(Money(MAX_BALANCE_MINOR - 7)), BalanceLimitExceeded)


def test_deposits_alone_hold_from_zero_to_the_maximum_less_their_sum() -> None:
    plan = plan_batch(Money(0), [op(DEPOSIT, 3), op(DEPOSIT, 4)])
    assert (plan.lowest, plan.highest) == (0, MAX_BALANCE_MINOR - 7)


def test_an_empty_run_changes_nothing() -> None:
    plan = plan_batch(Money(42), [])
    assert (plan.net, plan.accepted, plan.holds_for(0), plan.holds_for(MAX_BALANCE_MINOR)) == (
        0,
        0,
        True,
        True,
    )


@pytest.mark.parametrize("seed", range(300))
def test_the_plan_matches_one_by_one_for_every_start_in_its_range(seed: int) -> None:
    """Random runs: inside the range the plan is exact; just outside, some decision differs."""
    rng = random.Random(seed)
    near_max = rng.random() < 0.2
    start = MAX_BALANCE_MINOR - rng.randint(0, 500) if near_max else rng.randint(0, 500)
    requests = [
        op(rng.choice([DEPOSIT, WITHDRAW]), rng.randint(1, 200)) for _ in range(rng.randint(1, 12))
    ]

    plan = plan_batch(Money(start), requests)

    assert plan.holds_for(start)
    for candidate in {plan.lowest, plan.highest, start, (plan.lowest + plan.highest) // 2}:
        assert planned(candidate, requests) == one_by_one(candidate, requests)
    for outside in (plan.lowest - 1, plan.highest + 1):
        if 0 <= outside <= MAX_BALANCE_MINOR:
            expected = [r is not None for r in one_by_one(outside, requests)]
            assert expected != [d.accepted for d in plan.decisions]
