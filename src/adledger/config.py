"""Settings, read once from the environment (or given directly by tests and the CLI)."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///./adledger.db"


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    refund_quiet_period_seconds: int = 10_800
    refund_closes_account: bool = False
    expiry_interval_seconds: float = 60.0
    max_body_bytes: int = 8 * 1024 * 1024

    @classmethod
    def from_env(cls, database_url: str | None = None) -> Settings:
        env = os.environ
        return cls(
            database_url=database_url or env.get("ADLEDGER_DATABASE_URL") or DEFAULT_DATABASE_URL,
            refund_quiet_period_seconds=int(
                env.get("ADLEDGER_REFUND_QUIET_PERIOD_SECONDS", 10_800)
            ),
            refund_closes_account=_bool(env.get("ADLEDGER_REFUND_CLOSES_ACCOUNT"), False),
            expiry_interval_seconds=float(env.get("ADLEDGER_EXPIRY_INTERVAL_SECONDS", 60)),
        )
