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
    LIST_REFUSALS,
    AccountId,
    Amount,
    Currency,
    Cursor,
    Input,
    Limit,
    Name,
    NoBody,
    Page,
    PromotionId,
    Time,
    example_id,
    problems,
)
from adledger.service import promotions
from adledger.service.keys import Principal
from adledger.service.promotions import MAX_CODES_PER_CALL
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["promotions"])

Kind = Literal["coupon", "spend_threshold", "deposit_bonus"]
PromotionStatus = Literal["scheduled", "active", "ended"]
RedemptionStatus = Literal["granted", "earning", "lapsed"]
PROMO_UNITS = "minor units of the promotion's currency"
KIND_DOC = (
    "`coupon`: redeeming grants `reward.amount` at once; `spend_threshold` (spend X get Y): "
    "cash-funded spend of `threshold` within `window_days` of redeeming grants the reward; "
    "`deposit_bonus`: a deposit of at least `min_deposit` within `window_days` grants it"
)


class RewardIn(Input):
    """`amount`, or (deposit_bonus only) `percent` with `max_amount`."""

    amount: Amount | None = Field(
        None, description=f"Credit granted, in {PROMO_UNITS}", examples=[2500]
    )
    percent: int | None = Field(
        None,
        ge=1,
        le=100,
        strict=True,
        description="deposit_bonus only: a whole percentage of the deposit (rounded down to the "
        "minor unit); needs `max_amount`",
    )
    max_amount: Amount | None = Field(
        None, description=f"With `percent`: the most it grants, in {PROMO_UNITS}"
    )


class EligibilityIn(Input):
    """Who may redeem; every account in the promotion's currency by default."""

    new_accounts_only: bool = Field(
        False,
        description="Only accounts created within `new_account_days` on which no spend was ever "
        "recorded",
    )
    new_account_days: int = Field(
        30, ge=1, le=MAX_DAYS, strict=True, description="With `new_accounts_only`; default 30"
    )
    once_per_business: bool = Field(
        True,
        description="Default true: one redemption per business, whichever of its accounts "
        "redeems (an account without a business is its own)",
    )


class PromotionIn(Input):
    name: Name = Field(description="For staff and reports, 1–200 characters")
    kind: Kind = Field(description=KIND_DOC)
    currency: Currency = Field(description="ISO 4217 code: only accounts in it can redeem")
    reward: RewardIn = Field(description="The credit each redemption can earn")
    credit_valid_days: int = Field(
        ge=1,
        le=MAX_DAYS,
        strict=True,
        description=f"Each granted lot expires this many days after it is granted (1–{MAX_DAYS})",
    )
    starts_at: Time = Field(description="Codes can be redeemed from this instant…")
    ends_at: Time = Field(description="…until (not including) this one; after `starts_at`")
    max_redemptions: int | None = Field(
        None, ge=1, strict=True, description="The most redemptions ever; default no limit"
    )
    budget: Amount | None = Field(
        None,
        description=f"The most credit the promotion may ever grant, in {PROMO_UNITS}; default "
        "no limit",
    )
    eligibility: EligibilityIn | None = Field(
        None, description="Default: any account, once per business"
    )
    threshold: Amount | None = Field(
        None,
        description=f"spend_threshold only, and required: the cash-funded spend that earns the "
        f"reward, in {PROMO_UNITS}",
    )
    window_days: int = Field(
        60,
        ge=1,
        le=MAX_DAYS,
        strict=True,
        description="How many days after redeeming the spend (or deposit) may come; default 60. "
        "Also the window of the report's cash spend",
    )
    min_deposit: Amount | None = Field(
        None,
        description=f"deposit_bonus only, and required: the smallest deposit that earns the "
        f"bonus, in {PROMO_UNITS}",
    )


class RewardOut(BaseModel):
    """`amount`, or `percent` with `max_amount`."""

    amount: int | None = Field(None, description=f"Credit granted, in {PROMO_UNITS}")
    percent: int | None = Field(None, description="A percentage of the deposit (deposit_bonus)")
    max_amount: int | None = Field(
        None, description=f"With `percent`: the most it grants, in {PROMO_UNITS}"
    )


class EligibilityOut(BaseModel):
    new_accounts_only: bool = Field(
        description="Only accounts created within `new_account_days`, with no spend yet"
    )
    new_account_days: int = Field(description="The age limit of `new_accounts_only`, in days")
    once_per_business: bool = Field(description="One redemption per business")


class PromotionOut(BaseModel):
    id: str = Field(description="The promotion's id (`promo_…`)", examples=[example_id("promo")])
    name: str = Field(description="Its name")
    kind: Kind = Field(description=KIND_DOC)
    currency: str = Field(description="ISO 4217 code: only accounts in it can redeem")
    reward: RewardOut = Field(description="The credit each redemption can earn")
    credit_valid_days: int = Field(description="Each granted lot expires this many days later")
    starts_at: datetime = Field(description="Redemptions open (UTC)")
    ends_at: datetime = Field(description="Redemptions close (UTC); moved to now by `end`")
    status: PromotionStatus = Field(
        description="As of now: `scheduled` (not started), `active` or `ended`"
    )
    max_redemptions: int | None = Field(description="The most redemptions ever, if limited")
    budget: int | None = Field(
        description=f"The most credit it may grant, in {PROMO_UNITS}, if limited"
    )
    threshold: int | None = Field(
        description=f"spend_threshold: the cash-funded spend that earns the reward, in "
        f"{PROMO_UNITS}"
    )
    window_days: int = Field(description="Days after redeeming for the spend or deposit to come")
    min_deposit: int | None = Field(
        description=f"deposit_bonus: the smallest deposit that earns it, in {PROMO_UNITS}"
    )
    eligibility: EligibilityOut = Field(description="Who may redeem")
    redemptions: int = Field(description="Redemptions made so far (every status)")
    budget_committed: int = Field(
        description=f"Credit granted plus credit reserved by earning redemptions, in {PROMO_UNITS}"
    )
    created_at: datetime = Field(description="When it was created (UTC)")


class CodesIn(Input):
    count: int = Field(
        ge=1,
        le=MAX_CODES_PER_CALL,
        strict=True,
        description=f"How many codes to make, 1–{MAX_CODES_PER_CALL:,}",
        examples=[100],
    )


class CodesOut(BaseModel):
    promotion_id: str = Field(description="The promotion (`promo_…`)")
    codes: list[str] = Field(
        description="Single-use codes, shown this once: only their digests are stored",
        examples=[["7KQM-2XHT-9PWR-4ZNC"]],
    )


class RedemptionIn(Input):
    code: str = Field(
        min_length=1,
        max_length=4 * CODE_LENGTH,
        description="The code as the advertiser typed it: case, spaces and dashes are ignored",
        examples=["7kqm-2xht-9pwr-4znc"],
    )


class RedemptionOut(BaseModel):
    id: str = Field(description="The redemption's id (`red_…`)", examples=[example_id("red")])
    promotion_id: str = Field(description="The promotion redeemed (`promo_…`)")
    account_id: str = Field(description="The account that redeemed (`acct_…`)")
    kind: Kind = Field(description="The promotion's kind")
    status: RedemptionStatus = Field(
        description="`granted` (the credit lot was granted), `earning` (waiting for the spend or "
        "deposit, until `deadline`) or `lapsed` (the deadline passed unearned)"
    )
    lot_id: str | None = Field(description="The credit lot granted (`lot_…`), once granted")
    deposit_id: str | None = Field(
        description="deposit_bonus: the deposit that earned it (`dep_…`)"
    )
    progress: int | None = Field(
        None,
        description=f"spend_threshold only: cash-funded spend counted so far, in {PROMO_UNITS} "
        "(at most `threshold`)",
    )
    threshold: int | None = Field(
        None, description=f"spend_threshold only: the spend that earns it, in {PROMO_UNITS}"
    )
    deadline: datetime | None = Field(
        description="When an earning redemption lapses; null for a coupon"
    )
    created_at: datetime = Field(description="When the code was redeemed (UTC)")


class RedemptionCounts(BaseModel):
    granted: int = Field(description="Redemptions whose credit was granted")
    earning: int = Field(description="Redemptions still earning")
    lapsed: int = Field(description="Redemptions that lapsed unearned")


class PromotionReport(BaseModel):
    promotion_id: str = Field(description="The promotion (`promo_…`)")
    currency: str = Field(description="ISO 4217 code of every amount here")
    redemptions: RedemptionCounts = Field(description="Redemptions by status")
    budget: int | None = Field(description=f"Its budget, in {PROMO_UNITS}, if limited")
    budget_committed: int = Field(
        description=f"Credit granted plus reserved by earning redemptions, in {PROMO_UNITS}"
    )
    credit_granted: int = Field(description=f"Credit its lots were granted, in {PROMO_UNITS}")
    credit_used: int = Field(description=f"Of it, spent on ads, in {PROMO_UNITS}")
    credit_outstanding: int = Field(
        description=f"Of it, still unspent in active lots, in {PROMO_UNITS}"
    )
    credit_expired: int = Field(description=f"Breakage: expired unspent, in {PROMO_UNITS}")
    credit_voided: int = Field(description=f"Voided by staff, in {PROMO_UNITS}")
    credit_clawed_back: int = Field(
        description=f"Clawed back after deposit reversals and refunds, in {PROMO_UNITS}"
    )
    credit_forfeited: int = Field(
        description=f"Forfeited when accounts were closed, in {PROMO_UNITS}"
    )
    cash_spend_in_windows: int = Field(
        description=f"Cash that redeeming accounts spent between redeeming and `window_days` "
        f"after, in {PROMO_UNITS}"
    )


@router.post(
    "/promotions",
    status_code=201,
    response_model=PromotionOut,
    responses=problems("invalid_time", 422),
    summary="Create a promotion: a coupon, spend X get Y, or a deposit bonus",
)
def create_promotion(
    body: PromotionIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """The promotion grants credit to the accounts that redeem one of its codes (make them with
    `POST /v1/promotions/{promotion_id}/codes`). Terms that make no sense are refused with 422
    `validation_error` naming the field: a `reward` that fits no kind, a `threshold` on a kind
    other than spend_threshold, a `min_deposit` on one other than deposit_bonus, a `budget`
    smaller than one reward, a percent bonus that rounds to nothing; `ends_at` not after
    `starts_at` → 422 `invalid_time`. `max_redemptions` and `budget` are never exceeded, even
    by concurrent redemptions."""
    return respond(
        request, db, who, promotions.create_promotion, body=body, status=201, **body.model_dump()
    )


@router.get(
    "/promotions",
    response_model=Page[PromotionOut],
    responses=problems(*LIST_REFUSALS),
    summary="List promotions, newest first",
)
def list_promotions(
    status: PromotionStatus | None = Query(None, description="Only promotions in this status"),
    limit: Limit = 50,
    starting_after: Cursor = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """Every promotion, or those `scheduled`, `active` or `ended` as of now."""
    return read(
        db, promotions.list_promotions, status=status, limit=limit, starting_after=starting_after
    )


@router.get(
    "/promotions/{promotion_id}",
    response_model=PromotionOut,
    responses=problems("promotion_not_found"),
    summary="Read a promotion",
)
def get_promotion(
    promotion_id: PromotionId,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """Its terms, status, and how much of its limits is used."""
    return read(db, promotions.get_promotion, promotion_id)


@router.post(
    "/promotions/{promotion_id}/end",
    response_model=PromotionOut,
    responses=problems("promotion_not_found", "promotion_already_ended"),
    summary="End a promotion early: no more redemptions from now",
)
def end_promotion(
    promotion_id: PromotionId,
    request: Request,
    body: NoBody | None = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """`ends_at` becomes now. Redemptions already made keep earning until their own deadline.
    A promotion that has already ended → 409 `promotion_already_ended`."""
    return respond(request, db, who, promotions.end_promotion, promotion_id)


@router.post(
    "/promotions/{promotion_id}/codes",
    status_code=201,
    response_model=CodesOut,
    responses=problems(
        "promotion_not_found", "promotion_already_ended", "response_shown_once", 422
    ),
    summary="Make single-use codes (shown once)",
)
def create_codes(
    promotion_id: PromotionId,
    body: CodesIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """Each code has about 78 bits of randomness, from an alphabet without look-alike
    characters, grouped as `XXXX-XXXX-XXXX-XXXX`; case, spaces and dashes are ignored when one
    is redeemed. Only digests are stored, so the codes are in this response only: a repeat with
    the same Idempotency-Key makes no more codes and gets 409 `response_shown_once`. A promotion
    that has ended gets no codes (409 `promotion_already_ended`)."""
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
    responses=problems("promotion_not_found"),
    summary="What a promotion granted, what became of it, and the cash it brought",
)
def get_promotion_report(
    promotion_id: PromotionId,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*STAFF)),
) -> Response:
    """Redemptions by status; the credit its lots were granted and where it went
    (`credit_granted = credit_used + credit_outstanding + credit_expired + credit_voided +
    credit_clawed_back + credit_forfeited`); and the cash the redeeming accounts spent inside
    their windows."""
    return read(db, promotions.report, promotion_id)


@router.post(
    "/accounts/{account_id}/redemptions",
    status_code=201,
    response_model=RedemptionOut,
    responses=problems(
        "account_not_found",
        "account_closed",
        "too_many_attempts",
        "code_invalid",
        "code_used",
        "promotion_not_active",
        "already_redeemed",
        "not_eligible",
        "promotion_exhausted",
        422,
    ),
    summary="Redeem a promotion code",
)
def redeem(
    account_id: AccountId,
    body: RedemptionIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require("advertiser")),
) -> Response:
    """A coupon is `granted` at once (the response names its lot); spend X get Y and deposit
    bonuses start `earning` until their `deadline`. Refusals are checked in this order: the
    account (404 `account_not_found`, 409 `account_closed`), the attempt limit (429
    `too_many_attempts`), then 409 `code_invalid`, `code_used`, `promotion_not_active`,
    `already_redeemed`, `not_eligible`, `promotion_exhausted`. Each 409 refusal counts as a
    failed attempt of the business; at 10 in the last hour it gets 429 with `Retry-After`."""
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
    responses=problems("account_not_found", *LIST_REFUSALS),
    summary="An account's redemptions and their progress, newest first",
)
def list_redemptions(
    account_id: AccountId,
    limit: Limit = 50,
    starting_after: Cursor = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require(*READERS)),
) -> Response:
    """Each redemption's status, and for spend X get Y its progress toward the threshold."""
    return read(
        db,
        promotions.list_redemptions,
        account_id,
        business_id=who.scope,
        limit=limit,
        starting_after=starting_after,
    )
