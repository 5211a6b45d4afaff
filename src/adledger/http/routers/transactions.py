"""An account's history: its ledger transactions, newest first."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from adledger.domain.ledger import Kind
from adledger.http.deps import READERS, get_db, require
from adledger.http.respond import read
from adledger.http.schemas import CURSOR_DOC, LIMIT_DOC, Page, problems
from adledger.service import history
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["history"])


class TransactionOut(BaseModel):
    id: str
    kind: Kind
    created_at: datetime
    cash_delta: int = Field(description="Change of cash.available, in minor units")
    credit_delta: int = Field(description="Change of credit, summed over the lots it touched")
    lot_id: str | None = Field(description="The lot, when the transaction touched exactly one")
    event_id: str | None = Field(description="The spend event, for `spend`")
    refund_id: str | None
    deposit_id: str | None
    description: str


@router.get(
    "/accounts/{account_id}/transactions",
    response_model=Page[TransactionOut],
    responses=problems(404, 422),
    summary="List an account's ledger transactions, newest first",
)
def list_transactions(
    account_id: str,
    limit: int = Query(50, description=LIMIT_DOC),
    starting_after: str | None = Query(None, description=CURSOR_DOC),
    kind: Kind | None = Query(None, description="Only transactions of this kind"),
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    return read(
        db,
        history.list_transactions,
        account_id,
        business_id=who.scope,
        limit=limit,
        starting_after=starting_after,
        kind=kind.value if kind else None,
    )
