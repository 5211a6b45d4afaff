"""The whole HTTP surface, operation by operation, as the app's own OpenAPI document lists it.

Every operation is checked for authentication (no key, an unknown key, a revoked key → 401) and
for the roles of CONTRACT.md §3 (a role that may not call it → 403; one that may is let through),
and its success response is checked against the schema the document declares. An operation that
appears in the document but not in `ROLES` below fails, so no endpoint goes untested.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adledger.config import Settings
from adledger.http.app import create_app
from adledger.http.encoding import rfc3339
from adledger.service import promotions, refunds
from api_support import assert_problem, snapshot
from factories import deposit, grant, make_account, make_business
from tests_support import event

HEALTH = ("GET", "/healthz")
METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}
ROLE_NAMES = ("admin", "finance", "ingest", "advertiser")


def _openapi() -> dict[str, Any]:
    never_opened = Path(tempfile.gettempdir()) / "adledger-openapi-never-opened.db"
    app = create_app(Settings(database_url=f"sqlite:///{never_opened}"), migrate=False)
    try:
        return app.openapi()
    finally:
        app.state.db.dispose()


OPENAPI = _openapi()
SERVED = sorted(
    (method.upper(), path)
    for path, item in OPENAPI["paths"].items()
    for method in item
    if method in METHODS
)
OPERATIONS = [op for op in SERVED if op != HEALTH]


# --- the world every operation is called in -------------------------------------------------


@dataclass
class World:
    """One business with a funded account, a lot, a pending refund and a spare key."""

    params: dict[str, str]
    advertiser: Any  # an advertiser key of the world's business
    now: datetime

    def url(self, path: str) -> str:
        return path.format_map(self.params)


@pytest.fixture
def world(api) -> World:  # type: ignore[no-untyped-def]
    now = api.db.clock.now()
    acct = make_account(api.db, cash=10_000)
    dep = deposit(api.db, acct["id"], amount=5_000, reference="pay_world")
    lot = grant(api.db, acct["id"], amount=2_000)
    requester = api.caller("advertiser", acct["business_id"], name="requester")
    refund = api.db.run(
        refunds.request_refund, acct["id"], amount=1_000, requested_by=requester.key_id
    )
    promo = api.db.run(
        promotions.create_promotion,
        name="Welcome",
        kind="coupon",
        currency="USD",
        reward={"amount": 500},
        credit_valid_days=30,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30),
    )
    codes = api.db.run(promotions.create_codes, promo["id"], count=1)["codes"]
    spare = api.caller("finance", name="spare")
    return World(
        params={
            "account_id": acct["id"],
            "business_id": acct["business_id"],
            "deposit_id": dep["id"],
            "lot_id": lot["id"],
            "refund_id": refund["id"],
            "key_id": spare.key_id,
            "promotion_id": promo["id"],
            "code": codes[0],
        },
        advertiser=api.advertiser(acct["business_id"]),
        now=now,
    )


# --- CONTRACT.md §3, operation by operation -------------------------------------------------

STAFF = frozenset({"finance"})
READERS = frozenset({"finance", "advertiser"})
ADMIN_ONLY: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Op:
    roles: frozenset[str]  # the roles besides admin (admin may do everything) that may call it
    why: str  # the contract's words
    status: int = 200  # the answer to an allowed call in a fresh world
    body: Callable[[World], Any] | None = None
    query: dict[str, str] | None = None


def _credit(w: World) -> dict[str, Any]:
    return {"amount": 100, "expires_at": rfc3339(w.now + timedelta(days=30)), "reason": "test"}


ROLES: dict[tuple[str, str], Op] = {
    ("POST", "/v1/api-keys"): Op(
        ADMIN_ONLY, "§3 admin: creating keys", 201, lambda w: {"role": "finance", "name": "new"}
    ),
    ("DELETE", "/v1/api-keys/{key_id}"): Op(ADMIN_ONLY, "§3 admin: revoking keys"),
    ("POST", "/v1/businesses"): Op(STAFF, "§3 finance: businesses", 201, lambda w: {"name": "B"}),
    ("POST", "/v1/accounts"): Op(
        STAFF,
        "§3 finance: accounts",
        201,
        lambda w: {"name": "A", "currency": "USD", "business_id": w.params["business_id"]},
    ),
    ("GET", "/v1/accounts"): Op(READERS, "§3 finance reads everything; advertiser: its accounts"),
    ("GET", "/v1/accounts/{account_id}"): Op(READERS, "§3 advertiser: read its accounts"),
    ("POST", "/v1/accounts/{account_id}/suspend"): Op(STAFF, "§3 finance: accounts"),
    ("POST", "/v1/accounts/{account_id}/reinstate"): Op(
        STAFF,
        "§3 finance: accounts",
        409,  # the world's account is active, not suspended
    ),
    ("POST", "/v1/accounts/{account_id}/deposits"): Op(
        STAFF,
        "§3 finance: deposits",
        201,
        lambda w: {"amount": 100, "payment_reference": "pay_surface"},
    ),
    # Not in the contract: an advertiser reads its own account's deposits (like its transactions).
    ("GET", "/v1/accounts/{account_id}/deposits"): Op(READERS, "§3 finance reads everything"),
    ("GET", "/v1/deposits/{deposit_id}"): Op(READERS, "§3 finance reads everything"),
    ("POST", "/v1/deposits/{deposit_id}/reverse"): Op(
        STAFF, "§3 finance: deposits; §4 reversal", 200, lambda w: {"reason": "chargeback"}
    ),
    ("POST", "/v1/accounts/{account_id}/credits"): Op(STAFF, "§3 finance: credits", 201, _credit),
    ("GET", "/v1/accounts/{account_id}/credits"): Op(READERS, "§3 advertiser: read its lots"),
    ("POST", "/v1/credits/{lot_id}/void"): Op(
        STAFF, "§3 finance: credits", 200, lambda w: {"reason": "test"}
    ),
    ("POST", "/v1/spend"): Op(
        frozenset({"ingest"}),
        "§3 ingest: post spend, nothing else",
        200,
        lambda w: {"events": [event("ev_surface", w.params["account_id"], 10)]},
    ),
    ("GET", "/v1/accounts/{account_id}/balance"): Op(READERS, "§3 advertiser: read its balances"),
    # Finance may ask too: it may request refunds on an advertiser's behalf (decisions.md), and
    # the answer is the same 409 with nothing changed.
    ("POST", "/v1/accounts/{account_id}/withdrawals"): Op(
        READERS, "§3 advertiser: ask to withdraw (always refused)", 409, lambda w: {"amount": 100}
    ),
    ("POST", "/v1/accounts/{account_id}/refunds"): Op(
        READERS,
        "§3 advertiser: request its refunds; decisions.md: finance may request on its behalf",
        201,
        lambda w: {"amount": 100},
    ),
    ("GET", "/v1/accounts/{account_id}/refunds"): Op(READERS, "§3 finance reads everything"),
    ("GET", "/v1/refunds"): Op(READERS, "§3 finance reads everything; advertiser: its own"),
    ("GET", "/v1/refunds/{refund_id}"): Op(READERS, "§3 finance reads everything"),
    ("POST", "/v1/refunds/{refund_id}/approve"): Op(STAFF, "§3 finance: approving refunds"),
    ("POST", "/v1/refunds/{refund_id}/reject"): Op(
        STAFF, "§3 finance: rejecting refunds", 200, lambda w: {"reason": "no"}
    ),
    ("POST", "/v1/refunds/{refund_id}/cancel"): Op(
        READERS, "§3 advertiser: cancel its own refunds; staff too (route summary)"
    ),
    # The world's refund is pending, so settle and fail are refused by the lifecycle (409).
    ("POST", "/v1/refunds/{refund_id}/settle"): Op(STAFF, "§4 settle: finance, admin", 409),
    ("POST", "/v1/refunds/{refund_id}/fail"): Op(STAFF, "§4 fail: finance, admin", 409),
    ("POST", "/v1/expirations/run"): Op(STAFF, "§3 finance: expiry runs", 200, lambda w: {}),
    ("GET", "/v1/accounts/{account_id}/transactions"): Op(
        READERS, "§3 advertiser: read its transactions"
    ),
    ("GET", "/v1/reports/liabilities"): Op(STAFF, "§3 finance: reports", query={"currency": "USD"}),
    ("GET", "/v1/audit"): Op(ADMIN_ONLY, "§3 admin: everything (the audit trail is admin only)"),
    # §5 promotions: finance makes and runs them; an advertiser redeems codes.
    ("POST", "/v1/promotions"): Op(
        STAFF,
        "§3 finance: promotions",
        201,
        lambda w: {
            "name": "Spring",
            "kind": "coupon",
            "currency": "USD",
            "reward": {"amount": 100},
            "credit_valid_days": 30,
            "starts_at": rfc3339(w.now),
            "ends_at": rfc3339(w.now + timedelta(days=10)),
        },
    ),
    ("GET", "/v1/promotions"): Op(STAFF, "§3 finance: promotions"),
    ("GET", "/v1/promotions/{promotion_id}"): Op(STAFF, "§3 finance: promotions"),
    ("POST", "/v1/promotions/{promotion_id}/end"): Op(STAFF, "§3 finance: promotions"),
    ("POST", "/v1/promotions/{promotion_id}/codes"): Op(
        STAFF, "§3 finance: promotions", 201, lambda w: {"count": 2}
    ),
    ("GET", "/v1/promotions/{promotion_id}/report"): Op(STAFF, "§3 finance: promotions"),
    ("POST", "/v1/accounts/{account_id}/redemptions"): Op(
        frozenset({"advertiser"}),
        "§3 advertiser: redeem codes",
        201,
        lambda w: {"code": w.params["code"]},
    ),
    ("GET", "/v1/accounts/{account_id}/redemptions"): Op(
        READERS, "§3 finance reads everything; advertiser: its account's redemptions"
    ),
}

# Operations the contract names that the app does not serve yet: {operation: "BUG: ..."}.
NOT_SERVED_YET: dict[tuple[str, str], str] = {}


def _op(operation: tuple[str, str]) -> Op:
    op = ROLES.get(operation)
    if op is None:
        pytest.fail(
            f"{operation[0]} {operation[1]} is in the OpenAPI document but not in ROLES of "
            "test_api_surface.py: add it with the roles CONTRACT.md §3 gives it"
        )
    return op


def _allowed(op: Op) -> list[str]:
    return [r for r in ROLE_NAMES if r == "admin" or r in op.roles]


def _forbidden(op: Op) -> list[str]:
    return [r for r in ROLE_NAMES if r != "admin" and r not in op.roles]


def call(who: Any, operation: tuple[str, str], w: World, **kw: Any) -> Any:
    """Make the request of `operation` in world `w` with its valid body and query, as `who`
    (a caller of one key, or the bare TestClient for no key at all)."""
    method, path = operation
    op = _op(operation)
    headers = dict(kw.pop("headers", None) or {})
    if not isinstance(who, TestClient):
        headers["Authorization"] = f"Bearer {who.key}"
        who = who.client
    body = op.body(w) if op.body is not None and method != "GET" else None
    return who.request(method, w.url(path), params=op.query, json=body, headers=headers, **kw)


def _caller(api: Any, w: World, role: str) -> Any:
    return {"admin": api.admin, "finance": api.finance, "ingest": api.ingest}.get(
        role, w.advertiser
    )


ids = [f"{m} {p}" for m, p in OPERATIONS]


# --- the table and the document agree ----------------------------------------------------------


def test_every_served_operation_is_in_the_role_table():
    missing = [f"{m} {p}" for m, p in OPERATIONS if (m, p) not in ROLES]
    assert not missing, f"add these operations to ROLES in test_api_surface.py: {missing}"


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(op, marks=pytest.mark.xfail(strict=True, reason=NOT_SERVED_YET[op]))
        if op in NOT_SERVED_YET
        else op
        for op in ROLES
    ],
    ids=[f"{m} {p}" for m, p in ROLES],
)
def test_every_operation_of_the_contract_is_served(operation):
    assert operation in SERVED, f"{operation} is in the role table but the app does not serve it"


# --- authentication: 401 ----------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids)
def test_an_operation_called_without_a_key_or_with_a_bad_one_is_401(api, world, operation):
    before = snapshot(api.db)
    no_key = call(api.client, operation, world)
    assert_problem(no_key, 401, "unauthorized")
    for header in ("Bearer adl_not_a_key", "Bearer ", "Basic YWRtaW46YWRtaW4="):
        r = call(api.client, operation, world, headers={"Authorization": header})
        assert_problem(r, 401, "unauthorized")
    assert snapshot(api.db) == before


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids)
def test_an_operation_called_with_a_revoked_key_is_401(api, world, operation):
    revoked = api.caller("admin", name="revoked")
    assert api.admin.delete(f"/v1/api-keys/{revoked.key_id}").status_code == 200
    before = snapshot(api.db)
    assert_problem(call(revoked, operation, world), 401, "unauthorized")
    assert snapshot(api.db) == before


# --- authorization: 403, and the roles that are let through -----------------------------------


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids)
def test_a_role_that_may_not_call_an_operation_gets_403_and_nothing_changes(api, world, operation):
    op = _op(operation)
    before = snapshot(api.db)
    for role in _forbidden(op):
        r = call(_caller(api, world, role), operation, world)
        body = assert_problem(r, 403, "forbidden")
        assert role in body["detail"], body
    assert snapshot(api.db) == before


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids)
def test_a_role_that_may_call_an_operation_is_let_through(api, world, operation):
    op = _op(operation)
    for role in _allowed(op):
        r = call(_caller(api, world, role), operation, world)
        assert r.status_code not in (401, 403), f"{role}: {r.status_code} {r.text}"


def test_health_answers_200_without_a_key(api):
    r = api.client.get("/healthz")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"status": "ok"}


# --- what is not an operation -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/nope", "/nope", "/v1/accounts/acct_x/nope", "/v2/accounts"])
def test_an_unknown_path_is_a_404_problem_with_or_without_a_key(api, path):
    assert_problem(api.client.get(path), 404, "not_found")
    assert_problem(api.admin.get(path), 404, "not_found")
    assert_problem(api.admin.post(path, json={}), 404, "not_found")


@pytest.mark.parametrize(
    "method, path",
    [
        ("DELETE", "/v1/accounts"),
        ("PUT", "/v1/accounts/acct_x"),
        ("PATCH", "/v1/accounts/acct_x"),
        ("GET", "/v1/spend"),
        ("GET", "/v1/credits/lot_x/void"),
        ("POST", "/healthz"),
        ("GET", "/v1/api-keys/key_x"),
    ],
)
def test_a_wrong_method_is_a_405_problem(api, method, path):
    before = snapshot(api.db)
    auth = {"Authorization": f"Bearer {api.admin.key}"}
    assert_problem(api.client.request(method, path, headers=auth), 405, "method_not_allowed")
    assert_problem(api.client.request(method, path), 405, "method_not_allowed")
    assert snapshot(api.db) == before


def test_a_405_names_the_allowed_methods(api):
    r = api.admin.delete("/v1/accounts")
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


# --- responses match the document -------------------------------------------------------------


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = OPENAPI["components"]["schemas"][name]
    return schema


def conformance(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """What in `value` disagrees with JSON Schema `schema` (the subset FastAPI emits).

    Stricter than JSON Schema on one point: an object key the schema does not declare is an
    error unless `additionalProperties` allows it, since an undocumented field is a doc bug.
    """
    schema = _resolve(schema)
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf") or schema["oneOf"]
        attempts = [conformance(value, option, where) for option in options]
        return [] if any(not a for a in attempts) else min(attempts, key=len)
    problems: list[str] = []
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    kind = schema.get("type")
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    if kind is not None and not checks[kind](value):
        return [f"{where}: {value!r} is not {kind}"]
    if kind == "string" and schema.get("format") == "date-time":
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            problems.append(f"{where}: {value!r} is not RFC 3339")
        else:
            if parsed.tzinfo is None:
                problems.append(f"{where}: {value!r} has no offset")
    if kind == "object":
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{where}: missing required {name!r}")
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if name in props:
                problems += conformance(item, props[name], f"{where}.{name}")
            elif isinstance(extra, dict):
                problems += conformance(item, extra, f"{where}.{name}")
            elif extra is not True:
                problems.append(f"{where}: {name!r} is returned but not documented")
    if kind == "array":
        for i, item in enumerate(value):
            problems += conformance(item, schema.get("items", {}), f"{where}[{i}]")
    return problems


def _declared(operation: tuple[str, str]) -> dict[str, Any]:
    method, path = operation
    return dict(OPENAPI["paths"][path][method.lower()]["responses"])


def _primary_role(op: Op) -> str:
    for role in ("ingest", "finance", "advertiser"):
        if role in op.roles:
            return role
    return "admin"


# Known disagreements between a route and its document: {(operation, backend or None): reason}.
RESPONSE_BUGS: dict[tuple[tuple[str, str], str | None], str] = {}


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids)
def test_an_allowed_call_answers_the_status_and_schema_the_document_declares(
    api, world, operation, backend, request
):
    for (known, on), reason in RESPONSE_BUGS.items():
        if known == operation and on in (None, backend):
            request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    op = _op(operation)
    r = call(_caller(api, world, _primary_role(op)), operation, world)
    assert r.status_code == op.status, r.text
    responses = _declared(operation)
    assert str(r.status_code) in responses, f"{r.status_code} is not declared: {sorted(responses)}"
    content = responses[str(r.status_code)].get("content", {})
    media = r.headers["content-type"].split(";")[0]
    assert media in content, f"answered {media}, declared {sorted(content)}"
    schema = content[media].get("schema") or next(
        (c["schema"] for c in content.values() if "schema" in c), None
    )
    assert schema is not None, "no schema declared for the response"
    assert conformance(r.json(), schema) == []


def test_health_answers_what_the_document_declares(api):
    r = api.client.get("/healthz")
    schema = _declared(HEALTH)["200"]["content"]["application/json"]["schema"]
    assert conformance(r.json(), schema) == []


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids)
def test_every_operation_has_a_summary_and_declares_401_and_403(operation):
    method, path = operation
    doc = OPENAPI["paths"][path][method.lower()]
    assert doc.get("summary"), "no summary"
    assert {"401", "403"} <= set(doc["responses"])
    assert doc.get("security") == [{"HTTPBearer": []}]


def test_health_needs_no_security_in_the_document():
    doc = OPENAPI["paths"]["/healthz"]["get"]
    assert not doc.get("security")
    assert "401" not in doc["responses"]


def test_every_problem_response_is_declared_as_problem_json_with_a_problem_schema():
    wrong = []
    for method, path in OPERATIONS:
        for status, response in _declared((method, path)).items():
            if int(status) < 400:
                continue
            content = response.get("content", {})
            schema = content.get("application/problem+json", {}).get("schema")
            if schema is None or "application/json" in content:
                wrong.append(f"{method} {path} {status}: {sorted(content)}")
                continue
            options = schema.get("anyOf", [schema])  # a richer problem, or a plain one
            if not all(
                {"type", "title", "status", "detail", "code"}
                <= set(_resolve(option).get("properties", {}))
                for option in options
            ):
                wrong.append(f"{method} {path} {status}: not a problem schema")
    assert not wrong, "\n".join(wrong)


def test_every_post_declares_its_idempotency_key_header():
    undeclared = [
        path
        for method, path in OPERATIONS
        if method == "POST"
        and not any(
            p.get("in") == "header" and p.get("name", "").lower() == "idempotency-key"
            for p in OPENAPI["paths"][path]["post"].get("parameters", [])
        )
    ]
    assert not undeclared, undeclared


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids)
def test_every_operation_declares_the_roles_of_the_role_table(operation):
    """`x-roles` (read by the document from the route's `require(*roles)`) is §3's answer."""
    method, path = operation
    doc = OPENAPI["paths"][path][method.lower()]
    declared = doc.get("x-roles")
    assert declared is not None, "no x-roles"
    assert len(declared) == len(set(declared)) and declared[-1] == "admin", declared
    assert set(declared) == set(_allowed(_op(operation))), _op(operation).why
    line = next(line for line in doc["description"].splitlines() if line.startswith("**Roles:**"))
    for role in ROLE_NAMES:
        assert (role in line) == (role in declared), line


# --- §2: an advertiser never learns that another business's object exists ---------------------

NOT_FOUND_CODES = {
    "account_id": "account_not_found",
    "refund_id": "refund_not_found",
    "deposit_id": "deposit_not_found",
}
ADVERTISER_OBJECT_OPERATIONS = [
    operation
    for operation in OPERATIONS
    if operation in ROLES
    and "advertiser" in ROLES[operation].roles
    and any("{" + name + "}" in operation[1] for name in NOT_FOUND_CODES)
]


@pytest.mark.parametrize(
    "operation",
    ADVERTISER_OBJECT_OPERATIONS,
    ids=[f"{m} {p}" for m, p in ADVERTISER_OBJECT_OPERATIONS],
)
def test_an_advertiser_asking_for_another_businesss_object_gets_404(api, world, operation):
    stranger = api.advertiser(make_business(api.db, name="Other")["id"])
    name = next(n for n in NOT_FOUND_CODES if "{" + n + "}" in operation[1])
    before = snapshot(api.db)
    r = call(stranger, operation, world)
    assert_problem(r, 404, NOT_FOUND_CODES[name])
    assert snapshot(api.db) == before
