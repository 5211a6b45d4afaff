"""Idempotency keys: the same key and body give the first response again.

A request with an `Idempotency-Key` first *claims* the key (its own short transaction), then runs
its use case, and stores its response **in the same transaction as the work** (`complete`), so a
crash can never leave work done without its response, nor a response without its work. A claim
whose work never committed (the process died) is taken over once its lease has run out.
Keys are scoped to the calling API key and kept (never purged before 24 hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update

from adledger.domain.errors import IdempotencyKeyInUse, IdempotencyKeyReused, InvalidInput
from adledger.service.uow import UnitOfWork
from adledger.storage.tables import idempotency_keys

LEASE = timedelta(seconds=30)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: str


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
            code="invalid_idempotency_key",
        )
    return key


def claim(uow: UnitOfWork, scope: str, key: str, request_hash: str) -> StoredResponse | None:
    """Claim `key` for this request, or return the response already stored for it.

    Raises `IdempotencyKeyReused` for another body and `IdempotencyKeyInUse` while the first
    request still runs.
    """
    t = idempotency_keys.c
    query = select(idempotency_keys).where(t.api_key_id == scope, t.key == key)
    if not uow.sqlite:
        query = query.with_for_update()
    row = uow.conn.execute(query).first()
    lease = uow.now + LEASE
    if row is None:
        uow.conn.execute(
            idempotency_keys.insert().values(
                api_key_id=scope,
                key=key,
                request_hash=request_hash,
                status="in_progress",
                created_at=uow.now,
                locked_until=lease,
            )
        )
        return None
    if row.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request; use a new key"
        )
    if row.status == "done":
        return StoredResponse(row.response_status, row.response_body)
    if row.locked_until is not None and row.locked_until > uow.now:
        raise IdempotencyKeyInUse("a request with this Idempotency-Key is still in progress")
    uow.conn.execute(
        update(idempotency_keys)
        .where(t.api_key_id == scope, t.key == key)
        .values(locked_until=lease)
    )
    return None


def complete(uow: UnitOfWork, scope: str, key: str, status: int, body: str) -> None:
    t = idempotency_keys.c
    uow.conn.execute(
        update(idempotency_keys)
        .where(t.api_key_id == scope, t.key == key)
        .values(status="done", response_status=status, response_body=body, locked_until=None)
    )


def release(uow: UnitOfWork, scope: str, key: str) -> None:
    """Give up a claim whose request failed unexpectedly, so the client may retry."""
    t = idempotency_keys.c
    uow.conn.execute(
        delete(idempotency_keys).where(
            t.api_key_id == scope, t.key == key, t.status == "in_progress"
        )
    )
