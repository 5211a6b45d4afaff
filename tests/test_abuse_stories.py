"""Abuse stories, told end to end through the HTTP API, on SQLite and PostgreSQL.

Each story is what someone trying to get more out of a promotion than it gives might do, and
what adledger answers at every step. Balances are checked after each step. The `db` fixture runs
`adledger verify` after every story; it must be clean.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from adledger.domain.ids import new_id
from adledger.domain.promotions import code_digest, new_code
from adledger.http.app import create_app
from adledger.http.encoding import rfc3339
from adledger.service.uow import Database
from adledger.storage.tables import promotion_codes, redemption_attempts
from conftest import Api, Caller

# --- the cast and their props -------------------------------------------------------------------


class Story:
    """Staff (finance, admin, the ad server) and the advertisers of a story, over one app."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.finance = api.finance
        self.ingest = api.ingest

    @property
    def now(self) -> Any:
        return self.api.db.clock.now()

    def business(self, name: str = "Acme Ads") -> str:
        r = self.finance.post("/v1/businesses", json={"name": name})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def account(self, business_id: str, name: str = "Main account") -> str:
        r = self.finance.post(
            "/v1/accounts", json={"name": name, "currency": "USD", "business_id": business_id}
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def advertiser(self, business_id: str, client: TestClient | None = None) -> Caller:
        r = self.api.admin.post(
            "/v1/api-keys", json={"role": "advertiser", "name": "adv", "business_id": business_id}
        )
        assert r.status_code == 201, r.text
        made = r.json()
        return Caller(client or self.api.client, made["key"], made["id"], "advertiser", business_id)

    def offer(self, kind: str = "coupon", **terms: Any) -> dict[str, Any]:
        body = {
            "name": f"{kind} offer",
            "kind": kind,
            "currency": "USD",
            "reward": {"amount": 1_000},
            "credit_valid_days": 30,
            "starts_at": rfc3339(self.now - timedelta(days=1)),
            "ends_at": rfc3339(self.now + timedelta(days=60)),
            **terms,
        }
        r = self.finance.post("/v1/promotions", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def codes(self, promotion_id: str, count: int = 1) -> list[str]:
        r = self.finance.post(f"/v1/promotions/{promotion_id}/codes", json={"count": count})
        assert r.status_code == 201, r.text
        return list(r.json()["codes"])

    def promotion(self, promotion_id: str) -> dict[str, Any]:
        return dict(self.finance.get(f"/v1/promotions/{promotion_id}").json())

    def report(self, promotion_id: str) -> dict[str, Any]:
        r = self.finance.get(f"/v1/promotions/{promotion_id}/report")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def deposit(self, account_id: str, amount: int) -> Any:
        return self.finance.post(
            f"/v1/accounts/{account_id}/deposits",
            json={"amount": amount, "payment_reference": new_id("pay")},
        )

    def deposited(self, account_id: str, amount: int) -> dict[str, Any]:
        r = self.deposit(account_id, amount)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def spend(self, account_id: str, amount: int, occurred_at: Any = None) -> dict[str, Any]:
        event = {
            "event_id": new_id("ev"),
            "account_id": account_id,
            "amount": amount,
            "occurred_at": rfc3339(occurred_at or self.now),
        }
        r = self.ingest.post("/v1/spend", json={"events": [event]})
        assert r.status_code == 200, r.text
        return dict(r.json()["results"][0])

    def balance(self, account_id: str) -> dict[str, Any]:
        r = self.finance.get(f"/v1/accounts/{account_id}/balance")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def holds(self, account_id: str, *, cash: int, held: int = 0, credit: int = 0) -> None:
        """The account's balance is this: cash available and held, credit available."""
        b = self.balance(account_id)
        assert (b["cash"]["available"], b["cash"]["held"], b["credit"]["available"]) == (
            cash,
            held,
            credit,
        ), b
        assert b["spendable"] == cash + credit
        assert b["withdrawable"] == 0

    def status(self, account_id: str) -> str:
        return str(self.finance.get(f"/v1/accounts/{account_id}").json()["status"])

    def transactions(self, account_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        params = {"limit": 500} | ({"kind": kind} if kind else {})
        r = self.finance.get(f"/v1/accounts/{account_id}/transactions", params=params)
        assert r.status_code == 200, r.text
        return list(r.json()["data"])

    def redemptions(self, account_id: str) -> list[dict[str, Any]]:
        return list(self.finance.get(f"/v1/accounts/{account_id}/redemptions").json()["data"])

    def lot(self, account_id: str, lot_id: str) -> dict[str, Any]:
        r = self.finance.get(f"/v1/accounts/{account_id}/credits")
        (lot,) = [x for x in r.json()["data"] if x["id"] == lot_id]
        return dict(lot)


def redeem(caller: Caller, account_id: str, code: str) -> Any:
    return caller.post(f"/v1/accounts/{account_id}/redemptions", json={"code": code})


def redeemed(caller: Caller, account_id: str, code: str) -> dict[str, Any]:
    r = redeem(caller, account_id, code)
    assert r.status_code == 201, r.text
    return dict(r.json())


def refused(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = dict(r.json())
    assert (body["status"], body["code"]) == (status, code), body
    return body


def code_used(db: Database, code: str) -> bool:
    def work(uow: Any) -> bool:
        row = uow.conn.execute(
            select(promotion_codes.c.redeemed_at).where(
                promotion_codes.c.code_hash == code_digest(code)
            )
        ).one()
        return row.redeemed_at is not None

    return db.read(work)


def failed_attempts(db: Database, business_id: str) -> int:
    def work(uow: Any) -> int:
        return int(
            uow.conn.execute(
                select(func.count())
                .select_from(redemption_attempts)
                .where(redemption_attempts.c.who == business_id)
            ).scalar_one()
        )

    return db.read(work)


# --- refunds and chargebacks ------------------------------------------------------------------


def test_refunding_the_deposit_that_earned_a_bonus_claws_the_bonus_back_in_proportion(api):
    """An advertiser deposits, collects a 10% deposit bonus, then asks for most of the deposit
    back, hoping to keep the bonus. A refund only ever returns cash, and when it is paid the
    bonus shrinks in proportion to the share of the deposit returned, rounded up."""
    s = Story(api)
    biz = s.business()
    acct = s.account(biz)
    advertiser = s.advertiser(biz)
    promo = s.offer(
        "deposit_bonus", reward={"percent": 10, "max_amount": 5_000}, min_deposit=10_000
    )
    (code,) = s.codes(promo["id"])

    # The advertiser redeems the bonus code: it waits for a deposit.
    redemption = redeemed(advertiser, acct, code)
    assert (redemption["status"], redemption["lot_id"]) == ("earning", None)
    s.holds(acct, cash=0)

    # A deposit of 25,000 earns 10%: 2,500 of credit, linked to the deposit.
    dep = s.deposited(acct, 25_000)
    (granted,) = s.redemptions(acct)
    assert (granted["status"], granted["deposit_id"]) == ("granted", dep["id"])
    bonus = s.lot(acct, granted["lot_id"])
    assert (bonus["source"], bonus["original"], bonus["remaining"]) == (
        "deposit_bonus",
        2_500,
        2_500,
    )
    s.holds(acct, cash=25_000, credit=2_500)
    assert s.balance(acct)["refundable"] == 25_000  # the credit is not refundable

    # Asking for the cash and the credit is refused: credit is never refunded.
    refused(
        advertiser.post(f"/v1/accounts/{acct}/refunds", json={"amount": 27_500}),
        409,
        "insufficient_refundable_funds",
    )
    s.holds(acct, cash=25_000, credit=2_500)

    # A refund of 9,999 is held at once; the bonus is untouched while it is pending and approved.
    r = advertiser.post(f"/v1/accounts/{acct}/refunds", json={"amount": 9_999})
    assert r.status_code == 201, r.text
    refund = r.json()
    s.holds(acct, cash=15_001, held=9_999, credit=2_500)
    r = s.finance.post(f"/v1/refunds/{refund['id']}/approve")
    assert r.json()["status"] == "approved", r.text
    s.holds(acct, cash=15_001, held=9_999, credit=2_500)

    # Paid: 9,999 of 25,000 is 39.996%; of 2,500 that is 999.9, rounded up to 1,000 clawed back.
    r = s.finance.post(f"/v1/refunds/{refund['id']}/settle")
    assert r.json()["status"] == "paid", r.text
    s.holds(acct, cash=15_001, credit=1_500)
    (clawback,) = s.transactions(acct, "clawback")
    assert (clawback["credit_delta"], clawback["cash_delta"]) == (-1_000, 0)
    assert (clawback["lot_id"], clawback["refund_id"]) == (bonus["id"], refund["id"])
    # Nothing of the refund paid out credit: it took 9,999 of cash and no credit at all.
    by_refund = [t for t in s.transactions(acct) if t["refund_id"] == refund["id"]]
    assert sorted(t["kind"] for t in by_refund) == ["clawback", "refund_hold", "refund_payout"]
    payout_side = [t for t in by_refund if t["kind"] != "clawback"]
    assert sum(t["credit_delta"] for t in payout_side) == 0
    assert sum(t["cash_delta"] for t in payout_side) == -9_999
    assert s.lot(acct, bonus["id"])["remaining"] == 1_500

    # Refunding the rest of the deposit claws back the rest of the bonus (60.004% of 2,500 is
    # 1,500.1, rounded up, but never more than is left): nothing of it survives.
    r = advertiser.post(f"/v1/accounts/{acct}/refunds", json={"amount": 15_001})
    second = r.json()
    assert s.finance.post(f"/v1/refunds/{second['id']}/approve").status_code == 200
    assert s.finance.post(f"/v1/refunds/{second['id']}/settle").json()["status"] == "paid"
    s.holds(acct, cash=0, credit=0)
    assert [t["credit_delta"] for t in s.transactions(acct, "clawback")] == [-1_500, -1_000]
    left = s.lot(acct, bonus["id"])
    assert (left["status"], left["remaining"]) == ("forfeited", 0)


def test_a_chargeback_after_spending_the_bonus_leaves_debt_and_a_suspended_account(api):
    """An advertiser deposits, collects the bonus, spends it and more, then has the card payment
    charged back. The deposit comes back out of cash; what cash can't cover is debt. The account
    is suspended, no bonus is left, no refund is possible, and only a new deposit that covers
    the debt makes it active again."""
    s = Story(api)
    biz = s.business()
    acct = s.account(biz)
    advertiser = s.advertiser(biz)
    promo = s.offer("deposit_bonus", reward={"amount": 1_000}, min_deposit=5_000)
    other_offer = s.offer()
    (code,) = s.codes(promo["id"])
    (later_code,) = s.codes(other_offer["id"])
    redeemed(advertiser, acct, code)

    # Deposit 10,000; the bonus of 1,000 is granted.
    dep = s.deposited(acct, 10_000)
    s.holds(acct, cash=10_000, credit=1_000)

    # Spend 4,000: the bonus pays first, then 3,000 of cash.
    spent = s.spend(acct, 4_000)
    assert (spent["credit_used"], spent["cash_used"], spent["unfunded"]) == (1_000, 3_000, 0)
    s.holds(acct, cash=7_000)

    # The payment is charged back: 7,000 comes out of cash, the other 3,000 is owed.
    r = s.finance.post(f"/v1/deposits/{dep['id']}/reverse", json={"reason": "chargeback"})
    assert r.status_code == 200, r.text
    assert r.json()["reversed_at"] is not None
    s.holds(acct, cash=0)
    assert s.balance(acct)["depleted"] is True
    assert s.balance(acct)["refundable"] == 0
    assert s.status(acct) == "suspended"
    (reversal,) = s.transactions(acct, "deposit_reversal")
    assert (reversal["cash_delta"], reversal["credit_delta"]) == (-7_000, 0)
    # The bonus was spent: the spent part stays spent, and nothing of it is left to claw back.
    lots = s.finance.get(f"/v1/accounts/{acct}/credits").json()["data"]
    assert [(x["source"], x["status"], x["remaining"]) for x in lots] == [
        ("deposit_bonus", "used", 0)
    ]
    assert s.transactions(acct, "clawback") == []
    assert "owes $30.00" in s.balance(acct)["explanation"]

    # Refunds are refused while the account owes money; the problem says how much.
    problem = refused(
        advertiser.post(f"/v1/accounts/{acct}/refunds", json={"amount": 1}),
        409,
        "account_not_in_good_standing",
    )
    assert problem["debt"] == 3_000
    # No new offer either, and the same deposit can't be reversed twice.
    refused(redeem(advertiser, acct, later_code), 409, "not_eligible")
    refused(
        s.finance.post(f"/v1/deposits/{dep['id']}/reverse", json={"reason": "again"}),
        409,
        "deposit_already_reversed",
    )
    # Staff can't reinstate an account that owes money.
    refused(s.finance.post(f"/v1/accounts/{acct}/reinstate"), 409, "invalid_account_transition")
    # Delivery while suspended is recorded, but unfunded: overdelivery, never more debt.
    late = s.spend(acct, 500)
    assert (late["status"], late["cash_used"], late["unfunded"]) == ("applied", 0, 500)
    s.holds(acct, cash=0)
    problem = refused(
        advertiser.post(f"/v1/accounts/{acct}/refunds", json={"amount": 1}),
        409,
        "account_not_in_good_standing",
    )
    assert problem["debt"] == 3_000

    # A new deposit of 5,000 pays the 3,000 off first; the account is active again with 2,000.
    s.deposited(acct, 5_000)
    s.holds(acct, cash=2_000)
    assert s.status(acct) == "active"
    assert s.transactions(acct, "deposit")[0]["cash_delta"] == 2_000
    # And, once the quiet period after spend has passed, it may ask for its cash back.
    s.api.db.clock.advance(hours=3)
    r = advertiser.post(f"/v1/accounts/{acct}/refunds", json={"amount": 2_000})
    assert r.status_code == 201, r.text
    s.holds(acct, cash=0, held=2_000)


def test_a_chargeback_claws_back_the_unspent_part_of_the_bonus(api):
    """The same trick with the bonus only partly spent: the chargeback takes the whole deposit
    back and forfeits what is left of the bonus. What was spent stays spent."""
    s = Story(api)
    biz = s.business()
    acct = s.account(biz)
    advertiser = s.advertiser(biz)
    promo = s.offer("deposit_bonus", reward={"amount": 1_000}, min_deposit=5_000)
    (code,) = s.codes(promo["id"])
    redeemed(advertiser, acct, code)

    # Deposit 10,000 and get 1,000 of bonus; spend 600, all of it from the bonus.
    dep = s.deposited(acct, 10_000)
    spent = s.spend(acct, 600)
    assert (spent["credit_used"], spent["cash_used"]) == (600, 0)
    s.holds(acct, cash=10_000, credit=400)

    # Charged back: cash covers the whole deposit, so there is no debt; the 400 left is gone.
    r = s.finance.post(f"/v1/deposits/{dep['id']}/reverse", json={"reason": "chargeback"})
    assert r.status_code == 200, r.text
    s.holds(acct, cash=0, credit=0)
    assert s.status(acct) == "active"
    (clawback,) = s.transactions(acct, "clawback")
    assert (clawback["credit_delta"], clawback["deposit_id"]) == (-400, dep["id"])
    (lot,) = s.finance.get(f"/v1/accounts/{acct}/credits").json()["data"]
    assert (lot["status"], lot["original"], lot["remaining"]) == ("forfeited", 1_000, 0)


# --- one offer per business ---------------------------------------------------------------------


def test_a_second_account_of_the_same_business_cannot_take_the_offer_again(api):
    """A business that already took a once-per-business coupon opens (or uses) another account
    and tries a fresh code of the same offer. It is refused; another business may redeem that
    very code, since a refused code is not used up."""
    s = Story(api)
    acme = s.business("Acme Ads")
    first, second = s.account(acme, "First"), s.account(acme, "Second")
    acme_key = s.advertiser(acme)
    rival = s.business("Rival Ads")
    rival_acct = s.account(rival)
    rival_key = s.advertiser(rival)
    promo = s.offer(reward={"amount": 2_000})
    code1, code2, code3 = s.codes(promo["id"], 3)

    # The first account redeems: 2,000 of credit.
    assert redeemed(acme_key, first, code1)["status"] == "granted"
    s.holds(first, cash=0, credit=2_000)

    # The second account of the same business, with a fresh code: already redeemed.
    refused(redeem(acme_key, second, code2), 409, "already_redeemed")
    s.holds(second, cash=0)
    assert not code_used(s.api.db, code2)
    # The first account trying again: the same answer.
    refused(redeem(acme_key, first, code3), 409, "already_redeemed")
    s.holds(first, cash=0, credit=2_000)

    # Another business may redeem, with the very code that was refused.
    assert redeemed(rival_key, rival_acct, code2)["status"] == "granted"
    s.holds(rival_acct, cash=0, credit=2_000)
    view = s.promotion(promo["id"])
    assert (view["redemptions"], view["budget_committed"]) == (2, 4_000)
    assert failed_attempts(s.api.db, acme) == 2

    # Without once_per_business each account may redeem once — but never twice.
    open_offer = s.offer(reward={"amount": 500}, eligibility={"once_per_business": False})
    a, b, c = s.codes(open_offer["id"], 3)
    assert redeemed(acme_key, first, a)["status"] == "granted"
    assert redeemed(acme_key, second, b)["status"] == "granted"
    refused(redeem(acme_key, first, c), 409, "already_redeemed")
    s.holds(first, cash=0, credit=2_500)
    s.holds(second, cash=0, credit=500)


# --- guessing codes -----------------------------------------------------------------------------


def test_guessing_codes_is_locked_out_after_10_failures_an_hour_across_accounts_and_workers(
    api, clock
):
    """An advertiser tries made-up codes, from two accounts of its business and through two
    `serve` workers (two apps over two `Database` objects of one database). Each guess is
    `code_invalid`, until 10 failures in the hour: then 429 `too_many_attempts`, even for a
    valid code, which is not looked at (and stays unused). The 429s are not counted, so once the
    oldest failures are an hour old the business can redeem again."""
    s = Story(api)
    biz = s.business()
    acct_a, acct_b = s.account(biz, "A"), s.account(biz, "B")
    advertiser = s.advertiser(biz)
    bystander_biz = s.business("Bystander")
    bystander_acct = s.account(bystander_biz)
    bystander = s.advertiser(bystander_biz)
    promo = s.offer(reward={"amount": 1_500})
    valid, bystanders_code = s.codes(promo["id"], 2)

    worker_2 = Database(api.db.settings, clock)
    try:
        with TestClient(create_app(db=worker_2, migrate=False)) as client_2:
            # The same key, sent to the second worker.
            advertiser_2 = Caller(client_2, advertiser.key, advertiser.key_id, "advertiser", biz)

            # Five guesses on account A through worker 1, at 12:00.
            for _ in range(5):
                refused(redeem(advertiser, acct_a, new_code()), 409, "code_invalid")
            # Ten minutes later, five more on account B through worker 2.
            clock.advance(minutes=10)
            for _ in range(5):
                refused(redeem(advertiser_2, acct_b, new_code()), 409, "code_invalid")
            assert failed_attempts(api.db, biz) == 10
            s.holds(acct_a, cash=0)
            s.holds(acct_b, cash=0)

            # Now even the valid code is refused, on both accounts, through both workers; the
            # wait is until the first failures are an hour old (50 minutes from now).
            for caller, acct in ((advertiser, acct_a), (advertiser_2, acct_b)):
                r = redeem(caller, acct, valid)
                refused(r, 429, "too_many_attempts")
                assert 3_000 <= int(r.headers["retry-after"]) <= 3_001
            assert not code_used(api.db, valid)
            s.holds(acct_a, cash=0)
            # The lock-out is the business's alone: another business redeems as usual.
            assert redeemed(bystander, bystander_acct, bystanders_code)["status"] == "granted"

            # 49 minutes on, at 12:59, it is still locked out, and those 429s are not counted.
            clock.advance(minutes=49)
            refused(redeem(advertiser_2, acct_b, valid), 429, "too_many_attempts")
            assert failed_attempts(api.db, biz) == 10

            # Just past 13:00, the five guesses of 12:00 have left the hour: five remain, and
            # the valid code is redeemed.
            clock.advance(minutes=1, seconds=1)
            assert redeemed(advertiser_2, acct_b, valid)["status"] == "granted"
            s.holds(acct_b, cash=0, credit=1_500)
            s.holds(acct_a, cash=0)
            assert code_used(api.db, valid)
            # Five more failures (of 12:10) are still in the hour: five more guesses lock it
            # out again.
            for _ in range(5):
                refused(redeem(advertiser, acct_a, new_code()), 409, "code_invalid")
            refused(redeem(advertiser, acct_a, new_code()), 429, "too_many_attempts")
    finally:
        worker_2.dispose()


# --- closing on refund --------------------------------------------------------------------------


def test_a_paid_refund_closes_the_account_forfeits_its_credit_and_the_account_takes_no_more(
    db, clock
):
    """With `refund_closes_account`, an advertiser who takes a coupon, spends some of it and then
    cashes out its deposit loses the rest of the credit: the paid refund closes the account and
    forfeits every lot. The closed account then takes no deposit, no spend and no code."""
    closing = Database(dataclasses.replace(db.settings, refund_closes_account=True), clock)
    try:
        with TestClient(create_app(db=closing, migrate=False)) as client:
            s = Story(Api(client, closing))
            biz = s.business()
            acct = s.account(biz)
            advertiser = s.advertiser(biz)
            coupon = s.offer(reward={"amount": 3_000})
            later = s.offer(reward={"amount": 500})
            (code,) = s.codes(coupon["id"])
            (later_code,) = s.codes(later["id"])

            # Deposit 10,000 and redeem a 3,000 coupon.
            s.deposited(acct, 10_000)
            assert redeemed(advertiser, acct, code)["status"] == "granted"
            s.holds(acct, cash=10_000, credit=3_000)

            # Spend 500: from the coupon.
            assert s.spend(acct, 500)["credit_used"] == 500
            s.holds(acct, cash=10_000, credit=2_500)

            # Three hours on, the whole deposit is refunded: approved, then paid.
            clock.advance(hours=3)
            r = advertiser.post(f"/v1/accounts/{acct}/refunds", json={"amount": 10_000})
            assert r.status_code == 201, r.text
            refund = r.json()
            s.holds(acct, cash=0, held=10_000, credit=2_500)
            assert s.finance.post(f"/v1/refunds/{refund['id']}/approve").status_code == 200
            assert s.status(acct) == "active"
            assert s.finance.post(f"/v1/refunds/{refund['id']}/settle").json()["status"] == "paid"

            # The account is closed and the 2,500 left of the coupon is forfeited.
            assert s.status(acct) == "closed"
            s.holds(acct, cash=0, credit=0)
            (forfeit,) = s.transactions(acct, "forfeit")
            assert (forfeit["credit_delta"], forfeit["cash_delta"]) == (-2_500, 0)
            (lot,) = s.finance.get(f"/v1/accounts/{acct}/credits").json()["data"]
            assert (lot["status"], lot["remaining"]) == ("forfeited", 0)

            # The closed account takes no deposit…
            refused(s.deposit(acct, 5_000), 409, "account_closed")
            # …no spend…
            late = s.spend(acct, 100)
            assert (late["status"], late["code"]) == ("rejected", "account_closed")
            # …and no code, which stays unused and counts as no guess.
            refused(redeem(advertiser, acct, later_code), 409, "account_closed")
            assert not code_used(closing, later_code)
            assert failed_attempts(closing, biz) == 0
            # Nor a refund.
            refused(
                advertiser.post(f"/v1/accounts/{acct}/refunds", json={"amount": 1}),
                409,
                "account_closed",
            )
            s.holds(acct, cash=0, credit=0)
            assert s.promotion(later["id"])["redemptions"] == 0
    finally:
        closing.dispose()


# --- a lapse ------------------------------------------------------------------------------------


def test_a_spend_x_get_y_offer_that_was_not_met_in_time_lapses_and_later_spend_earns_nothing(
    api, clock
):
    """An advertiser redeems "spend 10,000, get 2,000", spends 3,000 and stops. The 7-day window
    passes; the expiry run records the lapse and releases the budget the redemption reserved.
    Spend after that — even delivery that occurred inside the window but is reported late —
    earns nothing."""
    s = Story(api)
    biz = s.business()
    acct = s.account(biz)
    advertiser = s.advertiser(biz)
    promo = s.offer(
        "spend_threshold", reward={"amount": 2_000}, threshold=10_000, window_days=7, budget=20_000
    )
    (code,) = s.codes(promo["id"])
    s.deposited(acct, 20_000)

    # Redeemed at 12:00: earning, with a deadline 7 days on; 2,000 of the budget is reserved.
    redemption = redeemed(advertiser, acct, code)
    assert (redemption["status"], redemption["progress"], redemption["threshold"]) == (
        "earning",
        0,
        10_000,
    )
    deadline = redemption["deadline"]
    assert deadline == rfc3339(clock.now() + timedelta(days=7))
    assert s.promotion(promo["id"])["budget_committed"] == 2_000

    # A minute later, 3,000 of cash-funded spend counts toward the 10,000.
    clock.advance(minutes=1)
    inside_window = clock.now()
    s.spend(acct, 3_000)
    s.holds(acct, cash=17_000)
    (listed,) = s.redemptions(acct)
    assert (listed["status"], listed["progress"]) == ("earning", 3_000)

    # The deadline passes. Reads show the redemption lapsed at once; the budget is still held
    # until the expiry run records the lapse.
    clock.advance(days=7)
    (listed,) = s.redemptions(acct)
    assert (listed["status"], listed["progress"]) == ("lapsed", 3_000)
    assert s.promotion(promo["id"])["budget_committed"] == 2_000

    # The expiry run lapses it and releases the reservation; a second run does nothing.
    r = s.finance.post("/v1/expirations/run", json={})
    assert r.status_code == 200, r.text
    assert r.json() == {"expired_lots": 0, "expired_amounts": {}, "lapsed_redemptions": 1}
    assert s.promotion(promo["id"])["budget_committed"] == 0
    again = s.finance.post("/v1/expirations/run", json={}).json()
    assert again["lapsed_redemptions"] == 0
    # The advertiser sees the lapse in the history: a memo that moves nothing.
    (lapse,) = s.transactions(acct, "lapse")
    assert (lapse["cash_delta"], lapse["credit_delta"]) == (0, 0)
    s.holds(acct, cash=17_000)

    # Now 10,000 more spend: 4,000 reported late for delivery inside the window, 6,000 now.
    # It is all paid by cash, and none of it earns the reward.
    assert s.spend(acct, 4_000, occurred_at=inside_window + timedelta(days=1))["cash_used"] == 4_000
    assert s.spend(acct, 6_000)["cash_used"] == 6_000
    s.holds(acct, cash=7_000)
    (listed,) = s.redemptions(acct)
    assert (listed["status"], listed["progress"], listed["lot_id"]) == ("lapsed", 3_000, None)
    assert s.transactions(acct, "credit_grant") == []
    assert s.finance.get(f"/v1/accounts/{acct}/credits").json()["data"] == []
    view = s.promotion(promo["id"])
    assert (view["redemptions"], view["budget_committed"]) == (1, 0)
    # And the offer can't be redeemed again by this business with a fresh code.
    (fresh,) = s.codes(promo["id"])
    refused(redeem(advertiser, acct, fresh), 409, "already_redeemed")


# --- what finance sees afterwards ---------------------------------------------------------------


def test_the_promotion_report_tells_what_each_offer_gave_and_what_became_of_it(api, clock):
    """Finance looks back on two offers: a deposit bonus that was partly spent and then clawed
    back by a chargeback, and a "spend X get Y" that lapsed."""
    s = Story(api)
    biz = s.business()
    acct = s.account(biz)
    advertiser = s.advertiser(biz)
    bonus = s.offer("deposit_bonus", reward={"amount": 1_000}, min_deposit=5_000)
    threshold = s.offer(
        "spend_threshold", reward={"amount": 2_000}, threshold=10_000, window_days=7, budget=8_000
    )
    (bonus_code,) = s.codes(bonus["id"])
    (threshold_code,) = s.codes(threshold["id"])

    # The bonus: deposit 10,000, spend 600 of the 1,000 bonus, charged back (400 clawed back).
    redeemed(advertiser, acct, bonus_code)
    dep = s.deposited(acct, 10_000)
    redeemed(advertiser, acct, threshold_code)
    clock.advance(minutes=1)
    assert s.spend(acct, 600)["credit_used"] == 600
    r = s.finance.post(f"/v1/deposits/{dep['id']}/reverse", json={"reason": "chargeback"})
    assert r.status_code == 200, r.text
    s.holds(acct, cash=0)
    # Spend X get Y: after a new deposit, 3,000 of cash counts; then the window passes.
    s.deposited(acct, 5_000)
    assert s.spend(acct, 3_000)["cash_used"] == 3_000
    s.holds(acct, cash=2_000)
    clock.advance(days=7)
    assert s.finance.post("/v1/expirations/run", json={}).json()["lapsed_redemptions"] == 1

    report = s.report(bonus["id"])
    assert report["redemptions"] == {"granted": 1, "earning": 0, "lapsed": 0}
    assert (report["credit_granted"], report["credit_used"]) == (1_000, 600)
    assert (report["credit_clawed_back"], report["credit_outstanding"]) == (400, 0)
    assert report["budget_committed"] == 1_000
    report = s.report(threshold["id"])
    assert report["redemptions"] == {"granted": 0, "earning": 0, "lapsed": 1}
    assert (report["credit_granted"], report["budget_committed"]) == (0, 0)
    assert report["cash_spend_in_windows"] == 3_000
