"""Promotions (CONTRACT.md §5) through the HTTP API, on SQLite and PostgreSQL: coupons, "spend X
get Y", deposit bonuses, codes, every refusal of a redemption, the attempt limit, deposit
reversal with debt and clawback, refund clawback and the promotion report.

The choices the contract left open are in docs/decisions.md ("Promotions (§5)" and "Deposit
reversal and debt"); each is tested here as written there.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from adledger.domain.errors import AlreadyRedeemed, CodeUsed, PromotionExhausted
from adledger.domain.ids import new_id
from adledger.domain.ledger import Book
from adledger.http.encoding import rfc3339
from adledger.service import promotions as promotion_service
from adledger.storage.tables import (
    accounts,
    entries,
    lots,
    metadata,
    promotion_codes,
    redemption_attempts,
)
from factories import make_account, make_business
from tests_support import balances

DROP = object()  # an override that removes the field from the body
CODE_SHAPE = re.compile(
    r"^[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}(-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}){3}$"
)
UNKNOWN_CODE = "2345-6789-ABCD-EFGH"

KIND_TERMS: dict[str, dict[str, Any]] = {
    "coupon": {"reward": {"amount": 1_000}},
    "spend_threshold": {"reward": {"amount": 2_000}, "threshold": 10_000, "window_days": 30},
    "deposit_bonus": {"reward": {"amount": 1_500}, "min_deposit": 20_000, "window_days": 30},
}


# --- helpers ----------------------------------------------------------------------------------


def iso(value: datetime) -> str:
    return rfc3339(value)


def promotion_body(api, kind: str = "coupon", /, **overrides: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A valid body for a promotion of `kind`; `overrides` replace (or, with DROP, remove)
    fields, so a test can break exactly one thing."""
    now = api.db.clock.now()
    body: dict[str, Any] = {
        "name": f"{kind} promotion",
        "kind": kind,
        "currency": "USD",
        "credit_valid_days": 30,
        "starts_at": iso(now - timedelta(days=1)),
        "ends_at": iso(now + timedelta(days=90)),
        **KIND_TERMS[kind],
    }
    for name, value in overrides.items():
        if value is DROP:
            body.pop(name, None)
        else:
            body[name] = iso(value) if isinstance(value, datetime) else value
    return body


def make_promotion(api, kind: str = "coupon", **overrides: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = api.finance.post("/v1/promotions", json=promotion_body(api, kind, **overrides))
    assert r.status_code == 201, r.text
    return r.json()


def codes(api, promo, n: int = 1) -> list[str]:  # type: ignore[no-untyped-def]
    r = api.finance.post(f"/v1/promotions/{promo['id']}/codes", json={"count": n})
    assert r.status_code == 201, r.text
    return r.json()["codes"]


def code(api, promo) -> str:  # type: ignore[no-untyped-def]
    return codes(api, promo, 1)[0]


def redeem(caller, account, text: str, **kw: Any):  # type: ignore[no-untyped-def]
    return caller.post(f"/v1/accounts/{account['id']}/redemptions", json={"code": text}, **kw)


def redeemed(caller, account, text: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = redeem(caller, account, text)
    assert r.status_code == 201, r.text
    return r.json()


def customer(api, *, cash: int = 0, **kw: Any):  # type: ignore[no-untyped-def]
    """An account (with `cash` deposited) of a business of its own, and that business's key."""
    acct = make_account(api.db, cash=cash, **kw)
    return acct, api.advertiser(acct["business_id"])


def spend(api, account, amount: int, *, occurred_at: datetime | None = None):  # type: ignore[no-untyped-def]
    result = spend_batch(api, [(account, amount, occurred_at)])[0]
    assert result["status"] == "applied", result
    return result


def spend_batch(api, items):  # type: ignore[no-untyped-def]
    now = api.db.clock.now()
    events = [
        {
            "event_id": new_id("ev"),
            "account_id": acct["id"],
            "amount": amount,
            "occurred_at": iso(occurred or now),
        }
        for acct, amount, occurred in items
    ]
    r = api.ingest.post("/v1/spend", json={"events": events})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def deposit(api, account, amount: int, *, tax: int = 0) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = api.finance.post(
        f"/v1/accounts/{account['id']}/deposits",
        json={"amount": amount, "tax": tax, "payment_reference": new_id("pay")},
    )
    assert r.status_code == 201, r.text
    return r.json()


def reverse(api_or_caller, dep, reason: str = "chargeback"):  # type: ignore[no-untyped-def]
    caller = getattr(api_or_caller, "finance", api_or_caller)
    return caller.post(f"/v1/deposits/{dep['id']}/reverse", json={"reason": reason})


def grant_manual(api, account, amount: int, days: int = 30) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    expires = api.db.clock.now() + timedelta(days=days)
    r = api.finance.post(
        f"/v1/accounts/{account['id']}/credits",
        json={"amount": amount, "expires_at": iso(expires), "reason": "goodwill"},
    )
    assert r.status_code == 201, r.text
    return r.json()


def get_promotion(api, promo) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = api.finance.get(f"/v1/promotions/{promo['id']}")
    assert r.status_code == 200, r.text
    return r.json()


def report(api, promo) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = api.finance.get(f"/v1/promotions/{promo['id']}/report")
    assert r.status_code == 200, r.text
    return r.json()


def redemptions_of(api, account) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    r = api.finance.get(f"/v1/accounts/{account['id']}/redemptions")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def the_redemption(api, account) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    (only,) = redemptions_of(api, account)
    return only


def credits_of(api, account, status: str | None = None) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    params = {"status": status} if status else {}
    r = api.finance.get(f"/v1/accounts/{account['id']}/credits", params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def transactions_of(api, account) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    r = api.finance.get(f"/v1/accounts/{account['id']}/transactions", params={"limit": 500})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def balance(api, account) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = api.finance.get(f"/v1/accounts/{account['id']}/balance")
    assert r.status_code == 200, r.text
    return r.json()


def lot_row(api, lot_id: str) -> Any:  # type: ignore[no-untyped-def]
    return api.db.read(lambda uow: uow.conn.execute(select(lots).where(lots.c.id == lot_id)).one())


def account_row(api, account) -> Any:  # type: ignore[no-untyped-def]
    return api.db.read(
        lambda uow: uow.conn.execute(select(accounts).where(accounts.c.id == account["id"])).one()
    )


def book_sum(api, account, book: Book) -> int:  # type: ignore[no-untyped-def]
    def work(uow):  # type: ignore[no-untyped-def]
        total = uow.conn.execute(
            select(func.coalesce(func.sum(entries.c.amount), 0)).where(
                entries.c.account_id == account["id"], entries.c.book == book.value
            )
        ).scalar_one()
        return int(total)

    return api.db.read(work)


def failed_attempts(api) -> int:  # type: ignore[no-untyped-def]
    return api.db.read(
        lambda uow: uow.conn.execute(select(func.count()).select_from(redemption_attempts)).scalar()
    )


def code_rows(api) -> int:  # type: ignore[no-untyped-def]
    return api.db.read(
        lambda uow: uow.conn.execute(select(func.count()).select_from(promotion_codes)).scalar()
    )


def dump(api) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Every row of every table, as text."""
    with api.db.engine.connect() as conn:
        rows = {
            t.name: sorted(repr(tuple(row)) for row in conn.execute(select(t)))
            for t in metadata.sorted_tables
        }
        conn.rollback()
    return rows


def ledger_state(api) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Everything but the records of the attempt (failed attempts, the audit trail): what a
    refusal must leave unchanged."""
    kept = {redemption_attempts.name, "audit_log", "audit_head"}
    return {k: v for k, v in dump(api).items() if k not in kept}


def assert_problem(r, status: int, code: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert (body["status"], body["code"]) == (status, code), body
    assert body["detail"]
    return body


def assert_refused(api, caller, account, text: str, code: str, *, counted: bool = True):  # type: ignore[no-untyped-def]
    """The redemption is refused with 409 `code`, nothing but the attempt record changes, and
    (when `counted`) the refusal is recorded as one failed attempt."""
    before, attempts = ledger_state(api), failed_attempts(api)
    body = assert_problem(redeem(caller, account, text), 409, code)
    assert ledger_state(api) == before
    assert failed_attempts(api) == attempts + (1 if counted else 0)
    return body


def close(api, account) -> None:  # type: ignore[no-untyped-def]
    api.db.run(
        lambda uow: uow.conn.execute(
            update(accounts).where(accounts.c.id == account["id"]).values(status="closed")
        )
    )


def run_expiry(api) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = api.finance.post("/v1/expirations/run", json={})
    assert r.status_code == 200, r.text
    return r.json()


# --- creating promotions ----------------------------------------------------------------------


def test_finance_creates_a_coupon_promotion(api):
    now = api.db.clock.now()
    r = api.finance.post(
        "/v1/promotions",
        json=promotion_body(api, "coupon", max_redemptions=100, budget=50_000),
    )
    assert r.status_code == 201, r.text
    promo = r.json()
    assert promo["id"].startswith("promo_")
    assert promo | {"id": None} == {
        "id": None,
        "name": "coupon promotion",
        "kind": "coupon",
        "currency": "USD",
        "reward": {"amount": 1_000},
        "credit_valid_days": 30,
        "starts_at": iso(now - timedelta(days=1)),
        "ends_at": iso(now + timedelta(days=90)),
        "status": "active",
        "max_redemptions": 100,
        "budget": 50_000,
        "threshold": None,
        "window_days": 60,
        "min_deposit": None,
        "eligibility": {
            "new_accounts_only": False,
            "new_account_days": 30,
            "once_per_business": True,
        },
        "redemptions": 0,
        "budget_committed": 0,
        "created_at": iso(now),
    }
    assert get_promotion(api, promo) == promo


def test_finance_creates_a_spend_threshold_promotion(api):
    promo = make_promotion(
        api,
        "spend_threshold",
        threshold=25_000,
        window_days=14,
        eligibility={"new_accounts_only": True, "new_account_days": 7},
    )
    assert (promo["kind"], promo["threshold"], promo["window_days"]) == (
        "spend_threshold",
        25_000,
        14,
    )
    assert promo["reward"]["amount"] == 2_000
    assert promo["eligibility"] == {
        "new_accounts_only": True,
        "new_account_days": 7,
        "once_per_business": True,
    }
    assert get_promotion(api, promo) == promo


def test_a_spend_threshold_window_defaults_to_60_days(api):
    promo = make_promotion(api, "spend_threshold", window_days=DROP)
    assert promo["window_days"] == 60


def test_finance_creates_a_deposit_bonus_with_a_fixed_amount_or_a_capped_percent(api):
    fixed = make_promotion(api, "deposit_bonus", min_deposit=10_000)
    assert (fixed["reward"]["amount"], fixed["min_deposit"]) == (1_500, 10_000)
    percent = make_promotion(
        api, "deposit_bonus", reward={"percent": 10, "max_amount": 5_000}, budget=5_000
    )
    assert percent["reward"] == {"percent": 10, "max_amount": 5_000}
    assert percent["budget"] == 5_000
    assert get_promotion(api, percent) == percent


def test_admin_may_create_promotions_too(api):
    r = api.admin.post("/v1/promotions", json=promotion_body(api))
    assert r.status_code == 201, r.text


def test_an_unknown_promotion_is_404_everywhere(api):
    for r in [
        api.finance.get("/v1/promotions/promo_nope"),
        api.finance.post("/v1/promotions/promo_nope/end"),
        api.finance.post("/v1/promotions/promo_nope/codes", json={"count": 1}),
        api.finance.get("/v1/promotions/promo_nope/report"),
    ]:
        assert_problem(r, 404, "promotion_not_found")


def _bad(**overrides: Any) -> dict[str, Any]:
    return overrides


@pytest.mark.parametrize(
    "kind, overrides, code",
    [
        ("coupon", _bad(reward=DROP), "validation_error"),
        ("coupon", _bad(reward={}), "validation_error"),
        ("coupon", _bad(reward={"percent": 10, "max_amount": 500}), "validation_error"),
        ("spend_threshold", _bad(reward={}), "validation_error"),
        ("deposit_bonus", _bad(reward={"percent": 10}), "validation_error"),
        ("deposit_bonus", _bad(reward={"max_amount": 5_000}), "validation_error"),
        ("deposit_bonus", _bad(reward={"amount": 100, "percent": 10}), "validation_error"),
        ("deposit_bonus", _bad(reward={"percent": 0, "max_amount": 500}), "validation_error"),
        ("deposit_bonus", _bad(reward={"percent": 101, "max_amount": 500}), "validation_error"),
        ("deposit_bonus", _bad(reward={"percent": 10.5, "max_amount": 500}), "validation_error"),
        ("coupon", _bad(threshold=10_000), "validation_error"),
        ("deposit_bonus", _bad(threshold=10_000), "validation_error"),
        ("spend_threshold", _bad(threshold=DROP), "validation_error"),
        ("deposit_bonus", _bad(min_deposit=DROP), "validation_error"),
        ("coupon", _bad(min_deposit=5_000), "validation_error"),
        ("spend_threshold", _bad(min_deposit=5_000), "validation_error"),
        ("coupon", _bad(ends_at="2026-11-30T11:00:00Z"), "invalid_time"),
        ("coupon", _bad(ends_at="2026-11-30T12:00:00Z"), "invalid_time"),
        ("coupon", _bad(budget=999), "validation_error"),
        (
            "deposit_bonus",
            _bad(reward={"percent": 10, "max_amount": 5_000}, budget=4_999),
            "validation_error",
        ),
        ("coupon", _bad(reward={"amount": 10.5}), "validation_error"),
        ("coupon", _bad(reward={"amount": 1000.0}), "validation_error"),
        ("coupon", _bad(reward={"amount": "1000"}), "validation_error"),
        ("coupon", _bad(reward={"amount": True}), "validation_error"),
        ("coupon", _bad(reward={"amount": 0}), "validation_error"),
        ("coupon", _bad(reward={"amount": 10**15 + 1}), "validation_error"),
        ("coupon", _bad(budget="50000"), "validation_error"),
        ("coupon", _bad(budget=5e4), "validation_error"),
        ("spend_threshold", _bad(threshold=100.0), "validation_error"),
        ("spend_threshold", _bad(threshold="100"), "validation_error"),
        ("deposit_bonus", _bad(min_deposit=1e3), "validation_error"),
        ("coupon", _bad(max_redemptions=0), "validation_error"),
        ("coupon", _bad(max_redemptions="10"), "validation_error"),
        ("coupon", _bad(credit_valid_days=0), "validation_error"),
        ("coupon", _bad(credit_valid_days=DROP), "validation_error"),
        ("coupon", _bad(window_days=0), "validation_error"),
        ("coupon", _bad(eligibility={"new_account_days": 0}), "validation_error"),
        ("coupon", _bad(kind="cashback"), "validation_error"),
        ("coupon", _bad(currency="usd"), "validation_error"),
        ("coupon", _bad(currency="XYZ"), "validation_error"),
        ("coupon", _bad(starts_at="2026-11-30T12:00:00"), "validation_error"),
        ("coupon", _bad(ends_at=1_800_000_000), "validation_error"),
        ("coupon", _bad(name=""), "validation_error"),
        ("coupon", _bad(status="active"), "validation_error"),
        ("coupon", _bad(budget_committed=0), "validation_error"),
        ("coupon", _bad(reward={"amount": 100, "currency": "USD"}), "validation_error"),
        ("coupon", _bad(eligibility={"vip_only": True}), "validation_error"),
    ],
)
def test_incoherent_or_malformed_terms_are_refused_with_422(api, kind, overrides, code):
    r = api.finance.post("/v1/promotions", json=promotion_body(api, kind, **overrides))
    assert_problem(r, 422, code)
    assert api.finance.get("/v1/promotions").json()["data"] == []


@pytest.mark.parametrize("role", ["advertiser", "ingest"])
def test_only_finance_and_admin_create_list_read_end_code_and_report(api, role):
    promo = make_promotion(api)
    caller = api.advertiser(make_business(api.db)["id"]) if role == "advertiser" else api.ingest
    pid = promo["id"]
    for r in [
        caller.post("/v1/promotions", json=promotion_body(api)),
        caller.get("/v1/promotions"),
        caller.get(f"/v1/promotions/{pid}"),
        caller.post(f"/v1/promotions/{pid}/end"),
        caller.post(f"/v1/promotions/{pid}/codes", json={"count": 1}),
        caller.get(f"/v1/promotions/{pid}/report"),
    ]:
        assert_problem(r, 403, "forbidden")
    assert get_promotion(api, promo) == promo
    assert code_rows(api) == 0
    assert len(api.finance.get("/v1/promotions").json()["data"]) == 1


# --- listing and ending -----------------------------------------------------------------------


def test_promotions_are_listed_newest_first_by_status_and_page(api, clock):
    now = clock.now()
    ended = make_promotion(api, starts_at=now - timedelta(days=10), ends_at=now - timedelta(days=1))
    active = [make_promotion(api, name=f"active {i}") for i in range(3)]
    scheduled = make_promotion(api, starts_at=now + timedelta(days=1))
    everything = api.finance.get("/v1/promotions").json()
    assert [p["id"] for p in everything["data"]] == [
        scheduled["id"],
        *[p["id"] for p in reversed(active)],
        ended["id"],
    ]
    assert [p["status"] for p in everything["data"]] == [
        "scheduled",
        "active",
        "active",
        "active",
        "ended",
    ]

    def ids(status: str, **params: Any) -> list[str]:
        r = api.finance.get("/v1/promotions", params={"status": status, **params})
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()["data"]]

    assert ids("scheduled") == [scheduled["id"]]
    assert ids("ended") == [ended["id"]]
    assert ids("active") == [p["id"] for p in reversed(active)]

    page = api.finance.get("/v1/promotions", params={"status": "active", "limit": 2}).json()
    assert [p["id"] for p in page["data"]] == [active[2]["id"], active[1]["id"]]
    assert page["has_more"] is True
    rest = api.finance.get(
        "/v1/promotions",
        params={"status": "active", "limit": 2, "starting_after": page["next_cursor"]},
    ).json()
    assert (rest["data"][0]["id"], rest["has_more"], rest["next_cursor"]) == (
        active[0]["id"],
        False,
        None,
    )

    clock.advance(days=2)  # the scheduled one starts
    assert ids("scheduled") == []
    assert scheduled["id"] in ids("active")


@pytest.mark.parametrize(
    "query, code",
    [
        ("status=paused", "validation_error"),
        ("limit=0", "invalid_limit"),
        ("limit=501", "invalid_limit"),
        ("limit=x", "validation_error"),
    ],
)
def test_a_bad_promotion_list_query_is_422(api, query, code):
    assert_problem(api.finance.get(f"/v1/promotions?{query}"), 422, code)


def test_ending_a_promotion_early_closes_it_now_and_only_once(api, clock):
    promo = make_promotion(api)
    clock.advance(hours=5)
    r = api.finance.post(f"/v1/promotions/{promo['id']}/end")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["ends_at"]) == ("ended", iso(clock.now()))
    assert get_promotion(api, promo)["status"] == "ended"
    again = api.finance.post(f"/v1/promotions/{promo['id']}/end")
    assert_problem(again, 409, "promotion_already_ended")
    assert get_promotion(api, promo)["ends_at"] == iso(clock.now())


def test_a_promotion_past_its_end_cannot_be_ended(api, clock):
    promo = make_promotion(api, ends_at=clock.now() + timedelta(days=1))
    clock.advance(days=1)
    assert_problem(
        api.finance.post(f"/v1/promotions/{promo['id']}/end"), 409, "promotion_already_ended"
    )


def test_ending_a_scheduled_promotion_makes_it_ended(api, clock):
    promo = make_promotion(api, starts_at=clock.now() + timedelta(days=1))
    r = api.finance.post(f"/v1/promotions/{promo['id']}/end")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ended"
    assert get_promotion(api, promo)["status"] == "ended"
    again = api.finance.post(f"/v1/promotions/{promo['id']}/end")
    assert_problem(again, 409, "promotion_already_ended")
    more = api.finance.post(f"/v1/promotions/{promo['id']}/codes", json={"count": 1})
    assert_problem(more, 409, "promotion_already_ended")


def test_redemptions_made_before_ending_early_keep_their_windows(api, clock):
    promo = make_promotion(api, "spend_threshold", threshold=5_000)
    acct, advertiser = customer(api, cash=10_000)
    red = redeemed(advertiser, acct, code(api, promo))
    api.finance.post(f"/v1/promotions/{promo['id']}/end")
    clock.advance(days=1)
    spend(api, acct, 5_000)
    after = the_redemption(api, acct)
    assert (after["status"], after["deadline"]) == ("granted", red["deadline"])
    assert lot_row(api, after["lot_id"]).original == 2_000


# --- codes ------------------------------------------------------------------------------------


def test_codes_are_made_in_the_asked_number_and_shape(api):
    promo = make_promotion(api)
    r = api.finance.post(f"/v1/promotions/{promo['id']}/codes", json={"count": 25})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["promotion_id"] == promo["id"]
    assert len(made["codes"]) == 25 == len(set(made["codes"]))
    for c in made["codes"]:
        assert CODE_SHAPE.match(c), c
    assert code_rows(api) == 25


@pytest.mark.parametrize("count", [0, -1, 10_001, 1.0, "5", True])
def test_a_code_count_outside_1_to_10000_is_422(api, count):
    promo = make_promotion(api)
    r = api.finance.post(f"/v1/promotions/{promo['id']}/codes", json={"count": count})
    assert_problem(r, 422, "validation_error")
    assert code_rows(api) == 0


def test_ten_thousand_codes_can_be_made_in_one_call(api):
    promo = make_promotion(api)
    assert len(set(codes(api, promo, 10_000))) == 10_000
    assert code_rows(api) == 10_000


def test_a_promotion_that_has_ended_gets_no_more_codes(api, clock):
    promo = make_promotion(api)
    api.finance.post(f"/v1/promotions/{promo['id']}/end")
    r = api.finance.post(f"/v1/promotions/{promo['id']}/codes", json={"count": 1})
    assert_problem(r, 409, "promotion_already_ended")
    assert code_rows(api) == 0


def test_a_scheduled_promotion_gets_codes_that_redeem_once_it_starts(api, clock):
    promo = make_promotion(api, starts_at=clock.now() + timedelta(days=1))
    acct, advertiser = customer(api)
    c = code(api, promo)
    assert_refused(api, advertiser, acct, c, "promotion_not_active")
    clock.advance(days=1)
    assert redeemed(advertiser, acct, c)["status"] == "granted"


def test_codes_repeated_with_an_idempotency_key_are_shown_once_and_not_made_again(api):
    promo = make_promotion(api)
    headers = {"Idempotency-Key": "codes-1"}
    url = f"/v1/promotions/{promo['id']}/codes"
    first = api.finance.post(url, json={"count": 3}, headers=headers)
    assert first.status_code == 201, first.text
    shown = first.json()["codes"]
    assert len(shown) == 3
    again = api.finance.post(url, json={"count": 3}, headers=headers)
    body = assert_problem(again, 409, "response_shown_once")
    assert not any(c in again.text for c in shown)
    assert "codes" not in body
    assert code_rows(api) == 3
    text = repr(dump(api))
    for c in shown:
        assert c not in text and c.replace("-", "") not in text


def test_no_plaintext_code_is_ever_stored(api):
    promo = make_promotion(api)
    made = codes(api, promo, 20)
    acct, advertiser = customer(api)
    redeemed(advertiser, acct, made[0])
    redeem(advertiser, acct, made[1])  # already_redeemed: a refusal is recorded too
    text = repr(dump(api))
    for c in made:
        raw = c.replace("-", "")
        for form in (c, raw, c.lower(), raw.lower()):
            assert form not in text, form


@pytest.mark.parametrize(
    "retype",
    [
        lambda c: c.lower(),
        lambda c: c.replace("-", ""),
        lambda c: c.replace("-", "").lower(),
        lambda c: " ".join(c.split("-")),
        lambda c: f"  {c[:7]}-{c[7:]}  ",
    ],
    ids=["lower", "undashed", "undashed-lower", "spaced", "extra-dash-and-blanks"],
)
def test_a_code_redeems_whatever_its_case_dashes_and_spaces(api, retype):
    promo = make_promotion(api)
    acct, advertiser = customer(api)
    c = code(api, promo)
    red = redeemed(advertiser, acct, retype(c))
    assert (red["status"], red["promotion_id"]) == ("granted", promo["id"])


def test_a_repeated_redemption_with_an_idempotency_key_redeems_once(api):
    promo = make_promotion(api)
    acct, advertiser = customer(api)
    c = code(api, promo)
    headers = {"Idempotency-Key": "redeem-1"}
    first = redeem(advertiser, acct, c, headers=headers)
    again = redeem(advertiser, acct, c, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json() == again.json()
    assert len(credits_of(api, acct)) == 1
    assert get_promotion(api, promo)["redemptions"] == 1
    assert failed_attempts(api) == 0


# --- coupons ----------------------------------------------------------------------------------


def test_a_redeemed_coupon_grants_its_credit_at_once(api, clock):
    promo = make_promotion(api, "coupon", reward={"amount": 1_000}, credit_valid_days=14)
    acct, advertiser = customer(api, cash=5_000)
    r = redeem(advertiser, acct, code(api, promo))
    assert r.status_code == 201, r.text
    red = r.json()
    assert red["id"].startswith("red_")
    assert red | {"id": None, "lot_id": None} == {
        "id": None,
        "promotion_id": promo["id"],
        "account_id": acct["id"],
        "kind": "coupon",
        "status": "granted",
        "lot_id": None,
        "deposit_id": None,
        "deadline": None,
        "created_at": iso(clock.now()),
    }
    (lot,) = credits_of(api, acct)
    assert lot["id"] == red["lot_id"]
    assert (lot["source"], lot["original"], lot["remaining"], lot["status"]) == (
        "coupon",
        1_000,
        1_000,
        "active",
    )
    assert lot["effective_at"] == iso(clock.now())
    assert lot["expires_at"] == iso(clock.now() + timedelta(days=14))
    assert lot_row(api, lot["id"]).promotion_id == promo["id"]
    bal = balance(api, acct)
    assert (bal["cash"]["available"], bal["credit"]["available"], bal["spendable"]) == (
        5_000,
        1_000,
        6_000,
    )
    after = get_promotion(api, promo)
    assert (after["redemptions"], after["budget_committed"]) == (1, 1_000)


def test_coupon_credit_is_spent_before_cash(api, clock):
    promo = make_promotion(api)
    acct, advertiser = customer(api, cash=5_000)
    red = redeemed(advertiser, acct, code(api, promo))
    result = spend(api, acct, 1_500)
    assert (result["credit_used"], result["cash_used"]) == (1_000, 500)
    assert result["lots"] == [{"lot_id": red["lot_id"], "amount": 1_000}]
    assert balances(api.db, acct["id"]) == {
        "cash": 4_500,
        "held": 0,
        "lots": {red["lot_id"]: (0, "used")},
    }


def test_a_redemption_shows_in_the_accounts_redemptions_and_transactions(api):
    promo = make_promotion(api)
    acct, advertiser = customer(api)
    red = redeemed(advertiser, acct, code(api, promo))
    mine = advertiser.get(f"/v1/accounts/{acct['id']}/redemptions")
    assert mine.status_code == 200, mine.text
    assert mine.json() == {"data": [red], "has_more": False, "next_cursor": None}
    (grant,) = transactions_of(api, acct)
    assert (grant["kind"], grant["credit_delta"], grant["cash_delta"], grant["lot_id"]) == (
        "credit_grant",
        1_000,
        0,
        red["lot_id"],
    )


def test_an_accounts_redemptions_are_listed_newest_first_and_paged(api, clock):
    acct, advertiser = customer(api)
    made = []
    for i in range(3):
        promo = make_promotion(api, name=f"p{i}")
        made.append(redeemed(advertiser, acct, code(api, promo)))
        clock.advance(seconds=1)
    page = api.finance.get(f"/v1/accounts/{acct['id']}/redemptions?limit=2").json()
    assert [r["id"] for r in page["data"]] == [made[2]["id"], made[1]["id"]]
    rest = api.finance.get(
        f"/v1/accounts/{acct['id']}/redemptions",
        params={"limit": 2, "starting_after": page["next_cursor"]},
    ).json()
    assert [r["id"] for r in rest["data"]] == [made[0]["id"]]


def test_another_business_cannot_see_an_accounts_redemptions(api):
    acct, _ = customer(api)
    stranger = api.advertiser(make_business(api.db, name="Other")["id"])
    r = stranger.get(f"/v1/accounts/{acct['id']}/redemptions")
    assert_problem(r, 404, "account_not_found")


def test_finance_may_not_redeem_but_admin_may(api):
    promo = make_promotion(api)
    acct, _ = customer(api)
    c = code(api, promo)
    assert_problem(redeem(api.finance, acct, c), 403, "forbidden")
    assert_problem(redeem(api.ingest, acct, c), 403, "forbidden")
    assert_problem(api.ingest.get(f"/v1/accounts/{acct['id']}/redemptions"), 403, "forbidden")
    assert failed_attempts(api) == 0
    assert redeemed(api.admin, acct, c)["status"] == "granted"


# --- spend X get Y ----------------------------------------------------------------------------


def test_a_spend_threshold_redemption_starts_earning_with_its_progress_and_deadline(api, clock):
    promo = make_promotion(api, "spend_threshold", threshold=10_000, window_days=30)
    acct, advertiser = customer(api, cash=50_000)
    red = redeemed(advertiser, acct, code(api, promo))
    assert red | {"id": None} == {
        "id": None,
        "promotion_id": promo["id"],
        "account_id": acct["id"],
        "kind": "spend_threshold",
        "status": "earning",
        "lot_id": None,
        "deposit_id": None,
        "progress": 0,
        "threshold": 10_000,
        "deadline": iso(clock.now() + timedelta(days=30)),
        "created_at": iso(clock.now()),
    }
    assert credits_of(api, acct) == []
    assert get_promotion(api, promo)["budget_committed"] == 2_000  # reserved, not granted
    clock.advance(hours=1)
    spend(api, acct, 4_000)
    assert the_redemption(api, acct)["progress"] == 4_000
    spend(api, acct, 2_500)
    assert the_redemption(api, acct)["progress"] == 6_500
    assert the_redemption(api, acct)["status"] == "earning"


def test_credit_funded_spend_never_counts_toward_the_threshold(api, clock):
    promo = make_promotion(api, "spend_threshold", threshold=10_000)
    acct, advertiser = customer(api, cash=50_000)
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(hours=1)
    grant_manual(api, acct, 5_000)
    result = spend(api, acct, 3_000)
    assert (result["credit_used"], result["cash_used"]) == (3_000, 0)
    assert the_redemption(api, acct)["progress"] == 0
    mixed = spend(api, acct, 6_000)  # 2,000 from the lot, 4,000 from cash
    assert (mixed["credit_used"], mixed["cash_used"]) == (2_000, 4_000)
    assert the_redemption(api, acct)["progress"] == 4_000


def test_unfunded_spend_never_counts_toward_the_threshold(api, clock):
    promo = make_promotion(api, "spend_threshold", threshold=10_000)
    acct, advertiser = customer(api, cash=3_000)
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(hours=1)
    result = spend(api, acct, 12_000)
    assert (result["cash_used"], result["unfunded"]) == (3_000, 9_000)
    assert the_redemption(api, acct)["progress"] == 3_000
    assert the_redemption(api, acct)["status"] == "earning"


def test_spend_that_occurred_before_the_redemption_never_counts(api, clock):
    promo = make_promotion(api, "spend_threshold", threshold=10_000)
    acct, advertiser = customer(api, cash=50_000)
    spend(api, acct, 8_000)  # recorded before the redemption
    redeemed_at = clock.now()
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(hours=1)
    spend(api, acct, 9_000, occurred_at=redeemed_at - timedelta(minutes=1))  # reported late
    spend(api, acct, 9_000, occurred_at=redeemed_at)  # the very instant: not after it
    red = the_redemption(api, acct)
    assert (red["progress"], red["status"]) == (0, "earning")
    spend(api, acct, 1, occurred_at=redeemed_at + timedelta(microseconds=1))
    assert the_redemption(api, acct)["progress"] == 1


def test_the_reward_is_granted_by_the_very_spend_that_crosses_the_threshold(api, clock):
    promo = make_promotion(api, "spend_threshold", threshold=10_000, credit_valid_days=20)
    acct, advertiser = customer(api, cash=50_000)
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(hours=1)
    spend(api, acct, 9_999)
    assert credits_of(api, acct) == []
    crossing = spend(api, acct, 5)
    assert crossing["cash_used"] == 5  # the crossing spend itself is paid by cash
    (lot,) = credits_of(api, acct)
    assert (lot["source"], lot["original"], lot["remaining"], lot["status"]) == (
        "spend_threshold",
        2_000,
        2_000,
        "active",
    )
    assert lot["expires_at"] == iso(clock.now() + timedelta(days=20))
    assert lot_row(api, lot["id"]).promotion_id == promo["id"]
    red = the_redemption(api, acct)
    assert (red["status"], red["lot_id"], red["progress"], red["threshold"]) == (
        "granted",
        lot["id"],
        10_000,
        10_000,
    )
    after = get_promotion(api, promo)
    assert after["budget_committed"] == 2_000
    grant = [t for t in transactions_of(api, acct) if t["kind"] == "credit_grant"]
    assert [(t["lot_id"], t["credit_delta"]) for t in grant] == [(lot["id"], 2_000)]
    spend(api, acct, 50_000)  # later spend earns nothing more
    assert len(credits_of(api, acct)) == 1


def test_later_events_of_the_same_batch_may_draw_on_the_reward(api, clock):
    promo = make_promotion(api, "spend_threshold", threshold=10_000)
    acct, advertiser = customer(api, cash=10_000)
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(hours=1)
    first, second = spend_batch(api, [(acct, 10_000, None), (acct, 1_500, None)])
    lot_id = the_redemption(api, acct)["lot_id"]
    assert (first["cash_used"], first["credit_used"]) == (10_000, 0)
    assert (second["credit_used"], second["cash_used"], second["unfunded"]) == (1_500, 0, 0)
    assert second["lots"] == [{"lot_id": lot_id, "amount": 1_500}]
    assert balances(api.db, acct["id"])["lots"] == {lot_id: (500, "active")}


def test_spend_after_the_window_never_counts_and_the_redemption_lapses(api, clock):
    promo = make_promotion(api, "spend_threshold", threshold=10_000, window_days=30)
    acct, advertiser = customer(api, cash=50_000)
    red = redeemed(advertiser, acct, code(api, promo))
    deadline = datetime.fromisoformat(red["deadline"])
    clock.advance(hours=1)
    spend(api, acct, 6_000)
    clock.advance(days=30)
    spend(api, acct, 10_000)
    after = the_redemption(api, acct)
    assert (after["status"], after["progress"], after["lot_id"]) == ("lapsed", 6_000, None)
    assert credits_of(api, acct) == []
    assert datetime.fromisoformat(after["deadline"]) == deadline
    assert get_promotion(api, promo)["budget_committed"] == 0  # the spend recorded the lapse


def test_spend_reported_after_the_deadline_never_counts_even_if_it_occurred_inside(api, clock):
    promo = make_promotion(api, "spend_threshold", threshold=10_000, window_days=30)
    acct, advertiser = customer(api, cash=50_000)
    redeemed(advertiser, acct, code(api, promo))
    inside = clock.now() + timedelta(days=29)
    clock.advance(days=30)
    spend(api, acct, 10_000, occurred_at=inside)
    assert the_redemption(api, acct)["status"] == "lapsed"
    assert credits_of(api, acct) == []


def test_an_earning_redemption_past_its_deadline_reads_lapsed_and_the_expiry_run_records_it(
    api, clock
):
    promo = make_promotion(api, "spend_threshold", threshold=10_000, window_days=7)
    acct, advertiser = customer(api, cash=50_000)
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(days=7, microseconds=-1)
    assert the_redemption(api, acct)["status"] == "earning"
    clock.advance(microseconds=1)
    assert the_redemption(api, acct)["status"] == "lapsed"  # read as lapsed ...
    assert get_promotion(api, promo)["budget_committed"] == 2_000  # ... not yet recorded
    run = run_expiry(api)
    assert run["lapsed_redemptions"] == 1
    assert (run["expired_lots"], run["expired_amounts"]) == (0, {})
    assert get_promotion(api, promo)["budget_committed"] == 0
    assert the_redemption(api, acct)["status"] == "lapsed"
    assert run_expiry(api)["lapsed_redemptions"] == 0
    clock.advance(hours=1)
    spend(api, acct, 20_000)
    assert credits_of(api, acct) == []


def test_a_lapse_releases_the_budget_for_another_redemption(api, clock):
    promo = make_promotion(api, "spend_threshold", budget=2_000, window_days=7)
    first, first_key = customer(api, cash=50_000)
    second, second_key = customer(api, cash=50_000)
    made = codes(api, promo, 2)
    redeemed(first_key, first, made[0])
    assert_refused(api, second_key, second, made[1], "promotion_exhausted")
    clock.advance(days=7)
    assert_refused(api, second_key, second, made[1], "promotion_exhausted")  # not yet recorded
    assert run_expiry(api)["lapsed_redemptions"] == 1
    assert redeemed(second_key, second, made[1])["status"] == "earning"
    assert get_promotion(api, promo)["budget_committed"] == 2_000


# --- deposit bonuses --------------------------------------------------------------------------


def test_the_first_qualifying_deposit_earns_a_fixed_bonus_linked_to_it(api, clock):
    promo = make_promotion(api, "deposit_bonus", reward={"amount": 1_500}, min_deposit=20_000)
    acct, advertiser = customer(api)
    red = redeemed(advertiser, acct, code(api, promo))
    assert (red["status"], red["deadline"], red["lot_id"], red["deposit_id"]) == (
        "earning",
        iso(clock.now() + timedelta(days=30)),
        None,
        None,
    )
    assert "progress" not in red or red["progress"] is None
    clock.advance(hours=1)
    small = deposit(api, acct, 19_999)
    assert credits_of(api, acct) == []
    assert the_redemption(api, acct)["status"] == "earning"
    qualifying = deposit(api, acct, 20_000)
    (lot,) = credits_of(api, acct)
    assert (lot["source"], lot["original"], lot["remaining"]) == ("deposit_bonus", 1_500, 1_500)
    assert lot["expires_at"] == iso(clock.now() + timedelta(days=30))
    row = lot_row(api, lot["id"])
    assert (row.promotion_id, row.deposit_id) == (promo["id"], qualifying["id"])
    after = the_redemption(api, acct)
    assert (after["status"], after["lot_id"], after["deposit_id"]) == (
        "granted",
        lot["id"],
        qualifying["id"],
    )
    assert small["id"] != qualifying["id"]
    assert balance(api, acct)["cash"]["available"] == 39_999
    deposit(api, acct, 100_000)  # a second qualifying deposit earns nothing more
    assert len(credits_of(api, acct)) == 1
    assert get_promotion(api, promo)["budget_committed"] == 1_500


def test_a_percent_bonus_is_rounded_down_and_capped_and_releases_what_it_did_not_need(api, clock):
    promo = make_promotion(
        api,
        "deposit_bonus",
        reward={"percent": 10, "max_amount": 5_000},
        min_deposit=10_000,
        budget=20_000,
    )
    small, small_key = customer(api)
    large, large_key = customer(api)
    made = codes(api, promo, 2)
    redeemed(small_key, small, made[0])
    redeemed(large_key, large, made[1])
    assert get_promotion(api, promo)["budget_committed"] == 10_000  # two caps reserved
    clock.advance(hours=1)
    deposit(api, small, 25_555)
    assert [lot["original"] for lot in credits_of(api, small)] == [2_555]  # 2,555.5 → 2,555
    assert get_promotion(api, promo)["budget_committed"] == 2_555 + 5_000
    deposit(api, large, 1_000_000)
    assert [lot["original"] for lot in credits_of(api, large)] == [5_000]  # capped
    assert get_promotion(api, promo)["budget_committed"] == 7_555


def test_a_deposit_before_the_redemption_earns_nothing(api, clock):
    promo = make_promotion(api, "deposit_bonus")
    acct, advertiser = customer(api, cash=50_000)
    redeemed(advertiser, acct, code(api, promo))
    assert credits_of(api, acct) == []
    assert the_redemption(api, acct)["status"] == "earning"


def test_a_deposit_after_the_window_earns_nothing_and_records_the_lapse(api, clock):
    promo = make_promotion(api, "deposit_bonus", window_days=30)
    acct, advertiser = customer(api)
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(days=30)
    deposit(api, acct, 50_000)
    assert credits_of(api, acct) == []
    assert the_redemption(api, acct)["status"] == "lapsed"
    assert get_promotion(api, promo)["budget_committed"] == 0
    assert run_expiry(api)["lapsed_redemptions"] == 0  # already recorded by the deposit


def test_a_deposit_just_inside_the_window_earns_the_bonus(api, clock):
    promo = make_promotion(api, "deposit_bonus", window_days=30)
    acct, advertiser = customer(api)
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(days=30, microseconds=-1)
    deposit(api, acct, 20_000)
    assert the_redemption(api, acct)["status"] == "granted"


def test_a_percent_bonus_that_would_round_to_nothing_on_the_smallest_deposit_is_refused(api):
    r = api.finance.post(
        "/v1/promotions",
        json=promotion_body(
            api, "deposit_bonus", reward={"percent": 10, "max_amount": 5_000}, min_deposit=9
        ),
    )
    assert_problem(r, 422, "validation_error")
    assert "min_deposit" in r.json()["detail"]


# --- refusals ---------------------------------------------------------------------------------


def test_an_unknown_code_is_code_invalid(api):
    make_promotion(api)
    acct, advertiser = customer(api)
    body = assert_refused(api, advertiser, acct, UNKNOWN_CODE, "code_invalid")
    assert body["title"]


def test_a_code_is_single_use(api):
    promo = make_promotion(api, max_redemptions=10)
    first, first_key = customer(api)
    second, second_key = customer(api)
    c = code(api, promo)
    redeemed(first_key, first, c)
    assert_refused(api, second_key, second, c, "code_used")
    assert_refused(api, second_key, second, c.lower(), "code_used")
    assert credits_of(api, second) == []


def test_a_promotion_that_has_not_started_is_not_active(api, clock):
    promo = make_promotion(api, starts_at=clock.now() + timedelta(hours=1))
    acct, advertiser = customer(api)
    c = code(api, promo)
    clock.advance(minutes=59)
    assert_refused(api, advertiser, acct, c, "promotion_not_active")
    clock.advance(minutes=1)  # starts_at is inclusive
    assert redeemed(advertiser, acct, c)["status"] == "granted"


def test_a_promotion_past_its_end_is_not_active(api, clock):
    promo = make_promotion(api, ends_at=clock.now() + timedelta(days=1))
    acct, advertiser = customer(api)
    c = code(api, promo)
    clock.advance(days=1)  # ends_at is exclusive
    assert_refused(api, advertiser, acct, c, "promotion_not_active")


def test_a_promotion_ended_early_is_not_active(api):
    promo = make_promotion(api)
    acct, advertiser = customer(api)
    c = code(api, promo)
    api.finance.post(f"/v1/promotions/{promo['id']}/end")
    assert_refused(api, advertiser, acct, c, "promotion_not_active")


def test_max_redemptions_is_never_exceeded(api):
    promo = make_promotion(api, max_redemptions=2)
    made = codes(api, promo, 3)
    people = [customer(api) for _ in range(3)]
    redeemed(people[0][1], people[0][0], made[0])
    redeemed(people[1][1], people[1][0], made[1])
    assert_refused(api, people[2][1], people[2][0], made[2], "promotion_exhausted")
    assert get_promotion(api, promo)["redemptions"] == 2


def test_the_budget_is_never_exceeded(api):
    promo = make_promotion(api, reward={"amount": 1_000}, budget=2_500)
    made = codes(api, promo, 3)
    people = [customer(api) for _ in range(3)]
    redeemed(people[0][1], people[0][0], made[0])
    redeemed(people[1][1], people[1][0], made[1])
    assert_refused(api, people[2][1], people[2][0], made[2], "promotion_exhausted")
    assert get_promotion(api, promo)["budget_committed"] == 2_000


def test_an_earning_redemption_reserves_its_reward_from_the_budget(api):
    promo = make_promotion(
        api, "deposit_bonus", reward={"percent": 50, "max_amount": 4_000}, budget=6_000
    )
    made = codes(api, promo, 2)
    first, first_key = customer(api)
    second, second_key = customer(api)
    redeemed(first_key, first, made[0])
    assert_refused(api, second_key, second, made[1], "promotion_exhausted")


def test_an_account_redeems_a_promotion_once(api):
    promo = make_promotion(api, eligibility={"once_per_business": False})
    acct, advertiser = customer(api)
    made = codes(api, promo, 2)
    redeemed(advertiser, acct, made[0])
    body = assert_refused(api, advertiser, acct, made[1], "already_redeemed")
    assert "this account" in body["detail"]


def test_once_per_business_counts_every_account_of_the_business(api):
    promo = make_promotion(api)
    acct, advertiser = customer(api)
    sibling = make_account(api.db, business_id=acct["business_id"], name="second")
    made = codes(api, promo, 2)
    redeemed(advertiser, acct, made[0])
    assert_refused(api, advertiser, sibling, made[1], "already_redeemed")


def test_without_once_per_business_each_account_of_a_business_may_redeem(api):
    promo = make_promotion(api, eligibility={"once_per_business": False})
    acct, advertiser = customer(api)
    sibling = make_account(api.db, business_id=acct["business_id"], name="second")
    made = codes(api, promo, 2)
    redeemed(advertiser, acct, made[0])
    assert redeemed(advertiser, sibling, made[1])["status"] == "granted"
    assert get_promotion(api, promo)["redemptions"] == 2


def test_already_redeemed_is_told_before_exhausted(api):
    promo = make_promotion(api, max_redemptions=1)
    acct, advertiser = customer(api)
    made = codes(api, promo, 2)
    redeemed(advertiser, acct, made[0])
    assert_refused(api, advertiser, acct, made[1], "already_redeemed")


def test_an_account_in_another_currency_is_not_eligible(api):
    promo = make_promotion(api, currency="USD")
    acct, advertiser = customer(api, currency="EUR")
    body = assert_refused(api, advertiser, acct, code(api, promo), "not_eligible")
    assert "USD" in body["detail"]


def test_a_suspended_account_is_not_eligible(api):
    promo = make_promotion(api)
    acct, advertiser = customer(api)
    assert api.finance.post(f"/v1/accounts/{acct['id']}/suspend").status_code == 200
    assert_refused(api, advertiser, acct, code(api, promo), "not_eligible")


def test_an_account_in_debt_is_not_eligible(api):
    promo = make_promotion(api)
    acct, advertiser = customer(api)
    dep = deposit(api, acct, 10_000)
    spend(api, acct, 4_000)
    assert reverse(api, dep).status_code == 200
    assert account_row(api, acct).debt == 4_000
    assert_refused(api, advertiser, acct, code(api, promo), "not_eligible")


def test_new_accounts_only_refuses_an_account_older_than_new_account_days(api, clock):
    acct, advertiser = customer(api)
    clock.advance(days=30, microseconds=1)
    promo = make_promotion(api, eligibility={"new_accounts_only": True})
    made = codes(api, promo, 1)
    assert_refused(api, advertiser, acct, made[0], "not_eligible")


def test_new_accounts_only_admits_an_account_exactly_new_account_days_old(api, clock):
    acct, advertiser = customer(api)
    clock.advance(days=10)
    promo = make_promotion(api, eligibility={"new_accounts_only": True, "new_account_days": 10})
    assert redeemed(advertiser, acct, code(api, promo))["status"] == "granted"


def test_new_accounts_only_refuses_an_account_that_has_spent(api):
    promo = make_promotion(api, eligibility={"new_accounts_only": True})
    acct, advertiser = customer(api, cash=1_000)
    spend(api, acct, 1)
    body = assert_refused(api, advertiser, acct, code(api, promo), "not_eligible")
    assert "not spent" in body["detail"]


def test_not_eligible_is_told_before_exhausted(api):
    promo = make_promotion(api, max_redemptions=1)
    made = codes(api, promo, 2)
    first, first_key = customer(api)
    redeemed(first_key, first, made[0])
    euro, euro_key = customer(api, currency="EUR")
    assert_refused(api, euro_key, euro, made[1], "not_eligible")


def test_a_closed_account_redeems_nothing_and_it_is_not_a_failed_attempt(api):
    promo = make_promotion(api)
    acct, advertiser = customer(api)
    close(api, acct)
    c = code(api, promo)
    assert_refused(api, advertiser, acct, c, "account_closed", counted=False)
    assert_refused(api, advertiser, acct, UNKNOWN_CODE, "account_closed", counted=False)


def test_another_businesss_account_is_404_and_not_a_failed_attempt(api):
    promo = make_promotion(api)
    acct, _ = customer(api)
    stranger = api.advertiser(make_business(api.db, name="Other")["id"])
    c = code(api, promo)
    before = ledger_state(api)
    assert_problem(redeem(stranger, acct, c), 404, "account_not_found")
    assert_problem(redeem(stranger, {"id": "acct_nope"}, c), 404, "account_not_found")
    assert ledger_state(api) == before
    assert failed_attempts(api) == 0


@pytest.mark.parametrize(
    "body", [{"code": ""}, {"code": "X" * 65}, {}, {"code": 7}, {"code": "ABCD", "x": 1}]
)
def test_a_malformed_redemption_is_422_and_not_a_failed_attempt(api, body):
    make_promotion(api)
    acct, advertiser = customer(api)
    before = ledger_state(api)
    r = advertiser.post(f"/v1/accounts/{acct['id']}/redemptions", json=body)
    assert_problem(r, 422, "validation_error")
    assert ledger_state(api) == before
    assert failed_attempts(api) == 0


def test_an_account_without_a_business_counts_as_its_own_business(api):
    promo = make_promotion(api)
    lone = make_account(api.db, with_business=False, name="lone")
    other = make_account(api.db, with_business=False, name="other lone")
    made = codes(api, promo, 3)
    assert redeemed(api.admin, lone, made[0])["status"] == "granted"
    assert redeemed(api.admin, other, made[1])["status"] == "granted"
    assert_refused(api, api.admin, lone, made[2], "already_redeemed")
    for _ in range(9):
        assert_refused(api, api.admin, lone, UNKNOWN_CODE, "code_invalid")
    assert_problem(redeem(api.admin, lone, UNKNOWN_CODE), 429, "too_many_attempts")
    assert_refused(api, api.admin, other, UNKNOWN_CODE, "code_invalid")


# --- the attempt limit ------------------------------------------------------------------------


def test_ten_failed_attempts_in_an_hour_lock_the_business_out_until_the_hour_is_over(api, clock):
    promo = make_promotion(api)
    acct, advertiser = customer(api)
    sibling = make_account(api.db, business_id=acct["business_id"], name="second")
    good = code(api, promo)
    for i in range(10):  # from either account of the business
        assert_refused(api, advertiser, acct if i % 2 else sibling, UNKNOWN_CODE, "code_invalid")
    before = ledger_state(api)
    r = redeem(advertiser, acct, good)
    body = assert_problem(r, 429, "too_many_attempts")
    assert r.headers["Retry-After"] == "3601"
    assert body["retry_after"] == 3601
    assert_problem(redeem(advertiser, sibling, good), 429, "too_many_attempts")
    assert ledger_state(api) == before  # the good code is still unused
    assert failed_attempts(api) == 10  # a 429 is not counted
    clock.advance(minutes=59, seconds=59)
    r = redeem(advertiser, acct, good)
    assert_problem(r, 429, "too_many_attempts")
    assert int(r.headers["Retry-After"]) >= 1
    clock.advance(seconds=1)
    assert redeemed(advertiser, acct, good)["status"] == "granted"


def test_the_attempt_limit_is_a_sliding_hour(api, clock):
    promo = make_promotion(api)
    acct, advertiser = customer(api)
    good = code(api, promo)
    for _ in range(5):
        assert_refused(api, advertiser, acct, UNKNOWN_CODE, "code_invalid")
    clock.advance(minutes=30)
    for _ in range(5):
        assert_refused(api, advertiser, acct, UNKNOWN_CODE, "code_invalid")
    r = redeem(advertiser, acct, good)
    assert_problem(r, 429, "too_many_attempts")
    assert r.headers["Retry-After"] == str(30 * 60 + 1)
    clock.advance(minutes=30)  # the first five have left the hour
    assert_refused(api, advertiser, acct, UNKNOWN_CODE, "code_invalid")
    assert redeemed(advertiser, acct, good)["status"] == "granted"


def test_every_kind_of_refusal_counts_toward_the_limit(api, clock):
    promo = make_promotion(api, max_redemptions=1, eligibility={"once_per_business": False})
    late = make_promotion(api, starts_at=clock.now() + timedelta(days=1))
    euro = make_promotion(api, currency="EUR")
    full = make_promotion(api, max_redemptions=1)
    acct, advertiser = customer(api)
    other, other_key = customer(api)
    made = codes(api, promo, 2)
    full_codes = codes(api, full, 2)
    redeemed(advertiser, acct, made[0])
    redeemed(other_key, other, full_codes[0])
    sibling = make_account(api.db, business_id=acct["business_id"], name="second")
    refusals = [
        (acct, UNKNOWN_CODE, "code_invalid"),
        (acct, made[0], "code_used"),
        (acct, code(api, late), "promotion_not_active"),
        (acct, made[1], "already_redeemed"),
        (acct, code(api, euro), "not_eligible"),
        (sibling, full_codes[1], "promotion_exhausted"),
    ]
    for account, text, expected in refusals:
        assert_refused(api, advertiser, account, text, expected)
    assert failed_attempts(api) == 6
    for _ in range(4):
        assert_refused(api, advertiser, acct, UNKNOWN_CODE, "code_invalid")
    assert_problem(redeem(advertiser, acct, UNKNOWN_CODE), 429, "too_many_attempts")


def test_a_refusal_replayed_for_an_idempotency_key_is_not_a_new_failed_attempt(api):
    acct, advertiser = customer(api)
    headers = {"Idempotency-Key": "typo-1"}
    first = redeem(advertiser, acct, UNKNOWN_CODE, headers=headers)
    again = redeem(advertiser, acct, UNKNOWN_CODE, headers=headers)
    assert_problem(first, 409, "code_invalid")
    assert_problem(again, 409, "code_invalid")
    assert first.json() == again.json()
    assert failed_attempts(api) == 1


def test_a_locked_out_business_is_still_told_its_account_is_closed_first(api):
    acct, advertiser = customer(api)
    closed = make_account(api.db, business_id=acct["business_id"], name="closed")
    close(api, closed)
    for _ in range(10):
        assert_refused(api, advertiser, acct, UNKNOWN_CODE, "code_invalid")
    assert_problem(redeem(advertiser, acct, UNKNOWN_CODE), 429, "too_many_attempts")
    assert_refused(api, advertiser, closed, UNKNOWN_CODE, "account_closed", counted=False)


def test_failed_attempts_of_another_business_do_not_count(api):
    promo = make_promotion(api)
    noisy, noisy_key = customer(api)
    quiet, quiet_key = customer(api)
    for _ in range(10):
        assert_refused(api, noisy_key, noisy, UNKNOWN_CODE, "code_invalid")
    assert_problem(redeem(noisy_key, noisy, UNKNOWN_CODE), 429, "too_many_attempts")
    assert_refused(api, quiet_key, quiet, UNKNOWN_CODE, "code_invalid")
    assert redeemed(quiet_key, quiet, code(api, promo))["status"] == "granted"


def test_a_successful_redemption_is_not_a_failed_attempt(api):
    promo = make_promotion(api)
    acct, advertiser = customer(api)
    for _ in range(9):
        assert_refused(api, advertiser, acct, UNKNOWN_CODE, "code_invalid")
    redeemed(advertiser, acct, code(api, promo))
    assert failed_attempts(api) == 9
    assert_refused(api, advertiser, acct, UNKNOWN_CODE, "code_invalid")  # the tenth failure
    assert_problem(redeem(advertiser, acct, UNKNOWN_CODE), 429, "too_many_attempts")


# --- concurrency ------------------------------------------------------------------------------


def _in_threads(n, fn):  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i):  # type: ignore[no-untyped-def]
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # collected and checked by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_concurrent_redemptions_never_exceed_max_redemptions_or_budget(api):
    promo = make_promotion(api, max_redemptions=5, budget=4_000)
    made = codes(api, promo, 12)
    people = [make_account(api.db) for _ in range(12)]
    results = _in_threads(
        12,
        lambda i: api.db.run(
            promotion_service.redeem,
            people[i]["id"],
            code=made[i],
            business_id=people[i]["business_id"],
        ),
    )
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, PromotionExhausted)]
    assert (len(won), len(lost)) == (4, 8), results
    after = get_promotion(api, promo)
    assert (after["redemptions"], after["budget_committed"]) == (4, 4_000)


def test_a_code_redeemed_concurrently_by_many_accounts_is_granted_once(api):
    promo = make_promotion(api, max_redemptions=100)
    c = code(api, promo)
    people = [make_account(api.db) for _ in range(8)]
    results = _in_threads(
        8,
        lambda i: api.db.run(
            promotion_service.redeem, people[i]["id"], code=c, business_id=people[i]["business_id"]
        ),
    )
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, CodeUsed)]
    assert (len(won), len(lost)) == (1, 7), results
    after = get_promotion(api, promo)
    assert (after["redemptions"], after["budget_committed"]) == (1, 1_000)


def test_accounts_of_one_business_redeeming_concurrently_get_one_redemption(api):
    promo = make_promotion(api)
    made = codes(api, promo, 8)
    business = make_business(api.db)["id"]
    people = [make_account(api.db, business_id=business, name=f"a{i}") for i in range(8)]
    results = _in_threads(
        8,
        lambda i: api.db.run(
            promotion_service.redeem, people[i]["id"], code=made[i], business_id=business
        ),
    )
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, AlreadyRedeemed)]
    assert (len(won), len(lost)) == (1, 7), results
    assert get_promotion(api, promo)["redemptions"] == 1


# --- deposit reversal and debt ----------------------------------------------------------------


def test_a_reversed_deposit_takes_its_amount_and_tax_back(api, clock):
    acct, _ = customer(api)
    dep = deposit(api, acct, 10_000, tax=800)
    keep = deposit(api, acct, 3_000)
    assert book_sum(api, acct, Book.TAX) == 800
    clock.advance(hours=1)
    r = reverse(api, dep, "chargeback")
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["reversed_at"], r.json()["reversal_reason"]) == (
        dep["id"],
        iso(clock.now()),
        "chargeback",
    )
    assert api.finance.get(f"/v1/deposits/{dep['id']}").json()["reversed_at"] == iso(clock.now())
    assert balance(api, acct)["cash"] == {"available": 3_000, "held": 0, "debt": 0}
    assert book_sum(api, acct, Book.TAX) == 0
    row = account_row(api, acct)
    assert (row.debt, row.status) == (0, "active")
    latest = transactions_of(api, acct)[0]
    assert (latest["kind"], latest["cash_delta"], latest["deposit_id"]) == (
        "deposit_reversal",
        -10_000,
        dep["id"],
    )
    assert keep["reversed_at"] is None


def test_a_reversal_cash_cannot_cover_puts_the_account_in_debt_and_suspends_it(api):
    acct, advertiser = customer(api)
    dep = deposit(api, acct, 10_000)
    spend(api, acct, 6_000)
    assert reverse(api, dep).status_code == 200
    row = account_row(api, acct)
    assert (row.cash_available, row.debt, row.status, row.suspended_reason) == (
        0,
        6_000,
        "suspended",
        "debt",
    )
    assert api.finance.get(f"/v1/accounts/{acct['id']}").json()["status"] == "suspended"
    assert book_sum(api, acct, Book.DEBT) == -6_000
    bal = balance(api, acct)
    assert (bal["cash"]["available"], bal["refundable"], bal["depleted"]) == (0, 0, True)
    latest = transactions_of(api, acct)[0]
    assert (latest["kind"], latest["cash_delta"]) == ("deposit_reversal", -4_000)


def test_a_reversal_leaves_held_cash_alone(api, clock):
    acct, advertiser = customer(api)
    dep = deposit(api, acct, 10_000)
    r = advertiser.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": 4_000})
    assert r.status_code == 201, r.text
    reverse(api, dep)
    row = account_row(api, acct)
    assert (row.cash_available, row.cash_held, row.debt) == (0, 4_000, 4_000)


def test_a_deposit_is_reversed_only_once(api):
    acct, _ = customer(api)
    dep = deposit(api, acct, 10_000)
    assert reverse(api, dep).status_code == 200
    before = ledger_state(api)
    body = assert_problem(reverse(api, dep, "again"), 409, "deposit_already_reversed")
    assert dep["id"] in body["detail"]
    assert ledger_state(api) == before


def test_reversing_an_unknown_deposit_is_404(api):
    before = ledger_state(api)
    assert_problem(reverse(api, {"id": "dep_nope"}), 404, "deposit_not_found")
    assert ledger_state(api) == before


def test_only_staff_reverse_deposits(api):
    acct, advertiser = customer(api)
    dep = deposit(api, acct, 10_000)
    for caller in (advertiser, api.ingest):
        assert_problem(reverse(caller, dep), 403, "forbidden")
    url = f"/v1/deposits/{dep['id']}/reverse"
    assert_problem(api.finance.post(url, json={}), 422, "validation_error")
    assert balance(api, acct)["cash"]["available"] == 10_000


def test_reversing_a_deposit_claws_back_the_unspent_bonus_it_earned(api, clock):
    promo = make_promotion(api, "deposit_bonus", reward={"amount": 1_500}, min_deposit=20_000)
    acct, advertiser = customer(api)
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(hours=1)
    dep = deposit(api, acct, 20_000)
    lot_id = the_redemption(api, acct)["lot_id"]
    spend(api, acct, 500)  # from the bonus: what was spent stays spent
    assert reverse(api, dep).status_code == 200
    row = lot_row(api, lot_id)
    assert (row.remaining, row.status) == (0, "forfeited")
    clawback = [t for t in transactions_of(api, acct) if t["kind"] == "clawback"]
    assert [(t["lot_id"], t["credit_delta"], t["deposit_id"]) for t in clawback] == [
        (lot_id, -1_000, dep["id"])
    ]
    assert balances(api.db, acct["id"]) == {
        "cash": 0,
        "held": 0,
        "lots": {lot_id: (0, "forfeited")},
    }
    assert the_redemption(api, acct)["status"] == "granted"


def test_reversing_another_deposit_leaves_the_bonus_alone(api, clock):
    promo = make_promotion(api, "deposit_bonus", min_deposit=20_000)
    acct, advertiser = customer(api)
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(hours=1)
    deposit(api, acct, 20_000)
    other = deposit(api, acct, 5_000)
    lot_id = the_redemption(api, acct)["lot_id"]
    assert reverse(api, other).status_code == 200
    assert lot_row(api, lot_id).remaining == 1_500
    assert [t for t in transactions_of(api, acct) if t["kind"] == "clawback"] == []


def test_a_later_deposit_pays_the_debt_first_and_reactivates_the_account(api):
    acct, advertiser = customer(api)
    dep = deposit(api, acct, 10_000)
    spend(api, acct, 6_000)
    reverse(api, dep)
    deposit(api, acct, 4_000)
    row = account_row(api, acct)
    assert (row.cash_available, row.debt, row.status) == (0, 2_000, "suspended")
    deposit(api, acct, 5_000)
    row = account_row(api, acct)
    assert (row.cash_available, row.debt, row.status, row.suspended_reason) == (
        3_000,
        0,
        "active",
        None,
    )
    assert api.finance.get(f"/v1/accounts/{acct['id']}").json()["status"] == "active"
    assert balance(api, acct)["cash"]["available"] == 3_000


def test_an_account_in_debt_cannot_be_reinstated(api):
    acct, _ = customer(api)
    dep = deposit(api, acct, 10_000)
    spend(api, acct, 6_000)
    reverse(api, dep)
    r = api.finance.post(f"/v1/accounts/{acct['id']}/reinstate")
    assert_problem(r, 409, "invalid_account_transition")
    assert account_row(api, acct).status == "suspended"


def test_a_staff_suspended_account_stays_suspended_when_its_debt_is_paid(api):
    acct, _ = customer(api)
    dep = deposit(api, acct, 10_000)
    spend(api, acct, 6_000)
    assert api.finance.post(f"/v1/accounts/{acct['id']}/suspend").status_code == 200
    reverse(api, dep)
    row = account_row(api, acct)
    assert (row.debt, row.status, row.suspended_reason) == (6_000, "suspended", "staff")
    deposit(api, acct, 10_000)
    row = account_row(api, acct)
    assert (row.cash_available, row.debt, row.status, row.suspended_reason) == (
        4_000,
        0,
        "suspended",
        "staff",
    )
    r = api.finance.post(f"/v1/accounts/{acct['id']}/reinstate")
    assert r.status_code == 200, r.text
    assert account_row(api, acct).status == "active"


def test_a_refund_can_be_neither_approved_nor_paid_while_the_account_owes_money(api, clock):
    acct, advertiser = customer(api)
    dep = deposit(api, acct, 10_000)
    deposit(api, acct, 2_000)

    def ask(amount: int) -> str:
        r = advertiser.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": amount})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    pending, approved = ask(3_000), ask(4_000)
    assert api.finance.post(f"/v1/refunds/{approved}/approve").status_code == 200
    reverse(api, dep)  # cash 5,000 available, 7,000 held: 5,000 owed
    assert account_row(api, acct).debt == 5_000
    before = ledger_state(api)
    body = assert_problem(
        api.finance.post(f"/v1/refunds/{pending}/approve"), 409, "account_not_in_good_standing"
    )
    assert body["debt"] == 5_000
    assert_problem(
        api.finance.post(f"/v1/refunds/{approved}/settle"), 409, "account_not_in_good_standing"
    )
    assert ledger_state(api) == before
    statuses = [
        api.finance.get(f"/v1/refunds/{rid}").json()["status"] for rid in (pending, approved)
    ]
    assert statuses == ["pending", "approved"]
    assert (
        api.finance.post(f"/v1/refunds/{pending}/reject", json={"reason": "debt"}).status_code
        == 200
    )
    assert (
        api.finance.post(f"/v1/refunds/{approved}/fail", json={"reason": "debt"}).status_code == 200
    )


# --- refund clawback --------------------------------------------------------------------------


def _approve_and_settle(api, refund_id: str) -> None:  # type: ignore[no-untyped-def]
    assert api.finance.post(f"/v1/refunds/{refund_id}/approve").status_code == 200
    r = api.finance.post(f"/v1/refunds/{refund_id}/settle")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paid"


def test_a_paid_refund_forfeits_the_deposit_bonus_in_proportion_rounded_up(api, clock):
    promo = make_promotion(api, "deposit_bonus", reward={"amount": 1_000}, min_deposit=30_000)
    acct, advertiser = customer(api)
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(hours=1)
    dep = deposit(api, acct, 30_000)
    lot_id = the_redemption(api, acct)["lot_id"]
    r = advertiser.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": 10_000})
    refund_id = r.json()["id"]
    assert api.finance.post(f"/v1/refunds/{refund_id}/approve").status_code == 200
    assert lot_row(api, lot_id).remaining == 1_000  # nothing is taken before payment
    assert api.finance.post(f"/v1/refunds/{refund_id}/settle").json()["status"] == "paid"
    row = lot_row(api, lot_id)
    assert (row.remaining, row.status) == (666, "active")  # a third of 1,000 is 333.3 → 334
    clawback = [t for t in transactions_of(api, acct) if t["kind"] == "clawback"]
    assert [(t["credit_delta"], t["refund_id"], t["lot_id"]) for t in clawback] == [
        (-334, refund_id, lot_id)
    ]
    assert dep["id"] == row.deposit_id


def test_a_refund_counts_only_the_bonus_earning_deposits_of_the_last_90_days(api, clock):
    promo = make_promotion(api, "deposit_bonus", reward={"amount": 1_000}, min_deposit=20_000)
    acct, advertiser = customer(api, cash=50_000)  # earned no bonus: not in the share
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(hours=1)
    deposit(api, acct, 20_000)
    lot_id = the_redemption(api, acct)["lot_id"]
    r = advertiser.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": 5_000})
    _approve_and_settle(api, r.json()["id"])
    assert lot_row(api, lot_id).remaining == 750  # 5,000 / 20,000 of 1,000


def test_a_refund_returning_every_bonus_earning_deposit_forfeits_the_whole_unspent_bonus(
    api, clock
):
    promo = make_promotion(api, "deposit_bonus", reward={"amount": 1_000}, min_deposit=20_000)
    acct, advertiser = customer(api)
    redeemed(advertiser, acct, code(api, promo))
    clock.advance(hours=1)
    deposit(api, acct, 20_000)
    lot_id = the_redemption(api, acct)["lot_id"]
    spend(api, acct, 300)  # from the bonus
    clock.advance(hours=3)
    r = advertiser.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": 20_000})
    _approve_and_settle(api, r.json()["id"])
    row = lot_row(api, lot_id)
    assert (row.remaining, row.status) == (0, "forfeited")


# --- the report -------------------------------------------------------------------------------


def test_the_report_counts_a_redemption_past_its_deadline_as_lapsed_before_it_is_recorded(
    api, clock
):
    promo = make_promotion(api, "spend_threshold", window_days=7, budget=10_000)
    acct, advertiser = customer(api, cash=50_000)
    redeemed(advertiser, acct, code(api, promo))
    assert report(api, promo)["redemptions"] == {"granted": 0, "earning": 1, "lapsed": 0}
    assert report(api, promo)["budget_committed"] == 2_000
    clock.advance(days=7)
    assert report(api, promo)["redemptions"] == {"granted": 0, "earning": 0, "lapsed": 1}
    assert report(api, promo)["budget_committed"] == 2_000
    run_expiry(api)
    assert report(api, promo)["redemptions"] == {"granted": 0, "earning": 0, "lapsed": 1}
    assert report(api, promo)["budget_committed"] == 0


def test_the_report_shows_refund_and_reversal_clawbacks(api, clock):
    promo = make_promotion(api, "deposit_bonus", reward={"amount": 1_000}, min_deposit=20_000)
    refunded, refunded_key = customer(api)
    reversed_, reversed_key = customer(api)
    made = codes(api, promo, 2)
    redeemed(refunded_key, refunded, made[0])
    redeemed(reversed_key, reversed_, made[1])
    clock.advance(hours=1)
    deposit(api, refunded, 30_000)
    dep = deposit(api, reversed_, 20_000)
    spend(api, reversed_, 400)  # from its bonus
    r = refunded_key.post(f"/v1/accounts/{refunded['id']}/refunds", json={"amount": 10_000})
    _approve_and_settle(api, r.json()["id"])  # claws back 334
    assert reverse(api, dep).status_code == 200  # claws back the 600 left
    got = report(api, promo)
    assert {k: got[k] for k in got if k.startswith("credit_")} == {
        "credit_granted": 2_000,
        "credit_used": 400,
        "credit_outstanding": 666,
        "credit_expired": 0,
        "credit_voided": 0,
        "credit_clawed_back": 334 + 600,
        "credit_forfeited": 0,
    }


def test_the_report_shows_bonus_forfeited_when_a_paid_refund_closes_the_account(
    clock, database_url
):
    from fastapi.testclient import TestClient

    from adledger.config import Settings
    from adledger.http.app import create_app
    from adledger.service.uow import Database
    from adledger.service.verify import verify_ledger
    from conftest import Api

    closing = Database(Settings(database_url=database_url, refund_closes_account=True), clock)
    try:
        with TestClient(create_app(db=closing, migrate=False)) as client:
            api = Api(client, closing)
            promo = make_promotion(
                api, "deposit_bonus", reward={"amount": 1_000}, min_deposit=30_000
            )
            acct, advertiser = customer(api)
            redeemed(advertiser, acct, code(api, promo))
            clock.advance(hours=1)
            deposit(api, acct, 30_000)
            lot_id = the_redemption(api, acct)["lot_id"]
            r = advertiser.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": 10_000})
            _approve_and_settle(api, r.json()["id"])
            assert account_row(api, acct).status == "closed"
            assert (lot_row(api, lot_id).remaining, lot_row(api, lot_id).status) == (
                0,
                "forfeited",
            )
            got = report(api, promo)
            assert (
                got["credit_granted"],
                got["credit_clawed_back"],
                got["credit_forfeited"],
                got["credit_outstanding"],
            ) == (1_000, 334, 666, 0)
        assert not closing.read(verify_ledger)
    finally:
        closing.dispose()


def test_the_report_of_a_fresh_promotion_is_all_zero(api):
    promo = make_promotion(api, budget=5_000)
    assert report(api, promo) == {
        "promotion_id": promo["id"],
        "currency": "USD",
        "redemptions": {"granted": 0, "earning": 0, "lapsed": 0},
        "budget": 5_000,
        "budget_committed": 0,
        "credit_granted": 0,
        "credit_used": 0,
        "credit_outstanding": 0,
        "credit_expired": 0,
        "credit_voided": 0,
        "credit_clawed_back": 0,
        "credit_forfeited": 0,
        "cash_spend_in_windows": 0,
    }


def test_the_report_tells_what_a_promotion_gave_and_what_it_brought(api, clock):
    """A scripted month and a half of a 10 % deposit bonus (capped at 20.00, 30-day windows,
    lots valid 10 days), with exact numbers at the end."""
    promo = make_promotion(
        api,
        "deposit_bonus",
        reward={"percent": 10, "max_amount": 2_000},
        min_deposit=5_000,
        budget=100_000,
        window_days=30,
        credit_valid_days=10,
        ends_at=clock.now() + timedelta(days=60),
    )
    made = iter(codes(api, promo, 7))
    a, b, c, d, e, f, g = (customer(api) for _ in range(7))
    for acct, key in (a, b, c, d, e):
        redeemed(key, acct, next(made))  # all at T0

    clock.advance(hours=1)  # T0 + 1h
    deposit(api, a[0], 10_000)  # bonus 1,000
    dep_b = deposit(api, b[0], 50_000)  # bonus 2,000 (capped)
    deposit(api, c[0], 6_000)  # bonus 600
    deposit(api, d[0], 8_000)  # bonus 800
    deposit(api, e[0], 4_000)  # below min_deposit: nothing
    assert spend(api, a[0], 1_500)["cash_used"] == 500  # 1,000 credit + 500 cash
    assert spend(api, b[0], 500)["credit_used"] == 500
    assert spend(api, d[0], 300)["credit_used"] == 300
    assert spend(api, e[0], 1_000)["cash_used"] == 1_000  # E earned nothing, but redeemed
    assert reverse(api, dep_b).status_code == 200  # claws back B's 1,500
    lot_c = the_redemption(api, c[0])["lot_id"]
    assert (
        api.finance.post(f"/v1/credits/{lot_c}/void", json={"reason": "fraud"}).status_code == 200
    )

    clock.advance(days=10)  # T0 + 10d 1h: D's lot (500 left) expires
    run = run_expiry(api)
    assert (run["expired_lots"], run["expired_amounts"], run["lapsed_redemptions"]) == (
        1,
        {"USD": 500},
        0,
    )
    assert spend(api, a[0], 2_000)["cash_used"] == 2_000  # inside A's window

    clock.advance(days=20)  # T0 + 30d 1h: every first window has ended
    assert spend(api, a[0], 100)["cash_used"] == 100  # outside A's window
    assert run_expiry(api)["lapsed_redemptions"] == 1  # E
    redeemed(f[1], f[0], next(made))
    redeemed(g[1], g[0], next(made))

    clock.advance(hours=1)  # T0 + 30d 2h
    deposit(api, f[0], 20_000)  # bonus 2,000 (capped)
    assert spend(api, f[0], 700)["credit_used"] == 700
    deposit(api, g[0], 1_000)  # below min_deposit: G keeps earning
    assert spend(api, g[0], 400)["cash_used"] == 400

    assert report(api, promo) == {
        "promotion_id": promo["id"],
        "currency": "USD",
        "redemptions": {"granted": 5, "earning": 1, "lapsed": 1},
        "budget": 100_000,
        "budget_committed": 6_400 + 2_000,  # granted, and G's reserved cap
        "credit_granted": 1_000 + 2_000 + 600 + 800 + 2_000,
        "credit_used": 1_000 + 500 + 300 + 700,
        "credit_outstanding": 1_300,
        "credit_expired": 500,
        "credit_voided": 600,
        "credit_clawed_back": 1_500,
        "credit_forfeited": 0,
        "cash_spend_in_windows": 500 + 1_000 + 2_000 + 400,
    }
    promo_now = get_promotion(api, promo)
    assert (promo_now["redemptions"], promo_now["budget_committed"]) == (7, 8_400)
