"""Promotions (finance) and redemptions of their codes (advertisers)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from adledger.domain.promotions import CODE_LENGTH, MAX_DAYS
from adledger.http.deps import READERS, STAFF, get_db, require
from adledger.http.respond import read, respond
from adledger.http.schemas import (
    CURSOR_DOC,
    LIMIT_DOC,
    Amount,
    Currency,
    Input,
    Name,
    Page,
    Time,
    problems,
)
from adledger.service import promotions
from adledger.service.keys import Principal
from adledger.service.promotions import MAX_CODES_PER_CALL
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["promotions"])

Kind = Literal["coupon", "spend_threshold", "deposit_bonus"]
Days = Field(ge=1, le=MAX_DAYS, strict=True)


class RewardIn(Input):
    amount: Amount | None = Field(None, description="Credit granted, in minor units")
    percent: int | None = Field(
        None, ge=1, le=100, strict=True, description="deposit_bonus only: % of the deposit"
    )
    max_amount: Amount | None = Field(None, description="With `percent`: the most it grants")


class EligibilityIn(Input):
    new_accounts_only: bool = Field(
        False, description="Only accounts opened within `new_account_days` that have not spent"
    )
    new_account_days: int = Field(30, ge=1, le=MAX_DAYS, strict=True)
    once_per_business: bool = Field(
        True, description="One redemption per business, whichever of its accounts redeems"
    )


class PromotionIn(Input):
    name: Name
    kind: Kind
    currency: Currency = Field(description="Only accounts in this currency can redeem")
    reward: RewardIn
    credit_valid_days: int = Field(
        ge=1, le=MAX_DAYS, strict=True, description="Each granted lot expires this long after"
    )
    starts_at: Time = Field(description="Codes can be redeemed from this instant…")
    ends_at: Time = Field(description="…until (not including) this one")
    max_redemptions: int | None = Field(None, ge=1, strict=True)
    budget: Amount | None = Field(None, description="The most credit the promotion may grant")
    eligibility: EligibilityIn | None = Field(
        None, description="Default: any account, once per business"
    )
    threshold: Amount | None = Field(
        None, description="spend_threshold: cash-funded spend that earns the reward"
    )
    window_days: int = Field(
        60,
        ge=1,
        le=MAX_DAYS,
        strict=True,
        description="How long after redeeming the spend (or deposit) may come; also the window "
        "of the report's cash spend",
    )
    min_deposit: Amount | None = Field(None, description="deposit_bonus: the smallest deposit")


class RewardOut(BaseModel):
    amount: int | None = None
    percent: int | None = None
    max_amount: int | None = None


class EligibilityOut(BaseModel):
    new_accounts_only: bool
    new_account_days: int
    once_per_business: bool


class PromotionOut(BaseModel):
    id: str
    name: str
    kind: Kind
    currency: str
    reward: RewardOut
    credit_valid_days: int
    starts_at: datetime
    ends_at: datetime
    status: Literal["scheduled", "active", "ended"] = Field(description="As of now")
    max_redemptions: int | None
    budget: int | None
    threshold: int | None
    window_days: int
    min_deposit: int | None
    eligibility: EligibilityOut
    redemptions: int = Field(description="Redemptions made so far (every status)")
    budget_committed: int = Field(
        description="Credit granted plus credit reserved by earning redemptions"
    )
    created_at: datetime


class CodesIn(Input):
    count: int = Field(ge=1, le=MAX_CODES_PER_CALL, strict=True)


class CodesOut(BaseModel):
    promotion_id: str
    codes: list[str] = Field(
        description="Single-use codes, shown this once: only their digests are stored"
    )


class RedemptionIn(Input):
    code: str = Field(
        min_length=1,
        max_length=4 * CODE_LENGTH,
        description="Case, spaces and dashes are ignored",
    )


class RedemptionOut(BaseModel):
    id: str
    promotion_id: str
    account_id: str
    kind: Kind
    status: Literal["granted", "earning", "lapsed"]
    lot_id: str | None = Field(description="The credit lot granted, once granted")
    deposit_id: str | None = Field(description="deposit_bonus: the deposit that earned it")
    progress: int | None = Field(
        None, description="spend_threshold: cash-funded spend counted so far"
    )
    threshold: int | None = None
    deadline: datetime | None = Field(description="When an earning redemption lapses")
    created_at: datetime


class RedemptionCounts(BaseModel):
    granted: int
    earning: int
    lapsed: int


class PromotionReport(BaseModel):
    promotion_id: str
    currency: str
    redemptions: RedemptionCounts
    budget: int | None
    budget_committed: int
    credit_granted: int
    credit_used: int
    credit_outstanding: int
    credit_expired: int = Field(description="Breakage: expired unspent")
    credit_voided: int
    credit_clawed_back: int
    credit_forfeited: int
    cash_spend_in_windows: int = Field(
        description="Cash that redeeming accounts spent between redeeming and `window_days` after"
    )


@router.post(
    "/promotions",
    status_code=201,
    response_model=PromotionOut,
    responses=problems(422),
    summary="Create a promotion: a coupon, spend X get Y, or a deposit bonus",
)
def create_promotion(
    body: PromotionIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return respond(
        request, db, who, promotions.create_promotion, body=body, status=201, **body.model_dump()
    )


@router.get(
    "/promotions",
    response_model=Page[PromotionOut],
    responses=problems(422),
    summary="List promotions, newest first",
)
def list_promotions(
    status: Literal["scheduled", "active", "ended"] | None = None,
    limit: int = Query(50, description=LIMIT_DOC),
    starting_after: str | None = Query(None, description=CURSOR_DOC),
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return read(
        db, promotions.list_promotions, status=status, limit=limit, starting_after=starting_after
    )


@router.get(
    "/promotions/{promotion_id}",
    response_model=PromotionOut,
    responses=problems(404),
    summary="One promotion",
)
def get_promotion(
    promotion_id: str,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return read(db, promotions.get_promotion, promotion_id)


@router.post(
    "/promotions/{promotion_id}/end",
    response_model=PromotionOut,
    responses=problems(404, 409),
    summary="End a promotion early: no more redemptions from now",
    description="Redemptions already made keep earning until their own deadline.",
)
def end_promotion(
    promotion_id: str,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return respond(request, db, who, promotions.end_promotion, promotion_id)


@router.post(
    "/promotions/{promotion_id}/codes",
    status_code=201,
    response_model=CodesOut,
    responses=problems(404, 409, 422),
    summary="Make single-use codes (shown once)",
    description="Each code has about 78 bits of randomness, from an alphabet without look-alike "
    "characters, grouped as `XXXX-XXXX-XXXX-XXXX`. Only digests are stored: a repeat with the "
    "same Idempotency-Key makes no more codes and gets 409 `response_shown_once`.",
)
def create_codes(
    promotion_id: str,
    body: CodesIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return respond(
        request,
        db,
        who,
        promotions.create_codes,
        promotion_id,
        body=body,
        status=201,
        shown_once=True,
        count=body.count,
    )


@router.get(
    "/promotions/{promotion_id}/report",
    response_model=PromotionReport,
    responses=problems(404),
    summary="What a promotion granted, what became of it, and the cash it brought",
)
def promotion_report(
    promotion_id: str,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    return read(db, promotions.report, promotion_id)


@router.post(
    "/accounts/{account_id}/redemptions",
    status_code=201,
    response_model=RedemptionOut,
    responses=problems(404, 409, 422, 429),
    summary="Redeem a promotion code",
    description="A coupon is granted at once; spend X get Y and deposit bonuses start `earning`. "
    "Refused (409) with `code_invalid`, `code_used`, `promotion_not_active`, `already_redeemed`, "
    "`not_eligible` or `promotion_exhausted`; each refusal counts as a failed attempt, and a "
    "business with 10 failed attempts in the last hour gets 429 `too_many_attempts`.",
)
def redeem(
    account_id: str,
    body: RedemptionIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require("advertiser")),
) -> Response:
    return respond(
        request,
        db,
        who,
        promotions.redeem,
        account_id,
        body=body,
        status=201,
        code=body.code,
        business_id=who.scope,
    )


@router.get(
    "/accounts/{account_id}/redemptions",
    response_model=Page[RedemptionOut],
    responses=problems(404, 422),
    summary="An account's redemptions and their progress, newest first",
)
def list_redemptions(
    account_id: str,
    limit: int = Query(50, description=LIMIT_DOC),
    starting_after: str | None = Query(None, description=CURSOR_DOC),
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    return read(
        db,
        promotions.list_redemptions,
        account_id,
        business_id=who.scope,
        limit=limit,
        starting_after=starting_after,
    )
