"""Pydantic types shared by the routers: amounts, times, currencies, ids, pages, problems.

Inputs are strict: an amount is a JSON integer (never a float, string or boolean) in
(0, 10^15]; a time is RFC 3339 with an explicit offset and is turned into UTC; a currency is a
known ISO 4217 code. Anything else is a 422 problem before any use case runs.

Responses are not validated against their models (the routes answer with ready JSON), so the
models here and in the routers are documentation: what `/openapi.json` promises a client.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic.json_schema import SkipJsonSchema

from adledger.domain.money import EXPONENTS, MAX_AMOUNT
from adledger.http.openapi import ERROR_CODES
from adledger.service.pagination import MAX_LIMIT

T = TypeVar("T")


def _utc(value: datetime) -> datetime:
    # `astimezone`: measured the cheapest with pydantic's own tzinfo (every spend event passes
    # here): half the cost of `utcoffset()` and arithmetic, whose calls into it are slow.
    return value.astimezone(UTC)


def _rfc3339_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("times are RFC 3339 strings with an explicit offset")
    return value


def _known_currency(value: str) -> str:
    if value not in EXPONENTS:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return value


MINOR_UNITS = "minor units of the account's currency"

Amount = Annotated[
    int,
    Field(
        strict=True,
        gt=0,
        le=MAX_AMOUNT,
        description=f"An amount in {MINOR_UNITS}: a JSON integer, 0 < amount ≤ 10^15",
        examples=[2500],
    ),
]
OptionalAmount = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT)]
Time = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_text),
    AfterValidator(_utc),
    Field(
        description="RFC 3339 with an explicit offset; stored and returned in UTC",
        examples=["2026-12-01T12:00:00Z"],
    ),
]
Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    AfterValidator(_known_currency),
    # The document lists the known codes, so that a client (or a fuzzer) knows `AAA` is refused.
    Field(
        description="ISO 4217 code", examples=["USD"], json_schema_extra={"enum": sorted(EXPONENTS)}
    ),
]
# PostgreSQL can't store U+0000 in text, so every string a client sends refuses it (422, on
# every backend alike) instead of failing (500) where it reaches the database.
NO_NUL = r"^[^\x00]*$"
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=NO_NUL)
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=NO_NUL)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
# An id a client names in a body or a query (ids are at most 40 characters).
IdRef = Annotated[str, StringConstraints(max_length=40, pattern=NO_NUL)]

# --- ids in paths -----------------------------------------------------------------------------

_ID_EXAMPLE = "01KBXQ3ZJ8E4M6R2T9V5W7Y1NA"  # a prefix and 26 Crockford base32 characters


def _id_in_path(what: str, prefix: str) -> Any:
    return Path(
        description=f"{what} (`{prefix}_…`)",
        examples=[f"{prefix}_{_ID_EXAMPLE}"],
        pattern=NO_NUL,
    )


AccountId = Annotated[str, _id_in_path("The ad account's id", "acct")]
DepositId = Annotated[str, _id_in_path("The deposit's id", "dep")]
LotId = Annotated[str, _id_in_path("The credit lot's id", "lot")]
RefundId = Annotated[str, _id_in_path("The refund's id", "rf")]
PromotionId = Annotated[str, _id_in_path("The promotion's id", "promo")]
KeyId = Annotated[str, _id_in_path("The API key's id, not the secret key itself", "key")]


def example_id(prefix: str) -> str:
    """An id as the server makes them, for `examples=`."""
    return f"{prefix}_{_ID_EXAMPLE}"


# --- lists ------------------------------------------------------------------------------------

Limit = Annotated[
    int,
    Query(
        description=f"Page size, 1–{MAX_LIMIT} (else 422 `invalid_limit`)",
        # Documented bounds only: the list itself refuses others with `invalid_limit`.
        json_schema_extra={"minimum": 1, "maximum": MAX_LIMIT},
    ),
]
Cursor = Annotated[
    str | None,
    Query(
        description="The `next_cursor` of the previous page (else 422 `invalid_cursor`); "
        "omit it for the first page",
    ),
]
LIST_REFUSALS = ("invalid_limit", "invalid_cursor")


class Input(BaseModel):
    """Base of request bodies: unknown fields are refused, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class NoBody(Input):
    """The optional body of an action that takes no fields: send `{}` or nothing. A field is
    refused (422) like in every other body, never silently ignored."""


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first."""

    data: list[T] = Field(description="This page's objects, newest first")
    has_more: bool = Field(description="Whether more objects follow this page")
    next_cursor: str | None = Field(
        description="Pass as `starting_after` for the next page; null on the last page"
    )


# --- problems ---------------------------------------------------------------------------------


class ValidationIssue(BaseModel):
    """One thing wrong with a request (the problem's `errors` list)."""

    loc: list[str] = Field(
        description="Where: `body`, `query`, `path` or `header`, then the field's path",
        examples=[["body", "amount"]],
    )
    msg: str = Field(description="What is wrong, in words")
    type: str | None = Field(description="Pydantic's error type", examples=["int_type"])


def _omit_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class Problem(BaseModel):
    """An RFC 9457 problem document with adledger's stable `code`. Some problems carry more
    fields beside these (`errors`, `refundable`, `debt`, `refunds_open_at`, `retry_after`…)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(
        description="A URI for the kind of problem: `urn:adledger:problem:<code>`",
        examples=["urn:adledger:problem:account_not_found"],
    )
    title: str = Field(description="A short summary of the kind of problem, the same every time")
    status: int = Field(description="The HTTP status", examples=[404])
    detail: str = Field(description="What happened this time, in plain words")
    code: str = Field(
        description="The stable snake_case code to branch on; the API description lists them",
        examples=["account_not_found"],
    )
    errors: list[ValidationIssue] | SkipJsonSchema[None] = Field(
        None,
        description="`validation_error` only: every problem found (at most 50)",
        json_schema_extra=_omit_default,
    )


class TooManyAttempts(Problem):
    """`too_many_attempts`: wait `retry_after` seconds (also the `Retry-After` header)."""

    retry_after: int = Field(description="Seconds until the next attempt can be made")


_PROBLEM_MODELS: dict[int, type[Problem]] = {429: TooManyAttempts}


def problems(*refusals: int | str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the problems a route can answer with.

    Each argument is a status (`404`) or a stable code (`"invalid_account_transition"`), whose
    status comes from `http.openapi.ERROR_CODES` (an unknown code fails at import). 401 and 403
    are always declared. `http.openapi` writes the descriptions from the codes, adds the
    Idempotency-Key's problems, 413 and 500, and puts them all under application/problem+json.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for refusal in (401, 403, *refusals):
        status = refusal if isinstance(refusal, int) else ERROR_CODES[refusal].status
        response = responses.setdefault(
            status,
            {
                "model": _PROBLEM_MODELS.get(status, Problem),
                "description": "Problem",
                "x-problem-codes": [],
            },
        )
        if isinstance(refusal, str):
            response["x-problem-codes"].append(refusal)
    return responses
