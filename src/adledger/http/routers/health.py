"""Liveness."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = Field(description="Always `ok` while the server answers")


@router.get("/healthz", response_model=Health, summary="Liveness check (no key needed)")
def healthz() -> dict[str, str]:
    """200 `{"status": "ok"}` while the server is up. It does not touch the database."""
    return {"status": "ok"}
