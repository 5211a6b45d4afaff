"""An account's history: its ledger transactions, newest first, one page at a time.

Each item is the transaction's summary row (kind, cash and credit moved, what it refers to); the
entries behind it stay in the ledger. Transaction ids are time-ordered, so newest first is id
descending, served by the `(account_id, id)` index whatever the length of the history.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adledger.domain import ledger
from adledger.domain.errors import InvalidInput
from adledger.domain.ledger import Kind
from adledger.service.accounts import load_account
from adledger.service.pagination import Page, paginate
from adledger.service.uow import UnitOfWork
from adledger.storage.tables import transactions

KINDS = tuple(k.value for k in Kind)
DESCRIPTION_LENGTH: int = getattr(transactions.c.description.type, "length", None) or 500


def fitted(txn: ledger.Transaction) -> ledger.Transaction:
    """`txn` with a description that fits its column. A description quotes the client's words
    (a reason of up to 500 characters, a payment reference) after ours, so it can be longer than
    the column; PostgreSQL would refuse the whole change (a 500). Cut, with an ellipsis."""
    if len(txn.description) <= DESCRIPTION_LENGTH:
        return txn
    return txn.with_description(txn.description[: DESCRIPTION_LENGTH - 1] + "…")


def transaction_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "created_at": row.created_at,
        "cash_delta": row.cash_delta,
        "credit_delta": row.credit_delta,
        "lot_id": row.lot_id,
        "event_id": row.event_id,
        "refund_id": row.refund_id,
        "deposit_id": row.deposit_id,
        "description": row.description,
    }


def list_transactions(
    uow: UnitOfWork,
    account_id: str,
    *,
    business_id: str | None = None,
    limit: int = 50,
    starting_after: str | None = None,
    kind: str | None = None,
) -> Page:
    """A page of the account's transactions, newest first, optionally of one `kind`.

    With `business_id` (an advertiser's scope), another business's account is not found.
    """
    load_account(uow, account_id, business_id=business_id)
    t = transactions.c
    query = select(
        t.id,
        t.kind,
        t.created_at,
        t.cash_delta,
        t.credit_delta,
        t.lot_id,
        t.event_id,
        t.refund_id,
        t.deposit_id,
        t.description,
    ).where(t.account_id == account_id)
    if kind is not None:
        if kind not in KINDS:
            raise InvalidInput(
                f"unknown transaction kind {kind!r}; one of {', '.join(KINDS)}", code="invalid_kind"
            )
        query = query.where(t.kind == kind)
    return paginate(uow, query, t.id, limit, starting_after, transaction_view)
