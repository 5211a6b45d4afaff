"""Businesses and ad accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from adledger.domain.errors import Forbidden
from adledger.http.deps import READERS, STAFF, get_db, require
from adledger.http.respond import read, respond
from adledger.http.schemas import CURSOR_DOC, LIMIT_DOC, Currency, Input, Name, Page, problems
from adledger.service import accounts
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["accounts"])


class BusinessIn(Input):
    name: Name


class BusinessOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class AccountIn(Input):
    name: Name
    currency: Currency
    business_id: str | None = None
    timezone: str | None = None


class AccountOut(BaseModel):
    id: str
    name: str
    currency: str
    business_id: str | None
    timezone: str
    status: Literal["active", "suspended", "closed"]
    created_at: datetime


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
    return respond(
        request, db, who, accounts.create_business, body=body, status=201, name=body.name
    )


@router.post(
    "/accounts",
    status_code=201,
    response_model=AccountOut,
    responses=problems(404, 422),
    summary="Create an ad account with its one currency",
)
def create_account(
    body: AccountIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return respond(
        request, db, who, accounts.create_account, body=body, status=201, **body.model_dump()
    )


@router.get(
    "/accounts/{account_id}",
    response_model=AccountOut,
    responses=problems(404),
    summary="Read an ad account",
)
def get_account(
    account_id: str,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    return read(db, accounts.get_account, account_id, business_id=who.scope)


@router.get(
    "/accounts",
    response_model=Page[AccountOut],
    responses=problems(422),
    summary="List ad accounts, newest first (an advertiser key sees its own business only)",
)
def list_accounts(
    business_id: str | None = None,
    limit: int = Query(50, description=LIMIT_DOC),
    starting_after: str | None = Query(None, description=CURSOR_DOC),
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
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
    responses=problems(404, 409),
    summary="Suspend an active account",
)
def suspend(
    account_id: str,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return respond(request, db, who, accounts.suspend_account, account_id)


@router.post(
    "/accounts/{account_id}/reinstate",
    response_model=AccountOut,
    responses=problems(404, 409),
    summary="Reinstate a suspended account (refused while it owes money)",
)
def reinstate(
    account_id: str,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return respond(request, db, who, accounts.reinstate_account, account_id)
