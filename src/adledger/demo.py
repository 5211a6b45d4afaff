"""The demo: one advertiser with a short history, to try the API against (`adledger demo`).

`seed_demo(db)` makes, in one transaction, a business "Demo Ads Co" with a USD ad account whose
history reads like a few days of real use: two deposits, three credit lots with different expiries
(one runs out within a week, one is scoped to a campaign, one is far out), spend paid partly by
credit and partly by cash, a pending refund, and two promotions: a "spend $100, get $25"
offer the account redeemed before its spend (so it shows progress), and a $20 coupon. The
history is dated in the days before the clock's "now", each step at its own instant, and is
written in one transaction: all or nothing.

Run again on the same database, it seeds nothing: it finds the business by name and only mints
fresh API keys and a fresh coupon code, because both are shown once and `make run` runs the
demo before every `serve`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select

from adledger.service import accounts, credits, deposits, keys, promotions, refunds, spend
from adledger.service.uow import Database, UnitOfWork
from adledger.storage.tables import businesses
from adledger.storage.tables import promotions as promotions_table

BUSINESS_NAME = "Demo Ads Co"
ACCOUNT_NAME = "Demo Ads Co — main account"
CURRENCY = "USD"
CAMPAIGN = "cmp_spring_sale"
COUPON_NAME = "Demo: $20 welcome coupon"
OFFER_NAME = "Demo: spend $100, get $25"


@dataclass(frozen=True, slots=True)
class DemoInfo:
    """What the demo made (or found), and four fresh keys to call the API with."""

    business_id: str
    account_id: str
    currency: str
    seeded: bool  # False when the demo was already there and only keys were minted
    admin_key: str
    finance_key: str
    ingest_key: str
    advertiser_key: str
    coupon_code: str | None = None
    refund_id: str | None = None


def seed_demo(db: Database) -> DemoInfo:
    """Seed the demo if the database does not hold it yet; mint fresh keys either way."""
    return db.run(seed_or_find)


def seed_or_find(uow: UnitOfWork) -> DemoInfo:
    """`seed_demo` in a unit of work the caller owns (the CLI records it in the audit trail)."""
    found = _find_demo(uow)
    if found is not None:
        business_id, account_id = found
        return _with_keys(uow, business_id, account_id, seeded=False)
    return _seed(uow)


def _find_demo(uow: UnitOfWork) -> tuple[str, str] | None:
    """The demo business (the oldest of that name) and its oldest account, if seeded before."""
    row = uow.conn.execute(
        select(businesses.c.id)
        .where(businesses.c.name == BUSINESS_NAME)
        .order_by(businesses.c.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    page = accounts.list_accounts(uow, business_id=row.id, limit=500)
    if not page["data"]:
        return None
    # Pages are newest first; the demo's own account is the oldest one.
    return row.id, page["data"][-1]["id"]


def _with_keys(
    uow: UnitOfWork,
    business_id: str,
    account_id: str,
    *,
    seeded: bool,
    advertiser: dict[str, object] | None = None,
    refund_id: str | None = None,
) -> DemoInfo:
    def mint(role: str, business: str | None = None) -> str:
        made = keys.create_key(uow, role=role, name=f"demo {role}", business_id=business)
        return str(made["key"])

    coupon = uow.conn.execute(
        select(promotions_table.c.id)
        .where(promotions_table.c.name == COUPON_NAME)
        .order_by(promotions_table.c.id)
        .limit(1)
    ).scalar()
    code = None
    if coupon is not None and promotions.get_promotion(uow, coupon)["status"] == "active":
        code = promotions.create_codes(uow, coupon, count=1)["codes"][0]
    return DemoInfo(
        business_id=business_id,
        coupon_code=code,
        account_id=account_id,
        currency=CURRENCY,
        seeded=seeded,
        admin_key=mint("admin"),
        finance_key=mint("finance"),
        ingest_key=mint("ingest"),
        advertiser_key=(str(advertiser["key"]) if advertiser else mint("advertiser", business_id)),
        refund_id=refund_id,
    )


def _seed(uow: UnitOfWork) -> DemoInfo:
    now = uow.now

    def at(moment: datetime) -> UnitOfWork:
        # The same transaction, seen at an earlier instant: the history gets realistic dates.
        return replace(uow, now=moment)

    start = now - timedelta(days=3)
    business = accounts.create_business(at(start), name=BUSINESS_NAME)
    account = accounts.create_account(
        at(start),
        name=ACCOUNT_NAME,
        currency=CURRENCY,
        business_id=business["id"],
        timezone="America/New_York",
    )
    acct = account["id"]

    # Prepaid funds: $500, then $250 with $20 of sales tax (recorded, never in the balance).
    deposits.create_deposit(
        at(start + timedelta(minutes=5)), acct, amount=50_000, payment_reference="pay_demo_0001"
    )
    deposits.create_deposit(
        at(start + timedelta(days=1)),
        acct,
        amount=25_000,
        tax=2_000,
        payment_reference="pay_demo_0002",
    )

    # A $150 launch credit for one campaign, good for a month.
    credits.grant_credit(
        at(start + timedelta(days=1, hours=1)),
        acct,
        amount=15_000,
        expires_at=now + timedelta(days=30),
        campaign_id=CAMPAIGN,
        reason="Spring sale launch credit",
    )

    # The platform runs two promotions. The advertiser redeems "spend $100, get $25" at once:
    # the cash-funded spend that follows counts toward it.
    def promotion(name: str, kind: str, reward: int, threshold: int | None = None) -> str:
        made = promotions.create_promotion(
            at(start),
            name=name,
            kind=kind,
            currency=CURRENCY,
            reward={"amount": reward},
            credit_valid_days=30,
            starts_at=start,
            ends_at=now + timedelta(days=90),
            max_redemptions=10_000,
            threshold=threshold,
        )
        return str(made["id"])

    offer = promotion(OFFER_NAME, "spend_threshold", 2_500, threshold=10_000)
    promotion(COUPON_NAME, "coupon", 2_000)
    [code] = promotions.create_codes(at(start), offer, count=1)["codes"]
    promotions.redeem(at(start + timedelta(minutes=10)), acct, code=code)

    # Before any spend, the advertiser asks for $100 of its prepaid funds back (a refund waits
    # out a quiet period after spend, so it comes first); finance has not decided yet.
    asked_at = now - timedelta(days=1, hours=4)
    advertiser = keys.create_key(
        at(asked_at), role="advertiser", name="demo advertiser", business_id=business["id"]
    )
    refund = refunds.request_refund(
        at(asked_at),
        acct,
        amount=10_000,
        reason="Unused budget",
        requested_by=advertiser["id"],
    )

    # A day of delivery: the campaign's spend is paid by its credit, the rest by cash.
    spent_at = now - timedelta(days=1)
    spend.post_spend(
        at(spent_at),
        [
            spend.SpendEvent(
                "evt_demo_0001", acct, 6_000, spent_at - timedelta(hours=2), campaign_id=CAMPAIGN
            ),
            spend.SpendEvent("evt_demo_0002", acct, 4_500, spent_at - timedelta(hours=1)),
        ],
    )

    # Later grants: a welcome coupon that runs out within a week, and a goodwill credit good
    # for a year.
    granted_at = now - timedelta(hours=12)
    credits.grant_credit(
        at(granted_at),
        acct,
        amount=2_500,
        expires_at=now + timedelta(days=5),
        reason="Welcome coupon",
    )
    credits.grant_credit(
        at(granted_at),
        acct,
        amount=20_000,
        expires_at=now + timedelta(days=365),
        priority=60,
        reason="Goodwill for a delivery outage",
    )

    return _with_keys(
        uow,
        business["id"],
        acct,
        seeded=True,
        advertiser=advertiser,
        refund_id=str(refund["id"]),
    )
