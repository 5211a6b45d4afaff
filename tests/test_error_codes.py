"""Every error code the API can answer with, each through HTTP: the problem's body, and nothing
changed in the database.

The last test walks every code adledger defines and fails if one is neither exercised somewhere
in tests/ nor listed here as not reachable over HTTP (with the reason), so a new code can't go
untested.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adledger.config import Settings
from adledger.domain import errors
from adledger.http import problems
from adledger.http.app import create_app
from adledger.http.encoding import rfc3339
from adledger.service import accounts as account_service
from adledger.service import refunds
from adledger.service.uow import Database
from api_support import assert_problem, snapshot
from factories import deposit, grant, make_account, make_business
from tests_support import event

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src" / "adledger"


@pytest.fixture
def acct(db) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return make_account(db, cash=10_000)


def credit_body(clock, **change: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {
        "amount": 100,
        "expires_at": rfc3339(clock.now() + timedelta(days=30)),
        "reason": "goodwill",
    } | change


# --- not found --------------------------------------------------------------------------------


def test_voiding_an_unknown_lot_is_404_lot_not_found(api, acct):
    grant(api.db, acct["id"])
    before = snapshot(api.db)
    r = api.finance.post("/v1/credits/lot_nope/void", json={"reason": "typo"})
    body = assert_problem(r, 404, "lot_not_found")
    assert body["title"] == "Credit lot not found"
    assert "lot_nope" in body["detail"]
    assert snapshot(api.db) == before


def test_a_business_that_does_not_exist_is_404_business_not_found(api):
    before = snapshot(api.db)
    r = api.finance.post(
        "/v1/accounts", json={"name": "x", "currency": "USD", "business_id": "biz_nope"}
    )
    assert "biz_nope" in assert_problem(r, 404, "business_not_found")["detail"]
    r = api.admin.post(
        "/v1/api-keys", json={"role": "advertiser", "name": "a", "business_id": "biz_nope"}
    )
    assert_problem(r, 404, "business_not_found")
    assert snapshot(api.db) == before


def test_revoking_an_unknown_key_is_404_api_key_not_found(api):
    before = snapshot(api.db)
    body = assert_problem(api.admin.delete("/v1/api-keys/key_nope"), 404, "api_key_not_found")
    assert "key_nope" in body["detail"]
    assert snapshot(api.db) == before


@pytest.mark.parametrize(
    "method, action, body",
    [
        ("GET", "", None),
        ("POST", "/approve", None),
        ("POST", "/reject", {"reason": "no"}),
        ("POST", "/cancel", None),
        ("POST", "/settle", None),
        ("POST", "/fail", None),
    ],
)
def test_every_action_on_an_unknown_refund_is_404_refund_not_found(api, acct, method, action, body):
    before = snapshot(api.db)
    r = api.admin.client.request(
        method,
        f"/v1/refunds/rf_nope{action}",
        json=body,
        headers={"Authorization": f"Bearer {api.admin.key}"},
    )
    assert "rf_nope" in assert_problem(r, 404, "refund_not_found")["detail"]
    assert snapshot(api.db) == before


@pytest.mark.parametrize("action", ["", "/cancel"])
def test_another_businesss_refund_is_404_refund_not_found_for_an_advertiser(api, acct, action):
    refund = api.db.run(refunds.request_refund, acct["id"], amount=100, requested_by="key_x")
    stranger = api.advertiser(make_business(api.db)["id"])
    before = snapshot(api.db)
    url = f"/v1/refunds/{refund['id']}{action}"
    r = stranger.post(url) if action else stranger.get(url)
    assert_problem(r, 404, "refund_not_found")
    assert snapshot(api.db) == before


# --- list queries -----------------------------------------------------------------------------

LISTS = [
    "/v1/accounts",
    "/v1/accounts/{account_id}/credits",
    "/v1/accounts/{account_id}/refunds",
    "/v1/refunds",
    "/v1/accounts/{account_id}/transactions",
]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["0", "501", "-1", "100000"])
def test_a_list_limit_outside_1_to_500_is_422_invalid_limit(api, acct, path, limit):
    url = path.format(account_id=acct["id"])
    body = assert_problem(api.finance.get(url, params={"limit": limit}), 422, "invalid_limit")
    assert "1" in body["detail"] and "500" in body["detail"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["abc", "1.5", "", "true"])
def test_a_list_limit_that_is_not_an_integer_is_422(api, acct, path, limit):
    url = path.format(account_id=acct["id"])
    body = assert_problem(api.finance.get(url, params={"limit": limit}), 422, "validation_error")
    assert body["errors"][0]["loc"] == ["query", "limit"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["1", "500"])
def test_a_list_limit_of_1_or_500_is_accepted(api, acct, path, limit):
    r = api.finance.get(path.format(account_id=acct["id"]), params={"limit": limit})
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) <= int(limit)


@pytest.mark.parametrize("cursor", ["garbage", "zzz", "acct_", "rf_nope"])
def test_a_malformed_cursor_is_refused_with_422(api, acct, cursor):
    make_account(api.db)
    r = api.finance.get("/v1/accounts", params={"starting_after": cursor})
    assert_problem(r, 422, "invalid_cursor")


def test_a_cursor_of_another_kind_of_object_is_refused(api, acct):
    r = api.finance.get("/v1/accounts", params={"starting_after": "rf_" + "0" * 26})
    assert_problem(r, 422, "invalid_cursor")


@pytest.mark.parametrize(
    "path, status",
    [
        ("/v1/accounts/{account_id}/credits", "bogus"),
        ("/v1/accounts/{account_id}/credits", "ACTIVE"),
        ("/v1/accounts/{account_id}/refunds", "done"),
        ("/v1/refunds", "bogus"),
        ("/v1/refunds", "Pending"),
    ],
)
def test_an_unknown_status_filter_on_a_list_is_422(api, acct, path, status):
    # The route's schema refuses it before the service's own `invalid_status` check is reached.
    r = api.finance.get(path.format(account_id=acct["id"]), params={"status": status})
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["query", "status"]
    assert "status" in body["detail"]


@pytest.mark.parametrize("kind", ["bogus", "DEPOSIT", "refund"])
def test_an_unknown_kind_filter_on_transactions_is_422(api, acct, kind):
    r = api.finance.get(f"/v1/accounts/{acct['id']}/transactions", params={"kind": kind})
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["query", "kind"]
    assert "deposit" in body["detail"]  # it names the kinds there are


def test_a_known_kind_filter_on_transactions_is_accepted(api, acct):
    r = api.finance.get(f"/v1/accounts/{acct['id']}/transactions", params={"kind": "deposit"})
    assert r.status_code == 200
    assert [t["kind"] for t in r.json()["data"]] == ["deposit"]


# --- request bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("priority", [101, -1, 1.5, True, "5", None, 1e2])
def test_a_credit_priority_outside_0_to_100_or_not_an_integer_is_422(api, acct, clock, priority):
    before = snapshot(api.db)
    r = api.finance.post(
        f"/v1/accounts/{acct['id']}/credits", json=credit_body(clock, priority=priority)
    )
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "priority"]
    assert snapshot(api.db) == before


@pytest.mark.parametrize("priority", [0, 100])
def test_a_credit_priority_of_0_or_100_is_accepted(api, acct, clock, priority):
    r = api.finance.post(
        f"/v1/accounts/{acct['id']}/credits", json=credit_body(clock, priority=priority)
    )
    assert r.status_code == 201 and r.json()["priority"] == priority


def test_a_credit_that_expires_before_it_takes_effect_is_422_invalid_time(api, acct, clock):
    before = snapshot(api.db)
    later = rfc3339(clock.now() + timedelta(days=10))
    r = api.finance.post(
        f"/v1/accounts/{acct['id']}/credits",
        json=credit_body(clock, effective_at=later, expires_at=rfc3339(clock.now())),
    )
    assert "expires_at" in assert_problem(r, 422, "invalid_time")["detail"]
    assert snapshot(api.db) == before


def test_a_liabilities_report_in_an_unknown_currency_is_422_unknown_currency(api):
    r = api.finance.get("/v1/reports/liabilities", params={"currency": "XXY"})
    assert "XXY" in assert_problem(r, 422, "unknown_currency")["detail"]


@pytest.mark.parametrize("role", ["root", "Admin", "", None, 1])
def test_a_key_with_an_unknown_role_is_422_and_no_key_is_made(api, role):
    before = snapshot(api.db)
    r = api.admin.post("/v1/api-keys", json={"role": role, "name": "x"})
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "role"]
    assert snapshot(api.db) == before


def test_an_advertiser_key_without_a_business_is_422(api):
    before = snapshot(api.db)
    r = api.admin.post("/v1/api-keys", json={"role": "advertiser", "name": "a"})
    assert "business_id" in assert_problem(r, 422, "validation_error")["detail"]
    r = api.admin.post(
        "/v1/api-keys", json={"role": "advertiser", "name": "a", "business_id": None}
    )
    assert_problem(r, 422, "validation_error")
    assert snapshot(api.db) == before


def test_a_staff_key_bound_to_a_business_is_422(api):
    biz = make_business(api.db)["id"]
    before = snapshot(api.db)
    r = api.admin.post("/v1/api-keys", json={"role": "finance", "name": "f", "business_id": biz})
    assert "advertiser" in assert_problem(r, 422, "validation_error")["detail"]
    assert snapshot(api.db) == before


# --- request size -----------------------------------------------------------------------------


def _raw_post(client: TestClient, key: str | None, url: str, content: Any) -> Any:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return client.post(url, content=content, headers=headers)


def test_a_body_over_the_default_limit_is_413_before_anything_else(api, acct):
    limit = Settings().max_body_bytes
    before = snapshot(api.db)
    big = b'{"amount": 1, "payment_reference": "p"}' + b" " * limit
    url = f"/v1/accounts/{acct['id']}/deposits"
    body = assert_problem(
        _raw_post(api.client, api.finance.key, url, big), 413, "request_too_large"
    )
    assert str(limit) in body["detail"]
    assert_problem(_raw_post(api.client, None, url, big), 413, "request_too_large")  # before 401
    assert snapshot(api.db) == before


@pytest.fixture
def small_limit(db, clock):  # type: ignore[no-untyped-def]
    """The same database served by an app whose body limit is 1,000 bytes."""
    small = Database(Settings(database_url=db.settings.database_url, max_body_bytes=1_000), clock)
    try:
        with TestClient(create_app(db=small, migrate=False), raise_server_exceptions=False) as c:
            yield c
    finally:
        small.dispose()


def _padded(size: int) -> bytes:
    core = b'{"amount": 1, "payment_reference": "p"}'
    return core[:-1] + b" " * (size - len(core)) + b"}"


def test_the_body_limit_follows_the_setting_and_is_inclusive(api, acct, small_limit):
    url = f"/v1/accounts/{acct['id']}/deposits"
    before = snapshot(api.db)
    r = _raw_post(small_limit, api.finance.key, url, _padded(1_001))
    assert "1000" in assert_problem(r, 413, "request_too_large")["detail"]
    assert snapshot(api.db) == before
    r = _raw_post(small_limit, api.finance.key, url, _padded(1_000))
    assert r.status_code == 201, r.text


def test_a_chunked_body_over_the_limit_is_413(api, acct, small_limit):
    url = f"/v1/accounts/{acct['id']}/deposits"
    before = snapshot(api.db)

    def chunks():  # type: ignore[no-untyped-def]
        yield _padded(5_000)

    assert_problem(_raw_post(small_limit, api.finance.key, url, chunks()), 413, "request_too_large")
    assert snapshot(api.db) == before


# --- idempotency keys -------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["k" * 256, "k" * 10_000, ""])
def test_an_idempotency_key_that_is_empty_or_over_255_characters_is_422(api, acct, key):
    before = snapshot(api.db)
    r = api.finance.post(
        f"/v1/accounts/{acct['id']}/deposits",
        json={"amount": 1, "payment_reference": "p"},
        headers={"Idempotency-Key": key},
    )
    body = assert_problem(r, 422, "invalid_idempotency_key")
    assert "255" in body["detail"]
    assert snapshot(api.db) == before


def test_an_idempotency_key_of_255_characters_is_accepted(api, acct):
    headers = {"Idempotency-Key": "k" * 255}
    body = {"amount": 1, "payment_reference": "p"}
    first = api.finance.post(f"/v1/accounts/{acct['id']}/deposits", json=body, headers=headers)
    again = api.finance.post(f"/v1/accounts/{acct['id']}/deposits", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()


# --- expiry -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ahead", [timedelta(microseconds=1), timedelta(days=365)])
def test_an_expiry_run_as_of_the_future_is_422_as_of_in_future(api, acct, clock, ahead):
    grant(api.db, acct["id"], expires_at=clock.now() + timedelta(hours=1))
    before = snapshot(api.db)
    r = api.finance.post("/v1/expirations/run", json={"as_of": rfc3339(clock.now() + ahead)})
    body = assert_problem(r, 422, "as_of_in_future")
    assert "after now" in body["detail"]
    assert snapshot(api.db) == before
    r = api.finance.post("/v1/expirations/run", json={"as_of": rfc3339(clock.now())})
    assert r.status_code == 200 and r.json()["expired_lots"] == 0


# --- account transitions and closed accounts --------------------------------------------------


def test_reinstating_an_active_account_is_409_invalid_account_transition(api, acct):
    before = snapshot(api.db)
    r = api.finance.post(f"/v1/accounts/{acct['id']}/reinstate")
    body = assert_problem(r, 409, "invalid_account_transition")
    assert "active" in body["detail"]
    assert snapshot(api.db) == before


@pytest.fixture
def closed(api, db, clock):  # type: ignore[no-untyped-def]
    """An account closed the way the contract closes one: a paid refund, with the server set to
    close accounts on refund (ADLEDGER_REFUND_CLOSES_ACCOUNT)."""
    acct = make_account(db, cash=10_000)
    grant(db, acct["id"], amount=500)
    closing = Database(
        Settings(database_url=db.settings.database_url, refund_closes_account=True), clock
    )
    try:
        with TestClient(create_app(db=closing, migrate=False)) as client:
            from conftest import Api

            staff = Api(client, closing)
            advertiser = staff.advertiser(acct["business_id"])
            r = advertiser.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": 10_000})
            assert r.status_code == 201, r.text
            rid = r.json()["id"]
            assert staff.finance.post(f"/v1/refunds/{rid}/approve").status_code == 200
            assert staff.finance.post(f"/v1/refunds/{rid}/settle").json()["status"] == "paid"
    finally:
        closing.dispose()
    assert api.finance.get(f"/v1/accounts/{acct['id']}").json()["status"] == "closed"
    return acct


@pytest.mark.parametrize("action", ["suspend", "reinstate"])
def test_a_closed_account_can_be_neither_suspended_nor_reinstated(api, closed, action):
    before = snapshot(api.db)
    r = api.finance.post(f"/v1/accounts/{closed['id']}/{action}")
    assert "closed" in assert_problem(r, 409, "invalid_account_transition")["detail"]
    assert snapshot(api.db) == before


def test_a_closed_account_takes_no_deposit_409_account_closed(api, closed):
    before = snapshot(api.db)
    r = api.finance.post(
        f"/v1/accounts/{closed['id']}/deposits", json={"amount": 100, "payment_reference": "p"}
    )
    assert "closed" in assert_problem(r, 409, "account_closed")["detail"]
    assert snapshot(api.db) == before


def test_a_closed_account_takes_no_credit_409_account_closed(api, closed, clock):
    before = snapshot(api.db)
    r = api.finance.post(f"/v1/accounts/{closed['id']}/credits", json=credit_body(clock))
    assert "closed" in assert_problem(r, 409, "account_closed")["detail"]
    assert snapshot(api.db) == before


def test_spend_on_a_closed_account_is_rejected_account_closed(api, closed):
    before = snapshot(api.db)
    r = api.ingest.post("/v1/spend", json={"events": [event("ev_closed", closed["id"], 100)]})
    assert r.status_code == 200, r.text
    assert r.json()["results"] == [
        {
            "event_id": "ev_closed",
            "status": "rejected",
            "code": "account_closed",
            "credit_used": 0,
            "cash_used": 0,
            "unfunded": 0,
            "lots": [],
        }
    ]
    assert snapshot(api.db) == before


def test_a_closed_account_takes_no_refund_request_409_account_closed(api, closed):
    advertiser = api.advertiser(closed["business_id"])
    before = snapshot(api.db)
    r = advertiser.post(f"/v1/accounts/{closed['id']}/refunds", json={"amount": 1})
    assert_problem(r, 409, "account_closed")
    assert snapshot(api.db) == before


# --- deposits ---------------------------------------------------------------------------------


def test_an_unknown_deposit_is_404_deposit_not_found(api, acct):
    before = snapshot(api.db)
    r = api.finance.post("/v1/deposits/dep_nope/reverse", json={"reason": "chargeback"})
    assert "dep_nope" in assert_problem(r, 404, "deposit_not_found")["detail"]
    assert_problem(api.finance.get("/v1/deposits/dep_nope"), 404, "deposit_not_found")
    assert snapshot(api.db) == before


def test_another_businesss_deposit_is_404_deposit_not_found_for_an_advertiser(api, acct):
    dep = deposit(api.db, acct["id"], amount=100)
    stranger = api.advertiser(make_business(api.db)["id"])
    assert_problem(stranger.get(f"/v1/deposits/{dep['id']}"), 404, "deposit_not_found")


def test_reversing_a_deposit_twice_is_409_deposit_already_reversed(api, acct):
    dep = deposit(api.db, acct["id"], amount=2_000)
    first = api.finance.post(f"/v1/deposits/{dep['id']}/reverse", json={"reason": "chargeback"})
    assert first.status_code == 200, first.text
    before = snapshot(api.db)
    r = api.admin.post(f"/v1/deposits/{dep['id']}/reverse", json={"reason": "again"})
    assert dep["id"] in assert_problem(r, 409, "deposit_already_reversed")["detail"]
    assert snapshot(api.db) == before


# --- keys shown once ---------------------------------------------------------------------------


def test_repeating_a_key_creation_with_its_idempotency_key_is_409_response_shown_once(api):
    headers = {"Idempotency-Key": "make-fin"}
    body = {"role": "finance", "name": "Fin"}
    first = api.admin.post("/v1/api-keys", json=body, headers=headers)
    assert first.status_code == 201, first.text
    made = first.json()["key"]
    before = snapshot(api.db)
    again = api.admin.post("/v1/api-keys", json=body, headers=headers)
    problem = assert_problem(again, 409, "response_shown_once")
    assert made not in again.text and "new Idempotency-Key" in problem["detail"]
    assert snapshot(api.db) == before  # no second key
    assert not any(made in row for rows in before.values() for row in rows)  # never stored


# --- lots and refunds -------------------------------------------------------------------------


def test_voiding_a_lot_twice_is_409_lot_not_active(api, acct):
    lot = grant(api.db, acct["id"], amount=700)["id"]
    assert api.finance.post(f"/v1/credits/{lot}/void", json={"reason": "abuse"}).status_code == 200
    before = snapshot(api.db)
    r = api.finance.post(f"/v1/credits/{lot}/void", json={"reason": "again"})
    body = assert_problem(r, 409, "lot_not_active")
    assert lot in body["detail"] and "voided" in body["detail"]
    assert snapshot(api.db) == before


@pytest.mark.parametrize("role", ["admin", "finance"])
def test_approving_a_refund_with_the_key_that_requested_it_is_403(api, acct, role):
    caller = api.caller(role, name="requester")
    r = caller.post(f"/v1/accounts/{acct['id']}/refunds", json={"amount": 1_000})
    assert r.status_code == 201, r.text
    before = snapshot(api.db)
    denied = caller.post(f"/v1/refunds/{r.json()['id']}/approve")
    body = assert_problem(denied, 403, "self_approval_forbidden")
    assert "requested" in body["detail"]
    assert snapshot(api.db) == before


# --- a crash ----------------------------------------------------------------------------------


def test_an_unexpected_error_is_a_500_problem_that_reveals_nothing(api, acct, monkeypatch):
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret connection string postgresql://u:pw@db")

    monkeypatch.setattr(account_service, "get_account", boom)
    r = api.finance.get(f"/v1/accounts/{acct['id']}")
    assert_problem(r, 500, "internal_error")
    assert "secret" not in r.text and "pw@" not in r.text


# --- every code is tested, or listed here with the reason it can't be over HTTP ---------------

# >>> not reachable over HTTP (this block is not counted as a use of the codes)
NOT_REACHABLE_OVER_HTTP = {
    "error": "the root class's placeholder; every raise names a family or a precise code",
    "conflict": "a family's default; nothing raises a bare Conflict",
    "invalid_amount": "the request schema refuses a bad amount first (validation_error); "
    "domain.money raises it, tested in test_domain_money",
    "unbalanced_transaction": "internal: a programming error, tested in test_domain_ledger",
    "invalid_status": "the routes' schemas refuse an unknown status first (validation_error)",
    "invalid_kind": "the routes' schemas refuse an unknown transaction or promotion kind first "
    "(validation_error)",
    "invalid_priority": "the route's schema refuses a bad priority first (validation_error)",
    "invalid_role": "the route's schema refuses an unknown role first (validation_error); the "
    "CLI reaches it",
    "http_error": "the fallback for Starlette statuses other than 401/403/404/405/413; none is "
    "reachable today",
    "redemption_refused": "§5: the family of the redemption refusals; every refusal names a "
    "precise code (code_invalid, code_used, ...)",
}
# <<< not reachable over HTTP


def _subclasses(cls: type) -> list[type]:
    return [cls, *(s for sub in cls.__subclasses__() for s in _subclasses(sub))]


def _codes() -> list[str]:
    """Every code adledger can put in a problem or a spend result."""
    codes = {c.code for c in _subclasses(errors.AdledgerError)}
    codes |= {code for code, _ in problems._STATUS_CODES.values()}
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        codes |= set(re.findall(r'\bcode="([a-z_]+)"', text))  # InvalidInput(..., code="x")
        codes |= set(re.findall(r'_rejected\([^,()]+, "([a-z_]+)"\)', text))  # spend results
        codes |= set(re.findall(r'problem\(\s*\d{3},\s*"([a-z_]+)"', text))  # problems.problem
        codes |= set(re.findall(r'\(\s*"([a-z_]+)",\s*"[A-Z]', text))  # ("code", "Title")
    return sorted(codes)


def _test_sources() -> str:
    texts = []
    for path in sorted(TESTS.glob("*.py")):
        text = path.read_text()
        if path.name == Path(__file__).name:
            start = text.index("# >>> not reachable")
            end = text.index("# <<< not reachable")
            text = text[:start] + text[end:]
        texts.append(text)
    return "\n".join(texts)


TEST_SOURCES = _test_sources()


@pytest.mark.parametrize("code", _codes())
def test_every_error_code_is_tested_or_listed_as_not_reachable_over_http(code):
    used = f'"{code}"' in TEST_SOURCES or f"'{code}'" in TEST_SOURCES
    assert used or code in NOT_REACHABLE_OVER_HTTP, (
        f"error code {code!r} is raised by adledger but no test names it: add an HTTP test, or "
        "list it in NOT_REACHABLE_OVER_HTTP (test_error_codes.py) with the reason"
    )


def test_the_code_registry_finds_the_codes_of_every_layer():
    codes = set(_codes())
    assert {"lot_not_found", "invalid_limit", "request_too_large", "event_id_conflict"} <= codes
    assert {"internal_error", "validation_error", "method_not_allowed", "http_error"} <= codes
