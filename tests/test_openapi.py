"""The OpenAPI document as a client developer reads it: every operation, parameter and field is
described, problems are problem+json with their stable codes, ids are readable, and the lists in
the document agree with the code they describe (so they can't go stale).

The operations themselves (roles, statuses, schemas against real answers) are checked in
test_api_surface.py; this file checks the document's words and shapes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adledger.config import Settings
from adledger.domain.money import MAX_AMOUNT
from adledger.http.app import create_app
from adledger.http.openapi import ERROR_CODES, UNLISTED, reflow
from adledger.service.pagination import MAX_LIMIT
from test_api_surface import METHODS, OPENAPI, OPERATIONS, ids
from test_error_codes import _codes

SRC = Path(__file__).parent.parent / "src" / "adledger"
PREFIXES = {
    "account_id": "acct_",
    "refund_id": "rf_",
    "lot_id": "lot_",
    "deposit_id": "dep_",
    "promotion_id": "promo_",
    "key_id": "key_",
}
SCHEMAS: dict[str, Any] = OPENAPI["components"]["schemas"]
ALL = [
    (method, path, op)
    for path, item in OPENAPI["paths"].items()
    for method, op in item.items()
    if method in METHODS
]
ALL_IDS = [f"{m.upper()} {p}" for m, p, _ in ALL]


def _op(operation: tuple[str, str]) -> dict[str, Any]:
    method, path = operation
    return dict(OPENAPI["paths"][path][method.lower()])


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"].rsplit("/", 1)[-1])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def _reachable(names: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _refs(SCHEMAS[name])
    return seen


# --- the document is the one served ---------------------------------------------------------


def test_the_served_document_is_the_finished_one(tmp_path):
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"), migrate=False)
    try:
        served = TestClient(app).get("/openapi.json").json()
        assert served == json.loads(json.dumps(app.openapi()))
        assert served["paths"]["/v1/spend"]["post"]["x-roles"] == ["ingest", "admin"]
        assert TestClient(app).get("/docs").status_code == 200
    finally:
        app.state.db.dispose()


# --- operations -------------------------------------------------------------------------------


def test_operation_ids_are_the_route_functions_names_unique_and_snake_case():
    found = [op["operationId"] for _, _, op in ALL]
    assert len(found) == len(set(found)), sorted(i for i in found if found.count(i) > 1)
    for operation_id in found:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", operation_id), operation_id
    assert {"post_spend", "get_balance", "redeem", "approve_refund", "healthz"} <= set(found)


@pytest.mark.parametrize("method, path, op", ALL, ids=ALL_IDS)
def test_every_operation_has_a_summary_and_a_description_with_its_roles(method, path, op):
    assert op.get("summary")
    description = op.get("description", "")
    assert len(description.split("\n\n")[0]) > 40, "say what it does and its rule"
    assert "**Roles:**" in description
    if "advertiser" in op.get("x-roles", []):
        assert "advertiser (its own business only)" in description


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids)
def test_every_operation_names_its_refusal_codes_with_their_statuses(operation):
    doc = _op(operation)
    description = doc["description"]
    for status, response in doc["responses"].items():
        for code in response.get("x-problem-codes", []):
            assert ERROR_CODES[code].status == int(status), (code, status)
            assert f"`{code}`" in response["description"], (status, code)
            generic = code in {"unauthorized", "forbidden", "validation_error", "internal_error"}
            idempotency = code.startswith(("idempotency_key", "invalid_idempotency"))
            if not (generic or idempotency or code == "request_too_large"):
                assert f"{status} `{code}`" in description, (status, code)
    for status in ("404", "409"):
        if status in doc["responses"]:
            assert doc["responses"][status]["x-problem-codes"], f"{status} names no code"


@pytest.mark.parametrize(
    "operation, status, code",
    [
        (("POST", "/v1/accounts/{account_id}/suspend"), "409", "invalid_account_transition"),
        (("POST", "/v1/accounts/{account_id}/reinstate"), "409", "invalid_account_transition"),
        (("POST", "/v1/refunds/{refund_id}/approve"), "403", "self_approval_forbidden"),
        (("POST", "/v1/refunds/{refund_id}/approve"), "409", "invalid_refund_transition"),
        (("POST", "/v1/accounts/{account_id}/withdrawals"), "409", "withdrawal_not_supported"),
        (("POST", "/v1/accounts/{account_id}/refunds"), "409", "recent_spend"),
        (("POST", "/v1/accounts/{account_id}/redemptions"), "409", "code_used"),
        (("POST", "/v1/accounts/{account_id}/redemptions"), "429", "too_many_attempts"),
        (("POST", "/v1/api-keys"), "409", "response_shown_once"),
        (("POST", "/v1/deposits/{deposit_id}/reverse"), "409", "deposit_already_reversed"),
        (("GET", "/v1/accounts"), "422", "invalid_limit"),
        (("GET", "/v1/reports/liabilities"), "422", "unknown_currency"),
    ],
)
def test_a_refusal_is_declared_with_its_stable_code(operation, status, code):
    assert code in _op(operation)["responses"][status]["x-problem-codes"]


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids)
def test_problem_statuses_declare_their_headers_and_the_global_ones(operation):
    doc = _op(operation)
    responses = doc["responses"]
    assert "500" in responses
    assert "WWW-Authenticate" in responses["401"]["headers"]
    if "429" in responses:
        assert responses["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    if "requestBody" in doc:
        assert "request_too_large" in responses["413"]["x-problem-codes"]


def test_fastapis_validation_error_schema_is_gone_for_the_problem():
    assert "HTTPValidationError" not in SCHEMAS and "ValidationError" not in SCHEMAS
    problem = SCHEMAS["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    errors = problem["properties"]["errors"]
    assert errors["type"] == "array" and "errors" not in problem["required"]
    assert _resolve(errors["items"])["properties"].keys() >= {"loc", "msg", "type"}


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids)
def test_a_read_by_id_declares_no_422_it_cannot_answer(operation):
    doc = _op(operation)
    params = [p for p in doc.get("parameters", []) if p["in"] != "path"]
    if operation[0] == "GET" and not params:
        assert "422" not in doc["responses"]
    else:
        assert "validation_error" in doc["responses"]["422"]["x-problem-codes"]


# --- the Idempotency-Key ----------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids)
def test_every_write_declares_the_idempotency_key_and_its_problems(operation):
    doc = _op(operation)
    headers = [p for p in doc.get("parameters", []) if p["name"] == "Idempotency-Key"]
    if operation[0] == "GET":
        assert not headers
        return
    (header,) = headers
    assert header["in"] == "header" and header["required"] is False
    assert header["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
    for words in ("idempotency_key_reused", "idempotency_key_in_use", "scoped to the calling"):
        assert words in header["description"]
    assert "idempotency_key_in_use" in doc["responses"]["409"]["x-problem-codes"]
    assert "idempotency_key_reused" in doc["responses"]["422"]["x-problem-codes"]


def test_a_withdrawal_refusal_may_also_be_a_plain_problem_of_the_idempotency_key():
    response = _op(("POST", "/v1/accounts/{account_id}/withdrawals"))["responses"]["409"]
    (media,) = response["content"]
    assert media == "application/problem+json"
    options = [_resolve(s)["title"] for s in response["content"][media]["schema"]["anyOf"]]
    assert options == ["WithdrawalRefused", "Problem"]


# --- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path, op", ALL, ids=ALL_IDS)
def test_every_parameter_is_described_and_path_ids_show_their_prefix(method, path, op):
    for param in op.get("parameters", []):
        assert param.get("description"), param["name"]
        if param["in"] == "path":
            prefix = PREFIXES[param["name"]]
            assert f"`{prefix}…`" in param["description"], param
            assert param["example"].startswith(prefix), param
            assert param["schema"]["examples"][0].startswith(prefix), param


def test_limit_documents_its_bounds_and_default():
    for _, _, op in ALL:
        for param in op.get("parameters", []):
            if param["name"] == "limit":
                schema = param["schema"]
                assert (schema["minimum"], schema["maximum"], schema["default"]) == (
                    1,
                    MAX_LIMIT,
                    50,
                )


def test_filters_are_described():
    wanted = {"status", "business_id", "kind", "currency", "starting_after"}
    seen = set()
    for _, _, op in ALL:
        for param in op.get("parameters", []):
            if param["name"] in wanted:
                seen.add(param["name"])
                assert len(param["description"]) > 15, param
    assert seen == wanted


# --- schemas ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_field_of_every_schema_is_described(name):
    undescribed = [
        field
        for field, schema in SCHEMAS[name].get("properties", {}).items()
        if not schema.get("description")
    ]
    assert not undescribed, f"{name}: {undescribed}"


def test_amount_bounds_are_integers():
    amount = SCHEMAS["DepositIn"]["properties"]["amount"]
    assert amount["maximum"] == MAX_AMOUNT and type(amount["maximum"]) is int
    assert type(amount["exclusiveMinimum"]) is int
    text = json.dumps(OPENAPI)
    assert not re.search(r'"(maximum|minimum|exclusiveM\w+)": -?\d+\.0\b', text)
    assert "minor units of the account's currency" in amount["description"]


def test_request_bodies_refuse_unknown_fields_and_responses_do_not():
    requests: set[str] = set()
    responses: set[str] = set()
    for _, _, op in ALL:
        requests |= _refs(op.get("requestBody", {}))
        for status, response in op["responses"].items():
            if int(status) < 400:
                responses |= _refs(response)
    for name in _reachable(requests):
        assert SCHEMAS[name].get("additionalProperties") is False, name
    for name in _reachable(responses):
        assert SCHEMAS[name].get("additionalProperties") is not False, name
    assert {"KeyOut", "RevokedKeyOut"} <= _reachable(responses)


def test_pages_have_readable_names():
    pages = sorted(name for name in SCHEMAS if "Page" in name)
    assert pages == [
        "AccountPage",
        "AuditRecordPage",
        "DepositPage",
        "LotPage",
        "PromotionPage",
        "RedemptionPage",
        "RefundPage",
        "TransactionPage",
    ]
    assert SCHEMAS["AccountPage"]["title"] == "AccountPage"


def test_the_spend_result_code_is_the_enum_of_the_rejections_spend_makes():
    text = (SRC / "service" / "spend.py").read_text()
    made = set(re.findall(r'_rejected\([^,()]+, "([a-z_]+)"\)', text))
    code = SCHEMAS["SpendResult"]["properties"]["code"]
    options = code.get("anyOf", [code])
    (enum,) = [o["enum"] for o in options if "enum" in o]
    assert set(enum) == made
    for rejection in made:
        assert f"`{rejection}`" in code["description"]


# --- the codes in the document are the codes of the code ---------------------------------------


def test_the_published_codes_are_every_code_the_api_can_answer_with():
    spend = set(SCHEMAS["SpendResult"]["properties"]["code"]["anyOf"][0]["enum"])
    unexplained = set(_codes()) - set(ERROR_CODES) - set(UNLISTED) - spend
    assert not unexplained, f"add these to http.openapi (a meaning, or UNLISTED): {unexplained}"
    assert not set(ERROR_CODES) & set(UNLISTED)
    assert not set(ERROR_CODES) - set(_codes()), "ERROR_CODES names a code nothing raises"


def test_the_api_description_lists_every_code_and_the_conventions():
    description = OPENAPI["info"]["description"]
    for code, error in ERROR_CODES.items():
        assert f"| {error.status} | `{code}` |" in description, code
    for heading in ("## Roles", "## Conventions", "## Error codes"):
        assert heading in description
    for words in ("**Money**", "**Time**", "**Ids**", "**Errors**", "**Idempotency**"):
        assert words in description
    assert "**Pagination**" in description
    for role in ("admin", "finance", "ingest", "advertiser"):
        assert f"| `{role}` |" in description


def test_reflow_joins_wrapped_lines_but_keeps_lists_and_tables():
    text = "One\nparagraph.\n\n- item\n  continued\n- next\n\n| a |\n| b |"
    assert reflow(text) == "One paragraph.\n\n- item continued\n- next\n\n| a |\n| b |"
