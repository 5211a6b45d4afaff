"""The database schema, as SQLAlchemy Core tables. Alembic migrations are made from it.

Times are stored as integer microseconds since the Unix epoch (UTC) on every backend: exact,
sortable, and the same on SQLite and PostgreSQL. `UtcTimestamp` turns them into aware datetimes.

Balances are stored (accounts' cash, held and debt; lots' remaining) and only ever changed by
`storage.postings.post`, in the same statement batch that writes the entries they sum.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeDecorator

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


class UtcTimestamp(TypeDecorator[datetime]):
    """An aware UTC datetime stored as BIGINT microseconds since the epoch."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None or isinstance(value, int):
            return value
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused; times must carry an offset")
        return to_us(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else from_us(value)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(40)
Money = BigInteger

businesses = Table(
    "businesses",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("business_id", ID, ForeignKey("businesses.id"), nullable=True, index=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("cash_available", Money, nullable=False, server_default=text("0")),
    Column("cash_held", Money, nullable=False, server_default=text("0")),
    Column("debt", Money, nullable=False, server_default=text("0")),
    Column("last_spend_at", UtcTimestamp, nullable=True),
    # Why a suspended account is suspended: "debt" (a reversed deposit; lifted by the deposit
    # that covers it) or "staff" (lifted only by a reinstatement).
    Column("suspended_reason", String(16), nullable=True),
    CheckConstraint("cash_available >= 0", name="cash_available_not_negative"),
    CheckConstraint("cash_held >= 0", name="cash_held_not_negative"),
    CheckConstraint("debt >= 0", name="debt_not_negative"),
    CheckConstraint("status IN ('active', 'suspended', 'closed')", name="status_known"),
)

lots = Table(
    "lots",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("source", String(20), nullable=False),
    Column("original", Money, nullable=False),
    Column("remaining", Money, nullable=False),
    Column("effective_at", UtcTimestamp, nullable=False),
    Column("expires_at", UtcTimestamp, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("campaign_id", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("closed_at", UtcTimestamp, nullable=True),
    Column("promotion_id", ID, nullable=True),
    Column("deposit_id", ID, nullable=True),
    CheckConstraint("remaining >= 0 AND remaining <= original", name="remaining_in_range"),
    CheckConstraint("original > 0", name="original_positive"),
    CheckConstraint("expires_at > effective_at", name="window_positive"),
    CheckConstraint("priority BETWEEN 0 AND 100", name="priority_range"),
    CheckConstraint(
        "status IN ('active', 'used', 'expired', 'voided', 'forfeited')", name="status_known"
    ),
    Index("ix_lots_account_status", "account_id", "status"),
    Index(
        "ix_lots_active_expiry",
        "expires_at",
        sqlite_where=text("status = 'active'"),
        postgresql_where=text("status = 'active'"),
    ),
)

deposits = Table(
    "deposits",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("amount", Money, nullable=False),
    Column("tax", Money, nullable=False),
    Column("payment_reference", String(200), nullable=False),
    Column("payment_fingerprint", String(200), nullable=True),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("reversed_at", UtcTimestamp, nullable=True),
    Column("reversal_reason", String(500), nullable=True),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("tax >= 0", name="tax_not_negative"),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("cash_delta", Money, nullable=False),
    Column("credit_delta", Money, nullable=False),
    Column("lot_id", ID, nullable=True),
    Column("event_id", String(200), nullable=True, unique=True),
    Column("event_hash", String(64), nullable=True),
    Column("occurred_at", UtcTimestamp, nullable=True),
    Column("campaign_id", String(200), nullable=True),
    Column("refund_id", ID, nullable=True),
    Column("deposit_id", ID, nullable=True),
    Column("description", String(500), nullable=False),
    Index("ix_transactions_account_id_id", "account_id", "id"),
)

entries = Table(
    "entries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("txn_id", ID, ForeignKey("transactions.id"), nullable=False, index=True),
    Column("account_id", ID, nullable=False),
    Column("lot_id", ID, nullable=True),
    Column("book", String(24), nullable=False),
    Column("amount", Money, nullable=False),
    CheckConstraint("amount <> 0", name="amount_not_zero"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("amount", Money, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("reason", String(500), nullable=True),
    Column("requested_at", UtcTimestamp, nullable=False),
    Column("requested_by", ID, nullable=False),
    Column("decided_at", UtcTimestamp, nullable=True),
    Column("decided_by", ID, nullable=True),
    Column("decision_reason", String(500), nullable=True),
    Column("completed_at", UtcTimestamp, nullable=True),
    CheckConstraint("amount > 0", name="amount_positive"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("business_id", ID, ForeignKey("businesses.id"), nullable=True),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("revoked_at", UtcTimestamp, nullable=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("api_key_id", ID, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("locked_until", UtcTimestamp, nullable=True),
    # Who holds an in-progress claim: a fencing token, new at every claim and takeover, that the
    # holder's `complete` must still find (see service/idempotency.py).
    Column("claim_token", String(32), nullable=True),
)

promotions = Table(
    "promotions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reward_amount", Money, nullable=True),
    Column("reward_percent", Integer, nullable=True),
    Column("reward_max_amount", Money, nullable=True),
    Column("credit_valid_days", Integer, nullable=False),
    Column("starts_at", UtcTimestamp, nullable=False),
    Column("ends_at", UtcTimestamp, nullable=False),
    Column("max_redemptions", BigInteger, nullable=True),
    Column("budget", Money, nullable=True),
    Column("threshold", Money, nullable=True),
    Column("window_days", Integer, nullable=False),
    Column("min_deposit", Money, nullable=True),
    Column("new_accounts_only", Boolean, nullable=False),
    Column("new_account_days", Integer, nullable=False),
    Column("once_per_business", Boolean, nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("ended_early_at", UtcTimestamp, nullable=True),
    # Kept under the promotion's row lock by every redemption, grant and lapse:
    Column("redemptions_count", BigInteger, nullable=False, server_default=text("0")),
    Column("budget_committed", Money, nullable=False, server_default=text("0")),
    CheckConstraint("kind IN ('coupon', 'spend_threshold', 'deposit_bonus')", name="kind_known"),
    CheckConstraint(
        "max_redemptions IS NULL OR redemptions_count <= max_redemptions",
        name="redemptions_within_max",
    ),
    CheckConstraint("budget IS NULL OR budget_committed <= budget", name="committed_within_budget"),
    CheckConstraint("budget_committed >= 0", name="committed_not_negative"),
)

promotion_codes = Table(
    "promotion_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("promotion_id", ID, ForeignKey("promotions.id"), nullable=False, index=True),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("redeemed_at", UtcTimestamp, nullable=True),
    Column("redemption_id", ID, nullable=True),
)

redemptions = Table(
    "redemptions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("promotion_id", ID, ForeignKey("promotions.id"), nullable=False),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("business_id", ID, nullable=True),
    # The business when the promotion is once per business, else NULL: the unique index below
    # then backs "one redemption per business" in the database itself.
    Column("once_key", ID, nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    # The end of the redemption's window (`window_days` after it): an earning redemption
    # lapses then, and the report counts the cash spent inside it.
    Column("window_ends_at", UtcTimestamp, nullable=False),
    Column("progress", Money, nullable=False, server_default=text("0")),
    Column("reserved", Money, nullable=False, server_default=text("0")),
    Column("lot_id", ID, nullable=True),
    Column("deposit_id", ID, nullable=True),
    Column("closed_at", UtcTimestamp, nullable=True),
    CheckConstraint("status IN ('granted', 'earning', 'lapsed')", name="status_known"),
    CheckConstraint("reserved >= 0 AND progress >= 0", name="amounts_not_negative"),
    Index("uq_redemptions_promotion_account", "promotion_id", "account_id", unique=True),
    Index("uq_redemptions_promotion_once", "promotion_id", "once_key", unique=True),
    Index("ix_redemptions_account_status", "account_id", "status"),
    Index(
        "ix_redemptions_earning_window",
        "window_ends_at",
        sqlite_where=text("status = 'earning'"),
        postgresql_where=text("status = 'earning'"),
    ),
)

redemption_attempts = Table(
    "redemption_attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    # The business (or, for an account without one, the account) that tried.
    Column("who", ID, nullable=False),
    Column("attempted_at", UtcTimestamp, nullable=False),
    Column("outcome", String(32), nullable=False),
    Index("ix_redemption_attempts_who_at", "who", "attempted_at"),
)

# The audit trail (domain/audit.py): append-only (triggers refuse UPDATE and DELETE) and chained;
# `audit_head` holds the last record's number and hash, and its row lock serialises appends.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UtcTimestamp, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("actor", String(200), nullable=True),
    Column("role", String(16), nullable=True),
    Column("method", String(10), nullable=False),
    Column("path", String(2000), nullable=False),
    Column("status", Integer, nullable=False),
    Column("code", String(64), nullable=True),
    Column("idempotency_key", String(255), nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_actor_seq", "actor", "seq"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    CheckConstraint("id = 1", name="one_row"),
)
