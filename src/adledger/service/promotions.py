"""Promotions: create and end them, make codes, redeem codes, and earn or lapse the rewards.

Locking, so no race can exceed `max_redemptions` or `budget`, reuse a code or redeem twice:

* every writer of a redemption holds its **account's** lock (redeeming, spend, deposits, lapsing);
* redeeming also locks the **promotion's** row (`SELECT … FOR UPDATE`; SQLite's write lock serves
  on SQLite) before it reads the code, the counters and the earlier redemptions, so two
  redemptions of one promotion are serialised; accounts are always locked before promotions;
* the database backs it all: unique (promotion, account) and (promotion, business) indexes, and
  checks that `redemptions_count ≤ max_redemptions` and `budget_committed ≤ budget`.

`budget_committed` is the credit granted plus the credit reserved by earning redemptions: a
redemption reserves the most it could ever be granted, a grant settles the reservation, a lapse
releases it.

Failed attempts (every `RedemptionRefused`) are recorded per business, in the very transaction
that checked the count, under the business's row lock; a business with 10 in the last hour is
refused with `too_many_attempts` before its code is even looked at. The count lives in the
database, so it holds across every `serve` worker, and no two attempts can read the same count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from adledger.domain import ledger
from adledger.domain.errors import (
    AccountClosed,
    CodeInvalid,
    CodeUsed,
    InvalidInput,
    PromotionAlreadyEnded,
    PromotionNotFound,
    RateLimited,
    RedemptionRefused,
)
from adledger.domain.ids import new_id, new_ids
from adledger.domain.lots import LotBalance
from adledger.domain.money import check_currency, format_money
from adledger.domain.promotions import (
    FAILED_ATTEMPTS_LIMIT,
    FAILED_ATTEMPTS_WINDOW,
    Eligibility,
    PromotionKind,
    PromotionState,
    PromotionTerms,
    RedeemingAccount,
    RedemptionStatus,
    Reward,
    code_digest,
    counts_toward_threshold,
    lot_expiry,
    new_code,
    promotion_status,
    redemption_refusal,
    window_end,
)
from adledger.service.accounts import load_account, lock_account
from adledger.service.credits import grant_credit
from adledger.service.pagination import Page, paginate
from adledger.service.uow import KeepWrites, UnitOfWork
from adledger.storage.postings import Posting, post
from adledger.storage.tables import (
    businesses,
    entries,
    lots,
    promotion_codes,
    promotions,
    redemption_attempts,
    redemptions,
    transactions,
)

MAX_CODES_PER_CALL = 10_000
_EARNING = RedemptionStatus.EARNING.value
P, R = promotions.c, redemptions.c


# --- views ------------------------------------------------------------------------------------


def terms_of(row: Any) -> PromotionTerms:
    return PromotionTerms(
        kind=PromotionKind(row.kind),
        currency=row.currency,
        reward=Reward(row.reward_amount, row.reward_percent, row.reward_max_amount),
        credit_valid_days=row.credit_valid_days,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        max_redemptions=row.max_redemptions,
        budget=row.budget,
        eligibility=Eligibility(row.new_accounts_only, row.new_account_days, row.once_per_business),
        threshold=row.threshold,
        window_days=row.window_days,
        min_deposit=row.min_deposit,
    )


def promotion_view(row: Any, now: datetime) -> dict[str, Any]:
    reward: dict[str, Any] = (
        {"amount": row.reward_amount}
        if row.reward_amount is not None
        else {"percent": row.reward_percent, "max_amount": row.reward_max_amount}
    )
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "currency": row.currency,
        "reward": reward,
        "credit_valid_days": row.credit_valid_days,
        "starts_at": row.starts_at,
        "ends_at": row.ends_at,
        "status": promotion_status(row.starts_at, row.ends_at, now),
        "max_redemptions": row.max_redemptions,
        "budget": row.budget,
        "threshold": row.threshold,
        "window_days": row.window_days,
        "min_deposit": row.min_deposit,
        "eligibility": {
            "new_accounts_only": row.new_accounts_only,
            "new_account_days": row.new_account_days,
            "once_per_business": row.once_per_business,
        },
        "redemptions": row.redemptions_count,
        "budget_committed": row.budget_committed,
        "created_at": row.created_at,
    }


def redemption_view(row: Any, now: datetime) -> dict[str, Any]:
    """A redemption as the advertiser sees it; an earning one past its deadline shows `lapsed`
    (the next expiry run, spend or deposit on the account records it so)."""
    status = row.status
    if status == _EARNING and row.window_ends_at <= now:
        status = RedemptionStatus.LAPSED.value
    view: dict[str, Any] = {
        "id": row.id,
        "promotion_id": row.promotion_id,
        "account_id": row.account_id,
        "kind": row.kind,
        "status": status,
        "lot_id": row.lot_id,
        "deposit_id": row.deposit_id,
        "deadline": None if row.kind == PromotionKind.COUPON else row.window_ends_at,
        "created_at": row.created_at,
    }
    if row.kind == PromotionKind.SPEND_THRESHOLD:
        view["progress"] = min(row.progress, row.threshold)
        view["threshold"] = row.threshold
    return view


# --- promotions -------------------------------------------------------------------------------


def create_promotion(
    uow: UnitOfWork,
    *,
    name: str,
    kind: str,
    currency: str,
    reward: dict[str, Any],
    credit_valid_days: int,
    starts_at: datetime,
    ends_at: datetime,
    max_redemptions: int | None = None,
    budget: int | None = None,
    eligibility: dict[str, Any] | None = None,
    threshold: int | None = None,
    window_days: int | None = None,
    min_deposit: int | None = None,
) -> dict[str, Any]:
    """A promotion of `kind`; `InvalidInput` naming the field if its terms make no sense."""
    check_currency(currency)
    try:
        promo_kind = PromotionKind(kind)
    except ValueError:
        raise InvalidInput(
            f"kind must be one of {', '.join(k.value for k in PromotionKind)}", code="invalid_kind"
        ) from None
    rules = Eligibility(**(eligibility or {}))
    terms = PromotionTerms(
        kind=promo_kind,
        currency=currency,
        reward=Reward(reward.get("amount"), reward.get("percent"), reward.get("max_amount")),
        credit_valid_days=credit_valid_days,
        starts_at=starts_at,
        ends_at=ends_at,
        max_redemptions=max_redemptions,
        budget=budget,
        eligibility=rules,
        threshold=threshold,
        window_days=window_days if window_days is not None else 60,
        min_deposit=min_deposit,
    ).check()
    row = {
        "id": new_id("promo"),
        "name": name,
        "kind": promo_kind.value,
        "currency": currency,
        "reward_amount": terms.reward.amount,
        "reward_percent": terms.reward.percent,
        "reward_max_amount": terms.reward.max_amount,
        "credit_valid_days": credit_valid_days,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "max_redemptions": max_redemptions,
        "budget": budget,
        "threshold": threshold,
        "window_days": terms.window_days,
        "min_deposit": min_deposit,
        "new_accounts_only": rules.new_accounts_only,
        "new_account_days": rules.new_account_days,
        "once_per_business": rules.once_per_business,
        "created_at": uow.now,
        "ended_early_at": None,
        "redemptions_count": 0,
        "budget_committed": 0,
    }
    uow.conn.execute(promotions.insert().values(**row))
    return promotion_view(_Row(row), uow.now)


class _Row:
    """A dict read like a result row (`row.name`)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _load(uow: UnitOfWork, promotion_id: str, *, lock: bool = False) -> Any:
    query = select(promotions).where(P.id == promotion_id)
    if lock and not uow.sqlite:
        query = query.with_for_update()
    row = uow.conn.execute(query).first()
    if row is None:
        raise PromotionNotFound(f"no promotion {promotion_id}")
    return row


def get_promotion(uow: UnitOfWork, promotion_id: str) -> dict[str, Any]:
    return promotion_view(_load(uow, promotion_id), uow.now)


def list_promotions(
    uow: UnitOfWork,
    *,
    status: str | None = None,
    limit: int = 50,
    starting_after: str | None = None,
) -> Page:
    """Promotions newest first; `status` is `scheduled`, `active` or `ended` (as of now)."""
    query = select(promotions)
    now = uow.now
    if status == "scheduled":
        query = query.where(P.starts_at > now, P.ends_at > now)
    elif status == "active":
        query = query.where(P.starts_at <= now, P.ends_at > now)
    elif status == "ended":
        query = query.where(P.ends_at <= now)
    elif status is not None:
        raise InvalidInput("status must be scheduled, active or ended", code="invalid_status")
    return paginate(uow, query, P.id, limit, starting_after, lambda r: promotion_view(r, now))


def end_promotion(uow: UnitOfWork, promotion_id: str) -> dict[str, Any]:
    """Close the redemption window now. Redemptions already made keep earning to their deadline."""
    row = _load(uow, promotion_id, lock=True)
    if row.ends_at <= uow.now:
        raise PromotionAlreadyEnded(f"promotion {promotion_id} ended at {row.ends_at.isoformat()}")
    uow.conn.execute(
        update(promotions)
        .where(P.id == promotion_id)
        .values(ends_at=uow.now, ended_early_at=uow.now)
    )
    return get_promotion(uow, promotion_id)


def create_codes(uow: UnitOfWork, promotion_id: str, *, count: int) -> dict[str, Any]:
    """`count` fresh single-use codes. They are returned once; only their digests are kept."""
    if (
        isinstance(count, bool)
        or not isinstance(count, int)
        or not 1 <= count <= MAX_CODES_PER_CALL
    ):
        raise InvalidInput(f"count must be from 1 to {MAX_CODES_PER_CALL}")
    row = _load(uow, promotion_id)
    if row.ends_at <= uow.now:
        raise PromotionAlreadyEnded(f"promotion {promotion_id} has ended; it needs no more codes")
    codes = [new_code() for _ in range(count)]
    uow.conn.execute(
        promotion_codes.insert(),
        [
            {"code_hash": code_digest(c), "promotion_id": promotion_id, "created_at": uow.now}
            for c in codes
        ],
    )
    return {"promotion_id": promotion_id, "codes": codes}


# --- redeeming --------------------------------------------------------------------------------


def attempt_scope(account: Any) -> str:
    """Whose failed attempts count together: the business, or a business-less account."""
    return str(account.business_id or account.id)


def _check_attempts(uow: UnitOfWork, who: str) -> None:
    since = uow.now - FAILED_ATTEMPTS_WINDOW
    failed, oldest = uow.conn.execute(
        select(func.count(), func.min(redemption_attempts.c.attempted_at)).where(
            redemption_attempts.c.who == who, redemption_attempts.c.attempted_at > since
        )
    ).one()
    if failed >= FAILED_ATTEMPTS_LIMIT:
        retry = max(1, int((oldest + FAILED_ATTEMPTS_WINDOW - uow.now).total_seconds()) + 1)
        raise RateLimited(
            f"{failed} failed redemption attempts in the last hour; try again in {retry} s",
            retry_after=retry,
        )


def _lock_attempts(uow: UnitOfWork, account: Any) -> None:
    """Serialise the redemption attempts of one business (the account's own lock serves an
    account without one), so the failed-attempt count a redemption checks is never stale."""
    if account.business_id is not None and not uow.sqlite:
        uow.conn.execute(
            select(businesses.c.id).where(businesses.c.id == account.business_id).with_for_update()
        )


def redeem(
    uow: UnitOfWork, account_id: str, *, code: str, business_id: str | None = None
) -> dict[str, Any]:
    """Redeem `code` for the account: a coupon is granted at once, the others start earning.

    Raises `AccountNotFound` (or outside `business_id`), `AccountClosed`, `RateLimited`
    (`too_many_attempts`), then the refusals in the order of `domain.promotions`:
    `CodeInvalid`, `CodeUsed`, `PromotionNotActive`, `AlreadyRedeemed`, `NotEligible`,
    `PromotionExhausted`. A refusal is recorded as a failed attempt of the business in the same
    transaction that checked the count, under the business's lock (it is raised through
    `KeepWrites`, so that record is committed while everything else is rolled back).
    """
    account = lock_account(uow, account_id, business_id=business_id)
    if account.status == "closed":
        raise AccountClosed(f"account {account_id} is closed and redeems no codes")
    _lock_attempts(uow, account)
    who = attempt_scope(account)
    _check_attempts(uow, who)
    attempt = uow.conn.begin_nested()
    try:
        result = _redeem(uow, account, code)
    except RedemptionRefused as refusal:
        attempt.rollback()
        uow.conn.execute(
            redemption_attempts.insert().values(who=who, attempted_at=uow.now, outcome=refusal.code)
        )
        raise KeepWrites(refusal) from None
    attempt.commit()
    return result


def _redeem(uow: UnitOfWork, account: Any, code: str) -> dict[str, Any]:
    """The redemption itself, once the account and the attempt count have been checked."""
    digest = code_digest(code)
    found = uow.conn.execute(
        select(promotion_codes.c.promotion_id).where(promotion_codes.c.code_hash == digest)
    ).first()
    if found is None:
        raise CodeInvalid("no promotion has this code; check it and try again")
    promo = _load(uow, found.promotion_id, lock=True)
    # Read under the promotion's lock: every redemption of this promotion is serialised here.
    code_row = uow.conn.execute(
        select(promotion_codes).where(promotion_codes.c.code_hash == digest)
    ).one()
    if code_row.redeemed_at is not None:
        raise CodeUsed("this code has already been redeemed")
    earlier = uow.conn.execute(
        select(R.account_id, R.business_id).where(
            R.promotion_id == promo.id,
            or_(
                R.account_id == account.id,
                and_(R.business_id == account.business_id, R.business_id.is_not(None)),
            ),
        )
    ).all()
    terms = terms_of(promo)
    refusal = redemption_refusal(
        PromotionState(terms, promo.redemptions_count, promo.budget_committed),
        RedeemingAccount(
            currency=account.currency,
            status=account.status,
            created_at=account.created_at,
            has_spend=account.last_spend_at is not None,
            debt=account.debt,
        ),
        now=uow.now,
        account_redeemed=any(e.account_id == account.id for e in earlier),
        business_redeemed=any(
            e.business_id is not None and e.business_id == account.business_id for e in earlier
        ),
    )
    if refusal is not None:
        raise refusal

    redemption_id = new_id("red")
    most = terms.reward.most
    row: dict[str, Any] = {
        "id": redemption_id,
        "promotion_id": promo.id,
        "account_id": account.id,
        "business_id": account.business_id,
        "once_key": (account.business_id or account.id)
        if terms.eligibility.once_per_business
        else None,
        "status": _EARNING,
        "created_at": uow.now,
        "window_ends_at": window_end(uow.now, terms.window_days),
        "progress": 0,
        "reserved": most,
        "lot_id": None,
        "deposit_id": None,
        "closed_at": None,
    }
    uow.conn.execute(redemptions.insert().values(**row))
    uow.conn.execute(
        update(promotion_codes)
        .where(promotion_codes.c.code_hash == digest)
        .values(redeemed_at=uow.now, redemption_id=redemption_id)
    )
    uow.conn.execute(
        update(promotions)
        .where(P.id == promo.id)
        .values(
            redemptions_count=P.redemptions_count + 1,
            budget_committed=P.budget_committed + most,
        )
    )
    if terms.kind is PromotionKind.COUPON:
        lot = _grant(uow, account, _Offer.of(promo), redemption_id, most, reserved=most)
        row |= {"status": RedemptionStatus.GRANTED.value, "lot_id": lot["id"], "reserved": 0}
    return redemption_view(_Row(row | {"kind": promo.kind, "threshold": promo.threshold}), uow.now)


@dataclass(frozen=True, slots=True)
class _Offer:
    """What a grant needs to know of its promotion."""

    id: str
    name: str
    kind: str
    credit_valid_days: int

    @classmethod
    def of(cls, row: Any, id_field: str = "id") -> _Offer:
        return cls(getattr(row, id_field), row.name, row.kind, row.credit_valid_days)


def _grant(
    uow: UnitOfWork,
    account: Any,
    promo: _Offer,
    redemption_id: str,
    amount: int,
    *,
    reserved: int,
    deposit_id: str | None = None,
    progress: int = 0,
) -> dict[str, Any]:
    """Grant a redemption's reward as a lot and settle its reservation. Account is locked."""
    lot = grant_credit(
        uow,
        account.id,
        amount=amount,
        expires_at=lot_expiry(uow.now, promo.credit_valid_days),
        reason=f"promotion {promo.name!r} ({promo.id})",
        source=promo.kind,
        promotion_id=promo.id,
        deposit_id=deposit_id,
    )
    uow.conn.execute(
        update(redemptions)
        .where(R.id == redemption_id)
        .values(
            status=RedemptionStatus.GRANTED.value,
            lot_id=lot["id"],
            deposit_id=deposit_id,
            reserved=0,
            progress=progress,
            closed_at=uow.now,
        )
    )
    if reserved != amount:
        uow.conn.execute(
            update(promotions)
            .where(P.id == promo.id)
            .values(budget_committed=P.budget_committed - (reserved - amount))
        )
    return lot


def list_redemptions(
    uow: UnitOfWork,
    account_id: str,
    *,
    business_id: str | None = None,
    limit: int = 50,
    starting_after: str | None = None,
) -> Page:
    load_account(uow, account_id, business_id=business_id)
    query = (
        select(redemptions, P.kind, P.threshold)
        .join(promotions, P.id == R.promotion_id)
        .where(R.account_id == account_id)
    )
    now = uow.now
    return paginate(uow, query, R.id, limit, starting_after, lambda r: redemption_view(r, now))


# --- earning: spend and deposits ----------------------------------------------------------------


_EARNING_COLUMNS = (
    R.id,
    R.account_id,
    R.promotion_id,
    R.created_at,
    R.window_ends_at,
    R.progress,
    R.reserved,
    P.name,
    P.kind,
    P.currency,
    P.threshold,
    P.reward_amount,
    P.reward_percent,
    P.reward_max_amount,
    P.credit_valid_days,
    P.min_deposit,
)


def _earning(
    uow: UnitOfWork,
    account_ids: Iterable[str],
    kind: PromotionKind | None = None,
    *,
    due_by: datetime | None = None,
) -> list[Any]:
    """The earning redemptions of the accounts (of one kind; or only those due by a time)."""
    ids = sorted(set(account_ids))
    found: list[Any] = []
    for start in range(0, len(ids), 1000):
        query = (
            select(*_EARNING_COLUMNS)
            .join(promotions, P.id == R.promotion_id)
            .where(R.account_id.in_(ids[start : start + 1000]), R.status == _EARNING)
            .order_by(R.id)
        )
        if kind is not None:
            query = query.where(P.kind == kind.value)
        if due_by is not None:
            query = query.where(R.window_ends_at <= due_by)
        found += uow.conn.execute(query).all()
    return found


class ThresholdTracker:
    """Counts a spend batch's cash toward its accounts' earning "spend X get Y" redemptions.

    Made once per batch (one query, and nothing at all when no account of the batch is
    earning); `count` is called for each applied event in the order sent and grants the reward
    in the same unit of work when the threshold is crossed; `finish` stores the progress.
    """

    def __init__(self, uow: UnitOfWork, account_ids: Iterable[str]) -> None:
        self.uow = uow
        self.by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.lapsed: list[Any] = []
        for r in _earning(uow, account_ids, PromotionKind.SPEND_THRESHOLD):
            if r.window_ends_at <= uow.now:
                self.lapsed.append(r)
            else:
                self.by_account[r.account_id].append({"row": r, "progress": r.progress})

    def count(
        self,
        account: Any,
        occurred_at: datetime,
        cash_used: int,
        on_grant: Callable[[LotBalance], None],
    ) -> None:
        if cash_used <= 0:
            return
        for item in self.by_account.get(account.id, ()):
            r = item["row"]
            if item.get("granted") or not counts_toward_threshold(
                occurred_at, r.created_at, r.window_ends_at
            ):
                continue
            item["progress"] += cash_used
            if item["progress"] >= r.threshold:
                item["granted"] = True
                offer = _Offer.of(r, "promotion_id")
                lot = _grant(
                    self.uow,
                    account,
                    offer,
                    r.id,
                    r.reward_amount,
                    reserved=r.reserved,
                    progress=item["progress"],
                )
                on_grant(_lot_balance(lot))

    def finish(self) -> None:
        changed = [
            {"r_id": item["row"].id, "p": item["progress"]}
            for items in self.by_account.values()
            for item in items
            if not item.get("granted") and item["progress"] != item["row"].progress
        ]
        for c in changed:
            self.uow.conn.execute(
                update(redemptions).where(R.id == c["r_id"]).values(progress=c["p"])
            )
        _lapse(self.uow, self.lapsed)


def _lot_balance(lot: dict[str, Any]) -> LotBalance:
    return LotBalance(
        id=lot["id"],
        remaining=lot["remaining"],
        effective_at=lot["effective_at"],
        expires_at=lot["expires_at"],
        priority=lot["priority"],
        campaign_id=lot["campaign_id"],
        created_at=lot["created_at"],
    )


def on_deposit(uow: UnitOfWork, account: Any, deposit_id: str, amount: int) -> None:
    """A deposit by an account with earning deposit bonuses: a qualifying one grants each bonus,
    linked to the deposit. The caller holds the account's lock."""
    earning = _earning(uow, [account.id], PromotionKind.DEPOSIT_BONUS)
    lapsed = [r for r in earning if r.window_ends_at <= uow.now]
    for r in earning:
        if r.window_ends_at <= uow.now or amount < r.min_deposit:
            continue
        reward = Reward(r.reward_amount, r.reward_percent, r.reward_max_amount)
        if reward.for_deposit(amount) == 0:  # refused at creation; never a zero lot
            continue
        _grant(
            uow,
            account,
            _Offer.of(r, "promotion_id"),
            r.id,
            reward.for_deposit(amount),
            reserved=r.reserved,
            deposit_id=deposit_id,
        )
    _lapse(uow, lapsed)


# --- lapsing ------------------------------------------------------------------------------------


def _lapse(uow: UnitOfWork, rows: Sequence[Any]) -> None:
    """Lapse earning redemptions (their accounts are locked), release their reservations, and
    note each lapse in its account's history (a `lapse` memo: it moves no value)."""
    if not rows:
        return
    uow.conn.execute(
        update(redemptions)
        .where(R.id.in_([r.id for r in rows]), R.status == _EARNING)
        .values(status=RedemptionStatus.LAPSED.value, reserved=0, closed_at=uow.now)
    )
    memos = []
    for r, txn_id in zip(rows, new_ids("txn", len(rows)), strict=True):
        progress = None
        if r.kind == PromotionKind.SPEND_THRESHOLD:
            counted = format_money(min(r.progress, r.threshold), r.currency)
            progress = f"{counted} of {format_money(r.threshold, r.currency)} spent"
        ended = r.window_ends_at.strftime("%Y-%m-%d %H:%M UTC")
        memos.append(
            Posting(
                id=txn_id,
                account_id=r.account_id,
                currency=r.currency,
                created_at=uow.now,
                txn=ledger.lapse(r.name, ended, progress),
            )
        )
    post(uow.conn, memos)
    release: dict[str, int] = defaultdict(int)
    for r in rows:
        release[r.promotion_id] += r.reserved
    for promotion_id, amount in sorted(release.items()):
        if amount:
            uow.conn.execute(
                update(promotions)
                .where(P.id == promotion_id)
                .values(budget_committed=P.budget_committed - amount)
            )


def due_redemption_accounts(uow: UnitOfWork, cutoff: datetime) -> set[str]:
    """Accounts with an earning redemption whose window ended by `cutoff`."""
    query = select(R.account_id).where(R.status == _EARNING, R.window_ends_at <= cutoff)
    return set(uow.conn.execute(query).scalars())


def lapse_due(uow: UnitOfWork, account_ids: Sequence[str], cutoff: datetime) -> int:
    """Lapse the locked accounts' earning redemptions whose window ended by `cutoff`."""
    rows = _earning(uow, account_ids, due_by=cutoff)
    _lapse(uow, rows)
    return len(rows)


# --- the report -------------------------------------------------------------------------------


def report(uow: UnitOfWork, promotion_id: str) -> dict[str, Any]:
    """What a promotion gave and what it brought: redemptions by status, its credit (granted,
    used, outstanding, expired, voided, clawed back, forfeited) and the cash that redeeming
    accounts spent inside their windows (from redemption to `window_days` later)."""
    promo = _load(uow, promotion_id)
    by_status = dict.fromkeys((s.value for s in RedemptionStatus), 0)
    for row in uow.conn.execute(
        select(redemptions, P.kind, P.threshold)
        .join(promotions, P.id == R.promotion_id)
        .where(R.promotion_id == promotion_id)
    ):
        by_status[redemption_view(row, uow.now)["status"]] += 1
    t = transactions.c
    flows = dict(
        uow.conn.execute(
            select(t.kind, func.sum(entries.c.amount))
            .select_from(
                entries.join(transactions, t.id == entries.c.txn_id).join(
                    lots, lots.c.id == entries.c.lot_id
                )
            )
            .where(lots.c.promotion_id == promotion_id, entries.c.book == ledger.Book.CREDIT.value)
            .group_by(t.kind)
        ).all()
    )
    outstanding = uow.conn.execute(
        select(func.coalesce(func.sum(lots.c.remaining), 0)).where(
            lots.c.promotion_id == promotion_id, lots.c.status == "active"
        )
    ).scalar_one()
    cash_in_windows = uow.conn.execute(
        select(func.coalesce(func.sum(-t.cash_delta), 0))
        .select_from(transactions.join(redemptions, R.account_id == t.account_id))
        .where(
            R.promotion_id == promotion_id,
            t.kind == ledger.Kind.SPEND.value,
            t.occurred_at > R.created_at,
            t.occurred_at < R.window_ends_at,
        )
    ).scalar_one()

    def flow(kind: ledger.Kind) -> int:
        return abs(int(flows.get(kind.value) or 0))

    return {
        "promotion_id": promotion_id,
        "currency": promo.currency,
        "redemptions": by_status,
        "budget": promo.budget,
        "budget_committed": promo.budget_committed,
        "credit_granted": flow(ledger.Kind.CREDIT_GRANT),
        "credit_used": flow(ledger.Kind.SPEND),
        "credit_outstanding": int(outstanding),
        "credit_expired": flow(ledger.Kind.EXPIRY),
        "credit_voided": flow(ledger.Kind.VOID),
        "credit_clawed_back": flow(ledger.Kind.CLAWBACK),
        "credit_forfeited": flow(ledger.Kind.FORFEIT),
        "cash_spend_in_windows": int(cash_in_windows),
    }
