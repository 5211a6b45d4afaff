"""Idempotency keys: the same key and body give the first response again.

A request with an `Idempotency-Key` first *claims* the key (its own short transaction), then runs
its use case, and stores its response **in the same transaction as the work** (`complete`), so a
crash can never leave work done without its response, nor a response without its work. A claim
whose work never committed (the process died) is taken over once its lease has run out.
Keys are scoped to the calling API key and kept (never purged before 24 hours).

A lease running out does not prove its holder died: a request may wait on a lock, or be retried,
for longer than the lease. So every claim carries a new random *token* (a fencing token), and
`complete` stores the response only where the row still holds this request's token, in the
transaction of the work. A request whose claim was taken over finds another token there, raises
`ClaimLost`, and its work rolls back: of two requests with one key, only the holder's commits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds the key: its `token` must still be on the row when it completes."""

    token: str


class ClaimLost(IdempotencyKeyInUse):
    """The request outlived its claim and another request with the key took it over."""


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters, none of them NUL",
            code="invalid_idempotency_key",
        )
    return key


def claim(uow: UnitOfWork, scope: str, key: str, request_hash: str) -> StoredResponse | Claim:
    """Claim `key` for this request, or return the response already stored for it.

    Raises `IdempotencyKeyReused` for another body and `IdempotencyKeyInUse` while the first
    request still holds its lease.
    """
    t = idempotency_keys.c
    query = select(idempotency_keys).where(t.api_key_id == scope, t.key == key)
    if not uow.sqlite:
        query = query.with_for_update()
    row = uow.conn.execute(query).first()
    lease = uow.now + LEASE
    token = secrets.token_hex(16)
    if row is None:
        uow.conn.execute(
            idempotency_keys.insert().values(
                api_key_id=scope,
                key=key,
                request_hash=request_hash,
                status="in_progress",
                created_at=uow.now,
                locked_until=lease,
                claim_token=token,
            )
        )
        return Claim(token)
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
        .values(locked_until=lease, claim_token=token)
    )
    return Claim(token)


def _held(scope: str, key: str, claim: Claim) -> Any:
    t = idempotency_keys.c
    return (
        (t.api_key_id == scope)
        & (t.key == key)
        & (t.status == "in_progress")
        & (t.claim_token == claim.token)
    )


def complete(uow: UnitOfWork, scope: str, key: str, claim: Claim, status: int, body: str) -> None:
    """Store the response, in the transaction of the work; `ClaimLost` (and so a rollback of
    the work) if the claim is no longer this request's."""
    done = uow.conn.execute(
        update(idempotency_keys)
        .where(_held(scope, key, claim))
        .values(
            status="done",
            response_status=status,
            response_body=body,
            locked_until=None,
            claim_token=None,
        )
    )
    if done.rowcount != 1:
        raise ClaimLost(
            "this request outlived its claim on the Idempotency-Key and another request with "
            "the key took it over; this one changed nothing: repeat it to get that one's response"
        )


def release(uow: UnitOfWork, scope: str, key: str, claim: Claim) -> None:
    """Give up a claim whose request failed unexpectedly, so the client may retry."""
    uow.conn.execute(delete(idempotency_keys).where(_held(scope, key, claim)))
