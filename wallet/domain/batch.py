"""Deciding a run of one wallet's operations at once, for group commit.

Operations queued for a wallet are decided in arrival order with the ordinary
balance rules (``next_balance``): each accepted one moves the balance, a refused
one is refused on its own and moves nothing. The decisions depend on the
starting balance only through a range; the plan records that range, so storage
can apply the whole run in one guarded statement and re-plan only when the
balance it finds lies outside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from wallet.domain.errors import BalanceLimitExceeded, InsufficientFunds, WalletError
from wallet.domain.idempotency import Outcome
from wallet.domain.model import OperationRequest, balance_refusal, next_balance
from wallet.domain.money import Money


class Decision(NamedTuple):
    """One operation's fate, relative to the run's starting balance (a NamedTuple: a
    batch makes one per operation)."""

    request: OperationRequest
    accepted: bool
    offset_before: int  # balance before this operation = start + offset_before

    @property
    def offset_after(self) -> int:
        return self.offset_before + (self.request.delta_minor if self.accepted else 0)

    def refusal(self, start: Money) -> WalletError:
        """The error refusing this operation, worded with the real starting balance."""
        assert not self.accepted
        try:
            next_balance(Money(start.minor + self.offset_before, start.currency), self.request)
        except (InsufficientFunds, BalanceLimitExceeded) as error:
            return error
        raise AssertionError("a refused operation passed the balance rules")


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """The decisions of a run, valid for any starting balance in [lowest, highest]."""

    decisions: tuple[Decision, ...]
    lowest: int
    highest: int

    @property
    def net(self) -> int:
        """The change to the balance once every accepted operation is applied."""
        return self.decisions[-1].offset_after if self.decisions else 0

    @property
    def accepted(self) -> int:
        return sum(1 for decision in self.decisions if decision.accepted)

    def holds_for(self, start: int) -> bool:
        return self.lowest <= start <= self.highest


def plan_batch(start: Money, requests: Sequence[OperationRequest]) -> BatchPlan:
    """Decide ``requests`` in order from ``start``, and the starting range where that holds.

    For a start S, the operation at offset P with change d is accepted exactly
    when 0 <= S + P + d <= MAX; each decision therefore bounds S from one side or
    both, and the intersection of those bounds is where every decision stands.
    """
    currency = start.currency
    maximum = currency.max_balance_minor
    lowest, highest = 0, maximum
    offset = 0
    decisions = []
    for request in requests:
        after = offset + request.delta_minor
        refusal = balance_refusal(start.minor + after, currency)
        if refusal is InsufficientFunds:
            highest = min(highest, -after - 1)
            decisions.append(Decision(request, False, offset))
            continue
        if refusal is BalanceLimitExceeded:
            lowest = max(lowest, maximum - after + 1)
            decisions.append(Decision(request, False, offset))
            continue
        lowest = max(lowest, -after)
        highest = min(highest, maximum - after)
        decisions.append(Decision(request, True, offset))
        offset = after
    return BatchPlan(tuple(decisions), lowest, highest)


def decided_outcome(decision: Decision) -> Outcome:
    """What a decided operation of a batch records: applied, or refused and why."""
    if decision.accepted:
        return Outcome.APPLIED
    if decision.request.delta_minor < 0:
        return Outcome.INSUFFICIENT_FUNDS
    return Outcome.BALANCE_LIMIT_EXCEEDED
