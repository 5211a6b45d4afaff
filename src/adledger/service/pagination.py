"""Cursor pagination: `?limit=` (1–500) and `?starting_after=<id>`, newest first.

Ids are time-ordered, so "newest first" is "id descending" and the cursor is the last id shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, Select

from adledger.domain.errors import InvalidInput
from adledger.domain.ids import is_id
from adledger.service.uow import UnitOfWork

MAX_LIMIT = 500
# The id prefix of each listed table: a cursor must be an id of the kind the list is of.
PREFIXES = {
    "accounts": "acct",
    "lots": "lot",
    "deposits": "dep",
    "transactions": "txn",
    "refunds": "rf",
    "promotions": "promo",
    "redemptions": "red",
}


class Page(TypedDict):
    data: list[Any]
    has_more: bool
    next_cursor: str | None


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
    return limit


def paginate(
    uow: UnitOfWork,
    query: Select[Any],
    id_column: ColumnElement[str],
    limit: int,
    starting_after: str | None,
    view: Callable[[Any], Any],
) -> Page:
    check_limit(limit)
    if starting_after is not None:
        prefix = PREFIXES[id_column.table.name]
        if not is_id(starting_after, prefix):
            raise InvalidInput(
                f"starting_after must be the `next_cursor` of an earlier page (a {prefix}_… id)",
                code="invalid_cursor",
            )
        query = query.where(id_column < starting_after)
    rows = uow.conn.execute(query.order_by(id_column.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [view(r) for r in rows],
        "has_more": more,
        "next_cursor": rows[-1].id if more and rows else None,
    }
