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


UNITS = "minor units of `currency`"


class LiabilitiesOut(BaseModel):
    currency: str = Field(description="ISO 4217 code of every amount here")
    cash_available: int = Field(
        description=f"Prepaid funds available, summed over the accounts, in {UNITS}"
    )
    cash_held: int = Field(
        description=f"Prepaid funds held for pending and approved refunds, in {UNITS}"
    )
    credit_outstanding: int = Field(
        description=f"Unspent remainder of active credit lots, in {UNITS}"
    )
    credit_granted: int = Field(description=f"All credit ever granted, in {UNITS}")
    credit_used: int = Field(description=f"Credit that paid for ad delivery, in {UNITS}")
    credit_expired: int = Field(description=f"Credit that expired unspent (breakage), in {UNITS}")
    credit_voided: int = Field(description=f"Credit voided by staff, in {UNITS}")
    credit_forfeited: int = Field(
        description=f"Credit forfeited (account closed, clawed back), in {UNITS}"
    )
    overdelivery_written_off: int = Field(
        description=f"Delivery no funds covered, written off by the platform, in {UNITS}"
    )


@router.get(
    "/reports/liabilities",
    response_model=LiabilitiesOut,
    responses=problems("unknown_currency"),
    summary="Liabilities in one currency: cash and credit owed, and the credit flows to date",
)
def get_liabilities(
    currency: str = Query(
        description="ISO 4217 code (else 422 `unknown_currency`)", examples=["USD"]
    ),
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """What the platform owes advertisers in one currency (their prepaid funds, available and
    held) and the credit it has outstanding, with every credit flow to date:
    `credit_granted = credit_outstanding + credit_used + credit_expired + credit_voided +
    credit_forfeited`. Amounts are minor units of `currency`; a currency no account uses gives
    zeros."""
    return read(db, reports.liabilities, currency)
