"""The audit trail: append a record (in the unit of work of the change it describes), list the
records, and check the chain.

Appends are serialised by the row lock of `audit_head` (SQLite's write lock does it there), which
holds the number and hash of the last record: the next record is numbered `seq + 1` and chained
to that hash. A successful change writes its record in its own transaction, so the change and its
record commit together or not at all; a refusal's record is written on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, insert, select, update

from adledger.domain.audit import GENESIS, AuditRecord, chain_hash
from adledger.domain.errors import InvalidInput
from adledger.service.pagination import Page, check_limit
from adledger.service.uow import UnitOfWork
from adledger.storage.tables import audit_head, audit_log

A = audit_log.c


def append(uow: UnitOfWork, record: AuditRecord) -> int:
    """Append `record` to the chain; its number."""
    query = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
    if not uow.sqlite:
        query = query.with_for_update()
    head = uow.conn.execute(query).first()
    if head is None:  # a database emptied by hand: start the chain again
        uow.conn.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS))
        seq, prev = 1, GENESIS
    else:
        seq, prev = head.seq + 1, head.hash
    digest = chain_hash(seq, prev, record)
    uow.conn.execute(
        insert(audit_log).values(
            seq=seq,
            at=record.at,
            request_id=record.request_id,
            actor=record.actor,
            role=record.role,
            method=record.method,
            path=record.path,
            status=record.status,
            code=record.code,
            idempotency_key=record.idempotency_key,
            prev_hash=prev,
            hash=digest,
        )
    )
    uow.conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest))
    return seq


def record_of(row: Any) -> AuditRecord:
    return AuditRecord(
        at=row.at,
        request_id=row.request_id,
        actor=row.actor,
        role=row.role,
        method=row.method,
        path=row.path,
        status=row.status,
        code=row.code,
        idempotency_key=row.idempotency_key,
    )


def audit_view(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": row.at,
        "request_id": row.request_id,
        "actor": row.actor,
        "role": row.role,
        "method": row.method,
        "path": row.path,
        "status": row.status,
        "code": row.code,
        "idempotency_key": row.idempotency_key,
        "hash": row.hash,
    }


def list_audit(
    uow: UnitOfWork,
    *,
    actor: str | None = None,
    limit: int = 50,
    starting_after: str | None = None,
) -> Page:
    """Records newest first; the cursor is a record's number."""
    check_limit(limit)
    query = select(audit_log)
    if actor is not None:
        query = query.where(A.actor == actor)
    if starting_after is not None:
        if not starting_after.isdigit():
            raise InvalidInput(
                "starting_after must be the `next_cursor` of an earlier page (a record number)",
                code="invalid_cursor",
            )
        query = query.where(A.seq < int(starting_after))
    rows = uow.conn.execute(query.order_by(A.seq.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [audit_view(r) for r in rows],
        "has_more": more,
        "next_cursor": str(rows[-1].seq) if more and rows else None,
    }


def chain_breaks(conn: Connection, limit: int, chunk: int = 5_000) -> Iterator[str]:
    """Walk the whole chain in order; describe each record that does not follow from the one
    before it (a gap in the numbering, a wrong `prev_hash`, a hash that does not match its
    content) and a head that does not name the last record."""
    found = 0
    expected_seq, prev = 1, GENESIS
    last = 0
    while found < limit:
        rows = conn.execute(
            select(audit_log).where(A.seq > last).order_by(A.seq).limit(chunk)
        ).all()
        if not rows:
            break
        for row in rows:
            problem = None
            if row.seq != expected_seq:
                problem = f"audit record {row.seq} follows {expected_seq - 1}: records are missing"
            elif row.prev_hash != prev:
                problem = f"audit record {row.seq} does not chain to record {row.seq - 1}"
            elif row.hash != chain_hash(row.seq, row.prev_hash, record_of(row)):
                problem = f"audit record {row.seq} was altered: its hash does not match it"
            if problem is not None:
                found += 1
                yield problem
                if found >= limit:
                    return
            expected_seq, prev, last = row.seq + 1, row.hash, row.seq
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).first()
    if last and (head is None or (head.seq, head.hash) != (last, prev)):
        yield f"the audit head does not name the last record ({last})"
