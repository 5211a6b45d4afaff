"""The finance console through the real app, on SQLite and PostgreSQL: the refund queue with
account context and its decisions (four eyes included), accounts and their actions, promotions
with codes downloaded once, and the liabilities report — each change audited like the API's.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from adledger.service import accounts, balance, credits, deposits, promotions, refunds
from adledger.storage.tables import audit_log
from factories import deposit, grant, make_account
from web_support import post_spend, text_of, visitor


@pytest.fixture
def desk(db):  # type: ignore[no-untyped-def]
    """A finance browser, and an advertiser's account with $300 and a pending $50 refund."""
    acct = make_account(db, cash=30_000, name="Blue Ads", timezone="Europe/Paris")
    made = db.run(
        refunds.request_refund, acct["id"], amount=5_000, requested_by="key_adv", reason="too much"
    )
    browser, key = visitor(db, "finance")
    return acct, made, browser, key


def last_audit(db):  # type: ignore[no-untyped-def]
    return db.read(
        lambda uow: uow.conn.execute(select(audit_log).order_by(audit_log.c.seq.desc())).first()
    )


def test_staff_start_at_the_refund_queue(desk):  # type: ignore[no-untyped-def]
    *_, browser, _ = desk
    assert browser.get("/web", follow_redirects=False).headers["location"] == "/web/finance"


def test_the_queue_shows_each_request_with_its_account_context(db, desk, clock):  # type: ignore[no-untyped-def]
    acct, made, browser, _ = desk
    grant(db, acct["id"], amount=1_500, days=10)
    post_spend(db, acct["id"], 2_000, clock.now())  # $15 credit, $5 prepaid
    old = db.run(
        refunds.request_refund, make_account(db, cash=100)["id"], amount=100, requested_by="k"
    )
    db.run(refunds.reject_refund, old["id"], actor_key_id="key_fin", reason="no")
    r = browser.get("/web/finance")
    assert r.status_code == 200
    words = text_of(r.text)
    assert "$50.00 for Blue Ads" in words
    assert "Prepaid available $245.00" in words and "Held $50.00" in words
    assert "Spend, 30 days $20.00 ($5.00 prepaid)" in words
    assert "Account age 0 days" in words
    assert "Past refunds none" in words
    assert "“too much”" in words
    assert "1 Dec 2026 at 13:00 CET" in words  # the account's own time zone


def test_approving_then_marking_paid_follows_the_lifecycle_and_is_audited(db, desk):  # type: ignore[no-untyped-def]
    acct, made, browser, key = desk
    r = browser.post(f"/web/finance/refunds/{made['id']}/approve")
    assert r.status_code == 303
    assert db.read(refunds.get_refund, made["id"])["status"] == "approved"
    record = last_audit(db)
    assert (record.path, record.actor, record.status) == (
        f"/web/finance/refunds/{made['id']}/approve",
        key["id"],
        303,
    )
    queue = text_of(browser.get("/web/finance").text)
    assert f"Refund {made['id']} of $50.00 approved" in queue
    assert "Approved, waiting for the payment service" in queue and "Mark paid" in queue
    assert browser.post(f"/web/finance/refunds/{made['id']}/settle").status_code == 303
    assert db.read(refunds.get_refund, made["id"])["status"] == "paid"
    assert db.read(balance.get_balance, acct["id"])["cash"] == {
        "available": 25_000,
        "held": 0,
        "debt": 0,
    }
    # Paying twice is refused and says why.
    again = browser.post(f"/web/finance/refunds/{made['id']}/settle")
    assert again.status_code == 409
    assert "paid" in text_of(again.text)


def test_the_requester_cannot_approve_their_own_refund(db, desk):  # type: ignore[no-untyped-def]
    acct, _, browser, key = desk
    own = db.run(refunds.request_refund, acct["id"], amount=1_000, requested_by=key["id"])
    r = browser.post(f"/web/finance/refunds/{own['id']}/approve")
    assert r.status_code == 403
    assert "You requested this refund yourself, so you can't approve it" in text_of(r.text)
    assert db.read(refunds.get_refund, own["id"])["status"] == "pending"
    assert (last_audit(db).status, last_audit(db).code) == (403, "self_approval_forbidden")
    assert "(you)" in text_of(browser.get("/web/finance").text)


def test_rejecting_needs_a_reason_and_gives_the_hold_back(db, desk):  # type: ignore[no-untyped-def]
    acct, made, browser, _ = desk
    r = browser.post(f"/web/finance/refunds/{made['id']}/reject", {"reason": ""})
    assert r.status_code == 422 and "Give a reason for the rejection" in text_of(r.text)
    assert db.read(refunds.get_refund, made["id"])["status"] == "pending"
    ok = browser.post(f"/web/finance/refunds/{made['id']}/reject", {"reason": "duplicate"})
    assert ok.status_code == 303
    after = db.read(refunds.get_refund, made["id"])
    assert (after["status"], after["decision_reason"]) == ("rejected", "duplicate")
    assert db.read(balance.get_balance, acct["id"])["cash"]["held"] == 0


def test_a_decision_without_the_csrf_token_is_refused(db, desk):  # type: ignore[no-untyped-def]
    _, made, browser, _ = desk
    assert browser.post(f"/web/finance/refunds/{made['id']}/approve", csrf=False).status_code == 403
    assert db.read(refunds.get_refund, made["id"])["status"] == "pending"


def test_accounts_can_be_searched_by_name_business_or_id(db, desk):  # type: ignore[no-untyped-def]
    acct, _, browser, _ = desk
    make_account(db, name="Red Co")
    for query in ("blue", "BLUE ads", acct["id"], acct["business_id"]):
        words = text_of(browser.get("/web/finance/accounts", params={"q": query}).text)
        assert "Blue Ads" in words and "Red Co" not in words, query
    everyone = text_of(browser.get("/web/finance/accounts").text)
    assert "Blue Ads" in everyone and "Red Co" in everyone
    assert "No accounts match “50%_”" in text_of(
        browser.get("/web/finance/accounts", params={"q": "50%_"}).text
    )


def test_finance_grants_credit_and_voids_a_lot_from_the_account_page(db, desk):  # type: ignore[no-untyped-def]
    acct, _, browser, _ = desk
    page = f"/web/finance/accounts/{acct['id']}"
    assert browser.get(page).status_code == 200
    r = browser.post(
        f"{page}/credits",
        {"amount": "25", "expires_at": "2026-12-31T23:59", "reason": "goodwill", "campaign_id": ""},
    )
    assert r.status_code == 303, text_of(r.text)
    (lot,) = db.read(credits.list_credits, acct["id"])["data"]
    assert (lot["original"], lot["source"]) == (2_500, "manual")
    assert lot["expires_at"].isoformat() == "2026-12-31T22:59:00+00:00"  # Paris time
    assert "Granted $25.00 of credit" in text_of(browser.get(page).text)
    bad = browser.post(
        f"{page}/credits", {"amount": "25", "expires_at": "2026-11-01T00:00", "reason": "x"}
    )
    assert bad.status_code == 422  # expires before it takes effect (now)
    assert len(db.read(credits.list_credits, acct["id"])["data"]) == 1
    no_reason = browser.post(
        f"/web/finance/lots/{lot['id']}/void", {"account_id": acct["id"], "reason": ""}
    )
    assert no_reason.status_code == 422 and "Reason" in text_of(no_reason.text)
    void = browser.post(
        f"/web/finance/lots/{lot['id']}/void", {"account_id": acct["id"], "reason": "mistake"}
    )
    assert void.status_code == 303
    assert db.read(credits.list_credits, acct["id"])["data"][0]["status"] == "voided"
    twice = browser.post(
        f"/web/finance/lots/{lot['id']}/void", {"account_id": acct["id"], "reason": "x"}
    )
    assert twice.status_code == 409


def test_finance_suspends_reinstates_and_reverses_a_deposit(db, desk):  # type: ignore[no-untyped-def]
    acct, _, browser, _ = desk
    page = f"/web/finance/accounts/{acct['id']}"
    assert browser.post(f"{page}/suspend").status_code == 303
    assert db.read(accounts.get_account, acct["id"])["status"] == "suspended"
    assert browser.post(f"{page}/suspend").status_code == 409
    assert browser.post(f"{page}/reinstate").status_code == 303
    assert db.read(accounts.get_account, acct["id"])["status"] == "active"
    second = deposit(db, acct["id"], amount=1_000, reference="pay_2")
    r = browser.post(f"/web/finance/deposits/{second['id']}/reverse", {"reason": "chargeback"})
    assert r.status_code == 303
    assert db.read(deposits.get_deposit, second["id"])["reversed_at"] is not None
    again = browser.post(f"/web/finance/deposits/{second['id']}/reverse", {"reason": "again"})
    assert again.status_code == 409 and "reversed" in text_of(again.text)


def test_finance_creates_a_promotion_downloads_its_codes_once_and_reads_the_report(db, desk):  # type: ignore[no-untyped-def]
    acct, _, browser, _ = desk
    form = {
        "name": "Spend $100 get $20",
        "kind": "spend_threshold",
        "currency": "usd",
        "reward_amount": "20",
        "threshold": "100",
        "credit_valid_days": "30",
        "window_days": "60",
        "starts_at": "2026-12-01T00:00",
        "ends_at": "2027-01-01T00:00",
        "once_per_business": "on",
    }
    bad = browser.post("/web/finance/promotions", form | {"threshold": ""})
    assert bad.status_code == 422 and "Enter the spend threshold." in text_of(bad.text)
    assert db.read(promotions.list_promotions)["data"] == []
    r = browser.post("/web/finance/promotions", form)
    assert r.status_code == 303, text_of(r.text)
    (promo,) = db.read(promotions.list_promotions)["data"]
    assert (promo["threshold"], promo["reward"], promo["currency"]) == (
        10_000,
        {"amount": 2_000},
        "USD",
    )
    page = browser.get(r.headers["location"])
    assert "Spend $100 get $20" in page.text and "shown only this once" in page.text
    codes = browser.post(f"/web/finance/promotions/{promo['id']}/codes", {"count": "3"})
    assert codes.status_code == 200
    assert codes.headers["content-type"].startswith("text/csv")
    assert "attachment" in codes.headers["content-disposition"]
    assert codes.headers["cache-control"] == "no-store"
    rows = list(csv.reader(io.StringIO(codes.text)))
    assert rows[0] == ["promotion_id", "code"] and len(rows) == 4
    assert last_audit(db).status == 200
    # A code from the file works for an advertiser, and the report counts it.
    db.run(promotions.redeem, acct["id"], code=rows[1][1])
    report = text_of(browser.get(f"/web/finance/promotions/{promo['id']}").text)
    assert "Redemptions earning 1" in report
    assert (
        browser.post(f"/web/finance/promotions/{promo['id']}/codes", {"count": "0"}).status_code
        == 422
    )


def test_the_liabilities_page_reports_and_charts_the_position_over_time(db, desk, clock):  # type: ignore[no-untyped-def]
    acct, _, browser, _ = desk
    grant(db, acct["id"], amount=4_000, days=1)
    clock.advance(days=2)
    from adledger.service import expiry

    db.run(expiry.run_expiry)
    r = browser.get("/web/finance/liabilities")
    assert r.status_code == 200
    words = text_of(r.text)
    assert "Liabilities in USD" in words
    assert "Prepaid funds available $250.00" in words and "Held for refunds $50.00" in words
    assert "expired (breakage) $40.00" in words
    assert r.text.count('<svg class="chart"') == 2
    assert "$40.00 of credit expired unspent to date." in r.text
    assert browser.get("/web/finance/liabilities?currency=EUR").status_code == 404


def test_an_admin_key_may_use_the_console_too(db, desk):  # type: ignore[no-untyped-def]
    _, made, _, _ = desk
    admin, _ = visitor(db, "admin")
    assert admin.get("/web/finance").status_code == 200
    assert admin.post(f"/web/finance/refunds/{made['id']}/approve").status_code == 303


def test_an_unknown_refund_or_account_is_not_found(db, desk):  # type: ignore[no-untyped-def]
    *_, browser, _ = desk
    assert browser.get("/web/finance/accounts/acct_nope").status_code == 404
    assert browser.post("/web/finance/refunds/rf_nope/approve").status_code == 404
    assert browser.post("/web/finance/refunds/rf_nope/teleport").status_code == 404
    assert browser.get("/web/finance/promotions/promo_nope").status_code == 404


def test_web_changes_leave_an_audit_chain_that_verifies(db, desk):  # type: ignore[no-untyped-def]
    acct, made, browser, key = desk
    browser.post(f"/web/finance/refunds/{made['id']}/approve")
    browser.post(f"/web/finance/accounts/{acct['id']}/suspend", csrf=False)
    rows = db.read(lambda uow: uow.conn.execute(select(audit_log).order_by(audit_log.c.seq)).all())
    web = [
        (r.path.split("/")[-1], r.status, r.actor)
        for r in rows
        if r.path.startswith("/web/finance")
    ]
    assert web == [("approve", 303, key["id"]), ("suspend", 403, key["id"])]
    # The `db` fixture then runs `adledger verify` (the audit chain included).
    _ = timedelta
