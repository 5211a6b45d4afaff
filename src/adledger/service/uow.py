"""The unit of work: one database transaction, its instant, and the settings.

`Database.run(fn, ...)` opens a transaction, calls `fn(uow, ...)`, commits if it returns and rolls
back if it raises (a use case that must keep a trace of a refusal raises `KeepWrites`: its
writes are committed, then the refusal is raised). Lock conflicts that a retry resolves
(PostgreSQL deadlocks and serialization failures, a unique-key race, SQLite's busy lock) run `fn`
again on a fresh transaction. Services never commit; routes and commands never query.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import ARRAY, Connection, Engine, any_, bindparam, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from adledger.clock import Clock, SystemClock
from adledger.config import Settings
from adledger.domain.errors import AdledgerError
from adledger.storage.engine import READ_ONLY, is_sqlite, make_engine
from adledger.storage.tables import accounts

P = ParamSpec("P")
T = TypeVar("T")

_RETRY_SQLSTATES = {"40001", "40P01", "55P03"}


_LOCK_ACCOUNTS = (
    select(accounts)
    .where(accounts.c.id == any_(bindparam("ids", type_=ARRAY(accounts.c.id.type))))
    .order_by(accounts.c.id)
    .with_for_update()
)


@dataclass
class UnitOfWork:
    conn: Connection
    now: datetime
    settings: Settings
    sqlite: bool
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def lock_accounts(self, account_ids: Sequence[str]) -> dict[str, Any]:
        """Lock the named accounts in id order and return their rows by id (missing ones absent).

        PostgreSQL takes row locks (`FOR UPDATE`); on SQLite the transaction already holds the
        database's write lock (`BEGIN IMMEDIATE`).
        """
        ids = sorted(set(account_ids))
        found: dict[str, Any] = {}
        if not self.sqlite:  # one statement, the ids as one array; rows locked in id order
            for row in self.conn.execute(_LOCK_ACCOUNTS, {"ids": ids}):
                found[row.id] = row
            return found
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            query = select(accounts).where(accounts.c.id.in_(chunk))
            for row in self.conn.execute(query):
                found[row.id] = row
        return found


class RetryableConflict(Exception):
    """Raised by a service when it saw a race that a fresh transaction will resolve."""


class KeepWrites(Exception):
    """Raised by a use case to commit what its unit of work wrote and *then* refuse with
    `error`: for a refusal that must leave a trace (a failed redemption attempt), written in the
    same transaction that decided it, so no concurrent request can miss it."""

    def __init__(self, error: AdledgerError) -> None:
        super().__init__(error)
        self.error = error


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, RetryableConflict):
        return True
    if isinstance(exc, DBAPIError):
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None)
        if sqlstate in _RETRY_SQLSTATES:
            return True
        if isinstance(exc, IntegrityError) and sqlstate == "23505":
            return True  # a unique-key race: the retry will see the other writer's row
        if isinstance(exc, OperationalError) and "locked" in str(orig).lower():
            return True
    return False


class Database:
    """The engine, settings and clock one process works with."""

    def __init__(
        self, settings: Settings, clock: Clock | None = None, engine: Engine | None = None
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.engine = engine or make_engine(settings.database_url)
        self.sqlite = is_sqlite(self.engine)
        self.retries = 0

    def run(
        self,
        fn: Callable[Concatenate[UnitOfWork, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        attempts = 12
        for attempt in range(attempts):
            try:
                kept: AdledgerError | None = None
                with self.engine.connect() as conn, conn.begin():
                    uow = UnitOfWork(conn, self.clock.now(), self.settings, self.sqlite)
                    try:
                        result = fn(uow, *args, **kwargs)
                    except KeepWrites as keep:
                        kept = keep.error
                for callback in uow.after_commit:
                    callback()
                if kept is not None:
                    raise kept
                return result
            except (DBAPIError, RetryableConflict) as exc:
                if attempt == attempts - 1 or not _retryable(exc):
                    raise
                self.retries += 1
                time.sleep(min(0.2, 0.002 * 2**attempt) * random.random())
        raise AssertionError("unreachable")

    def read(
        self,
        fn: Callable[Concatenate[UnitOfWork, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run a read-only use case: no write lock on SQLite, rolled back at the end."""
        with self.engine.connect() as conn:
            conn.info[READ_ONLY] = True
            try:
                with conn.begin() as tx:
                    uow = UnitOfWork(conn, self.clock.now(), self.settings, self.sqlite)
                    result = fn(uow, *args, **kwargs)
                    tx.rollback()
                    return result
            finally:
                conn.info.pop(READ_ONLY, None)

    def dispose(self) -> None:
        self.engine.dispose()
