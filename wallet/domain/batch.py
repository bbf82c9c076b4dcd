"""Deciding many money movements at once, for group commit.

A movement is one or more legs, each an entry on one wallet: a deposit or a withdrawal
is one leg, a transfer two (the payer's, then the payee's). Movements queued together
are decided in arrival order with the ordinary balance rules (``balance_refusal``): a
movement is accepted when every leg, checked in order, leaves its wallet within bounds;
a refused one moves nothing, on any wallet.

The decisions depend on each wallet's starting balance only through a range; the plan
records each wallet's range, so storage can apply the batch in one guarded statement and
re-plan only the wallets whose balance lies outside theirs. Wallets that a movement
links form a component, applied together or not at all: a transfer never lands on one
side only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple
from uuid import UUID

from wallet.domain.currency import Currency
from wallet.domain.errors import BalanceLimitExceeded, InsufficientFunds, WalletError
from wallet.domain.idempotency import Outcome
from wallet.domain.model import Leg, balance_refusal, next_balance
from wallet.domain.money import Money

ACCEPTED = -1  # ``Decision.refused_by`` of an accepted movement


class Decision(NamedTuple):
    """One movement's fate, relative to its wallets' starting balances (a NamedTuple: a
    batch makes one per movement)."""

    legs: Sequence[Leg]
    refused_by: int  # the index of the leg that broke a rule, or ACCEPTED
    offsets_before: tuple[int, ...]  # per leg checked: its wallet's balance = start + offset
    positions: tuple[int, ...]  # accepted: per leg, its entry's place among its wallet's

    @property
    def accepted(self) -> bool:
        return self.refused_by == ACCEPTED

    def offset_after(self, leg: int) -> int:
        """Where the accepted leg ``leg`` leaves its wallet, relative to its start."""
        return self.offsets_before[leg] + self.legs[leg].request.delta_minor

    def refusal(
        self, starts: Mapping[UUID, int], held: Mapping[UUID, int] | None = None
    ) -> WalletError:
        """The error refusing this movement, worded with the real starting balance (and
        what holds reserve of it) of the wallet whose rule it broke."""
        assert not self.accepted
        wallet_id, request = self.legs[self.refused_by]
        before = starts[wallet_id] + self.offsets_before[self.refused_by]
        try:
            reserved = held.get(wallet_id, 0) if held else 0
            next_balance(Money(before, request.amount.currency), request, reserved)
        except (InsufficientFunds, BalanceLimitExceeded) as error:
            return error
        raise AssertionError("a refused movement passed the balance rules")

    @property
    def outcome(self) -> Outcome:
        """What the movement records under its key: applied, or refused and why."""
        if self.accepted:
            return Outcome.APPLIED
        if self.legs[self.refused_by].request.delta_minor < 0:
            return Outcome.INSUFFICIENT_FUNDS
        return Outcome.BALANCE_LIMIT_EXCEEDED


@dataclass(slots=True)
class WalletRun:
    """What a batch does to one wallet: its net change and accepted entries, valid for any
    starting balance in [lowest, highest] while its holds reserve ``held``, and the
    component it is applied with."""

    wallet_id: UUID
    currency: Currency
    lowest: int
    highest: int
    net: int = 0
    accepted: int = 0
    component: int = 0
    held: int = 0  # what holds reserve of the balance: a debit may not take it

    def holds_for(self, start: int) -> bool:
        return self.lowest <= start <= self.highest

    def bound(self, offset_after: int) -> None:
        """The start must leave this wallet within bounds at ``offset_after``."""
        if self.held - offset_after > self.lowest:
            self.lowest = self.held - offset_after
        highest = self.currency.max_balance_minor - offset_after
        if highest < self.highest:
            self.highest = highest

    def refuse(self, refusal: type[WalletError], offset_after: int) -> None:
        """The start must leave this wallet out of bounds at ``offset_after``, on the side
        ``refusal`` names."""
        if refusal is InsufficientFunds:
            self.highest = min(self.highest, self.held - offset_after - 1)
        else:
            self.lowest = max(self.lowest, self.currency.max_balance_minor - offset_after + 1)


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """The decisions of a batch, in movement order, and what they do to each wallet."""

    decisions: tuple[Decision, ...]
    runs: dict[UUID, WalletRun]

    @property
    def accepted(self) -> int:
        return sum(1 for decision in self.decisions if decision.accepted)


def plan_batch(
    starts: Mapping[UUID, Money],
    movements: Sequence[Sequence[Leg]],
    held: Mapping[UUID, int] | None = None,
) -> BatchPlan:
    """Decide ``movements`` in order from ``starts``, with ``held`` of each wallet's balance
    reserved by holds (none when not named), and each wallet's starting range where that
    holds.

    For a start S, a leg at offset P with change d passes exactly when H <= S + P + d <=
    MAX, H what holds reserve: a leg that passes bounds S from both sides, the one that
    fails from one side, and the legs after it are not looked at.
    """
    held = held or {}
    runs = {
        wallet_id: WalletRun(
            wallet_id,
            start.currency,
            0,
            start.currency.max_balance_minor,
            held=held.get(wallet_id, 0),
        )
        for wallet_id, start in starts.items()
    }
    offsets = dict.fromkeys(starts, 0)
    decisions = []
    linked = False
    for legs in movements:
        if len(legs) == 1:  # an operation on one wallet: the usual case, decided directly
            decisions.append(_decide_one(legs, runs, offsets, starts))
            continue
        linked = True
        refused_by = ACCEPTED
        before = []
        for index, (wallet_id, request) in enumerate(legs):
            run = runs[wallet_id]
            offset = offsets[wallet_id]
            before.append(offset)
            after = offset + request.delta_minor
            refusal = balance_refusal(starts[wallet_id].minor + after, run.currency, run.held)
            if refusal is None:
                run.bound(after)
                continue
            run.refuse(refusal, after)
            refused_by = index
            break
        positions: tuple[int, ...] = ()
        if refused_by == ACCEPTED:
            positions = tuple(_accept(runs[w], offsets, w, r.delta_minor) for w, r in legs)
        decisions.append(Decision(legs, refused_by, tuple(before), positions))
    if linked:
        _number_components(runs, movements)
    else:
        for number, run in enumerate(runs.values()):
            run.component = number
    return BatchPlan(tuple(decisions), runs)


def _decide_one(
    legs: Sequence[Leg],
    runs: Mapping[UUID, WalletRun],
    offsets: dict[UUID, int],
    starts: Mapping[UUID, Money],
) -> Decision:
    ((wallet_id, request),) = legs
    run = runs[wallet_id]
    offset = offsets[wallet_id]
    after = offset + request.delta_minor
    refusal = balance_refusal(starts[wallet_id].minor + after, run.currency, run.held)
    if refusal is not None:
        run.refuse(refusal, after)
        return Decision(legs, 0, (offset,), ())
    run.bound(after)
    offsets[wallet_id] = after
    run.net += request.delta_minor
    run.accepted += 1
    return Decision(legs, ACCEPTED, (offset,), (run.accepted - 1,))


def _accept(run: WalletRun, offsets: dict[UUID, int], wallet_id: UUID, delta: int) -> int:
    """Move the wallet's running offset by an accepted leg; the leg's place in its run."""
    offsets[wallet_id] += delta
    run.net += delta
    run.accepted += 1
    return run.accepted - 1


def _number_components(runs: Mapping[UUID, WalletRun], movements: Sequence[Sequence[Leg]]) -> None:
    """Give the wallets that movements link one component number each (union-find)."""
    parent = {wallet_id: wallet_id for wallet_id in runs}

    def root(wallet_id: UUID) -> UUID:
        while parent[wallet_id] != wallet_id:
            parent[wallet_id] = parent[parent[wallet_id]]
            wallet_id = parent[wallet_id]
        return wallet_id

    for legs in movements:
        first = root(legs[0].wallet_id)
        for leg in legs[1:]:
            parent[root(leg.wallet_id)] = first
    numbers: dict[UUID, int] = {}
    for wallet_id, run in runs.items():
        run.component = numbers.setdefault(root(wallet_id), len(numbers))
