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
from adledger.http.schemas import (
    LIST_REFUSALS,
    MINOR_UNITS,
    AccountId,
    Amount,
    Cursor,
    Input,
    Limit,
    Page,
    RefundId,
    Text,
    example_id,
    problems,
)
from adledger.service import refunds
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["refunds"])

RefundStatus = Literal["pending", "approved", "paid", "failed", "rejected", "canceled"]
STATUS_DOC = (
    "`pending` → `approved` → `paid` | `failed`; `pending` → `rejected` | `canceled`. The amount "
    "is held from the request until the refund is paid, or given back to `cash.available` when "
    "it is rejected, canceled or failed"
)


class RefundIn(Input):
    amount: Amount = Field(
        description=f"Prepaid funds to return, in {MINOR_UNITS}; at most `cash.available`",
        examples=[5000],
    )
    reason: Text | None = Field(None, description="Why it is asked for (1–500 characters)")


class RejectIn(Input):
    reason: Text = Field(
        description="Why it is rejected (1–500 characters)", examples=["duplicate request"]
    )


class DecisionIn(Input):
    reason: Text | None = Field(None, description="A note for the record (1–500 characters)")


class RefundOut(BaseModel):
    id: str = Field(description="The refund's id (`rf_…`)", examples=[example_id("rf")])
    account_id: str = Field(description="The account refunded (`acct_…`)")
    currency: str = Field(description="ISO 4217 code of `amount` (the account's)")
    amount: int = Field(description=f"Prepaid funds to return, in {MINOR_UNITS}")
    status: RefundStatus = Field(description=STATUS_DOC)
    reason: str | None = Field(description="Why the refund was requested")
    requested_at: datetime = Field(description="When it was requested (UTC)")
    requested_by: str = Field(description="Id of the API key that requested it (`key_…`)")
    decided_at: datetime | None = Field(description="When it was approved, rejected or canceled")
    decided_by: str | None = Field(description="Id of the API key that decided it (`key_…`)")
    decision_reason: str | None = Field(description="The reason given with the decision")
    completed_at: datetime | None = Field(description="When it was settled (paid) or failed")


@router.post(
    "/accounts/{account_id}/refunds",
    status_code=201,
    response_model=RefundOut,
    responses=problems(
        "account_not_found",
        "account_closed",
        "account_not_in_good_standing",
        "recent_spend",
        "insufficient_refundable_funds",
        422,
    ),
    summary="Request a refund of prepaid funds; the amount is held at once",
)
def request_refund(
    account_id: AccountId,
    body: RefundIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """The refund starts `pending` and its amount moves from `cash.available` to `cash.held` at
    once, so it can't be spent while the refund waits for approval. Promotional credit is never
    refunded. Refused (409), in this order, with `account_closed`; `account_not_in_good_standing`
    (suspended, or in debt: the problem carries `debt`); `recent_spend` (spend recorded within the
    quiet period, 3 hours by default: the problem carries `refunds_open_at`); or
    `insufficient_refundable_funds` (more than `cash.available`: it carries `refundable`).
    Finance may request on an advertiser's behalf; the requesting key can never approve it."""
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
    responses=problems(
        "refund_not_found",
        "self_approval_forbidden",
        "invalid_refund_transition",
        "account_not_in_good_standing",
        422,
    ),
    summary="Approve a pending refund (never with the key that requested it)",
)
def approve_refund(
    refund_id: RefundId,
    request: Request,
    body: DecisionIn | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """`pending` → `approved`: the payment service may now pay it out (then `settle` or
    `fail`). The body is optional. Four eyes: the key that requested the refund gets 403
    `self_approval_forbidden`. Not pending → 409 `invalid_refund_transition`; an account that
    owes money after a reversed deposit → 409 `account_not_in_good_standing` (reject it
    instead)."""
    return _decide(refunds.approve_refund, refund_id, body, request, db, who)


@router.post(
    "/refunds/{refund_id}/reject",
    response_model=RefundOut,
    responses=problems("refund_not_found", "invalid_refund_transition", 422),
    summary="Reject a pending refund; the held amount goes back to cash.available",
)
def reject_refund(
    refund_id: RefundId,
    body: RejectIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """`pending` → `rejected`, with a `reason`; the held amount is spendable again. Not pending
    → 409 `invalid_refund_transition`."""
    return _decide(refunds.reject_refund, refund_id, body, request, db, who)


@router.post(
    "/refunds/{refund_id}/cancel",
    response_model=RefundOut,
    responses=problems("refund_not_found", "invalid_refund_transition", 422),
    summary="Cancel a pending refund (the requesting business, or staff); the hold is released",
)
def cancel_refund(
    refund_id: RefundId,
    request: Request,
    body: DecisionIn | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """`pending` → `canceled`; the held amount is spendable again. The body is optional. An
    advertiser key cancels only its own business's refunds (another's → 404
    `refund_not_found`). Not pending → 409 `invalid_refund_transition`."""
    return _decide(refunds.cancel_refund, refund_id, body, request, db, who)


@router.post(
    "/refunds/{refund_id}/settle",
    response_model=RefundOut,
    responses=problems(
        "refund_not_found", "invalid_refund_transition", "account_not_in_good_standing", 422
    ),
    summary="Record that an approved refund was paid to the original payment method",
)
def settle_refund(
    refund_id: RefundId,
    request: Request,
    body: DecisionIn | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """`approved` → `paid`: the payment service's answer; the held amount leaves the account.
    Deposit-bonus credit is clawed back first, in proportion to the share of the bonus-earning
    deposits (of the last 90 days) that the refund returns, rounded up. If the server closes
    accounts on refund (`ADLEDGER_REFUND_CLOSES_ACCOUNT`), the account is closed and its credit
    forfeited. The body is optional. Not approved → 409 `invalid_refund_transition`; an account
    that owes money → 409 `account_not_in_good_standing` (fail it instead)."""
    return _decide(refunds.settle_refund, refund_id, body, request, db, who)


@router.post(
    "/refunds/{refund_id}/fail",
    response_model=RefundOut,
    responses=problems("refund_not_found", "invalid_refund_transition", 422),
    summary="Record that an approved refund's payout failed; the hold is released",
)
def fail_refund(
    refund_id: RefundId,
    request: Request,
    body: DecisionIn | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """`approved` → `failed`: the payment service could not pay it out; the held amount is
    spendable again. The body is optional. Not approved → 409 `invalid_refund_transition`."""
    return _decide(refunds.fail_refund, refund_id, body, request, db, who)


@router.get(
    "/refunds",
    response_model=Page[RefundOut],
    responses=problems(*LIST_REFUSALS),
    summary="List refunds, newest first (an advertiser key sees its own business only)",
)
def list_refunds(
    status: RefundStatus | None = Query(
        None, description="Only refunds in this status (`pending`: the approval queue)"
    ),
    limit: Limit = 50,
    starting_after: Cursor = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """Every refund of every account (staff keys), or of the advertiser key's business."""
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
    responses=problems("refund_not_found"),
    summary="Read a refund",
)
def get_refund(
    refund_id: RefundId,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """One refund: its status, and who requested and decided it, when."""
    return read(db, refunds.get_refund, refund_id, business_id=who.scope)


@router.get(
    "/accounts/{account_id}/refunds",
    response_model=Page[RefundOut],
    responses=problems("account_not_found", *LIST_REFUSALS),
    summary="List an account's refunds, newest first",
)
def list_account_refunds(
    account_id: AccountId,
    status: RefundStatus | None = Query(None, description="Only refunds in this status"),
    limit: Limit = 50,
    starting_after: Cursor = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """The account's refunds, in every status (or one)."""
    return read(
        db,
        refunds.list_account_refunds,
        account_id,
        status=status,
        business_id=who.scope,
        limit=limit,
        starting_after=starting_after,
    )
