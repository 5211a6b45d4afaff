"""Expiry runs: credit lots past their expiry lose their remainder to breakage."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from adledger.http.deps import STAFF, get_db, require
from adledger.http.respond import respond
from adledger.http.schemas import Input, Time, problems
from adledger.service import expiry
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["expiry"])


class ExpiryRunIn(Input):
    as_of: Time | None = Field(
        None,
        description="Expire the lots whose `expires_at` is at or before this; default now. Later "
        "than now → 422 `as_of_in_future`",
    )


class ExpiryRunOut(BaseModel):
    expired_lots: int = Field(description="Lots closed by this run (a second run closes none)")
    expired_amounts: dict[str, int] = Field(
        description="Credit lost to breakage by this run, by ISO 4217 currency code, in that "
        "currency's minor units",
        examples=[{"USD": 500}],
    )
    lapsed_redemptions: int = Field(
        description="Earning redemptions (spend X get Y, deposit bonus) whose window ended "
        "unearned, lapsed by this run"
    )


@router.post(
    "/expirations/run",
    response_model=ExpiryRunOut,
    responses=problems("as_of_in_future"),
    summary="Expire every active lot whose expires_at is at or before as_of",
)
def run_expiry(
    request: Request,
    body: ExpiryRunIn | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """Each due lot's unspent remainder goes to breakage in one `expiry` transaction; the lot
    becomes `expired`. Earning redemptions whose window has ended are `lapsed`. Idempotent:
    running it again does nothing. `adledger serve` also runs it every minute, so calling it is
    only needed to catch up at once. The body may be omitted. An `as_of` later than the
    server's clock → 422 `as_of_in_future`."""
    body = body or ExpiryRunIn(as_of=None)
    return respond(request, db, who, expiry.run_expiry, body=body, as_of=body.as_of)
