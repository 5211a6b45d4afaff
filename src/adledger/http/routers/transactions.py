"""An account's history: its ledger transactions, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, WithJsonSchema
from starlette.responses import Response

from adledger.domain.ledger import Kind
from adledger.http.deps import READERS, get_db, require
from adledger.http.respond import read
from adledger.http.schemas import (
    LIST_REFUSALS,
    MINOR_UNITS,
    AccountId,
    Cursor,
    Limit,
    Page,
    example_id,
    problems,
)
from adledger.service import history
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["history"])


KIND_DOC = (
    "`deposit`, `deposit_reversal`; `credit_grant`; `spend`; `expiry`, `void`, `forfeit`, "
    "`clawback` (credit taken out of circulation); `refund_hold`, `refund_release`, "
    "`refund_payout`; `lapse` (a memo: an earning redemption lapsed; it moves no value)"
)
# The ledger's kinds, as an enum of the document (named for what it is, not `Kind`).
TransactionKind = Annotated[
    Kind,
    WithJsonSchema({"type": "string", "enum": [k.value for k in Kind], "title": "TransactionKind"}),
]


class TransactionOut(BaseModel):
    id: str = Field(description="The transaction's id (`txn_…`)", examples=[example_id("txn")])
    kind: TransactionKind = Field(description=KIND_DOC)
    created_at: datetime = Field(description="When it was recorded (UTC)")
    cash_delta: int = Field(description=f"Change of `cash.available`, in {MINOR_UNITS}")
    credit_delta: int = Field(
        description=f"Change of credit, summed over the lots it touched, in {MINOR_UNITS}"
    )
    lot_id: str | None = Field(description="The lot, when the transaction touched exactly one")
    event_id: str | None = Field(description="The spend event, for `spend`")
    refund_id: str | None = Field(description="The refund (`rf_…`), for the refund kinds")
    deposit_id: str | None = Field(
        description="The deposit (`dep_…`), for `deposit`, `deposit_reversal`, and the credit a "
        "deposit earned or lost"
    )
    description: str = Field(description="What happened, in plain words")


@router.get(
    "/accounts/{account_id}/transactions",
    response_model=Page[TransactionOut],
    responses=problems("account_not_found", *LIST_REFUSALS),
    summary="List an account's ledger transactions, newest first",
)
def list_transactions(
    account_id: AccountId,
    limit: Limit = 50,
    starting_after: Cursor = None,
    kind: TransactionKind | None = Query(None, description="Only transactions of this kind"),
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """The account's history: every movement is an immutable double-entry transaction, and a
    correction is a new one. `cash_delta` and `credit_delta` say what it did to the balance;
    a `lapse` is a memo with zero deltas."""
    return read(
        db,
        history.list_transactions,
        account_id,
        business_id=who.scope,
        limit=limit,
        starting_after=starting_after,
        kind=kind.value if kind else None,
    )
