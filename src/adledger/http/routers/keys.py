"""API keys (admin only): make one (shown once) and revoke one."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from adledger.http.deps import get_db, require
from adledger.http.respond import respond
from adledger.http.schemas import IdRef, Input, KeyId, Name, example_id, problems
from adledger.service import keys
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])

Role = Literal["admin", "finance", "ingest", "advertiser"]
ROLE_DOC = (
    "`admin`: everything; `finance`: money, promotions and reports; `ingest`: post spend only; "
    "`advertiser`: one business's accounts"
)


class KeyIn(Input):
    role: Role = Field(description=ROLE_DOC)
    name: Name = Field(
        description="What the key is for, 1–200 characters", examples=["ad server, eu-west"]
    )
    business_id: IdRef | None = Field(
        None,
        description="`advertiser` keys only, and required for them: the one business (`biz_…`) "
        "the key may act for",
        examples=[example_id("biz")],
    )


class KeyOut(BaseModel):
    id: str = Field(
        description="The key's id (`key_…`), not a secret", examples=[example_id("key")]
    )
    key: str = Field(
        description="The secret key, shown only in this response (only its hash is stored): "
        "send it as `Authorization: Bearer <key>`",
        examples=["adl_2y4Jv3kQm9sXcZ1bN7pW0fR5tH8uL6eA"],
    )
    role: Role = Field(description=ROLE_DOC)
    name: str = Field(description="What the key is for")
    business_id: str | None = Field(description="An advertiser key's business (`biz_…`)")
    created_at: datetime = Field(description="When it was made (UTC)")


class RevokedKeyOut(BaseModel):
    id: str = Field(description="The key's id (`key_…`)", examples=[example_id("key")])
    role: Role = Field(description=ROLE_DOC)
    name: str = Field(description="What the key was for")
    business_id: str | None = Field(description="An advertiser key's business (`biz_…`)")
    created_at: datetime = Field(description="When it was made (UTC)")
    revoked_at: datetime = Field(description="When it was revoked (the first time, UTC)")


@router.post(
    "",
    status_code=201,
    response_model=KeyOut,
    responses=problems("business_not_found", "response_shown_once", 422),
    summary="Create an API key (the key is shown only in this response)",
)
def create_key(
    body: KeyIn,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require()),
) -> Response:
    """Only a hash of the key is stored, so a lost key can't be shown again: revoke it and make
    another. An `advertiser` key needs `business_id` and other roles refuse one (422
    `validation_error`). A repeat with the same Idempotency-Key makes no second key and gets 409
    `response_shown_once`: the key itself is never stored."""
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
    responses=problems("api_key_not_found"),
    summary="Revoke an API key; its next request gets 401",
)
def revoke_key(
    key_id: KeyId,
    request: Request,
    db: Database = Depends(get_db),
    who: Principal = Depends(require()),
) -> Response:
    """From now on the key gets 401 `unauthorized`. Revoking a revoked key changes nothing and
    answers the same (with the first `revoked_at`)."""
    return respond(request, db, who, keys.revoke_key, key_id)
