"""Helpers for HTTP-surface tests: asserting a problem document, and proving nothing changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adledger.service.uow import Database
from adledger.storage.tables import metadata

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code"}


def assert_problem(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """`r` is an RFC 9457 problem of `status` (and `code`, when given); returns its body."""
    where = f"{r.request.method} {r.request.url}"
    assert r.status_code == status, f"{where}: {r.status_code} {r.text}"
    media = r.headers.get("content-type", "").split(";")[0].strip()
    assert media == "application/problem+json", f"{where}: content-type {media!r}"
    body = r.json()
    assert set(body) >= PROBLEM_FIELDS, f"{where}: missing {PROBLEM_FIELDS - set(body)}"
    assert body["status"] == status, f"{where}: body status {body['status']}"
    for field in ("type", "title", "detail", "code"):
        assert isinstance(body[field], str) and body[field], f"{where}: empty {field}"
    assert body["code"].replace("_", "").isalpha() and body["code"].islower(), body["code"]
    if code is not None:
        assert body["code"] == code, f"{where}: code {body['code']!r}, wanted {code!r}"
    if status == 401:
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), where
    return body


# The audit trail records every state-changing request, refused ones too: it is the record of
# the request, not state the request changed.
AUDIT_TABLES = frozenset({"audit_log", "audit_head"})


def snapshot(db: Database) -> dict[str, list[str]]:
    """Every row of every table but the audit trail's: equal snapshots mean the request changed
    nothing at all."""
    with db.engine.connect() as conn:
        rows = {
            t.name: sorted(repr(tuple(row)) for row in conn.execute(select(t)))
            for t in metadata.sorted_tables
            if t.name not in AUDIT_TABLES
        }
        conn.rollback()
    return rows
