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
        None, description="Expire lots with expires_at at or before this; default now, never later"
    )


class ExpiryRunOut(BaseModel):
    expired_lots: int = Field(description="Lots closed by this run (a second run closes none)")
    expired_amounts: dict[str, int] = Field(
        description="Credit lost to breakage, in minor units, by currency", examples=[{"USD": 500}]
    )
    lapsed_redemptions: int = Field(
        description="Earning redemptions (spend X get Y, deposit bonus) whose window ended "
        "unearned, lapsed by this run"
    )


@router.post(
    "/expirations/run",
    response_model=ExpiryRunOut,
    responses=problems(422),
    summary="Expire every active lot whose expires_at is at or before as_of",
    description="Each due lot's unspent remainder goes to breakage in one `expiry` transaction; "
    "the lot becomes `expired`. Idempotent: running it again does nothing. `adledger serve` also "
    "runs it every minute. An `as_of` later than the server's clock is refused (422 "
    "`as_of_in_future`).",
)
def run_expiry(
    request: Request,
    body: ExpiryRunIn | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    body = body or ExpiryRunIn(as_of=None)
    return respond(request, db, who, expiry.run_expiry, body=body, as_of=body.as_of)
