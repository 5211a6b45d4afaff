"""Businesses and ad accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from adledger.domain.errors import Forbidden
from adledger.http.deps import READERS, STAFF, get_db, require
from adledger.http.respond import read, respond
from adledger.http.schemas import (
    LIST_REFUSALS,
    NO_NUL,
    AccountId,
    Currency,
    Cursor,
    IdRef,
    Input,
    Limit,
    Name,
    NoBody,
    Page,
    example_id,
    problems,
)
from adledger.service import accounts
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["accounts"])

AccountStatus = Literal["active", "suspended", "closed"]


class BusinessIn(Input):
    name: Name = Field(description="The business's name, 1–200 characters", examples=["Acme Ltd"])


class BusinessOut(BaseModel):
    id: str = Field(description="The business's id (`biz_…`)", examples=[example_id("biz")])
    name: str = Field(description="The business's name")
    created_at: datetime = Field(description="When it was created (UTC)")


class AccountIn(Input):
    name: Name = Field(description="The account's name, 1–200 characters", examples=["Acme US"])
    currency: Currency = Field(
        description="ISO 4217 code: the account's one currency, for every amount it holds; it "
        "never changes",
        examples=["USD"],
    )
    business_id: IdRef | None = Field(
        None,
        description="The business that owns it (`biz_…`); its advertiser keys may use it. "
        "Without one the account counts as its own business",
        examples=[example_id("biz")],
    )
    timezone: str | None = Field(
        None,
        description="IANA time zone for the dates in explanations; default `UTC`",
        examples=["America/New_York"],
    )


class AccountOut(BaseModel):
    id: str = Field(description="The account's id (`acct_…`)", examples=[example_id("acct")])
    name: str = Field(description="The account's name")
    currency: str = Field(description="ISO 4217 code of every amount of the account")
    business_id: str | None = Field(description="The owning business (`biz_…`), if any")
    timezone: str = Field(description="IANA time zone for the dates in explanations")
    status: AccountStatus = Field(
        description="`active`; `suspended` (by staff, or while it owes money after a reversed "
        "deposit): spend is still recorded, refunds are refused; `closed` (after a refund, if "
        "the server closes accounts on refund): no deposits, credit, spend or refunds"
    )
    created_at: datetime = Field(description="When it was created (UTC)")


@router.post(
    "/businesses",
    status_code=201,
    response_model=BusinessOut,
    responses=problems(422),
    summary="Create a business (the owner of ad accounts and advertiser keys)",
)
def create_business(
    body: BusinessIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """A business groups ad accounts; an advertiser key is bound to one business and sees only
    its accounts. Promotions count one redemption per business."""
    return respond(
        request, db, who, accounts.create_business, body=body, status=201, name=body.name
    )


@router.post(
    "/accounts",
    status_code=201,
    response_model=AccountOut,
    responses=problems("business_not_found", "invalid_timezone"),
    summary="Create an ad account with its one currency",
)
def create_account(
    body: AccountIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """The account starts `active` with nothing in it. Its currency is fixed: every amount
    sent for it or returned about it is in that currency's minor units."""
    return respond(
        request, db, who, accounts.create_account, body=body, status=201, **body.model_dump()
    )


@router.get(
    "/accounts/{account_id}",
    response_model=AccountOut,
    responses=problems("account_not_found"),
    summary="Read an ad account",
)
def get_account(
    account_id: AccountId,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """The account's name, currency, business, time zone and status. Its money is in
    `GET /v1/accounts/{account_id}/balance`."""
    return read(db, accounts.get_account, account_id, business_id=who.scope)


@router.get(
    "/accounts",
    response_model=Page[AccountOut],
    responses=problems("forbidden", *LIST_REFUSALS),
    summary="List ad accounts, newest first (an advertiser key sees its own business only)",
)
def list_accounts(
    business_id: str | None = Query(
        None,
        max_length=40,
        pattern=NO_NUL,
        description="Only this business's accounts (`biz_…`). An advertiser key always gets its "
        "own business's; naming another business is 403 `forbidden`",
        examples=[example_id("biz")],
    ),
    limit: Limit = 50,
    starting_after: Cursor = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """Every account (staff keys), or one business's. Pages with `limit` and
    `starting_after`."""
    if who.scope is not None:
        if business_id not in (None, who.scope):
            raise Forbidden("an advertiser key lists only its own business's accounts")
        business_id = who.scope
    return read(
        db,
        accounts.list_accounts,
        business_id=business_id,
        limit=limit,
        starting_after=starting_after,
    )


@router.post(
    "/accounts/{account_id}/suspend",
    response_model=AccountOut,
    responses=problems("account_not_found", "invalid_account_transition"),
    summary="Suspend an active account",
)
def suspend_account(
    account_id: AccountId,
    request: Request,
    body: NoBody | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """`active` → `suspended`. Spend is still recorded (the delivery happened) but refunds are
    refused and codes can't be redeemed. Only a reinstatement lifts a staff suspension. An
    account that is not active (suspended or closed) → 409 `invalid_account_transition`."""
    return respond(request, db, who, accounts.suspend_account, account_id)


@router.post(
    "/accounts/{account_id}/reinstate",
    response_model=AccountOut,
    responses=problems("account_not_found", "invalid_account_transition"),
    summary="Reinstate a suspended account (refused while it owes money)",
)
def reinstate_account(
    account_id: AccountId,
    request: Request,
    body: NoBody | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """`suspended` → `active`. Refused with 409 `invalid_account_transition` when the account
    is not suspended, or while it owes money after a reversed deposit (a deposit must cover the
    debt first; that reactivates a debt suspension by itself)."""
    return respond(request, db, who, accounts.reinstate_account, account_id)
