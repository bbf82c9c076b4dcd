"""Group-commit planning: decisions in arrival order, and the ranges where they hold."""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence

import pytest

from wallet.domain.batch import BatchPlan, plan_batch
from wallet.domain.currency import CURRENCIES
from wallet.domain.errors import BalanceLimitExceeded, InsufficientFunds
from wallet.domain.model import (
    Leg,
    OperationRequest,
    OperationType,
    balance_refusal,
    next_balance,
)
from wallet.domain.money import MAX_BALANCE_MINOR, Money
from wallet.domain.transfers import TransferRequest

DEPOSIT, WITHDRAW = OperationType.DEPOSIT, OperationType.WITHDRAW
WALLET = uuid.UUID(int=1)
Movement = Sequence[Leg]


def op(kind: OperationType, minor: int, wallet_id: uuid.UUID = WALLET) -> Movement:
    return (Leg(wallet_id, OperationRequest(kind, Money(minor))),)


def transfer(payer: uuid.UUID, payee: uuid.UUID, minor: int) -> Movement:
    request = TransferRequest(payer, payee, Money(minor))
    return request.legs(uuid.uuid4())


Outcome = tuple[int, str]  # the leg that broke a rule (-1: none) and why


def one_by_one(
    starts: Mapping[uuid.UUID, int],
    movements: Sequence[Movement],
    held: Mapping[uuid.UUID, int] | None = None,
) -> list[Outcome]:
    """The reference: apply each movement alone, all its legs or none, checking them in
    order (with ``held`` of each wallet's balance reserved by holds); the outcome of each."""
    balances = {wallet_id: Money(start) for wallet_id, start in starts.items()}
    reserved = held or {}
    results: list[Outcome] = []
    for legs in movements:
        after = []
        for index, (wallet_id, request) in enumerate(legs):
            try:
                balance = next_balance(balances[wallet_id], request, reserved.get(wallet_id, 0))
                after.append((wallet_id, balance))
            except (InsufficientFunds, BalanceLimitExceeded) as refusal:
                results.append((index, type(refusal).__name__))
                break
        else:
            balances.update(after)
            results.append((-1, ""))
    return results


def outcomes(plan: BatchPlan) -> list[Outcome]:
    names = {
        "INSUFFICIENT_FUNDS": "InsufficientFunds",
        "BALANCE_LIMIT_EXCEEDED": "BalanceLimitExceeded",
    }
    return [(d.refused_by, names.get(d.outcome.value, "")) for d in plan.decisions]


def plan(start: int, movements: Sequence[Movement]) -> BatchPlan:
    return plan_batch({WALLET: Money(start)}, movements)


def test_a_withdrawal_that_would_overdraw_is_refused_alone() -> None:
    movements = [op(DEPOSIT, 100), op(WITHDRAW, 250), op(WITHDRAW, 50), op(DEPOSIT, 10)]

    planned = plan(100, movements)

    assert [d.accepted for d in planned.decisions] == [True, False, True, True]
    assert (planned.runs[WALLET].net, planned.runs[WALLET].accepted) == (60, 3)
    refusal = planned.decisions[1].refusal({WALLET: 100})
    assert isinstance(refusal, InsufficientFunds)
    assert str(refusal) == "Balance 2.00 is less than 2.50"


def test_a_deposit_past_the_maximum_is_refused_alone() -> None:
    start = MAX_BALANCE_MINOR - 7
    planned = plan(start, [op(DEPOSIT, 5), op(DEPOSIT, 10), op(WITHDRAW, 1)])

    assert [d.accepted for d in planned.decisions] == [True, False, True]
    assert isinstance(planned.decisions[1].refusal({WALLET: start}), BalanceLimitExceeded)


def test_deposits_alone_hold_from_zero_to_the_maximum_less_their_sum() -> None:
    run = plan(0, [op(DEPOSIT, 3), op(DEPOSIT, 4)]).runs[WALLET]
    assert (run.lowest, run.highest) == (0, MAX_BALANCE_MINOR - 7)


def test_an_empty_run_changes_nothing() -> None:
    run = plan(42, []).runs[WALLET]
    assert (run.net, run.accepted, run.holds_for(0), run.holds_for(MAX_BALANCE_MINOR)) == (
        0,
        0,
        True,
        True,
    )


def test_a_transfer_moves_both_wallets_or_neither() -> None:
    payer, payee = uuid.UUID(int=1), uuid.UUID(int=2)
    starts = {payer: Money(100), payee: Money(0)}

    planned = plan_batch(starts, [transfer(payer, payee, 60), transfer(payer, payee, 60)])

    first, second = planned.decisions
    assert first.accepted
    assert first.positions == (0, 0)
    assert second.refused_by == 0  # the payer's rule, checked first
    assert isinstance(second.refusal({payer: 100, payee: 0}), InsufficientFunds)
    assert (planned.runs[payer].net, planned.runs[payee].net) == (-60, 60)
    assert planned.runs[payer].component == planned.runs[payee].component


def test_a_transfer_past_the_payees_maximum_moves_nothing_from_the_payer() -> None:
    payer, payee = uuid.UUID(int=1), uuid.UUID(int=2)
    starts = {payer: Money(100), payee: Money(MAX_BALANCE_MINOR - 10)}

    planned = plan_batch(starts, [transfer(payer, payee, 50)])

    (decision,) = planned.decisions
    assert decision.refused_by == 1
    assert decision.outcome.value == "BALANCE_LIMIT_EXCEEDED"
    assert (planned.runs[payer].net, planned.runs[payer].accepted) == (0, 0)


def test_wallets_no_movement_links_are_components_of_their_own() -> None:
    a, b, c = (uuid.UUID(int=n) for n in (1, 2, 3))
    starts = {w: Money(100) for w in (a, b, c)}

    planned = plan_batch(starts, [op(DEPOSIT, 1, a), transfer(b, c, 1), op(DEPOSIT, 1, c)])

    components = {w: run.component for w, run in planned.runs.items()}
    assert components[b] == components[c] != components[a]


@pytest.mark.parametrize("seed", range(300))
def test_the_plan_matches_one_by_one_for_every_start_in_its_ranges(seed: int) -> None:
    """Random movements on a few wallets, transfers among them: inside every wallet's range
    the plan is exact, reasons included; a wallet just outside its range changes some
    outcome."""
    rng = random.Random(seed)
    wallets = [uuid.UUID(int=n) for n in range(1, rng.randint(1, 4) + 1)]

    def start() -> int:
        near_max = rng.random() < 0.2
        return MAX_BALANCE_MINOR - rng.randint(0, 500) if near_max else rng.randint(0, 500)

    starts = {w: start() for w in wallets}
    movements: list[Movement] = []
    for _ in range(rng.randint(1, 12)):
        if len(wallets) > 1 and rng.random() < 0.5:
            payer, payee = rng.sample(wallets, 2)
            movements.append(transfer(payer, payee, rng.randint(1, 200)))
        else:
            kind = rng.choice([DEPOSIT, WITHDRAW])
            movements.append(op(kind, rng.randint(1, 200), rng.choice(wallets)))

    planned = plan_batch({w: Money(s) for w, s in starts.items()}, movements)
    decided = outcomes(planned)

    assert decided == one_by_one(starts, movements)
    runs = planned.runs
    for _ in range(5):
        inside = {w: rng.randint(runs[w].lowest, runs[w].highest) for w in wallets}
        assert one_by_one(inside, movements) == decided
    for wallet_id in wallets:
        for outside in (runs[wallet_id].lowest - 1, runs[wallet_id].highest + 1):
            if 0 <= outside <= MAX_BALANCE_MINOR:
                moved = {**starts, wallet_id: outside}
                assert one_by_one(moved, movements) != decided


# --- holds: what they reserve, a debit may not take -----------------------------------


def test_the_balance_rules_keep_what_holds_reserve_from_debits() -> None:
    withdraw = OperationRequest(WITHDRAW, Money(7000))
    assert next_balance(Money(10000), withdraw, 3000) == Money(3000)  # takes all available
    with pytest.raises(InsufficientFunds) as caught:
        next_balance(Money(10000), OperationRequest(WITHDRAW, Money(7001)), 3000)
    assert str(caught.value) == "Available balance 70.00 (30.00 held) is less than 70.01"
    with pytest.raises(InsufficientFunds) as unheld:
        next_balance(Money(100), OperationRequest(WITHDRAW, Money(101)))
    assert str(unheld.value) == "Balance 1.00 is less than 1.01"  # no holds: as before


def test_the_balance_rules_let_a_deposit_onto_a_wallet_held_in_full() -> None:
    deposit = OperationRequest(DEPOSIT, Money(1))
    assert next_balance(Money(10000), deposit, 10000) == Money(10001)
    transfer_in = OperationRequest(OperationType.TRANSFER_IN, Money(5), transfer_id=uuid.uuid4())
    assert next_balance(Money(10000), transfer_in, 10000) == Money(10005)
    with pytest.raises(BalanceLimitExceeded):  # the maximum still counts the held money
        next_balance(Money(MAX_BALANCE_MINOR), deposit, MAX_BALANCE_MINOR)


@pytest.mark.parametrize(
    ("minor_after", "held", "refusal"),
    [
        (2999, 3000, InsufficientFunds),
        (3000, 3000, None),
        (0, 0, None),
        (-1, 0, InsufficientFunds),
        (MAX_BALANCE_MINOR, MAX_BALANCE_MINOR, None),
        (MAX_BALANCE_MINOR + 1, 0, BalanceLimitExceeded),
        (MAX_BALANCE_MINOR + 1, MAX_BALANCE_MINOR, BalanceLimitExceeded),
    ],
)
def test_balance_refusal_names_the_rule_a_balance_would_break(
    minor_after: int, held: int, refusal: type | None
) -> None:
    assert balance_refusal(minor_after, CURRENCIES["USD"], held) is refusal


def test_the_maximum_is_the_currencys_with_holds_too() -> None:
    jpy = CURRENCIES["JPY"]
    assert balance_refusal(jpy.max_balance_minor, jpy, 10) is None
    assert balance_refusal(jpy.max_balance_minor + 1, jpy, 10) is BalanceLimitExceeded


def held_plan(start: int, held: int, movements: Sequence[Movement]) -> BatchPlan:
    return plan_batch({WALLET: Money(start)}, movements, {WALLET: held})


def test_a_withdrawal_into_held_money_is_refused_and_its_error_says_so() -> None:
    movements = [op(WITHDRAW, 60), op(WITHDRAW, 11), op(WITHDRAW, 10), op(WITHDRAW, 1)]

    planned = held_plan(100, 30, movements)

    assert [d.accepted for d in planned.decisions] == [True, False, True, False]
    run = planned.runs[WALLET]
    assert (run.net, run.accepted, run.held) == (-70, 2, 30)
    refusal = planned.decisions[1].refusal({WALLET: 100}, {WALLET: 30})
    assert isinstance(refusal, InsufficientFunds)
    assert str(refusal) == "Available balance 0.10 (0.30 held) is less than 0.11"
    assert planned.decisions[1].outcome.value == "INSUFFICIENT_FUNDS"
    last = planned.decisions[3].refusal({WALLET: 100}, {WALLET: 30})
    assert str(last) == "Available balance 0.00 (0.30 held) is less than 0.01"


def test_deposits_ignore_holds_and_make_room_for_withdrawals() -> None:
    movements = [op(WITHDRAW, 1), op(DEPOSIT, 5), op(WITHDRAW, 5), op(WITHDRAW, 1)]

    planned = held_plan(100, 100, movements)

    assert [d.accepted for d in planned.decisions] == [False, True, True, False]
    assert planned.runs[WALLET].net == 0


def test_a_transfer_out_may_not_take_held_money_and_one_in_ignores_holds() -> None:
    payer, payee = uuid.UUID(int=1), uuid.UUID(int=2)
    starts = {payer: Money(100), payee: Money(50)}
    held = {payer: 40, payee: 50}

    planned = plan_batch(starts, [transfer(payer, payee, 61), transfer(payer, payee, 60)], held)

    first, second = planned.decisions
    assert (first.refused_by, second.accepted) == (0, True)
    assert "(0.40 held)" in str(first.refusal({payer: 100, payee: 50}, held))
    assert (planned.runs[payer].net, planned.runs[payee].net) == (-60, 60)
    assert (planned.runs[payer].held, planned.runs[payee].held) == (40, 50)


def test_a_wallet_no_hold_names_reserves_nothing() -> None:
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    planned = plan_batch({a: Money(10), b: Money(10)}, [op(WITHDRAW, 10, a)], {b: 10})
    assert (planned.runs[a].held, planned.runs[b].held) == (0, 10)
    assert planned.decisions[0].accepted
    assert plan_batch({a: Money(10)}, [op(WITHDRAW, 10, a)], None).decisions[0].accepted


def test_the_range_of_a_held_run_starts_where_its_withdrawals_fit_above_the_holds() -> None:
    run = held_plan(100, 30, [op(WITHDRAW, 70)]).runs[WALLET]
    assert (run.lowest, run.highest) == (100, MAX_BALANCE_MINOR)
    refused = held_plan(100, 30, [op(WITHDRAW, 71)]).runs[WALLET]
    assert (refused.lowest, refused.highest) == (0, 100)  # refused for any start up to 101 - 1


@pytest.mark.parametrize("seed", range(300))
def test_a_plan_with_holds_matches_one_by_one_for_every_start_in_its_ranges(seed: int) -> None:
    """As without holds, each wallet reserving some of its start: inside every wallet's
    range the plan is exact, reasons included; just outside it some outcome changes."""
    rng = random.Random(seed)
    wallets = [uuid.UUID(int=n) for n in range(1, rng.randint(1, 4) + 1)]

    def start() -> int:
        near_max = rng.random() < 0.2
        return MAX_BALANCE_MINOR - rng.randint(0, 500) if near_max else rng.randint(0, 500)

    starts = {w: start() for w in wallets}
    held = {w: rng.choice([0, starts[w], rng.randint(0, starts[w])]) for w in wallets}
    movements: list[Movement] = []
    for _ in range(rng.randint(1, 12)):
        if len(wallets) > 1 and rng.random() < 0.5:
            payer, payee = rng.sample(wallets, 2)
            movements.append(transfer(payer, payee, rng.randint(1, 200)))
        else:
            kind = rng.choice([DEPOSIT, WITHDRAW])
            movements.append(op(kind, rng.randint(1, 200), rng.choice(wallets)))

    planned = plan_batch({w: Money(s) for w, s in starts.items()}, movements, held)
    decided = outcomes(planned)

    assert decided == one_by_one(starts, movements, held)
    for decision in planned.decisions:
        if not decision.accepted:
            wallet_id = decision.legs[decision.refused_by].wallet_id
            error = decision.refusal(starts, held)
            assert ("held)" in str(error)) == (
                isinstance(error, InsufficientFunds) and held[wallet_id] > 0
            )
    runs = planned.runs
    assert {w: run.held for w, run in runs.items()} == held
    for wallet_id in wallets:
        assert runs[wallet_id].holds_for(starts[wallet_id])
    # A balance is never below what its holds reserve: only such starts are looked at.
    for _ in range(5):
        inside = {w: rng.randint(max(runs[w].lowest, held[w]), runs[w].highest) for w in wallets}
        assert one_by_one(inside, movements, held) == decided
    for wallet_id in wallets:
        for outside in (runs[wallet_id].lowest - 1, runs[wallet_id].highest + 1):
            if held[wallet_id] <= outside <= MAX_BALANCE_MINOR:
                moved = {**starts, wallet_id: outside}
                assert one_by_one(moved, movements, held) != decided
