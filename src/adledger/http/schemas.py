"""Pydantic types shared by the routers: amounts, times, currencies, pages, problems.

Inputs are strict: an amount is a JSON integer (never a float, string or boolean) in
(0, 10^15]; a time is RFC 3339 with an explicit offset and is turned into UTC; a currency is a
known ISO 4217 code. Anything else is a 422 problem before any use case runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from adledger.domain.money import EXPONENTS, MAX_AMOUNT

T = TypeVar("T")


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _rfc3339_text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("times are RFC 3339 strings with an explicit offset")
    return value


def _known_currency(value: str) -> str:
    if value not in EXPONENTS:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return value


Amount = Annotated[
    int,
    Field(strict=True, gt=0, le=MAX_AMOUNT, description="Minor units of the account's currency"),
]
OptionalAmount = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT)]
Time = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_text),
    AfterValidator(_utc),
    Field(description="RFC 3339 with an explicit offset; stored and returned in UTC"),
]
Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    AfterValidator(_known_currency),
    Field(description="ISO 4217 code", examples=["USD"]),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Input(BaseModel):
    """Base of request bodies: unknown fields are refused, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    data: list[T]
    has_more: bool
    next_cursor: str | None


class Problem(BaseModel):
    """An RFC 9457 problem document with adledger's stable `code`."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    code: str


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the problem statuses a route can answer with."""
    described = {
        401: "No API key, or an unknown or revoked one",
        403: "The key's role may not do this",
        404: "Not found (or not visible to this key)",
        409: "Refused by the ledger's current state; see `code`",
        422: "Invalid request; nothing changed",
        429: "Too many attempts",
    }
    return {
        s: {
            "model": Problem,
            "description": described.get(s, "Problem"),
            "content": {"application/problem+json": {}},
        }
        for s in (401, 403, *statuses)
    }


LIMIT_DOC = "Page size, 1–500"
CURSOR_DOC = "The `next_cursor` of the previous page"
