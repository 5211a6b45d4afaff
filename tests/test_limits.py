"""Resource limits: what is too big, too long, too deep or too many is a clear 4xx problem, never
a 500 or a crash, and nothing changes. After each, the server still answers `/healthz` and a
normal request normally.

The limits: request bodies 8 MiB (413 `request_too_large`); 1–10,000 spend events a call; list
`limit` 1–500; names 200 characters, reasons 500, references, event and campaign ids 200, ids
40, codes 64, Idempotency-Key 255; no NUL character in any string (PostgreSQL can't store one).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from adledger.config import Settings
from adledger.http.encoding import rfc3339
from adledger.service import promotions, refunds
from api_support import assert_problem, snapshot
from factories import deposit, grant, make_account
from test_api_surface import OPENAPI, OPERATIONS
from tests_support import event

MB = 1_000_000


@pytest.fixture
def things(api: Any) -> dict[str, Any]:
    """An account with cash, a deposit, a lot, a pending refund and a promotion."""
    acct = make_account(api.db, cash=10_000)
    now = api.db.clock.now()
    return {
        "acct": acct["id"],
        "biz": acct["business_id"],
        "deposit": deposit(api.db, acct["id"], amount=500, reference="pay_limits")["id"],
        "lot": grant(api.db, acct["id"], amount=1_000)["id"],
        "refund": api.db.run(
            refunds.request_refund, acct["id"], amount=100, requested_by=api.finance.key_id
        )["id"],
        "promo": api.db.run(
            promotions.create_promotion,
            name="Limits",
            kind="coupon",
            currency="USD",
            reward={"amount": 100},
            credit_valid_days=30,
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=30),
        )["id"],
        "now": now,
        "advertiser": api.advertiser(acct["business_id"]),
    }


def still_serving(api: Any) -> None:
    """The server answers a liveness check and an ordinary read and write, as before."""
    health = api.client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    listed = api.finance.get("/v1/accounts", params={"limit": 1})
    assert listed.status_code == 200, listed.text
    made = api.finance.post("/v1/businesses", json={"name": "After the storm"})
    assert made.status_code == 201, made.text


def raw_post(api: Any, url: str, content: bytes, key: str | None = None) -> Any:
    return api.client.post(
        url,
        content=content,
        headers={
            "Authorization": f"Bearer {key or api.finance.key}",
            "Content-Type": "application/json",
        },
    )


# --- bodies and batches -------------------------------------------------------------------------


def test_a_10_mb_string_is_413_before_it_is_read_and_the_server_carries_on(api, things):
    before = snapshot(api.db)
    r = api.finance.post("/v1/businesses", json={"name": "x" * (10 * MB)})
    body = assert_problem(r, 413, "request_too_large")
    assert str(Settings().max_body_bytes) in body["detail"]
    assert snapshot(api.db) == before
    still_serving(api)


def test_a_batch_of_10_001_events_is_422_and_none_is_recorded(api, things):
    events = [event(f"ev-{i}", things["acct"], 1) for i in range(10_001)]
    before = snapshot(api.db)
    r = api.ingest.post("/v1/spend", json={"events": events})
    problem = assert_problem(r, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["body", "events"], problem
    assert "10000" in problem["detail"].replace(",", ""), problem["detail"]
    assert snapshot(api.db) == before
    still_serving(api)


def test_a_batch_of_10_000_events_is_accepted(api, things):
    events = [event(f"ev-{i}", things["acct"], 1) for i in range(10_000)]
    r = api.ingest.post("/v1/spend", json={"events": events})
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["results"]) == 10_000
    still_serving(api)


def test_an_empty_batch_is_422(api, things):
    before = snapshot(api.db)
    assert_problem(api.ingest.post("/v1/spend", json={"events": []}), 422, "validation_error")
    assert snapshot(api.db) == before


# --- list limits --------------------------------------------------------------------------------

LISTS = [
    path
    for method, path in OPERATIONS
    if method == "GET"
    and any(p["name"] == "limit" for p in OPENAPI["paths"][path]["get"].get("parameters", []))
]


def _list_url(path: str, t: dict[str, Any]) -> str:
    return path.format(account_id=t["acct"], promotion_id=t["promo"])


def test_every_list_of_the_document_is_covered():
    assert len(LISTS) >= 8, LISTS


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    "limit, code",
    [
        ("501", "invalid_limit"),
        ("1000000", "invalid_limit"),
        (str(10**30), "invalid_limit"),
        ("9" * 5_000, "validation_error"),  # past Python's int-from-text limit
        ("0", "invalid_limit"),
    ],
    ids=["501", "10^6", "10^30", "5000-digits", "0"],
)
def test_a_list_limit_over_500_is_422_on_every_list(api, things, path, limit, code):
    r = api.admin.get(_list_url(path, things), params={"limit": limit})
    assert_problem(r, 422, code)
    still_serving(api)


@pytest.mark.parametrize("path", LISTS)
def test_a_list_limit_of_500_is_accepted_on_every_list(api, things, path):
    r = api.admin.get(_list_url(path, things), params={"limit": "500"})
    assert r.status_code == 200, r.text


# --- string lengths -----------------------------------------------------------------------------


def _credit(t: dict[str, Any], **change: Any) -> dict[str, Any]:
    body = {"amount": 100, "expires_at": rfc3339(t["now"] + timedelta(days=30)), "reason": "r"}
    return body | change


def _promotion(t: dict[str, Any], **change: Any) -> dict[str, Any]:
    body = {
        "name": "P",
        "kind": "coupon",
        "currency": "USD",
        "reward": {"amount": 100},
        "credit_valid_days": 30,
        "starts_at": rfc3339(t["now"]),
        "ends_at": rfc3339(t["now"] + timedelta(days=10)),
    }
    return body | change


def _spend(t: dict[str, Any], **change: Any) -> dict[str, Any]:
    return {"events": [event("ev-long", t["acct"], 10) | change]}


# (who, url, body with the string `s` in the field, the field's error location, its limit)
Body = Callable[[dict[str, Any], str], dict[str, Any]]
FIELDS: dict[str, tuple[str, str, Body, list[str | int], int]] = {
    "business name": ("finance", "/v1/businesses", lambda t, s: {"name": s}, ["name"], 200),
    "account name": (
        "finance",
        "/v1/accounts",
        lambda t, s: {"name": s, "currency": "USD"},
        ["name"],
        200,
    ),
    "key name": (
        "admin",
        "/v1/api-keys",
        lambda t, s: {"role": "ingest", "name": s},
        ["name"],
        200,
    ),
    "promotion name": (
        "finance",
        "/v1/promotions",
        lambda t, s: _promotion(t, name=s),
        ["name"],
        200,
    ),
    "credit reason": (
        "finance",
        "/v1/accounts/{acct}/credits",
        lambda t, s: _credit(t, reason=s),
        ["reason"],
        500,
    ),
    "credit campaign_id": (
        "finance",
        "/v1/accounts/{acct}/credits",
        lambda t, s: _credit(t, campaign_id=s),
        ["campaign_id"],
        200,
    ),
    "void reason": (
        "finance",
        "/v1/credits/{lot}/void",
        lambda t, s: {"reason": s},
        ["reason"],
        500,
    ),
    "reversal reason": (
        "finance",
        "/v1/deposits/{deposit}/reverse",
        lambda t, s: {"reason": s},
        ["reason"],
        500,
    ),
    "payment_reference": (
        "finance",
        "/v1/accounts/{acct}/deposits",
        lambda t, s: {"amount": 1, "payment_reference": s},
        ["payment_reference"],
        200,
    ),
    "payment_fingerprint": (
        "finance",
        "/v1/accounts/{acct}/deposits",
        lambda t, s: {"amount": 1, "payment_reference": "p", "payment_fingerprint": s},
        ["payment_fingerprint"],
        200,
    ),
    "refund reason": (
        "advertiser",
        "/v1/accounts/{acct}/refunds",
        lambda t, s: {"amount": 1, "reason": s},
        ["reason"],
        500,
    ),
    "rejection reason": (
        "finance",
        "/v1/refunds/{refund}/reject",
        lambda t, s: {"reason": s},
        ["reason"],
        500,
    ),
    "approval note": (
        "admin",
        "/v1/refunds/{refund}/approve",
        lambda t, s: {"reason": s},
        ["reason"],
        500,
    ),
    "event_id": (
        "ingest",
        "/v1/spend",
        lambda t, s: _spend(t, event_id=s),
        ["events", 0, "event_id"],
        200,
    ),
    "event campaign_id": (
        "ingest",
        "/v1/spend",
        lambda t, s: _spend(t, campaign_id=s),
        ["events", 0, "campaign_id"],
        200,
    ),
    "event account_id": (
        "ingest",
        "/v1/spend",
        lambda t, s: _spend(t, account_id=s),
        ["events", 0, "account_id"],
        40,
    ),
    "account business_id": (
        "finance",
        "/v1/accounts",
        lambda t, s: {"name": "a", "currency": "USD", "business_id": s},
        ["business_id"],
        40,
    ),
    "key business_id": (
        "admin",
        "/v1/api-keys",
        lambda t, s: {"role": "advertiser", "name": "a", "business_id": s},
        ["business_id"],
        40,
    ),
    "redemption code": (
        "advertiser",
        "/v1/accounts/{acct}/redemptions",
        lambda t, s: {"code": s},
        ["code"],
        64,
    ),
}


def _who(api: Any, t: dict[str, Any], role: str) -> Any:
    return t["advertiser"] if role == "advertiser" else getattr(api, role)


@pytest.mark.parametrize("field", list(FIELDS))
@pytest.mark.parametrize("length", ["limit+1", "7 MB"])
def test_a_string_over_its_limit_is_422_and_nothing_changes(api, things, field, length):
    role, url, build, loc, limit = FIELDS[field]
    text = "x" * (limit + 1 if length == "limit+1" else 7 * MB)
    before = snapshot(api.db)
    r = _who(api, things, role).post(url.format(**things), json=build(things, text))
    problem = assert_problem(r, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["body", *map(str, loc)], problem
    assert problem["errors"][0]["type"] == "string_too_long", problem
    assert len(r.content) < 10_000, "the refusal echoes the long string"
    assert snapshot(api.db) == before
    still_serving(api)


@pytest.mark.parametrize("field", [f for f in FIELDS if FIELDS[f][4] >= 200])
def test_a_string_at_its_limit_is_not_refused_for_its_length(api, things, field):
    role, url, build, loc, limit = FIELDS[field]
    r = _who(api, things, role).post(url.format(**things), json=build(things, "x" * limit))
    assert r.status_code < 500, r.text
    if r.status_code == 422:
        assert all(e["type"] != "string_too_long" for e in r.json()["errors"]), r.text


def test_a_reason_of_500_characters_is_kept_whole_and_the_history_cut_to_fit(api, things):
    """The history's description quotes the reason after words of its own; on PostgreSQL a
    500-character reason made it longer than its column and the change failed (500)."""
    reason = "r" * 500
    voided = api.finance.post(f"/v1/credits/{things['lot']}/void", json={"reason": reason})
    assert voided.status_code == 200, voided.text
    reversed_ = api.finance.post(
        f"/v1/deposits/{things['deposit']}/reverse", json={"reason": reason}
    )
    assert reversed_.status_code == 200 and reversed_.json()["reversal_reason"] == reason
    rejected = api.finance.post(f"/v1/refunds/{things['refund']}/reject", json={"reason": reason})
    assert rejected.status_code == 200 and rejected.json()["decision_reason"] == reason
    granted = api.finance.post(
        f"/v1/accounts/{things['acct']}/credits", json=_credit(things, reason=reason)
    )
    assert granted.status_code == 201, granted.text
    history = api.finance.get(f"/v1/accounts/{things['acct']}/transactions").json()["data"]
    quoting = [t["description"] for t in history if "rrrr" in t["description"]]
    assert len(quoting) == 4, quoting
    assert all(len(d) <= 500 and d.endswith("…") for d in quoting), [len(d) for d in quoting]


def test_a_7_mb_time_zone_is_422_invalid_timezone(api, things):
    before = snapshot(api.db)
    r = api.finance.post(
        "/v1/accounts", json={"name": "a", "currency": "USD", "timezone": "x" * (7 * MB)}
    )
    assert_problem(r, 422, "invalid_timezone")
    assert snapshot(api.db) == before
    still_serving(api)


def test_a_7_mb_idempotency_key_is_refused(api, things):
    before = snapshot(api.db)
    r = api.finance.post(
        "/v1/businesses", json={"name": "b"}, headers={"Idempotency-Key": "k" * (7 * MB)}
    )
    assert r.status_code in (413, 422, 431), r.status_code
    assert snapshot(api.db) == before
    still_serving(api)


# --- NUL characters ------------------------------------------------------------------------------


# A code's characters are normalised before it is looked up: a NUL is just a wrong code (409).
NUL_FIELDS = [f for f in FIELDS if f != "redemption code"]


@pytest.mark.parametrize("field", NUL_FIELDS)
def test_a_nul_character_in_any_string_of_a_body_is_422_on_every_backend(api, things, field):
    """PostgreSQL can't store U+0000 in text: such a string is refused up front (it was a 500 on
    PostgreSQL, and stored as is on SQLite)."""
    role, url, build, loc, _ = FIELDS[field]
    before = snapshot(api.db)
    r = _who(api, things, role).post(url.format(**things), json=build(things, "a\x00b"))
    problem = assert_problem(r, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["body", *map(str, loc)], problem
    assert snapshot(api.db) == before
    still_serving(api)


ID_PATHS = sorted(
    {
        (method, path)
        for method, path in OPERATIONS
        if "{" in path and method in ("GET", "POST", "DELETE")
    }
)


@pytest.mark.parametrize("method, path", ID_PATHS, ids=[f"{m} {p}" for m, p in ID_PATHS])
def test_a_nul_character_in_a_path_id_is_422(api, things, method, path):
    url = path.split("{")[0] + "acct_%00" + path.split("}", 1)[1]
    before = snapshot(api.db)
    r = api.admin.client.request(method, url, headers={"Authorization": f"Bearer {api.admin.key}"})
    problem = assert_problem(r, 422, "validation_error")
    assert problem["errors"][0]["loc"][0] == "path", problem
    assert snapshot(api.db) == before
    still_serving(api)


def test_a_nul_character_in_a_query_filter_or_an_idempotency_key_is_422(api, things):
    before = snapshot(api.db)
    r = api.finance.get("/v1/accounts", params={"business_id": "biz_\x00"})
    assert_problem(r, 422, "validation_error")
    r = api.finance.post("/v1/businesses", json={"name": "b"}, headers={"Idempotency-Key": "k\x00"})
    assert_problem(r, 422, "invalid_idempotency_key")
    assert snapshot(api.db) == before
    still_serving(api)


# --- bodies that can't be parsed ----------------------------------------------------------------

DEEP = 100_000
UNPARSABLE: dict[str, bytes] = {
    "100,000 nested arrays": b'{"name": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "100,000 nested objects": b'{"name": ' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}",
    "a 5,000-digit number": b'{"name": ' + b"9" * 5_000 + b"}",
    "invalid UTF-8": b'{"name": "\xff\xfe"}',
}


@pytest.mark.parametrize("what", list(UNPARSABLE))
def test_a_body_that_can_not_be_parsed_is_a_4xx_problem_and_the_server_carries_on(
    api, things, what
):
    before = snapshot(api.db)
    r = raw_post(api, "/v1/businesses", UNPARSABLE[what])
    assert 400 <= r.status_code < 500, f"{r.status_code} {r.text[:300]}"
    assert_problem(r, r.status_code)
    assert snapshot(api.db) == before
    still_serving(api)


@pytest.mark.parametrize("what", list(UNPARSABLE))
def test_a_body_that_can_not_be_parsed_is_a_documented_validation_error(api, things, what):
    r = raw_post(api, "/v1/businesses", UNPARSABLE[what])
    assert_problem(r, 422, "validation_error")


def test_truncated_json_is_a_422_validation_error(api, things):
    before = snapshot(api.db)
    assert_problem(raw_post(api, "/v1/businesses", b'{"name": "x'), 422, "validation_error")
    assert snapshot(api.db) == before


def test_nesting_the_parser_can_read_is_refused_by_the_schema(api, things):
    """900 levels parse (under Python's recursion limit), and the schema refuses the shape."""
    deep = b"[" * 900 + b"]" * 900
    before = snapshot(api.db)
    for url, content in [
        ("/v1/businesses", b'{"name": ' + deep + b"}"),
        ("/v1/spend", b'{"events": ' + deep + b"}"),
    ]:
        key = api.ingest.key if url == "/v1/spend" else None
        r = raw_post(api, url, content, key)
        assert r.status_code == 422, f"{url}: {r.status_code} {r.text[:300]}"
    assert snapshot(api.db) == before
    still_serving(api)


# --- many parameters, long URLs -----------------------------------------------------------------


def test_five_thousand_query_parameters_are_ignored_or_refused_never_a_crash(api, things):
    unknown = "&".join(f"p{i}=v{i}" for i in range(5_000))
    r = api.finance.get(f"/v1/accounts?{unknown}")
    assert r.status_code == 200, r.text[:300]
    repeated = "&".join("limit=5" for _ in range(5_000))
    r = api.finance.get(f"/v1/accounts?{repeated}")
    assert r.status_code in (200, 422), r.text[:300]
    before = snapshot(api.db)
    r = api.finance.post(f"/v1/accounts/{things['acct']}/suspend?{unknown}")
    assert r.status_code == 200, r.text[:300]
    assert r.json()["status"] == "suspended"
    still_serving(api)
    assert snapshot(api.db) != before  # the suspension happened: the query was just ignored


@pytest.mark.parametrize(
    "method, path, code",
    [
        ("GET", "/v1/accounts/{id}", "account_not_found"),
        ("GET", "/v1/accounts/{id}/balance", "account_not_found"),
        ("GET", "/v1/refunds/{id}", "refund_not_found"),
        ("GET", "/v1/deposits/{id}", "deposit_not_found"),
        ("POST", "/v1/accounts/{id}/suspend", "account_not_found"),
        ("POST", "/v1/refunds/{id}/approve", "refund_not_found"),
        ("DELETE", "/v1/api-keys/{id}", "api_key_not_found"),
    ],
)
def test_a_60_000_character_id_in_the_path_is_404(api, things, method, path, code):
    url = path.format(id="acct_" + "x" * 60_000)
    before = snapshot(api.db)
    r = api.admin.client.request(method, url, headers={"Authorization": f"Bearer {api.admin.key}"})
    assert_problem(r, 404, code)
    assert snapshot(api.db) == before
    still_serving(api)


# --- empty strings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role, status, code",
    [
        ("admin", 422, "validation_error"),
        ("finance", 422, "validation_error"),
        ("advertiser", 404, "business_not_found"),
    ],
)
def test_an_empty_business_id_on_a_new_key_is_refused_not_a_500(api, things, role, status, code):
    """Found by schemathesis: `business_id: ""` passed the service's falsy checks and reached
    the insert, where its foreign key failed (500)."""
    before = snapshot(api.db)
    r = api.admin.post("/v1/api-keys", json={"role": role, "name": "k", "business_id": ""})
    assert_problem(r, status, code)
    assert snapshot(api.db) == before
    r = api.finance.post("/v1/accounts", json={"name": "a", "currency": "USD", "business_id": ""})
    assert_problem(r, 404, "business_not_found")
    assert snapshot(api.db) == before
