from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness check (no key needed)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
