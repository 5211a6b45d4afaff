"""The storage contract: what adledger's database layer promises, on every backend.

`StorageContract` states the promises once: `post()` is the one writer of ledger rows and stored
balances, the database itself refuses what the ledger must never hold, times are exact UTC
instants, `Database.run` and `Database.read` own commit, rollback and retry, and the migrations
build exactly the schema of `storage.tables`. Each backend runs the whole suite by subclassing
it. A subclass says only what differs there: how to make a fresh database, which error an
append-only trigger raises, and how another writer finds out that an account is locked.

Arranging uses the factories (the service layer); everything under test is the storage layer.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, delete, func, select, text, update
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    StatementError,
)

from adledger.domain import ledger
from adledger.domain.ids import new_id
from adledger.domain.ledger import Book, Kind, Leg, Transaction
from adledger.service.uow import Database, RetryableConflict, UnitOfWork
from adledger.service.verify import verify_ledger
from adledger.storage.engine import make_engine
from adledger.storage.migrate import alembic_config, upgrade
from adledger.storage.postings import Posting, post
from adledger.storage.tables import (
    accounts,
    businesses,
    entries,
    lots,
    metadata,
    refunds,
    to_us,
    transactions,
)
from conftest import BACKENDS, PG_ADMIN_URL, T0
from factories import grant, make_account

US = timedelta(microseconds=1)
DAY = timedelta(days=1)


# --- helpers ----------------------------------------------------------------------------------


def posting(account: dict[str, Any], txn: Transaction, **refs: Any) -> Posting:
    return Posting(new_id("txn"), account["id"], account["currency"], T0, txn, refs)


def spend_txn(event_id: str, *, cash: int = 0, unfunded: int = 0, **lot_draws: int) -> Transaction:
    """Ad delivery paid by `cash`, by lots (`lot_id=amount`) and the `unfunded` rest."""
    legs = [Leg(Book.CREDIT, -take, lot_id) for lot_id, take in lot_draws.items()]
    legs += [Leg(Book.CASH, -cash), Leg(Book.OVERDELIVERY, -unfunded)]
    legs.append(Leg(Book.REVENUE, cash + unfunded + sum(lot_draws.values())))
    return Transaction(Kind.SPEND, tuple(legs), f"Ad spend {event_id}")


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: equal snapshots mean nothing was written."""

    def work(uow: UnitOfWork) -> dict[str, list[tuple[Any, ...]]]:
        return {
            table.name: [
                tuple(row)
                for row in uow.conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in metadata.sorted_tables
        }

    return db.read(work)


def refused(
    db: Database, work: Callable[[Connection], object], error: type[Exception] = IntegrityError
) -> Exception:
    """Run `work` in one transaction that the database must refuse with `error`; check that
    nothing at all was written, and return the error."""
    before = snapshot(db)
    with pytest.raises(error) as caught, db.engine.begin() as conn:
        work(conn)
    assert snapshot(db) == before
    return caught.value


def stored(db: Database, account_id: str) -> tuple[int, int, int]:
    """An account's stored (cash_available, cash_held, debt)."""
    query = select(accounts.c.cash_available, accounts.c.cash_held, accounts.c.debt).where(
        accounts.c.id == account_id
    )
    return tuple(db.read(lambda uow: uow.conn.execute(query).one()))  # type: ignore[return-value]


def remaining(db: Database, *lot_ids: str) -> list[int]:
    def work(uow: UnitOfWork) -> list[int]:
        rows = dict(uow.conn.execute(select(lots.c.id, lots.c.remaining)).all())
        return [rows[lot_id] for lot_id in lot_ids]

    return db.read(work)


def business_names(db: Database) -> list[str]:
    query = select(businesses.c.name).order_by(businesses.c.name)
    return db.read(lambda uow: list(uow.conn.execute(query).scalars()))


def add_business(uow: UnitOfWork, name: str) -> str:
    business_id = new_id("biz")
    uow.conn.execute(businesses.insert().values(id=business_id, name=name, created_at=uow.now))
    return business_id


def lot_row(account_id: str, **changes: Any) -> dict[str, Any]:
    """A valid lot row, empty (so it needs no grant entries to verify), with `changes`."""
    row = {
        "id": new_id("lot"),
        "account_id": account_id,
        "source": "manual",
        "original": 1_000,
        "remaining": 0,
        "effective_at": T0,
        "expires_at": T0 + DAY,
        "priority": 50,
        "campaign_id": None,
        "status": "active",
        "reason": "storage contract",
        "created_at": T0,
    }
    return row | changes


# --- the contract -----------------------------------------------------------------------------


class StorageContract:
    """The promises of the storage layer. Subclasses name a backend and what differs there."""

    name: ClassVar[str]
    append_only_error: ClassVar[type[DBAPIError]]
    """What the database raises for an UPDATE or DELETE of a ledger row."""
    append_only_triggers: ClassVar[set[str]]

    @pytest.fixture
    def backend(self) -> str:
        return self.name

    def fresh_database(self, tmp_path: Path) -> AbstractContextManager[Engine]:
        """An engine on a brand-new, empty database, removed afterwards."""
        raise NotImplementedError

    def triggers(self, conn: Connection) -> set[str]:
        raise NotImplementedError

    def another_writer_can_lock(self, db: Database, account_id: str) -> bool:
        """Whether a second connection could take `account_id`'s lock right now, without
        waiting."""
        raise NotImplementedError

    # --- post(): the one writer of ledger rows and stored balances ----------------------------

    def test_post_writes_a_row_per_posting_an_entry_per_leg_and_moves_balances_by_their_sums(
        self, db: Database
    ) -> None:
        a = make_account(db, cash=10_000)
        b = make_account(db, cash=5_000)
        a1 = grant(db, a["id"], amount=2_000)["id"]
        a2 = grant(db, a["id"], amount=1_000)["id"]
        b1 = grant(db, b["id"], amount=3_000)["id"]
        refund_id = new_id("rf")
        occurred = datetime(2026, 12, 1, 11, 59, 59, 123_456, tzinfo=UTC)
        batch = [
            # a: one event paid by two lots, cash and an unfunded rest
            posting(
                a,
                spend_txn("ev-1", cash=700, unfunded=300, **{a1: 1_500, a2: 1_000}),
                event_id="ev-1",
                occurred_at=occurred,
                campaign_id="cmp_1",
            ),
            # a: cash held for a refund
            posting(a, ledger.refund_hold(300, refund_id), refund_id=refund_id),
            # b: a chargeback beyond its cash leaves it owing 2,000
            posting(
                b,
                Transaction(
                    Kind.DEPOSIT_REVERSAL,
                    (Leg(Book.CASH, -5_000), Leg(Book.DEBT, -2_000), Leg(Book.PAYMENTS, 7_000)),
                    "Payment pay_1 charged back",
                ),
            ),
            # b: spend from its lot
            posting(b, spend_txn("ev-2", **{b1: 1_200}), event_id="ev-2"),
            # a: a second event on the same account and the same lot
            posting(a, spend_txn("ev-3", cash=100, **{a1: 200}), event_id="ev-3"),
        ]
        before = snapshot(db)

        def work(uow: UnitOfWork) -> None:
            uow.conn.execute(
                refunds.insert().values(
                    id=refund_id,
                    account_id=a["id"],
                    amount=300,
                    status="pending",
                    requested_at=T0,
                    requested_by="key_test",
                )
            )
            post(uow.conn, batch)

        db.run(work)

        after = snapshot(db)
        assert len(after["transactions"]) == len(before["transactions"]) + 5
        assert len(after["entries"]) == len(before["entries"]) + 5 + 2 + 3 + 2 + 3
        ids = [p.id for p in batch]
        rows = db.read(
            lambda uow: {
                r.id: r
                for r in uow.conn.execute(select(transactions).where(transactions.c.id.in_(ids)))
            }
        )
        summary = [
            (
                rows[i].account_id,
                rows[i].kind,
                rows[i].currency,
                rows[i].created_at,
                rows[i].cash_delta,
                rows[i].credit_delta,
                rows[i].lot_id,
                rows[i].event_id,
                rows[i].occurred_at,
                rows[i].campaign_id,
                rows[i].refund_id,
            )
            for i in ids
        ]
        assert summary == [
            (a["id"], "spend", "USD", T0, -700, -2_500, None, "ev-1", occurred, "cmp_1", None),
            (a["id"], "refund_hold", "USD", T0, -300, 0, None, None, None, None, refund_id),
            (b["id"], "deposit_reversal", "USD", T0, -5_000, 0, None, None, None, None, None),
            (b["id"], "spend", "USD", T0, 0, -1_200, b1, "ev-2", None, None, None),
            (a["id"], "spend", "USD", T0, -100, -200, a1, "ev-3", None, None, None),
        ]
        written = db.read(
            lambda uow: uow.conn.execute(
                select(entries.c.txn_id, entries.c.account_id, entries.c.book)
                .add_columns(entries.c.lot_id, entries.c.amount)
                .where(entries.c.txn_id.in_(ids))
            ).all()
        )
        for p in batch:
            legs = Counter((leg.book.value, leg.lot_id, leg.amount) for leg in p.txn.legs)
            mine = [e for e in written if e.txn_id == p.id]
            assert Counter((e.book, e.lot_id, e.amount) for e in mine) == legs
            assert {e.account_id for e in mine} == {p.account_id}
        # Balances moved by exactly the sums of the entries, netted per account and per lot.
        assert stored(db, a["id"]) == (10_000 - 700 - 300 - 100, 300, 0)
        assert stored(db, b["id"]) == (0, 0, 2_000)
        assert remaining(db, a1, a2, b1) == [2_000 - 1_500 - 200, 0, 3_000 - 1_200]

    def test_posting_nothing_writes_nothing(self, db: Database) -> None:
        make_account(db, cash=1_000)
        before = snapshot(db)
        db.run(lambda uow: post(uow.conn, []))
        assert snapshot(db) == before

    def test_a_batch_that_would_overdraw_one_account_is_refused_whole(self, db: Database) -> None:
        a = make_account(db, cash=1_000)
        b = make_account(db, cash=500)
        batch = [
            posting(a, ledger.deposit(2_000, 0, "pay_2")),
            posting(b, spend_txn("ev-over", cash=501), event_id="ev-over"),
        ]
        error = refused(db, lambda conn: post(conn, batch))
        assert "ck_accounts_cash_available_not_negative" in str(error)
        assert stored(db, a["id"]) == (1_000, 0, 0)

    @pytest.mark.parametrize("change", [-2_001, 1], ids=["below_zero", "above_original"])
    def test_a_posting_can_never_take_a_lot_outside_zero_to_its_original(
        self, db: Database, change: int
    ) -> None:
        acct = make_account(db)
        lot = grant(db, acct["id"], amount=2_000)["id"]
        other = Book.REVENUE if change < 0 else Book.PROMOTION
        txn = Transaction(
            Kind.SPEND if change < 0 else Kind.CREDIT_GRANT,
            (Leg(Book.CREDIT, change, lot), Leg(other, -change)),
            "out of range",
        )
        error = refused(db, lambda conn: post(conn, [posting(acct, txn)]))
        assert "ck_lots_remaining_in_range" in str(error)
        assert remaining(db, lot) == [2_000]

    def test_an_event_id_is_recorded_only_once(self, db: Database) -> None:
        acct = make_account(db, cash=1_000)
        db.run(lambda uow: post(uow.conn, [posting(acct, spend_txn("e", cash=10), event_id="e")]))
        again = posting(acct, spend_txn("e", cash=20), event_id="e")
        error = refused(db, lambda conn: post(conn, [again]))
        assert "event_id" in str(error)
        assert stored(db, acct["id"]) == (990, 0, 0)

    # --- what the database itself refuses ------------------------------------------------------

    @pytest.mark.parametrize("table", [transactions, entries], ids=lambda t: t.name)
    def test_a_ledger_row_can_never_be_updated(self, db: Database, table: Any) -> None:
        acct = make_account(db, cash=1_000)
        txn_id = db.read(
            lambda uow: uow.conn.execute(
                select(transactions.c.id).where(transactions.c.account_id == acct["id"])
            ).scalar_one()
        )
        change = (
            update(transactions).where(transactions.c.id == txn_id).values(description="edited")
            if table is transactions
            else update(entries)
            .where(entries.c.txn_id == txn_id)
            .values(amount=entries.c.amount * 2)
        )
        error = refused(db, lambda conn: conn.execute(change), self.append_only_error)
        assert f"{table.name} are append-only" in str(error)

    @pytest.mark.parametrize("table", [transactions, entries], ids=lambda t: t.name)
    def test_a_ledger_row_can_never_be_deleted(self, db: Database, table: Any) -> None:
        acct = make_account(db, cash=1_000)
        txn_id = db.read(
            lambda uow: uow.conn.execute(
                select(transactions.c.id).where(transactions.c.account_id == acct["id"])
            ).scalar_one()
        )
        column = transactions.c.id if table is transactions else entries.c.txn_id
        removal = delete(table).where(column == txn_id)
        error = refused(db, lambda conn: conn.execute(removal), self.append_only_error)
        assert f"{table.name} are append-only" in str(error)

    @pytest.mark.parametrize("column", ["cash_available", "cash_held", "debt"])
    def test_an_account_balance_can_never_be_negative(self, db: Database, column: str) -> None:
        acct = make_account(db, cash=1_000)
        change = update(accounts).where(accounts.c.id == acct["id"]).values({column: -1})
        error = refused(db, lambda conn: conn.execute(change))
        assert f"ck_accounts_{column}_not_negative" in str(error)

    def test_an_entry_of_zero_is_refused(self, db: Database) -> None:
        acct = make_account(db)
        txn_id = new_id("txn")

        def work(conn: Connection) -> None:
            conn.execute(
                transactions.insert().values(
                    id=txn_id,
                    account_id=acct["id"],
                    kind="deposit",
                    currency="USD",
                    created_at=T0,
                    cash_delta=0,
                    credit_delta=0,
                    description="nothing",
                )
            )
            conn.execute(
                entries.insert().values(txn_id=txn_id, account_id=acct["id"], book="cash", amount=0)
            )

        error = refused(db, work)
        assert "ck_entries_amount_not_zero" in str(error)

    def test_a_valid_lot_row_is_accepted(self, db: Database) -> None:
        # The baseline of the refusals below: only the one changed column is wrong there.
        acct = make_account(db)
        edges = [lot_row(acct["id"], priority=0), lot_row(acct["id"], priority=100)]
        edges.append(lot_row(acct["id"], remaining=0, original=1, expires_at=T0 + US))
        db.run(lambda uow: uow.conn.execute(lots.insert(), edges))
        assert len(snapshot(db)["lots"]) == 3

    @pytest.mark.parametrize(
        "change, constraint",
        [
            ({"remaining": -1}, "ck_lots_remaining_in_range"),
            ({"remaining": 1_001}, "ck_lots_remaining_in_range"),
            ({"original": 0}, "ck_lots_original_positive"),
            ({"expires_at": T0}, "ck_lots_window_positive"),
            ({"expires_at": T0 - US}, "ck_lots_window_positive"),
            ({"priority": -1}, "ck_lots_priority_range"),
            ({"priority": 101}, "ck_lots_priority_range"),
            ({"status": "pending"}, "ck_lots_status_known"),
        ],
        ids=[
            "remaining_below_zero",
            "remaining_above_original",
            "original_zero",
            "expires_at_effective_at",
            "expires_before_effective",
            "priority_below_0",
            "priority_above_100",
            "unknown_status",
        ],
    )
    def test_a_lot_the_ledger_must_never_hold_is_refused(
        self, db: Database, change: dict[str, Any], constraint: str
    ) -> None:
        acct = make_account(db)
        error = refused(
            db, lambda conn: conn.execute(lots.insert(), [lot_row(acct["id"], **change)])
        )
        assert constraint in str(error)

    # --- times ---------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "when",
        [
            datetime(
                2026, 12, 1, 17, 30, 0, 123_456, tzinfo=timezone(timedelta(hours=5, minutes=30))
            ),
            datetime(2026, 3, 29, 3, 0, 0, 1, tzinfo=ZoneInfo("Europe/Berlin")),
            datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        ],
        ids=["india", "berlin_summer_time", "before_the_epoch", "year_9999"],
    )
    def test_a_time_comes_back_as_the_same_utc_instant_to_the_microsecond(
        self, db: Database, when: datetime
    ) -> None:
        business_id = new_id("biz")
        db.run(
            lambda uow: uow.conn.execute(
                businesses.insert().values(id=business_id, name="t", created_at=when)
            )
        )
        back, raw = db.read(
            lambda uow: uow.conn.execute(
                select(businesses.c.created_at, text("businesses.created_at")).where(
                    businesses.c.id == business_id
                )
            ).one()
        )
        assert back == when
        assert back.tzinfo is UTC
        assert (back.microsecond, back.utcoffset()) == (
            when.astimezone(UTC).microsecond,
            timedelta(0),
        )
        assert raw == to_us(when)  # stored as integer microseconds since the epoch

    def test_times_compare_in_the_database_to_the_microsecond(self, db: Database) -> None:
        acct = make_account(db)
        expires = T0 + DAY
        due, later = (
            lot_row(acct["id"], expires_at=expires),
            lot_row(acct["id"], expires_at=expires + US),
        )
        db.run(lambda uow: uow.conn.execute(lots.insert(), [later, due]))

        def found(uow: UnitOfWork, condition: Any) -> list[str]:
            query = select(lots.c.id).where(condition).order_by(lots.c.expires_at)
            return list(uow.conn.execute(query).scalars())

        assert db.read(found, lots.c.expires_at <= expires) == [due["id"]]
        assert db.read(found, lots.c.expires_at > expires) == [later["id"]]
        assert db.read(found, lots.c.expires_at >= expires) == [due["id"], later["id"]]

    def test_a_naive_time_is_refused_and_nothing_is_written(self, db: Database) -> None:
        acct = make_account(db, cash=1_000)
        naive = datetime(2026, 12, 1, 12, 0)
        error = refused(
            db,
            lambda conn: conn.execute(
                businesses.insert().values(id=new_id("biz"), name="naive", created_at=naive)
            ),
            StatementError,
        )
        assert isinstance(getattr(error, "orig", None), ValueError)
        assert "naive datetimes are refused" in str(error)
        late = Posting(new_id("txn"), acct["id"], "USD", naive, ledger.deposit(1, 0, "p"))
        refused(db, lambda conn: post(conn, [late]), TypeError)

    # --- Database.run and Database.read: commit, rollback, retry --------------------------------

    def test_run_commits_when_the_function_returns(self, db: Database) -> None:
        business_id = db.run(add_business, "Committed Co")
        assert business_id.startswith("biz_")
        assert business_names(db) == ["Committed Co"]

    def test_run_rolls_back_everything_when_the_function_raises(self, db: Database) -> None:
        acct = make_account(db, cash=1_000)
        before = snapshot(db)

        class Boom(Exception):
            pass

        def work(uow: UnitOfWork) -> None:
            add_business(uow, "Never Co")
            post(uow.conn, [posting(acct, ledger.deposit(5_000, 500, "pay_lost"))])
            raise Boom("the use case failed after writing")

        with pytest.raises(Boom):
            db.run(work)
        assert snapshot(db) == before

    def test_run_retries_a_retryable_conflict_on_a_fresh_transaction(self, db: Database) -> None:
        attempts: list[int] = []
        retries = db.retries

        def work(uow: UnitOfWork) -> int:
            attempts.append(len(attempts) + 1)
            add_business(uow, f"attempt {len(attempts)}")
            if len(attempts) < 3:
                raise RetryableConflict("raced another writer")
            return len(attempts)

        assert db.run(work) == 3
        assert attempts == [1, 2, 3]
        assert db.retries - retries == 2
        assert business_names(db) == ["attempt 3"]  # the failed attempts left nothing behind

    def test_run_gives_up_on_a_conflict_that_never_clears(self, db: Database) -> None:
        attempts: list[int] = []

        def work(uow: UnitOfWork) -> None:
            attempts.append(1)
            add_business(uow, "never")
            raise RetryableConflict("always raced")

        with pytest.raises(RetryableConflict):
            db.run(work)
        assert len(attempts) > 1
        assert business_names(db) == []

    def test_run_does_not_retry_other_errors(self, db: Database) -> None:
        attempts: list[int] = []

        def work(uow: UnitOfWork) -> None:
            attempts.append(1)
            add_business(uow, "refused")
            raise ValueError("not a conflict")

        with pytest.raises(ValueError):
            db.run(work)
        assert attempts == [1]
        assert business_names(db) == []

    def test_run_calls_after_commit_callbacks_only_once_committed(self, db: Database) -> None:
        seen: list[list[str]] = []

        def work(uow: UnitOfWork, name: str, fail: bool) -> None:
            add_business(uow, name)
            uow.after_commit.append(lambda: seen.append(business_names(db)))
            if fail:
                raise ValueError("rolled back")

        with pytest.raises(ValueError):
            db.run(work, "Rolled Back Co", True)
        assert seen == []
        db.run(work, "Kept Co", False)
        assert seen == [["Kept Co"]]  # the callback already sees the committed row

    def test_read_never_writes(self, db: Database) -> None:
        def sneaky(uow: UnitOfWork) -> int:
            add_business(uow, "Sneaky Co")
            return int(uow.conn.execute(select(func.count()).select_from(businesses)).scalar_one())

        assert db.read(sneaky) == 1  # the function saw its own write ...
        assert business_names(db) == []  # ... and it was rolled back

    def test_read_rolls_back_when_the_function_raises(self, db: Database) -> None:
        def failing(uow: UnitOfWork) -> None:
            add_business(uow, "Failing Co")
            raise ValueError("read failed")

        with pytest.raises(ValueError):
            db.read(failing)
        assert business_names(db) == []

    # --- UnitOfWork.lock_accounts --------------------------------------------------------------

    def test_lock_accounts_returns_the_rows_by_id_in_id_order_without_missing_ones(
        self, db: Database
    ) -> None:
        a = make_account(db, cash=100)["id"]
        b = make_account(db, cash=200)["id"]

        def work(uow: UnitOfWork) -> list[tuple[str, int]]:
            found = uow.lock_accounts([b, "acct_missing", a, b])
            return [(key, row.cash_available) for key, row in found.items()]

        assert db.run(work) == sorted([(a, 100), (b, 200)])

    def test_a_locked_account_cannot_be_taken_by_another_writer_until_commit(
        self, db: Database
    ) -> None:
        acct = make_account(db)["id"]

        def work(uow: UnitOfWork) -> bool:
            uow.lock_accounts([acct])
            return self.another_writer_can_lock(db, acct)

        assert db.run(work) is False
        assert self.another_writer_can_lock(db, acct) is True

    # --- the corruption the database does not stop, and verify does ---------------------------

    @pytest.mark.corrupts_ledger
    def test_a_balance_changed_behind_posts_back_is_found_by_verify(self, db: Database) -> None:
        acct = make_account(db, cash=1_000)
        # No constraint can see that a stored balance no longer equals the sum of its entries.
        db.run(
            lambda uow: uow.conn.execute(
                update(accounts).where(accounts.c.id == acct["id"]).values(cash_available=999)
            )
        )
        violations = db.read(verify_ledger)
        assert [(v.check, v.message) for v in violations] == [
            (
                "account_balances",
                f"account {acct['id']}: cash_available is 999 but its cash entries sum to 1000",
            )
        ]

    # --- migrations ------------------------------------------------------------------------------

    @pytest.fixture
    def fresh_engine(self, tmp_path: Path) -> Iterator[Engine]:
        with self.fresh_database(tmp_path) as engine:
            yield engine

    def test_upgrade_is_idempotent_on_a_fresh_database(self, fresh_engine: Engine) -> None:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        upgrade(fresh_engine)
        upgrade(fresh_engine)
        with fresh_engine.connect() as conn:
            versions = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
            triggers = self.triggers(conn)
            conn.rollback()
        assert versions == [head]
        assert triggers == self.append_only_triggers

    def test_the_migrated_schema_matches_the_tables_module(self, fresh_engine: Engine) -> None:
        upgrade(fresh_engine)
        with fresh_engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
            conn.rollback()
        assert differences == []


# --- the backends -----------------------------------------------------------------------------


class TestStorageOnSQLite(StorageContract):
    name = "sqlite"
    append_only_error = IntegrityError  # RAISE(ABORT) in a trigger is a constraint failure
    append_only_triggers: ClassVar[set[str]] = {
        "transactions_no_update",
        "transactions_no_delete",
        "entries_no_update",
        "entries_no_delete",
        "audit_log_no_update",
        "audit_log_no_delete",
    }

    @contextmanager
    def fresh_database(self, tmp_path: Path) -> Iterator[Engine]:
        engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        try:
            yield engine
        finally:
            engine.dispose()

    def triggers(self, conn: Connection) -> set[str]:
        query = text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return set(conn.execute(query).scalars())

    def another_writer_can_lock(self, db: Database, account_id: str) -> bool:
        # A SQLite writer holds the whole database (BEGIN IMMEDIATE), so any write lock will do.
        path = db.engine.url.database
        assert path is not None
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            return False
        finally:
            other.close()


@pytest.mark.postgres
@pytest.mark.skipif("postgres" not in BACKENDS, reason="ADLEDGER_TEST_BACKENDS leaves it out")
class TestStorageOnPostgreSQL(StorageContract):
    name = "postgres"
    append_only_error = ProgrammingError  # RAISE EXCEPTION in plpgsql (SQLSTATE P0001)
    append_only_triggers: ClassVar[set[str]] = {
        "transactions_append_only",
        "entries_append_only",
        "audit_log_append_only",
    }

    @contextmanager
    def fresh_database(self, tmp_path: Path) -> Iterator[Engine]:
        name = f"adledger_fresh_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    def triggers(self, conn: Connection) -> set[str]:
        query = text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        return set(conn.execute(query).scalars())

    def another_writer_can_lock(self, db: Database, account_id: str) -> bool:
        with db.engine.connect() as other:
            try:
                other.execute(
                    text("SELECT id FROM accounts WHERE id = :id FOR UPDATE NOWAIT"),
                    {"id": account_id},
                )
                return True
            except OperationalError as exc:
                assert getattr(exc.orig, "sqlstate", None) == "55P03"  # lock_not_available
                return False
            finally:
                other.rollback()

    def test_locking_one_account_leaves_the_others_free(self, db: Database) -> None:
        locked, free = make_account(db)["id"], make_account(db)["id"]

        def work(uow: UnitOfWork) -> tuple[bool, bool]:
            uow.lock_accounts([locked])
            return (
                self.another_writer_can_lock(db, locked),
                self.another_writer_can_lock(db, free),
            )

        assert db.run(work) == (False, True)
