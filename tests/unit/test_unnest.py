"""Statement inputs as typed arrays: their SQL and their parameters agree, column by column."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import pytest

from wallet.adapters.group_commit import PlannedBatch
from wallet.adapters.postgres import batch_store
from wallet.adapters.postgres.unnest import Bigint, Integer, Text, Uuid, parameters, placeholders
from wallet.domain.batch import plan_batch
from wallet.domain.idempotency import Idempotency
from wallet.domain.model import Leg, OperationRequest, OperationType
from wallet.domain.money import Money
from wallet.domain.transfers import TransferRequest

DEPOSIT, WITHDRAW = OperationType.DEPOSIT, OperationType.WITHDRAW


class Pair(NamedTuple):
    name: Text
    count: Integer


class Entry(NamedTuple):
    id: Uuid
    parent: Uuid | None
    amount: Bigint


@dataclass(frozen=True, slots=True)
class Inputs:
    pairs: list[Pair]
    ids: list[Uuid]
    entries: list[Entry]


class Untyped(NamedTuple):
    count: int


@dataclass(frozen=True, slots=True)
class WithUntyped:
    rows: list[Untyped]


def as_lists(values: list[object]) -> list[list[object]]:
    arrays = []
    for value in values:
        assert isinstance(value, Sequence)
        arrays.append(list(value))
    return arrays


def test_each_input_is_named_and_its_parameters_numbered_in_field_order() -> None:
    assert placeholders(Inputs) == {
        "pairs": "unnest($1::text[], $2::integer[]) AS pairs(name, count)",
        "ids": "$3::uuid[]",
        "entries": "unnest($4::uuid[], $5::uuid[], $6::bigint[]) AS entries(id, parent, amount)",
    }


def test_the_parameters_are_one_array_per_column_in_the_same_order() -> None:
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    inputs = Inputs(
        pairs=[Pair("a", 1), Pair("b", 2)],
        ids=[third],
        entries=[Entry(first, None, 10), Entry(second, first, 20)],
    )

    assert as_lists(parameters(inputs)) == [
        ["a", "b"],
        [1, 2],
        [third],
        [first, second],
        [None, first],
        [10, 20],
    ]


def test_empty_lists_of_rows_are_empty_arrays_one_per_column() -> None:
    assert as_lists(parameters(Inputs(pairs=[], ids=[], entries=[]))) == [[], [], [], [], [], []]


def test_a_column_without_an_sql_type_is_refused() -> None:
    with pytest.raises(TypeError, match="names no SQL type"):
        placeholders(WithUntyped)


STATEMENTS = [batch_store.APPLY_BATCH, batch_store.APPLY_BATCH_SKIPPING_LOCKED]


@pytest.mark.parametrize("statement", STATEMENTS)
def test_the_batch_statement_reads_each_input_under_its_fields_names(statement: str) -> None:
    tables = dict(re.findall(r"unnest\([^)]*\) AS (\w+)\(([^)]*)\)", statement))
    assert tables == {
        "runs": ", ".join(batch_store._RunRow._fields),
        "accepted": ", ".join(batch_store._AcceptedRow._fields),
        "labels": ", ".join(batch_store._LabelRow._fields),
        "new_transfers": ", ".join(batch_store._TransferRow._fields),
        "keys": ", ".join(batch_store._KeyRow._fields),
    }


SHAPES = [batch_store._Shape(*flags) for flags in itertools.product((False, True), repeat=6)]
NO_INPUTS = batch_store._BatchInputs(
    runs=[], accepted=[], labels=[], new_transfers=[], to_lock=[], keys=[]
)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_each_shape_of_the_batch_statement_uses_every_parameter_it_is_sent_and_no_other(
    shape: batch_store._Shape,
) -> None:
    statement = batch_store._statement(shape)
    sent = parameters(NO_INPUTS, statement.reads)
    used = {int(number) for number in re.findall(r"\$(\d+)", statement.sql)}

    assert used == set(range(1, len(sent) + 1))
    assert re.search(r"\{\w+\}", statement.sql) is None  # every part's placeholder filled


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_a_shape_has_the_parts_it_needs_and_no_other(shape: batch_store._Shape) -> None:
    sql = batch_store._statement(shape).sql

    assert ("SKIP LOCKED" in sql) is shape.skipping_locked
    assert ("busy AS (" in sql) is shape.skipping_locked
    assert ("checked AS (" in sql) is shape.checking
    assert ("settled_components AS (" in sql) is (shape.linked or shape.checking)
    assert ("AS labels(" in sql) is shape.labelled
    assert ("INSERT INTO transfers" in sql) is shape.transferring
    assert ("INSERT INTO idempotency_keys" in sql) is shape.keyed


def test_a_batch_of_plain_deposits_needs_the_leanest_statement() -> None:
    wallet_id = uuid.uuid4()
    plan = plan_batch(
        {wallet_id: Money(0)}, [(Leg(wallet_id, OperationRequest(DEPOSIT, Money(5))),)]
    )
    inputs = batch_store._batch_inputs(PlannedBatch(plan, [(uuid.uuid4(),)], [None]))

    assert batch_store._Shape.of(inputs, skipping_locked=False) == batch_store._Shape(
        skipping_locked=False,
        linked=False,
        checking=False,
        labelled=False,
        transferring=False,
        keyed=False,
    )
    assert (
        "settled_components"
        not in batch_store._statement(batch_store._Shape.of(inputs, skipping_locked=False)).sql
    )


def test_a_run_becomes_its_rows_accepted_entries_in_order_and_each_key() -> None:
    wallet_id = uuid.uuid4()
    requests = [
        OperationRequest(DEPOSIT, Money(5)),
        OperationRequest(WITHDRAW, Money(100)),  # refused: the balance is 5
        OperationRequest(DEPOSIT, Money(3)),
    ]
    plan = plan_batch({wallet_id: Money(0)}, [(Leg(wallet_id, r),) for r in requests])
    ids = [(uuid.uuid4(),) for _ in requests]
    refused_key = Idempotency("key-2", b"fingerprint", "request-2")
    batch = PlannedBatch(plan, ids, [None, refused_key, None])

    inputs = batch_store._batch_inputs(batch)

    assert inputs.runs == [
        batch_store._RunRow(
            wallet_id=wallet_id, net=8, applied=2, lowest=0, highest=94, component=0, held=0
        )
    ]
    assert inputs.to_lock == [wallet_id]
    assert [(row.id, row.amount, row.offset_after, row.position) for row in inputs.accepted] == [
        (ids[0][0], 5, 5, 0),
        (ids[2][0], 3, 8, 1),
    ]
    assert inputs.labels == []  # none of them has a reference, metadata or a transfer
    assert inputs.new_transfers == []
    assert inputs.keys == [
        batch_store._KeyRow(
            key="key-2",
            fingerprint=b"fingerprint",
            request_id="request-2",
            outcome="INSUFFICIENT_FUNDS",
            wallet_id=wallet_id,
            operation_id=None,
            transfer_id=None,
            offset_before=5,
            amount=100,
        )
    ]


def test_a_transfer_becomes_two_entries_one_transfer_row_and_locks_both_wallets() -> None:
    payer, payee, transfer_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    legs = TransferRequest(payer, payee, Money(40), "inv-7").legs(transfer_id)
    plan = plan_batch({payer: Money(100), payee: Money(0)}, [legs])
    ids = (uuid.uuid4(), uuid.uuid4())
    key = Idempotency("key-1", b"fingerprint", "request-1")

    inputs = batch_store._batch_inputs(PlannedBatch(plan, [ids], [key]))

    assert sorted(inputs.to_lock) == sorted([payer, payee])
    assert batch_store._Shape.of(inputs, skipping_locked=False).linked  # settled together
    assert [(r.wallet_id, r.operation_type, r.offset_after) for r in inputs.accepted] == [
        (payer, "TRANSFER_OUT", -40),
        (payee, "TRANSFER_IN", 40),
    ]
    assert [(r.id, r.reference, r.transfer_id) for r in inputs.labels] == [
        (ids[0], "inv-7", transfer_id),
        (ids[1], "inv-7", transfer_id),
    ]
    (row,) = inputs.new_transfers
    assert (row.id, row.from_wallet_id, row.to_wallet_id, row.amount, row.reference) == (
        transfer_id,
        payer,
        payee,
        40,
        "inv-7",
    )
    assert (row.out_operation_id, row.in_operation_id) == ids
    (recorded,) = inputs.keys
    assert (recorded.outcome, recorded.operation_id, recorded.transfer_id) == (
        "APPLIED",
        ids[0],
        transfer_id,
    )
