"""Finance reports: what the platform owes advertisers, and where granted credit went."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from adledger.http.deps import STAFF, get_db, require
from adledger.http.respond import read
from adledger.http.schemas import problems
from adledger.service import reports
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["reports"])


class LiabilitiesOut(BaseModel):
    currency: str
    cash_available: int = Field(description="Prepaid funds available, summed over accounts")
    cash_held: int = Field(description="Prepaid funds held for pending and approved refunds")
    credit_outstanding: int = Field(description="Unspent remainder of active credit lots")
    credit_granted: int = Field(description="All credit ever granted")
    credit_used: int = Field(description="Credit that paid for ad delivery")
    credit_expired: int = Field(description="Credit that expired unspent (breakage)")
    credit_voided: int = Field(description="Credit voided by staff")
    credit_forfeited: int = Field(description="Credit forfeited (account closed, clawed back)")
    overdelivery_written_off: int = Field(description="Delivery no funds covered, written off")


@router.get(
    "/reports/liabilities",
    response_model=LiabilitiesOut,
    responses=problems(422),
    summary="Liabilities in one currency: cash and credit owed, and the credit flows to date",
    description="`credit_granted = credit_outstanding + credit_used + credit_expired + "
    "credit_voided + credit_forfeited`. Amounts are minor units of `currency`.",
)
def liabilities(
    currency: str = Query(description="ISO 4217 code, e.g. USD"),
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return read(db, reports.liabilities, currency)
