"""The OpenAPI document (`/openapi.json`, shown at `/docs`), finished so that a client can be
written from it without reading the code.

FastAPI documents what the routes declare: parameters, bodies, response models, summaries and
descriptions. `install(app)` replaces `app.openapi` with one that adds what FastAPI can't know:

* **Problems.** Every 4xx/5xx response is `application/problem+json` (RFC 9457) with the
  `Problem` schema, never `application/json` (where FastAPI puts response models); FastAPI's own
  422 (`HTTPValidationError`) becomes a problem too. 413 is declared on every operation with a
  body and 500 on every operation. Each problem response lists the stable codes it can carry,
  in its description and as `x-problem-codes`; 401 declares `WWW-Authenticate` and 429
  `Retry-After`.
* **Idempotency.** `respond()` reads the `Idempotency-Key` header from the request itself, so
  FastAPI never sees it: it is declared here on every POST and DELETE, with its problems.
* **Roles.** `deps.require(*roles)` keeps its roles on the dependency; each operation gets them
  as `x-roles` and as a "Roles:" line of its description, with its refusal codes.
* **Integers.** FastAPI's document model turns bounds such as `maximum` into floats
  (`1000000000000000.0`); they are integers again here.

`ERROR_CODES` is every stable code a problem can carry, built at import time from the
`AdledgerError` subclasses of `domain.errors` (plus the few precise codes raised with `code=`
and the HTTP layer's own), so the list in the API description can't go stale.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from adledger.domain import errors
from adledger.http.problems import _STATUS_CODES, PROBLEM_JSON, STATUS_BY_FAMILY
from adledger.service.idempotency import MAX_KEY_LENGTH

PROBLEM_REF = "#/components/schemas/Problem"

# --- the stable error codes -------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    meaning: str


def _subclasses(cls: type[errors.AdledgerError]) -> Iterator[type[errors.AdledgerError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


def _status(cls: type[errors.AdledgerError]) -> int:
    for family, status in STATUS_BY_FAMILY:
        if issubclass(cls, family):
            return status
    return 400


def _meaning(cls: type[errors.AdledgerError]) -> str:
    doc = cls.__dict__.get("__doc__")
    return " ".join(doc.split()) if doc else f"{cls.title}."


# Codes raised as `InvalidInput(..., code="...")` rather than by a class of their own.
_PRECISE: dict[str, tuple[type[errors.AdledgerError], str]] = {
    "invalid_timezone": (errors.InvalidInput, "An account's `timezone` is not an IANA time zone."),
    "invalid_limit": (errors.InvalidInput, "A list's `limit` is outside 1–500."),
    "invalid_cursor": (
        errors.InvalidInput,
        "`starting_after` is not a cursor of this list (use the `next_cursor` it returned).",
    ),
    "invalid_idempotency_key": (
        errors.InvalidInput,
        f"An `Idempotency-Key` that is empty or longer than {MAX_KEY_LENGTH} characters.",
    ),
}

# The HTTP layer's own codes (`http.problems`), and words for a client where a class's docstring
# speaks to the code's reader.
_WORDED: dict[str, tuple[int, str]] = {
    "validation_error": (
        422,
        "The request does not match its schema (a wrong type, a missing or unknown field, a "
        "value out of range) or breaks a rule of the request; `errors` lists what and where.",
    ),
    "not_found": (404, "No operation at this path."),
    "method_not_allowed": (405, "The path exists, but not with this method; `Allow` lists them."),
    "request_too_large": (
        413,
        "The request body is over the server's size limit (8 MiB by default; `detail` says it).",
    ),
    "invalid_time": (
        422,
        "A window that ends before it starts: `expires_at` not after `effective_at`, or "
        "`ends_at` not after `starts_at`.",
    ),
    "too_many_attempts": (
        429,
        "10 failed redemption attempts by one business in the last hour; wait `retry_after` "
        "seconds (also the `Retry-After` header).",
    ),
    "account_not_in_good_standing": (
        409,
        "The account is suspended or owes money: no refund may be requested, and while it owes "
        "money none may be approved or paid.",
    ),
    "internal_error": (
        500,
        "An unexpected error; the problem reveals nothing more. Nothing was committed, so "
        "retrying (with the same `Idempotency-Key`) is safe.",
    ),
}

# Codes that exist in the code but that no HTTP request can get, with the reason.
UNLISTED: dict[str, str] = {
    "error": "the root class's placeholder",
    "conflict": "a family's default; every conflict names a precise code",
    "redemption_refused": "the family of the redemption refusals; each names a precise code",
    "unbalanced_transaction": "internal: a programming error",
    "invalid_amount": "the request schema refuses a bad amount first (`validation_error`)",
    "invalid_status": "the request schema refuses an unknown status first (`validation_error`)",
    "invalid_kind": "the request schema refuses an unknown kind first (`validation_error`)",
    "invalid_priority": "the request schema refuses a bad priority first (`validation_error`)",
    "invalid_role": "the request schema refuses an unknown role first (`validation_error`)",
    "currency_mismatch": "over HTTP, a spend result code (`SpendResult.code`), never a problem",
    "http_error": "the fallback for other HTTP statuses; none is reachable",
}


def _error_codes() -> dict[str, ErrorCode]:
    found: dict[str, ErrorCode] = {}
    for cls in _subclasses(errors.AdledgerError):
        found.setdefault(cls.code, ErrorCode(cls.code, _status(cls), _meaning(cls)))
    for code, (family, meaning) in _PRECISE.items():
        found[code] = ErrorCode(code, _status(family), meaning)
    for code, (status, meaning) in _WORDED.items():
        assert code not in found or found[code].status == status, f"{code}: status {status}?"
        found[code] = ErrorCode(code, status, meaning)
    missing = {code for code, _ in _STATUS_CODES.values()} - set(found) - set(UNLISTED)
    assert not missing, f"http.problems codes without a meaning in http.openapi: {missing}"
    listed = (c for c in found.values() if c.code not in UNLISTED)
    return {c.code: c for c in sorted(listed, key=lambda c: (c.status, c.code))}


ERROR_CODES: dict[str, ErrorCode] = _error_codes()


def error_code_table() -> str:
    """Every stable problem code, by status, as a Markdown table."""
    rows = [f"| {c.status} | `{c.code}` | {c.meaning} |" for c in ERROR_CODES.values()]
    return "\n".join(["| status | code | meaning |", "| --- | --- | --- |", *rows])


ROLES: dict[str, str] = {
    "admin": "everything, including creating and revoking API keys",
    "finance": "businesses, accounts, deposits, credits, approving and rejecting refunds, "
    "promotions, expiry runs, reports; reads everything",
    "ingest": "post spend, nothing else",
    "advertiser": "bound to one business: read its accounts, balances, lots, deposits, "
    "transactions and redemptions; redeem codes; request and cancel its refunds; ask to "
    "withdraw (always refused)",
}


def role_table() -> str:
    """CONTRACT.md §3's roles, as a Markdown table."""
    rows = [f"| `{role}` | {may} |" for role, may in ROLES.items()]
    return "\n".join(["| role | may |", "| --- | --- |", *rows])


# --- the operations' problem responses --------------------------------------------------------

# What every problem response of a status says, and the codes it always carries.
_STATUS_TEXT: dict[int, tuple[str, tuple[str, ...]]] = {
    401: ("No API key, or an unknown or revoked one", ("unauthorized",)),
    403: ("This key may not do this", ("forbidden",)),
    404: ("Not found, or not visible to this key", ()),
    409: ("Refused by the ledger's current state; nothing changed", ()),
    413: ("The request body is too large; nothing was read", ("request_too_large",)),
    422: ("The request is invalid; nothing changed", ("validation_error",)),
    429: ("Too many attempts; nothing changed", ("too_many_attempts",)),
    500: ("Unexpected server error; nothing was committed", ("internal_error",)),
}

IDEMPOTENCY_CODES = ("idempotency_key_in_use", "idempotency_key_reused", "invalid_idempotency_key")
# Codes every operation (or every write) can get: its description leaves them to the responses.
_EVERYWHERE = {
    "unauthorized",
    "forbidden",
    "validation_error",
    "request_too_large",
    "internal_error",
    *IDEMPOTENCY_CODES,
}

IDEMPOTENCY_KEY_DOC = f"""\
Makes the request safe to retry (CONTRACT.md §2). Optional; 1–{MAX_KEY_LENGTH} characters, \
e.g. a UUID; scoped to the calling API key (another key's identical value is another key).

* The same key with the same request (method, path, query and body) gets **the first response \
again**, status and body, and the work is not done twice. Refusals (4xx from the ledger) are \
replayed too; a `validation_error` is not stored (the same body gets the same answer anyway).
* The same key with a different request → 422 `idempotency_key_reused`.
* The same key while the first request is still running → 409 `idempotency_key_in_use`; retry \
later (a claim whose work never committed can be taken again after 30 seconds).
* An empty or over-long key → 422 `invalid_idempotency_key`.
* A response that carries secrets (a new API key, new promotion codes) is never stored: a repeat \
makes nothing new and gets 409 `response_shown_once`.

Keys are kept at least 24 hours."""

IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": IDEMPOTENCY_KEY_DOC,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    "example": "3f6c1c9e-8b4a-4f7e-9d2a-5b1e0c7a9f31",
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "`Bearer`: send `Authorization: Bearer <api key>`",
            "schema": {"type": "string", "example": "Bearer"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds until the next attempt can be made",
            "schema": {"type": "integer", "minimum": 1, "example": 1800},
        }
    },
}

ROLE_WORDS = {"advertiser": "advertiser (its own business only)"}


def roles_of(route: APIRoute) -> tuple[str, ...] | None:
    """The roles that `require(*roles)` admits somewhere in the route's dependencies."""
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        roles = getattr(dependant.call, "roles", None)
        if roles is not None:
            return tuple(roles)
        stack.extend(dependant.dependencies)
    return None


def operation_id(route: APIRoute) -> str:
    """`generate_unique_id_function`: an operation's id is its route function's name."""
    return route.name


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, also those of included routers (which FastAPI may keep unflattened)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


def _problem_description(status: int, codes: list[str], roles: tuple[str, ...] | None) -> str:
    text, _ = _STATUS_TEXT.get(status, ("Problem", ()))
    if status == 403 and roles:
        text += f" (allowed: {', '.join(roles)})"
    if status == 404 and roles and "advertiser" in roles:
        text += "; an advertiser key gets 404 for another business's objects too"
    lines = [f"{text}.", ""]
    lines += [f"- `{code}`: {ERROR_CODES[code].meaning}" for code in codes]
    return "\n".join(lines).strip()


def _schema_of(response: dict[str, Any]) -> dict[str, Any]:
    content = response.get("content", {})
    for media in (PROBLEM_JSON, "application/json"):
        schema = content.get(media, {}).get("schema")
        if schema and not schema.get("$ref", "").endswith("/HTTPValidationError"):
            return dict(schema)
    return {"$ref": PROBLEM_REF}


def _add_codes(responses: dict[str, Any], codes: tuple[str, ...]) -> None:
    """Declare that these codes can come back, in the responses of their statuses."""
    plain = {"$ref": PROBLEM_REF}
    for code in codes:
        response = responses.setdefault(str(ERROR_CODES[code].status), {})
        schema = _schema_of(response)
        if response.get("content") and schema != plain and plain not in schema.get("anyOf", []):
            # A richer problem (say WithdrawalRefused) may now be a plain one as well.
            response["content"] = {PROBLEM_JSON: {"schema": {"anyOf": [schema, plain]}}}
        if code not in response.setdefault("x-problem-codes", []):
            response["x-problem-codes"].append(code)


def _finish_operation(method: str, op: dict[str, Any], route: APIRoute | None) -> None:
    roles = roles_of(route) if route else None
    responses: dict[str, Any] = op.setdefault("responses", {})
    idempotent = method in ("post", "delete")
    params = op.setdefault("parameters", [])
    if idempotent:
        params.append(copy.deepcopy(IDEMPOTENCY_KEY))
    if not params:
        del op["parameters"]
    for param in params:
        examples = param.get("schema", {}).get("examples")
        if examples and "example" not in param:
            param["example"] = examples[0]

    route_codes = [c for r in responses.values() for c in r.get("x-problem-codes", [])]
    fastapi_422 = responses.get("422", {}).get("content", {}).get("application/json", {})
    if fastapi_422.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
        # FastAPI declares 422 for every route with a parameter; a read by id can't get one.
        if idempotent or "requestBody" in op or any(p["in"] != "path" for p in params):
            responses["422"] = {"content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}}
        else:
            del responses["422"]
    if idempotent:
        _add_codes(responses, IDEMPOTENCY_CODES)
    if "requestBody" in op:
        responses.setdefault("413", {})
    responses.setdefault("500", {})

    for status, response in responses.items():
        if int(status) < 400:
            if response.get("description") == "Successful Response":
                response["description"] = {"200": "OK", "201": "Created"}.get(status, "Success")
            continue
        generic = _STATUS_TEXT.get(int(status), ("", ()))[1]
        codes = list(dict.fromkeys([*generic, *response.get("x-problem-codes", [])]))
        response["content"] = {PROBLEM_JSON: {"schema": _schema_of(response)}}
        response["x-problem-codes"] = codes
        response["description"] = _problem_description(int(status), codes, roles)
        if int(status) in _HEADERS:
            response["headers"] = copy.deepcopy(_HEADERS[int(status)])
    op["responses"] = dict(sorted(responses.items()))

    parts = [op.get("description", "").strip()]
    if roles is not None:
        op["x-roles"] = list(roles)
        parts.append("**Roles:** " + ", ".join(ROLE_WORDS.get(r, r) for r in roles) + ".")
    elif not op.get("security"):
        parts.append("**Roles:** any caller; no API key is needed.")
    refusals = [c for c in dict.fromkeys(route_codes) if c not in _EVERYWHERE]
    refusals.sort(key=lambda c: ERROR_CODES[c].status)
    if refusals:
        lines = [f"- {ERROR_CODES[c].status} `{c}`: {ERROR_CODES[c].meaning}" for c in refusals]
        parts.append("**Refusals:**\n\n" + "\n".join(lines))
    op["description"] = "\n\n".join(p for p in parts if p)


_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
_BLOCK_START = re.compile(r"^(?:[-*] |\d+\. |\||#)")


def reflow(text: str) -> str:
    """Markdown written as wrapped lines (docstrings), with each paragraph, list item and table
    row on one line, so that the document reads well as JSON too."""
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        lines: list[str] = []
        for line in paragraph.splitlines():
            line = line.strip()
            if lines and not _BLOCK_START.match(line) and not lines[-1].startswith(("|", "#")):
                lines[-1] += " " + line
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


_INTEGER_BOUNDS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}


def _integers(node: Any) -> Any:
    """Bounds that FastAPI's document model made floats, as the integers they were."""
    if isinstance(node, dict):
        return {
            key: int(value)
            if key in _INTEGER_BOUNDS and isinstance(value, float) and value.is_integer()
            else _integers(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_integers(item) for item in node]
    return node


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref.rsplit("/", 1)[-1]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def finish(app: FastAPI, doc: dict[str, Any]) -> dict[str, Any]:
    """Complete FastAPI's document of `app` (see the module's docstring)."""
    # Operation ids are the route functions' names (`operation_id`), unique in the document.
    routes = {route.name: route for route in _api_routes(app.routes)}
    for item in doc.get("paths", {}).values():
        for method, op in item.items():
            if method in _METHODS:
                _finish_operation(method, op, routes.get(op.get("operationId", "")))
    _prune(doc)
    doc["paths"] = _in_reading_order(doc.get("paths", {}))
    finished: dict[str, Any] = _reflowed(_integers(_rename_pages(doc)))
    return finished


# The order a reader meets the API in. The app includes its routers in another order (the hot
# routes first: FastAPI tries routes one by one), so the document's paths are put back in this.
TAG_ORDER = (
    "health",
    "api keys",
    "accounts",
    "deposits",
    "credits",
    "spend",
    "balance",
    "refunds",
    "promotions",
    "expiry",
    "history",
    "reports",
    "audit",
)


def _in_reading_order(paths: dict[str, Any]) -> dict[str, Any]:
    def rank(item: tuple[str, Any]) -> int:
        tags = [t for op in item[1].values() if isinstance(op, dict) for t in op.get("tags", ())]
        return TAG_ORDER.index(tags[0]) if tags and tags[0] in TAG_ORDER else len(TAG_ORDER)

    return dict(sorted(paths.items(), key=rank))  # stable: a tag's paths keep their order


def _reflowed(node: Any) -> Any:
    """Every description (docstrings are wrapped) reflowed by `reflow`."""
    if isinstance(node, dict):
        return {
            key: reflow(value)
            if key == "description" and isinstance(value, str)
            else _reflowed(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_reflowed(item) for item in node]
    return node


def _prune(doc: dict[str, Any]) -> None:
    """Drop the schemas nothing refers to any more (FastAPI's HTTPValidationError, …)."""
    schemas = doc.get("components", {}).get("schemas", {})
    while True:
        outside = {k: v for k, v in doc.items() if k != "components"}
        used = set(_references([outside, doc.get("components", {})]))
        unused = [name for name in schemas if name not in used and name not in _KEEP]
        if not unused:
            return
        for name in unused:
            del schemas[name]


_KEEP = {"Problem"}  # the schema of every problem, named in the API description


def _rename_pages(doc: dict[str, Any]) -> dict[str, Any]:
    """`Page_AccountOut_` (Pydantic's name for `Page[AccountOut]`) → `AccountPage`."""
    schemas = doc.get("components", {}).get("schemas", {})
    names = {}
    for name in schemas:
        found = re.fullmatch(r"Page_(\w+?)(?:Out)?_", name)
        if found:
            names[name] = found[1] + "Page"
    if not names:
        return doc

    def rename(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    base, _, name = value.rpartition("/")
                    value = f"{base}/{names.get(name, name)}"
                out[key] = rename(value)
            return out
        if isinstance(node, list):
            return [rename(item) for item in node]
        return node

    renamed: dict[str, Any] = rename(doc)
    renamed["components"]["schemas"] = dict(
        sorted(
            (names.get(name, name), schema)
            for name, schema in renamed["components"]["schemas"].items()
        )
    )
    for new in names.values():
        renamed["components"]["schemas"][new]["title"] = new
    return renamed


def install(app: FastAPI) -> None:
    """Serve the finished document at `/openapi.json` (and so at `/docs`)."""
    plain: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            try:
                app.openapi_schema = finish(app, plain())
            except BaseException:
                app.openapi_schema = None
                raise
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
