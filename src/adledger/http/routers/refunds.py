"""Refunds of prepaid funds: request, approve/reject (four eyes), cancel, settle/fail, list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from adledger.http.deps import READERS, STAFF, get_db, require
from adledger.http.respond import read, respond
from adledger.http.schemas import CURSOR_DOC, LIMIT_DOC, Amount, Input, Page, Text, problems
from adledger.service import refunds
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["refunds"])

RefundStatus = Literal["pending", "approved", "paid", "failed", "rejected", "canceled"]


class RefundIn(Input):
    amount: Amount = Field(description="Prepaid funds to return, at most `cash.available`")
    reason: Text | None = None


class RejectIn(Input):
    reason: Text


class DecisionIn(Input):
    reason: Text | None = None


class RefundOut(BaseModel):
    id: str
    account_id: str
    currency: str
    amount: int
    status: RefundStatus
    reason: str | None = Field(description="Why the refund was requested")
    requested_at: datetime
    requested_by: str = Field(description="Id of the API key that requested it")
    decided_at: datetime | None = Field(description="When it was approved, rejected or canceled")
    decided_by: str | None = Field(description="Id of the API key that decided it")
    decision_reason: str | None
    completed_at: datetime | None = Field(description="When it was settled (paid) or failed")


@router.post(
    "/accounts/{account_id}/refunds",
    status_code=201,
    response_model=RefundOut,
    responses=problems(404, 409, 422),
    summary="Request a refund of prepaid funds; the amount is held at once",
    description="The amount moves from `cash.available` to `cash.held` at once, so it can't be "
    "spent while the refund waits. Refused (409) with `account_closed`, "
    "`account_not_in_good_standing` (suspended or in debt), `recent_spend` (spend recorded "
    "within the quiet period, 3 hours by default) or `insufficient_refundable_funds`. "
    "Promotional credit is never refunded.",
)
def request_refund(
    account_id: str,
    body: RefundIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    return respond(
        request,
        db,
        who,
        refunds.request_refund,
        account_id,
        body=body,
        status=201,
        amount=body.amount,
        reason=body.reason,
        requested_by=who.key_id,
        business_id=who.scope,
    )


def _decide(
    fn: Callable[..., Any],
    refund_id: str,
    body: DecisionIn | RejectIn | None,
    request: Request,
    db: Database,
    who: Principal,
) -> Response:
    return respond(
        request,
        db,
        who,
        fn,
        refund_id,
        body=body,
        actor_key_id=who.key_id,
        reason=body.reason if body else None,
        business_id=who.scope,
    )


@router.post(
    "/refunds/{refund_id}/approve",
    response_model=RefundOut,
    responses=problems(404, 409, 422),
    summary="Approve a pending refund (never with the key that requested it)",
    description="403 `self_approval_forbidden` with the requesting key; 409 "
    "`invalid_refund_transition` unless the refund is pending.",
)
def approve(
    refund_id: str,
    request: Request,
    body: DecisionIn | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return _decide(refunds.approve_refund, refund_id, body, request, db, who)


@router.post(
    "/refunds/{refund_id}/reject",
    response_model=RefundOut,
    responses=problems(404, 409, 422),
    summary="Reject a pending refund; the held amount goes back to cash.available",
)
def reject(
    refund_id: str,
    body: RejectIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return _decide(refunds.reject_refund, refund_id, body, request, db, who)


@router.post(
    "/refunds/{refund_id}/cancel",
    response_model=RefundOut,
    responses=problems(404, 409, 422),
    summary="Cancel a pending refund (the requesting business, or staff); the hold is released",
)
def cancel(
    refund_id: str,
    request: Request,
    body: DecisionIn | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    return _decide(refunds.cancel_refund, refund_id, body, request, db, who)


@router.post(
    "/refunds/{refund_id}/settle",
    response_model=RefundOut,
    responses=problems(404, 409, 422),
    summary="Record that an approved refund was paid to the original payment method",
    description="The payment service's answer. Deposit-bonus credit is clawed back in proportion "
    "first; if the server closes accounts on refund, the account is closed and its credit "
    "forfeited.",
)
def settle(
    refund_id: str,
    request: Request,
    body: DecisionIn | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return _decide(refunds.settle_refund, refund_id, body, request, db, who)


@router.post(
    "/refunds/{refund_id}/fail",
    response_model=RefundOut,
    responses=problems(404, 409, 422),
    summary="Record that an approved refund's payout failed; the hold is released",
)
def fail(
    refund_id: str,
    request: Request,
    body: DecisionIn | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return _decide(refunds.fail_refund, refund_id, body, request, db, who)


@router.get(
    "/refunds",
    response_model=Page[RefundOut],
    responses=problems(422),
    summary="List refunds, newest first (an advertiser key sees its own business only)",
)
def list_refunds(
    status: RefundStatus | None = None,
    limit: int = Query(50, description=LIMIT_DOC),
    starting_after: str | None = Query(None, description=CURSOR_DOC),
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    return read(
        db,
        refunds.list_refunds,
        status=status,
        business_id=who.scope,
        limit=limit,
        starting_after=starting_after,
    )


@router.get(
    "/refunds/{refund_id}",
    response_model=RefundOut,
    responses=problems(404),
    summary="Read a refund",
)
def get_refund(
    refund_id: str,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    return read(db, refunds.get_refund, refund_id, business_id=who.scope)


@router.get(
    "/accounts/{account_id}/refunds",
    response_model=Page[RefundOut],
    responses=problems(404, 422),
    summary="List an account's refunds, newest first",
)
def list_account_refunds(
    account_id: str,
    status: RefundStatus | None = None,
    limit: int = Query(50, description=LIMIT_DOC),
    starting_after: str | None = Query(None, description=CURSOR_DOC),
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    return read(
        db,
        refunds.list_account_refunds,
        account_id,
        status=status,
        business_id=who.scope,
        limit=limit,
        starting_after=starting_after,
    )
