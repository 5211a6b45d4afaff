"""The advertiser's billing page through the real app (Starlette's TestClient), on SQLite and
PostgreSQL: sign-in and its cookie, CSRF, roles and tenancy as in the API, what the page shows,
and its actions — redeem a code, request and cancel a refund — each recorded in the audit trail.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from adledger.service import accounts, balance, keys, refunds
from adledger.storage.tables import audit_log
from adledger.storage.tables import refunds as refunds_table
from factories import grant, make_account
from web_support import (
    TOKEN,
    Visitor,
    make_promotion,
    post_spend,
    text_of,
    visitor,
    web_client,
)


@pytest.fixture
def shop(db):  # type: ignore[no-untyped-def]
    """An advertiser with $500 of prepaid funds, $25 of credit expiring in 3 days and $100 in
    40; the browser is signed in with its key."""
    acct = make_account(db, cash=50_000, timezone="America/New_York", name="Acme US")
    grant(db, acct["id"], amount=2_500, days=3)
    grant(db, acct["id"], amount=10_000, days=40, campaign_id="cmp_spring")
    browser, key = visitor(db, "advertiser", acct["business_id"])
    return acct, browser, key


def page_of(browser: Visitor, acct) -> str:  # type: ignore[no-untyped-def]
    r = browser.get(f"/web/accounts/{acct['id']}")
    assert r.status_code == 200, r.text
    return r.text


def cash(db, account_id):  # type: ignore[no-untyped-def]
    return db.read(balance.get_balance, account_id)["cash"]


# --- signing in ------------------------------------------------------------------------------


def test_signing_in_keeps_the_key_in_a_secure_httponly_strict_cookie(db):  # type: ignore[no-untyped-def]
    acct = make_account(db)
    made = db.run(keys.create_key, role="advertiser", name="a", business_id=acct["business_id"])
    client = web_client(db)
    form = client.get("/web/sign-in")
    token = TOKEN.search(form.text).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/web/sign-in", data={"csrf": token, "api_key": made["key"]}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/web"
    cookie = next(c for c in r.headers.get_list("set-cookie") if "adledger_session" in c)
    assert cookie.startswith("__Host-adledger_session=")
    for attribute in ("Secure", "HttpOnly", "SameSite=strict", "Path=/"):
        assert attribute.lower() in cookie.lower(), cookie
    # The start page sends an advertiser with one account straight to its billing page.
    landed = client.get("/web", follow_redirects=False)
    assert landed.headers["location"] == f"/web/accounts/{acct['id']}"


def test_a_page_without_a_session_asks_to_sign_in(db):  # type: ignore[no-untyped-def]
    acct = make_account(db)
    r = web_client(db).get(f"/web/accounts/{acct['id']}", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/web/sign-in?next=/web/accounts/{acct['id']}"


def test_an_unknown_key_is_refused_at_sign_in_and_the_refusal_is_audited(db):  # type: ignore[no-untyped-def]
    client = web_client(db)
    token = TOKEN.search(client.get("/web/sign-in").text).group(1)  # type: ignore[union-attr]
    r = client.post("/web/sign-in", data={"csrf": token, "api_key": "adl_nope"})
    assert r.status_code == 401
    assert "unknown or was revoked" in r.text
    assert "adledger_session" not in r.headers.get("set-cookie", "")
    last = db.read(
        lambda uow: uow.conn.execute(select(audit_log).order_by(audit_log.c.seq.desc())).first()
    )
    assert (last.path, last.status, last.code, last.actor) == (
        "/web/sign-in",
        401,
        "unauthorized",
        None,
    )


def test_the_sign_in_form_without_its_token_is_refused(db):  # type: ignore[no-untyped-def]
    acct = make_account(db)
    made = db.run(keys.create_key, role="advertiser", name="a", business_id=acct["business_id"])
    r = web_client(db).post("/web/sign-in", data={"api_key": made["key"]}, follow_redirects=False)
    assert r.status_code == 403
    assert "adledger_session" not in r.headers.get("set-cookie", "")


def test_a_revoked_key_is_signed_out_at_its_next_click(db, shop):  # type: ignore[no-untyped-def]
    acct, browser, key = shop
    db.run(keys.revoke_key, key["id"])
    r = browser.get(f"/web/accounts/{acct['id']}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/web/sign-in")
    assert (
        'adledger_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    )


def test_signing_out_forgets_the_session(shop):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    r = browser.post("/web/sign-out")
    assert r.status_code == 303 and r.headers["location"] == "/web/sign-in"
    after = browser.get(f"/web/accounts/{acct['id']}", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"].startswith("/web/sign-in")


# --- CSRF --------------------------------------------------------------------------------------


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(db, shop):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    before = cash(db, acct["id"])
    r = browser.post(f"/web/accounts/{acct['id']}/refunds", {"amount": "10.00"}, csrf=False)
    assert r.status_code == 403
    assert "security token" in text_of(r.text)
    assert cash(db, acct["id"]) == before
    assert db.read(refunds.list_refunds)["data"] == []
    last = db.read(
        lambda uow: uow.conn.execute(select(audit_log).order_by(audit_log.c.seq.desc())).first()
    )
    assert (last.method, last.status, last.code) == ("POST", 403, "forbidden")
    assert last.path == f"/web/accounts/{acct['id']}/refunds"


def test_another_sessions_csrf_token_is_refused(db, shop):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    other, _ = visitor(db, "advertiser", acct["business_id"])
    browser.csrf = other.csrf  # a token that is valid, but for another session
    r = browser.post(f"/web/accounts/{acct['id']}/refunds", {"amount": "10.00"})
    assert r.status_code == 403
    assert db.read(refunds.list_refunds)["data"] == []


def test_every_form_on_the_page_carries_the_token(shop):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    html = page_of(browser, acct)
    forms = html.count('method="post"')
    assert forms >= 3  # sign out, redeem, refund
    assert html.count(f'name="csrf" value="{browser.csrf}"') == forms


# --- roles and tenancy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/web/accounts/{id}",
        "/web/accounts/{id}/transactions",
        "/web/accounts/{id}/transactions.csv",
    ],
)
def test_another_business_account_is_not_found(db, shop, path):  # type: ignore[no-untyped-def]
    _, browser, _ = shop
    stranger = make_account(db, cash=9_999, name="Stranger Co account")
    r = browser.get(path.format(id=stranger["id"]))
    assert r.status_code == 404
    assert "Stranger" not in r.text and "99.99" not in r.text


def test_another_business_cannot_act_on_an_account_or_a_refund(db, shop):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    stranger = make_account(db, cash=9_999)
    theirs = db.run(refunds.request_refund, stranger["id"], amount=1_000, requested_by="key_x")
    assert (
        browser.post(f"/web/accounts/{stranger['id']}/refunds", {"amount": "1"}).status_code == 404
    )
    assert (
        browser.post(f"/web/accounts/{stranger['id']}/redeem", {"code": "AAAA"}).status_code == 404
    )
    assert browser.post(f"/web/refunds/{theirs['id']}/cancel").status_code == 404
    assert db.read(refunds.get_refund, theirs["id"])["status"] == "pending"
    assert cash(db, stranger["id"])["available"] == 9_999 - 1_000


def test_an_ingest_key_has_no_pages_and_an_advertiser_no_finance_console(db, shop):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    ingest, _ = visitor(db, "ingest")
    assert ingest.get(f"/web/accounts/{acct['id']}").status_code == 403
    assert ingest.get("/web").status_code == 403
    for path in (
        "/web/finance",
        "/web/finance/accounts",
        "/web/finance/promotions",
        "/web/finance/liabilities",
        f"/web/finance/accounts/{acct['id']}",
    ):
        assert browser.get(path).status_code == 403, path
    r = browser.post("/web/finance/accounts/" + acct["id"] + "/suspend")
    assert r.status_code == 403
    assert db.read(accounts.get_account, acct["id"])["status"] == "active"


def test_the_pages_are_not_api_operations(db):  # type: ignore[no-untyped-def]
    paths = web_client(db).get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/web")]


# --- what the billing page shows -----------------------------------------------------------------


def test_the_billing_page_shows_the_balance_at_a_glance_with_its_explanation(db, shop):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    words = text_of(page_of(browser, acct))
    assert "Prepaid funds available $500.00" in words
    assert "Held for pending refunds $0.00" in words
    assert "Promotional credit $125.00" in words
    assert "Total you can spend on ads $625.00" in words
    assert "Refundable now: $500.00" in words
    assert "not withdrawable" in words
    explanation = db.read(balance.get_balance, acct["id"])["explanation"]
    assert explanation in words


def test_credit_lots_show_what_is_left_and_when_they_expire_highlighted_within_a_week(db, shop):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    html = page_of(browser, acct)
    words = text_of(html)
    assert "expires in 3 days — use it soon" in words
    assert "expires in 40 days" in words
    assert "only campaign cmp_spring" in words
    assert html.count('<tr class="soon">') == 1
    assert 'aria-label="$25.00 left, $0.00 used"' in html
    assert (
        "Credit expiring, week by week" in html
        and "$125.00 of credit expires in the next 8 weeks; $0.00 later." in html
    )


def test_spend_per_day_is_split_by_what_paid_for_it(db, clock):  # type: ignore[no-untyped-def]
    acct = make_account(db, cash=1_000)
    grant(db, acct["id"], amount=500, days=60, effective_at=clock.now() - timedelta(days=5))
    post_spend(db, acct["id"], 700, clock.now() - timedelta(days=2))  # $5 credit + $2 cash
    post_spend(db, acct["id"], 1_300, clock.now() - timedelta(days=1))  # $8 cash, $5 unfunded
    browser, _ = visitor(db, "advertiser", acct["business_id"])
    html = page_of(browser, acct)
    assert (
        "$20.00 of ads in the last 30 days: $5.00 paid with credit, $10.00 with prepaid funds, "
        "$5.00 not covered by funds." in html
    )
    words = text_of(html)
    day = clock.now() - timedelta(days=1)
    assert f"{day.day} {day:%b} $0.00 $8.00 $5.00" in words


def test_amounts_follow_the_currency_and_times_the_account_time_zone(db):  # type: ignore[no-untyped-def]
    acct = make_account(db, currency="JPY", cash=120_000, timezone="Asia/Tokyo")
    browser, _ = visitor(db, "advertiser", acct["business_id"])
    words = text_of(page_of(browser, acct))
    assert "Prepaid funds available ¥120,000" in words
    assert "1 Dec 2026 at 21:00 JST" in words  # the deposit, made at 12:00 UTC


# --- actions -----------------------------------------------------------------------------------


def test_redeeming_a_coupon_adds_credit_and_is_audited(db, shop):  # type: ignore[no-untyped-def]
    acct, browser, key = shop
    _, (code,) = make_promotion(db, reward=2_000, name="Welcome $20")
    r = browser.post(f"/web/accounts/{acct['id']}/redeem", {"code": code.lower()})
    assert r.status_code == 303
    page = browser.get(r.headers["location"].split("#")[0])
    words = text_of(page.text)
    assert "Code redeemed: the credit is in your balance." in words
    assert "Promotional credit $145.00" in words
    assert "Welcome $20 granted Earned: $20.00 of credit." in words
    record = db.read(
        lambda uow: uow.conn.execute(
            select(audit_log).where(audit_log.c.path == f"/web/accounts/{acct['id']}/redeem")
        ).one()
    )
    assert (record.actor, record.role, record.status, record.code) == (
        key["id"],
        "advertiser",
        303,
        None,
    )


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("code_invalid", "We don't recognise that code."),
        ("code_used", "That code has already been used"),
        ("already_redeemed", "Your business has already redeemed this promotion"),
        ("not_eligible", "This account can't take part in that promotion"),
        ("promotion_exhausted", "That promotion has run out"),
    ],
)
def test_each_refused_code_is_told_in_plain_words_and_changes_nothing(db, shop, case, words):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    promo, codes = make_promotion(
        db, codes=2, max_redemptions=1 if case == "promotion_exhausted" else None
    )
    other = make_account(db)  # another business, to use up codes
    from adledger.service import promotions

    code = codes[0]
    if case == "code_invalid":
        code = "ZZZZ-ZZZZ-ZZZZ-ZZZZ"
    elif case == "code_used":
        db.run(promotions.redeem, other["id"], code=codes[0])
    elif case == "already_redeemed":
        db.run(promotions.redeem, acct["id"], code=codes[1])
    elif case == "not_eligible":
        _, (code,) = make_promotion(db, currency="EUR")
    elif case == "promotion_exhausted":
        db.run(promotions.redeem, other["id"], code=codes[1])
    before = db.read(balance.get_balance, acct["id"])
    r = browser.post(f"/web/accounts/{acct['id']}/redeem", {"code": code})
    assert r.status_code == 409
    assert words in text_of(r.text)
    assert 'aria-invalid="true"' in r.text
    assert db.read(balance.get_balance, acct["id"])["credit"] == before["credit"]
    record = db.read(
        lambda uow: uow.conn.execute(select(audit_log).order_by(audit_log.c.seq.desc())).first()
    )
    assert (record.status, record.code) == (409, case)


def test_too_many_failed_codes_are_told_with_the_wait(db, shop):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    for _ in range(10):
        assert (
            browser.post(f"/web/accounts/{acct['id']}/redeem", {"code": "ZZZZ"}).status_code == 409
        )
    r = browser.post(f"/web/accounts/{acct['id']}/redeem", {"code": "ZZZZ"})
    assert r.status_code == 429
    assert "Too many codes that didn't work in the last hour" in text_of(r.text)
    code = db.read(
        lambda uow: uow.conn.execute(
            select(audit_log.c.code).order_by(audit_log.c.seq.desc())
        ).scalar()
    )
    assert code == "too_many_attempts"


def test_spend_threshold_progress_says_how_much_more_before_when(db, shop, clock):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    _, (code,) = make_promotion(
        db,
        kind="spend_threshold",
        reward=5_000,
        threshold=10_000,
        window_days=30,
        name="Spend $100 get $50",
    )
    assert browser.post(f"/web/accounts/{acct['id']}/redeem", {"code": code}).status_code == 303
    # $30 of cash-funded spend (for a campaign the lots don't cover, after the $25 lot): counts $5.
    post_spend(db, acct["id"], 3_000, clock.now() + timedelta(seconds=1))
    words = text_of(page_of(browser, acct))
    deadline = clock.now() + timedelta(days=30)
    local = deadline.astimezone(ZoneInfo("America/New_York"))
    assert (
        f"Spend $95.00 more before {local.day} {local:%b %Y} to get $50.00 of credit." in words
    ), words


def test_requesting_a_refund_holds_the_cash_and_says_so(db, shop):  # type: ignore[no-untyped-def]
    acct, browser, key = shop
    r = browser.post(
        f"/web/accounts/{acct['id']}/refunds", {"amount": "120.50", "reason": "ending"}
    )
    assert r.status_code == 303
    words = text_of(browser.get(r.headers["location"].split("#")[0]).text)
    assert "Refund of $120.50 requested" in words
    assert "Held for pending refunds $120.50" in words
    assert "$120.50 pending" in words
    (made,) = db.read(refunds.list_refunds)["data"]
    assert (made["amount"], made["requested_by"], made["reason"]) == (12_050, key["id"], "ending")


@pytest.mark.parametrize(
    ("amount", "status", "words"),
    [
        ("", 422, "Enter the amount to refund."),
        ("12.345", 422, "is not an amount in USD"),
        ("abc", 422, "is not an amount in USD"),
        ("0", 422, "must be more than zero"),
        ("600", 409, "That is more than can be refunded. $600.00 asked, but only $500.00"),
    ],
)
def test_a_bad_refund_request_shows_why_and_changes_nothing(db, shop, amount, status, words):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    r = browser.post(f"/web/accounts/{acct['id']}/refunds", {"amount": amount})
    assert r.status_code == status
    assert words in text_of(r.text)
    assert cash(db, acct["id"]) == {"available": 50_000, "held": 0, "debt": 0}


def test_refunds_wait_for_the_quiet_period_after_spend_and_the_page_says_until_when(
    db, shop, clock
):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    post_spend(db, acct["id"], 100, clock.now())
    words = text_of(page_of(browser, acct))
    assert "Refundable now: $0.00" in words
    assert "Refunds are paused right now" in words
    r = browser.post(f"/web/accounts/{acct['id']}/refunds", {"amount": "10"})
    assert r.status_code == 409
    assert "Refunds wait for a quiet period after the latest spend." in text_of(r.text)


def test_a_pending_refund_can_be_canceled_from_the_page(db, shop):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    browser.post(f"/web/accounts/{acct['id']}/refunds", {"amount": "40"})
    (pending,) = db.read(refunds.list_refunds)["data"]
    html = page_of(browser, acct)
    assert f'action="/web/refunds/{pending["id"]}/cancel"' in html
    r = browser.post(f"/web/refunds/{pending['id']}/cancel")
    assert r.status_code == 303
    assert db.read(refunds.get_refund, pending["id"])["status"] == "canceled"
    assert cash(db, acct["id"])["held"] == 0
    again = browser.post(f"/web/refunds/{pending['id']}/cancel")
    assert again.status_code == 409
    assert "This refund can no longer be canceled." in text_of(again.text)


# --- transactions --------------------------------------------------------------------------------


def test_transactions_filter_by_kind_and_date_page_and_export(db, clock):  # type: ignore[no-untyped-def]
    acct = make_account(db, cash=100_000)
    for n in range(30):
        clock.advance(hours=12)
        post_spend(db, acct["id"], 100 + n, clock.now(), n)
    browser, _ = visitor(db, "advertiser", acct["business_id"])
    base = f"/web/accounts/{acct['id']}/transactions"
    first = browser.get(base + "?kind=spend")
    assert first.status_code == 200
    assert text_of(first.text).count("spend ") >= 25
    assert 'rel="next"' in first.text
    import re

    older = (
        re.search(r'href="\?([^"]*after=[^"]+)" rel="next"', first.text)
        .group(1)
        .replace("&amp;", "&")
    )  # type: ignore[union-attr]
    second = browser.get(base + "?" + older)
    assert second.status_code == 200 and "← Newest" in second.text
    # One local day (the account's zone is UTC): 2 Dec had the spends of 00:00 and 12:00.
    day = browser.get(base + "?kind=spend&since=2026-12-02&until=2026-12-02")
    assert text_of(day.text).count("-$1.0") == 2
    deposits = browser.get(base + "?kind=deposit")
    assert "deposit" in text_of(deposits.text) and "spend Spend" not in text_of(deposits.text)
    csv = browser.get(base + ".csv?kind=spend")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("id,kind,created_at,cash_delta") and len(lines) == 31
    bad = browser.get(base + "?since=yesterday")
    assert bad.status_code == 422 and "is not a date" in bad.text
    backwards = browser.get(base + "?since=2026-12-05&until=2026-12-01")
    assert (
        backwards.status_code == 422 and "The end date is before the start date." in backwards.text
    )
    unknown = browser.get(base + "?kind=teleport")
    assert unknown.status_code == 422


def test_a_csv_cell_is_never_a_spreadsheet_formula(db):  # type: ignore[no-untyped-def]
    acct = make_account(db, cash=5_000)
    db.run(
        refunds.request_refund, acct["id"], amount=100, requested_by="key_x", reason="=HYPERLINK(1)"
    )
    browser, _ = visitor(db, "advertiser", acct["business_id"])
    (pending,) = db.read(refunds.list_refunds)["data"]
    browser.post(f"/web/refunds/{pending['id']}/cancel", {"reason": "=cmd|' /C calc'!A0"})
    text = browser.get(f"/web/accounts/{acct['id']}/transactions.csv").text
    for line in text.splitlines()[1:]:
        for cell in line.split(","):
            assert not cell.startswith(("=", "+", "@")), line


def test_no_refund_row_is_written_by_a_refused_form(db, shop):  # type: ignore[no-untyped-def]
    acct, browser, _ = shop
    browser.post(f"/web/accounts/{acct['id']}/refunds", {"amount": "1" * 30})
    assert db.read(lambda uow: uow.conn.execute(select(refunds_table)).all()) == []
