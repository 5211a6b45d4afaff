"""API keys: made once and shown once, stored only as a SHA-256 hash, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update

from adledger.domain.errors import ApiKeyNotFound, InvalidInput, Unauthorized
from adledger.domain.ids import new_id
from adledger.service.accounts import get_business
from adledger.service.uow import UnitOfWork
from adledger.storage.tables import api_keys

ROLES = ("admin", "finance", "ingest", "advertiser")
KEY_PREFIX = "adl_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, its role and, for advertisers, its one business."""

    key_id: str
    role: str
    business_id: str | None = None

    @property
    def scope(self) -> str | None:
        """The business an advertiser is confined to; None for staff keys."""
        return self.business_id if self.role == "advertiser" else None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    uow: UnitOfWork, *, role: str, name: str, business_id: str | None = None
) -> dict[str, Any]:
    """Make a key. The plaintext is in the result and nowhere else, ever."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    # `is None`, not falsiness: an empty business_id is a business that does not exist, not
    # none at all (it used to reach the insert and fail its foreign key: a 500).
    if role == "advertiser" and business_id is None:
        raise InvalidInput("an advertiser key is bound to one business: give business_id")
    if role != "advertiser" and business_id is not None:
        raise InvalidInput("only advertiser keys are bound to a business")
    if business_id is not None:
        get_business(uow, business_id)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = {
        "id": new_id("key"),
        "key_hash": hash_key(key),
        "role": role,
        "name": name,
        "business_id": business_id,
        "created_at": uow.now,
    }
    uow.conn.execute(api_keys.insert().values(**row))
    return {
        "id": row["id"],
        "key": key,
        "role": role,
        "name": name,
        "business_id": business_id,
        "created_at": uow.now,
    }


def revoke_key(uow: UnitOfWork, key_id: str) -> dict[str, Any]:
    row = uow.conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
    if row is None:
        raise ApiKeyNotFound(f"no API key {key_id}")
    revoked_at = row.revoked_at or uow.now
    if row.revoked_at is None:
        uow.conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=uow.now))
    return {
        "id": row.id,
        "role": row.role,
        "name": row.name,
        "business_id": row.business_id,
        "created_at": row.created_at,
        "revoked_at": revoked_at,
    }


# Built once: every request is authenticated, and building the statement costs more than running it.
_BY_HASH = select(
    api_keys.c.id, api_keys.c.role, api_keys.c.business_id, api_keys.c.revoked_at
).where(api_keys.c.key_hash == bindparam("key_hash"))


def authenticate(uow: UnitOfWork, key: str) -> Principal:
    """The principal of a presented key; `Unauthorized` if unknown or revoked."""
    row = uow.conn.execute(_BY_HASH, {"key_hash": hash_key(key)}).first()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("unknown or revoked API key")
    return Principal(key_id=row.id, role=row.role, business_id=row.business_id)
