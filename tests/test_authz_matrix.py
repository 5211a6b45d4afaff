"""Authorization, cell by cell: every operation of the OpenAPI document × every role, and × an
advertiser of ANOTHER business (CONTRACT.md §2 auth, §3 roles).

The operations and the roles allowed on them come from `test_api_surface.py` (its `ROLES` table,
checked there against the document's `x-roles`); an operation of the document missing from that
table fails here too. The world is one business with a funded account, a lot, a deposit, a
pending refund, a promotion and a code; each allowed cell runs in a world of its own, and the
refused cells of an operation share one (they must change nothing). A cell expects:

* a role that may call the operation: the status of an allowed call (`Op.status`);
* a role that may not: 403 `forbidden`, and nothing changes;
* an advertiser of another business ("stranger"): 403 where advertisers may not call it; else
  404 with the object's `*_not_found` code for an object of the world in the path; else (a list)
  200 with none of the world's objects. Never a 2xx that touches or shows the world.

Then request bodies: a field that only the server sets (`status`, `remaining`, `id`,
`requested_by`, `created_at`, …) is an unknown field in every POST body, refused with 422, and
nothing changes.
"""

from __future__ import annotations

from typing import Any

import pytest

import test_api_surface
from api_support import assert_problem, snapshot
from factories import make_account
from test_api_surface import (
    NOT_FOUND_CODES,
    OPENAPI,
    OPERATIONS,
    ROLE_NAMES,
    ROLES,
    World,
    _allowed,
    _op,
    _resolve,
    call,
)
from tests_support import event

world = test_api_surface.world  # the API surface's world, as a fixture of this module too

STRANGER = "stranger"
# (An operation missing from ROLES has no allowed cell; the refused test fails for it.)
ALLOWED_CELLS = [
    (o, role) for o in OPERATIONS if o in ROLES for role in ROLE_NAMES if role in _allowed(ROLES[o])
]


def _stranger(api: Any) -> Any:
    """An advertiser key of a business of its own, with an account of its own."""
    other = make_account(api.db, name="Stranger's account")
    return api.advertiser(other["business_id"])


def _actor(api: Any, w: World, actor: str) -> Any:
    if actor == STRANGER:
        return _stranger(api)
    return {"admin": api.admin, "finance": api.finance, "ingest": api.ingest}.get(
        actor, w.advertiser
    )


def _world_ids(w: World) -> set[str]:
    """Every id of the world's objects that a stranger must never see."""
    return {v for k, v in w.params.items() if k != "code"} | {w.advertiser.key_id}


def stranger_expects(operation: tuple[str, str]) -> tuple[int, str | None]:
    """What an advertiser of another business gets from `operation` in the world."""
    op = _op(operation)
    if "advertiser" not in op.roles:
        return 403, "forbidden"
    for name, code in NOT_FOUND_CODES.items():
        if "{" + name + "}" in operation[1]:
            return 404, code
    return 200, None  # a list: its own business's objects only


def _leaks(r: Any, w: World) -> list[str]:
    return sorted(i for i in _world_ids(w) if i in r.text)


# --- the matrix ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation, role", ALLOWED_CELLS, ids=[f"{m} {p} as {r}" for (m, p), r in ALLOWED_CELLS]
)
def test_a_role_that_may_call_an_operation_gets_the_answer_of_an_allowed_call(
    api, world, operation, role
):
    """Each allowed cell in a world of its own: the exact status, not merely "not 403"."""
    op = _op(operation)
    r = call(_actor(api, world, role), operation, world)
    assert r.status_code == op.status, f"{role}: {r.status_code} {r.text}"


@pytest.mark.parametrize("operation", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_the_other_roles_and_an_advertiser_of_another_business_are_refused(api, world, operation):
    """The refused cells of the row: each role that may not call it gets 403; a stranger gets
    403, or 404 with the object's code, or a list without the world; nothing changes."""
    op = _op(operation)  # fails for an operation of the document missing from ROLES
    stranger = _stranger(api)
    before = snapshot(api.db)
    for role in ROLE_NAMES:
        if role not in _allowed(op):
            r = call(_actor(api, world, role), operation, world)
            assert role in assert_problem(r, 403, "forbidden")["detail"]
    r = call(stranger, operation, world)
    status, code = stranger_expects(operation)
    if status == 200:
        assert r.status_code == 200, r.text
        assert not _leaks(r, world), f"another business's objects shown: {_leaks(r, world)}"
    else:
        assert_problem(r, status, code)
    assert snapshot(api.db) == before, "a refused request changed something"


def test_no_request_of_an_advertiser_succeeds_on_another_businesss_objects(api, world):
    """Every operation, and the variants that name the world's objects elsewhere than in the
    path, sent by an advertiser of another business: the count of cross-tenant successes (a 2xx
    that changed the world or showed any of its ids) is 0."""
    stranger = _stranger(api)
    biz, acct = world.params["business_id"], world.params["account_id"]
    refund = world.params["refund_id"]
    requests: list[tuple[str, Any]] = [
        (f"{m} {p}", lambda o=(m, p): call(stranger, o, world)) for m, p in OPERATIONS
    ]
    requests += [
        (
            "accounts of the world's business",
            lambda: stranger.get("/v1/accounts", params={"business_id": biz}),
        ),
        ("pending refunds", lambda: stranger.get("/v1/refunds", params={"status": "pending"})),
        ("refunds, 500 a page", lambda: stranger.get("/v1/refunds", params={"limit": 500})),
        ("accounts, 500 a page", lambda: stranger.get("/v1/accounts", params={"limit": 500})),
        (
            "a refund naming the world's business",
            lambda: stranger.post(
                f"/v1/accounts/{acct}/refunds", json={"amount": 100, "business_id": biz}
            ),
        ),
        (
            "an account for the world's business",
            lambda: stranger.post(
                "/v1/accounts", json={"name": "mine", "currency": "USD", "business_id": biz}
            ),
        ),
        (
            "a key for the world's business",
            lambda: stranger.post(
                "/v1/api-keys", json={"role": "advertiser", "name": "mine", "business_id": biz}
            ),
        ),
        (
            "spend on the world's account",
            lambda: stranger.post("/v1/spend", json={"events": [event("ev_x", acct, 100)]}),
        ),
        (
            "canceling the world's refund with a reason",
            lambda: stranger.post(f"/v1/refunds/{refund}/cancel", json={"reason": "mine"}),
        ),
    ]
    before = snapshot(api.db)
    crossed, crashed = [], []
    for what, send in requests:
        r = send()
        changed = snapshot(api.db) != before
        if 200 <= r.status_code < 300 and (_leaks(r, world) or changed):
            crossed.append(f"{what}: {r.status_code} {r.text[:200]}")
        if changed:
            crossed.append(f"{what}: changed the database ({r.status_code})")
        if r.status_code >= 500:
            crashed.append(f"{what}: {r.status_code}")
    assert len(crossed) == 0, "cross-tenant successes:\n" + "\n".join(crossed)
    assert not crashed, crashed
    assert len(requests) == len(OPERATIONS) + 9


def test_an_advertiser_sees_its_own_objects_and_the_stranger_none_of_them(api, world):
    """The 200 lists of the matrix are not empty by accident: the world's own advertiser sees
    the world's objects in them."""
    stranger = _stranger(api)
    for path in ("/v1/accounts", "/v1/refunds"):
        own = world.advertiser.get(path)
        assert own.status_code == 200 and own.json()["data"], own.text
        assert world.params["account_id"] in own.text
        other = stranger.get(path)
        assert other.status_code == 200 and not _leaks(other, world), other.text


# --- fields a client must not set ---------------------------------------------------------------

SERVER_SET: dict[str, Any] = {
    "id": "acct_01KBXQ3ZJ8E4M6R2T9V5W7Y1NA",
    "status": "paid",
    "remaining": 1_000_000,
    "original": 1_000_000,
    "source": "coupon",
    "account_id": "acct_01KBXQ3ZJ8E4M6R2T9V5W7Y1NA",
    "business_id": "biz_01KBXQ3ZJ8E4M6R2T9V5W7Y1NA",
    "currency": "USD",
    "requested_by": "key_01KBXQ3ZJ8E4M6R2T9V5W7Y1NA",
    "decided_by": "key_01KBXQ3ZJ8E4M6R2T9V5W7Y1NA",
    "requested_at": "2026-01-01T00:00:00Z",
    "decided_at": "2026-01-01T00:00:00Z",
    "completed_at": "2026-01-01T00:00:00Z",
    "created_at": "2026-01-01T00:00:00Z",
    "reversed_at": "2026-01-01T00:00:00Z",
    "revoked_at": "2026-01-01T00:00:00Z",
    "key": "adl_chosen_by_the_client",
    "key_hash": "0" * 64,
    "lot_id": "lot_01KBXQ3ZJ8E4M6R2T9V5W7Y1NA",
    "deposit_id": "dep_01KBXQ3ZJ8E4M6R2T9V5W7Y1NA",
    "promotion_id": "promo_01KBXQ3ZJ8E4M6R2T9V5W7Y1NA",
    "redemptions": 0,
    "budget_committed": 0,
    "cash_available": 1_000_000,
    "debt": 0,
}
POSTS = [(m, p) for m, p in OPERATIONS if m == "POST"]


def _body_fields(operation: tuple[str, str]) -> set[str]:
    """The fields the document declares for the operation's JSON body."""
    method, path = operation
    body = OPENAPI["paths"][path][method.lower()].get("requestBody")
    if body is None:
        return set()
    schema = body["content"]["application/json"]
    options = schema["schema"].get("anyOf", [schema["schema"]])
    return {f for o in options for f in _resolve(o).get("properties", {})}


def _primary(api: Any, w: World, operation: tuple[str, str]) -> Any:
    op = _op(operation)
    role = next((r for r in ("ingest", "advertiser", "finance") if r in op.roles), "admin")
    return _actor(api, w, role)


def _valid_body(operation: tuple[str, str], w: World) -> dict[str, Any]:
    op = _op(operation)
    return dict(op.body(w)) if op.body is not None else {}


@pytest.mark.parametrize("operation", POSTS, ids=[f"{m} {p}" for m, p in POSTS])
def test_a_field_only_the_server_sets_is_refused_in_every_post_body(api, world, operation):
    fields = [f for f in SERVER_SET if f not in _body_fields(operation)]
    assert fields
    who = _primary(api, world, operation)
    method, path = operation
    before = snapshot(api.db)
    for field in fields:
        body = {**_valid_body(operation, world), field: SERVER_SET[field]}
        r = who.client.post(
            world.url(path), json=body, headers={"Authorization": f"Bearer {who.key}"}
        )
        problem = assert_problem(r, 422, "validation_error")
        assert {"loc": ["body", field], "type": "extra_forbidden"}.items() <= {
            "loc": problem["errors"][0]["loc"],
            "type": problem["errors"][0]["type"],
        }.items(), (field, problem)
        assert snapshot(api.db) == before, f"{field}: something changed"
    # The same body without the field is accepted: the field alone was the reason.
    r = call(who, operation, world)
    assert r.status_code == _op(operation).status, r.text


# The actions that take no fields (suspend, reinstate, end a promotion).
BODILESS_POSTS = [o for o in POSTS if not _body_fields(o)]


@pytest.mark.parametrize("operation", BODILESS_POSTS, ids=[f"{m} {p}" for m, p in BODILESS_POSTS])
@pytest.mark.parametrize("field", ["status", "ends_at", "reason", "suspended_reason"])
def test_a_body_sent_to_a_post_that_takes_none_is_refused_not_ignored(api, world, operation, field):
    """`POST /v1/promotions/{id}/end {"ends_at": <next year>}` must not end the promotion now
    while the client believes it set a date: a field is refused here as in every other body."""
    assert len(BODILESS_POSTS) >= 3, BODILESS_POSTS
    who = _primary(api, world, operation)
    before = snapshot(api.db)
    r = who.post(
        world.url(operation[1]), json={field: SERVER_SET.get(field, "2027-01-01T00:00:00Z")}
    )
    problem = assert_problem(r, 422, "validation_error")
    assert problem["errors"][0]["loc"] == ["body", field], problem
    assert snapshot(api.db) == before
    assert call(who, operation, world).status_code == _op(operation).status  # without: as before


NESTED = {
    "a spend event": (
        ("POST", "/v1/spend"),
        lambda w, field, value: {
            "events": [{**event("ev_nested", w.params["account_id"], 10), field: value}]
        },
        ("status", "credit_used", "cash_used", "unfunded", "lots", "id", "created_at"),
    ),
    "a promotion's reward": (
        ("POST", "/v1/promotions"),
        lambda w, field, value: {
            **_valid_body(("POST", "/v1/promotions"), w),
            "reward": {"amount": 100, field: value},
        },
        ("granted", "remaining", "budget_committed", "status"),
    ),
    "a promotion's eligibility": (
        ("POST", "/v1/promotions"),
        lambda w, field, value: {
            **_valid_body(("POST", "/v1/promotions"), w),
            "eligibility": {"once_per_business": True, field: value},
        },
        ("redemptions", "business_id", "status"),
    ),
}


@pytest.mark.parametrize("where", list(NESTED))
def test_a_field_only_the_server_sets_is_refused_inside_nested_objects(api, world, where):
    operation, build, fields = NESTED[where]
    who = _primary(api, world, operation)
    before = snapshot(api.db)
    for field in fields:
        r = who.post(operation[1], json=build(world, field, 1))
        problem = assert_problem(r, 422, "validation_error")
        assert problem["errors"][0]["loc"][-1] == field and (
            problem["errors"][0]["type"] == "extra_forbidden"
        ), problem
    assert snapshot(api.db) == before


def test_requested_by_and_decided_by_are_always_the_calling_keys(api, world):
    """They can't be set in a body (above), nor in the query: they are the keys that called."""
    acct = world.params["account_id"]
    r = world.advertiser.post(
        f"/v1/accounts/{acct}/refunds?requested_by=key_someone_else", json={"amount": 100}
    )
    assert r.status_code == 201, r.text
    assert r.json()["requested_by"] == world.advertiser.key_id
    decided = api.finance.post(f"/v1/refunds/{r.json()['id']}/approve?decided_by=key_someone")
    assert decided.status_code == 200, decided.text
    assert decided.json()["decided_by"] == api.finance.key_id


def test_an_advertiser_creates_nothing_for_another_business(api, world):
    """Every POST that creates an object (201 in the matrix), sent by a stranger at the world:
    403 or 404, and not a row more."""
    stranger = _stranger(api)
    before = snapshot(api.db)
    creating = [o for o in OPERATIONS if o[0] == "POST" and _op(o).status == 201]
    assert len(creating) >= 8, creating
    for operation in creating:
        r = call(stranger, operation, world)
        assert r.status_code in (403, 404), f"{operation}: {r.status_code} {r.text}"
    # Not even for its own business: accounts, businesses and keys are staff's to make.
    own = stranger.business_id
    r = stranger.post("/v1/accounts", json={"name": "x", "currency": "USD", "business_id": own})
    assert_problem(r, 403, "forbidden")
    r = stranger.post("/v1/api-keys", json={"role": "advertiser", "name": "x", "business_id": own})
    assert_problem(r, 403, "forbidden")
    assert snapshot(api.db) == before
