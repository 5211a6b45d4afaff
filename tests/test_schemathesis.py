"""Schemathesis against the app's live OpenAPI document (`/openapi.json`): every operation,
generated requests (valid and invalid), every check on, over the real app and a seeded SQLite
database, authenticated with an admin key.

No request may get a server error, and every response must be what the document says: a
declared status, the declared content type, a body matching its schema, the declared headers;
invalid requests are refused, valid ones accepted, and a request without the key is refused.
The seeded objects (an account with cash, another in JPY, a lot, a deposit, a pending refund, a
promotion, a spare key) are offered in place of generated path ids, so requests reach the ledger
and not only its 404s. After the run, the ledger verifies clean.

One deliberate setting: a schema-valid request may be refused with 422 for a rule the document
states in words but a JSON Schema can't express (an advertiser key needs `business_id`, an
Idempotency-Key reused with another request, `expires_at` after `effective_at`, …). The check
`no_schema_refusal_of_valid_data` keeps that honest: such a 422 must come from the ledger's
rules, never from the request schema (a problem with `errors`), which would mean the server's
schema is stricter than the document.

Bounded: a few examples per operation, so the file runs in about a minute on two cores.
"""

from __future__ import annotations

import atexit
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import PositiveDataAcceptanceConfig

from adledger.clock import FixedClock
from adledger.config import Settings
from adledger.domain.ids import new_id
from adledger.http.app import create_app
from adledger.service import keys, promotions, refunds
from adledger.service.verify import verify_ledger
from adledger.storage.tables import api_keys
from conftest import T0
from factories import deposit, grant, make_account

EXAMPLES = 12

# The app is made at import, over a database file that the `served` fixture fills (engines
# connect lazily, so nothing touches it before): schemathesis reads the live document from it.
_DIR = Path(tempfile.mkdtemp(prefix="adledger-schemathesis-"))
atexit.register(shutil.rmtree, _DIR, True)
APP = create_app(
    Settings(database_url=f"sqlite:///{_DIR / 'adledger.db'}"), clock=FixedClock(T0), migrate=False
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# Schemathesis's default for valid data, and 422 for the rules in words (see the docstring).
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "422"]
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=ACCEPTED
)
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "use_after_free",
    "ensure_resource_availability",
    "missing_required_header",
    "ignored_auth",
    "object_level_authorization",
    "unsupported_method",
    "allow_header_conformance",
)

SEEDED: dict[str, list[str]] = {}  # path parameter → the seeded ids offered for it
# Known at import, because schemathesis makes its explicit examples while collecting; the
# fixture stores its hash as an admin key (as `keys.create_key` would).
ADMIN_KEY = keys.KEY_PREFIX + secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def served(sqlite_template: Path) -> Iterator[None]:
    shutil.copy(sqlite_template, _DIR / "adledger.db")
    db = APP.state.db
    acct = make_account(db, cash=50_000)
    other = make_account(db, currency="JPY", cash=9_000)
    dep = deposit(db, acct["id"], amount=5_000, reference="pay_fuzz")
    lot = grant(db, acct["id"], amount=2_000)
    requester = db.run(keys.create_key, role="finance", name="requester")
    refund = db.run(refunds.request_refund, acct["id"], amount=1_000, requested_by=requester["id"])
    promo = db.run(
        promotions.create_promotion,
        name="Fuzz",
        kind="coupon",
        currency="USD",
        reward={"amount": 100},
        credit_valid_days=30,
        starts_at=T0 - timedelta(days=1),
        ends_at=T0 + timedelta(days=30),
    )
    spare = db.run(keys.create_key, role="ingest", name="spare")
    with db.engine.begin() as conn:
        conn.execute(
            api_keys.insert().values(
                id=new_id("key"),
                key_hash=keys.hash_key(ADMIN_KEY),
                role="admin",
                name="schemathesis",
                created_at=T0,
            )
        )
    SEEDED.update(
        {
            "account_id": [acct["id"], other["id"]],
            "deposit_id": [dep["id"]],
            "lot_id": [lot["id"]],
            "refund_id": [refund["id"]],
            "promotion_id": [promo["id"]],
            "key_id": [spare["id"]],  # never the admin key the run authenticates with
        }
    )
    try:
        yield
        violations = db.read(verify_ledger)
        assert not violations, [f"{v.check}: {v.message}" for v in violations]
    finally:
        db.dispose()


@schema.auth()
class AdminKey:
    """Every request carries the run's admin key (schemathesis leaves it out where it tests
    that a missing key is refused)."""

    def get(self, case: Any, ctx: Any) -> str:
        return ADMIN_KEY

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


PARSE_BUG = "test_limits.py::test_a_body_that_can_not_be_parsed_is_a_documented_validation_error"


@schema.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but one known bug, kept as a strict xfail in PARSE_BUG: a body the
    JSON parser gives up on (here: bytes that are not UTF-8) is an undeclared 400 `http_error`
    (http/problems.py, outside this change)."""
    if response.status_code == 400 and type(failure).__name__ == "UndefinedStatusCode":
        return response.json().get("code") != "http_error"
    return True


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Each generated path id, or one of the seeded objects' ids in its place."""
    names = [k for k in path_parameters or {} if SEEDED.get(k)]
    if not names:
        return st.just(path_parameters)
    return st.one_of(
        st.just(path_parameters),
        st.fixed_dictionaries({k: st.sampled_from(SEEDED[k]) for k in names}).map(
            lambda chosen: {**(path_parameters or {}), **chosen}
        ),
    )


def no_schema_refusal_of_valid_data(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request refused by the *request schema* (a 422 problem listing `errors`)
    means the server validates more strictly than the document says."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    problem = response.json()
    schema_errors = [e for e in problem.get("errors", []) if not _integral_float(case, e)]
    assert not schema_errors, (
        f"schema-valid request refused by the server's schema: {problem['detail']} {schema_errors}"
    )
    return None


def _integral_float(case: Any, error: dict[str, Any]) -> bool:
    """`1.0` is an integer to JSON Schema, but the contract refuses it for every integer field
    (decisions.md: amounts are JSON integers only): that refusal is the contract's, not a
    mismatch."""
    if error.get("type") != "int_type" or error["loc"][:1] != ["body"]:
        return False
    value: Any = case.body
    for part in error["loc"][1:]:
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, TypeError, ValueError):
            return False
    return isinstance(value, float) and value.is_integer()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_every_operation_conforms_to_the_document(case: Any, served: None) -> None:
    case.call_and_validate(additional_checks=[no_schema_refusal_of_valid_data])


def test_every_check_of_schemathesis_is_on():
    config = schema.config.checks_config_for()
    assert [name for name in CHECKS if not getattr(config, name).enabled] == []
    assert config.response_schema_conformance.validate_formats
