"""The audit trail (admin): every state-changing request, who made it and how it ended."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from adledger.http.deps import get_db, require
from adledger.http.respond import read
from adledger.http.schemas import LIST_REFUSALS, Cursor, Limit, Page, example_id, problems
from adledger.service import audit
from adledger.service.keys import Principal
from adledger.service.uow import Database

router = APIRouter(prefix="/v1", tags=["audit"])


class AuditRecordOut(BaseModel):
    seq: int = Field(description="The record's number: 1, 2, 3 … with no gaps")
    at: datetime = Field(description="When the request was decided")
    request_id: str = Field(description="The request's id, as returned in `X-Request-Id`")
    actor: str | None = Field(
        description="The API key's id (`key_…`), `cli:<user>` for the command line, or null "
        "when the request named no valid key"
    )
    role: str | None = Field(description="The key's role when the request was made")
    method: str = Field(description="HTTP method (`CLI` for a command)")
    path: str = Field(description="What was asked: the path and query (or the command line)")
    status: int = Field(description="The HTTP status answered (0 for a command)")
    code: str | None = Field(
        description="The stable problem code of a refusal, `replayed` for an idempotent replay, "
        "null for a success"
    )
    idempotency_key: str | None = Field(description="The request's `Idempotency-Key`, if any")
    hash: str = Field(
        description="SHA-256 over the previous record's hash and this record: the chain that "
        "`adledger verify` checks"
    )


@router.get(
    "/audit",
    response_model=Page[AuditRecordOut],
    responses=problems(*LIST_REFUSALS),
    summary="The audit trail, newest first",
)
def list_audit(
    actor: str | None = Query(
        None, description="Only this actor's records (a key id)", examples=[example_id("key")]
    ),
    limit: Limit = 50,
    starting_after: Cursor = None,
    db: Database = Depends(get_db),
    who: Principal = Depends(require()),
) -> Response:
    """Every state-changing request — successes, refusals, requests without a valid key, and
    idempotent replays — with who made it (key and role), what it asked, when, how it ended and
    its request id. The records form a hash chain that `adledger verify` checks; the log is
    append-only."""
    return read(db, audit.list_audit, actor=actor, limit=limit, starting_after=starting_after)
