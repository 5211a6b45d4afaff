"""API keys (admin only): make one (shown once) and revoke one."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from adledger.http.deps import get_db, require
from adledger.http.respond import respond
from adledger.http.schemas import Input, Name, problems
from adledger.service import keys
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


class KeyIn(Input):
    role: Literal["admin", "finance", "ingest", "advertiser"]
    name: Name
    business_id: str | None = None


class KeyOut(Input):
    id: str
    key: str
    role: str
    name: str
    business_id: str | None
    created_at: datetime


class RevokedKeyOut(Input):
    id: str
    role: str
    name: str
    business_id: str | None
    created_at: datetime
    revoked_at: datetime


@router.post(
    "",
    status_code=201,
    response_model=KeyOut,
    responses=problems(404, 422),
    summary="Create an API key (the key is shown only in this response)",
    description="Only a hash of the key is stored. A repeat with the same Idempotency-Key makes "
    "no second key and gets 409 `response_shown_once`: the key itself is never stored.",
)
def create_key(
    body: KeyIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require()),
) -> Response:
    return respond(
        request,
        db,
        who,
        keys.create_key,
        body=body,
        status=201,
        shown_once=True,
        **body.model_dump(),
    )


@router.delete(
    "/{key_id}",
    response_model=RevokedKeyOut,
    responses=problems(404),
    summary="Revoke an API key; its next request gets 401",
)
def revoke_key(
    key_id: str,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require()),
) -> Response:
    return respond(request, db, who, keys.revoke_key, key_id)
