"""Liveness."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = Field(description="Always `ok` while the server answers")


@router.get("/healthz", response_model=Health, summary="Liveness check (no key needed)")
async def healthz() -> dict[str, str]:
    """200 `{"status": "ok"}` while the server is up. It does not touch the database."""
    # `async`: no I/O, so no hop to the thread pool (~0.5 ms a hop on a small VM).
    return {"status": "ok"}
