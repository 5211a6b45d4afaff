"""Test harness: every backend-facing test runs on SQLite and on PostgreSQL.

* SQLite: a fresh database file per test, copied from one migrated template.
* PostgreSQL: one fresh database per test session (per xdist worker) on the local server, made by
  running the migrations, and emptied between tests with TRUNCATE.

Set ADLEDGER_TEST_BACKENDS=sqlite to skip PostgreSQL (it is on by default).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from adledger.clock import FixedClock
from adledger.config import Settings
from adledger.service.uow import Database
from adledger.service.verify import verify_ledger
from adledger.storage.engine import make_engine
from adledger.storage.migrate import upgrade
from adledger.storage.tables import metadata

PG_ADMIN_URL = os.environ.get(
    "ADLEDGER_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = os.environ.get("ADLEDGER_TEST_BACKENDS", "sqlite,postgres").split(",")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec and callspec.params.get("backend") == "postgres":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "adledger.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"adledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))
    engine.dispose()


@pytest.fixture(params=[b for b in ("sqlite", "postgres") if b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "adledger.db"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    url = str(request.getfixturevalue("pg_url"))
    _truncate_pg(url)
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def db(settings: Settings, clock: FixedClock, request: pytest.FixtureRequest) -> Iterator[Database]:
    """The database of one test. Whatever the test did, the ledger must verify clean afterwards
    (tests that corrupt it on purpose are marked `corrupts_ledger`)."""
    database = Database(settings, clock)
    yield database
    try:
        if request.node.get_closest_marker("corrupts_ledger") is None:
            violations = database.read(verify_ledger)
            assert not violations, "adledger verify after the test: " + "; ".join(
                f"{v.check}: {v.message}" for v in violations
            )
    finally:
        database.dispose()


# --- HTTP: the real app over the same database -------------------------------------------------

from fastapi.testclient import TestClient  # noqa: E402

from adledger.http.app import create_app  # noqa: E402
from adledger.service import keys as key_service  # noqa: E402


class Caller:
    """A TestClient bound to one API key: `caller.post("/v1/...", json=...)`."""

    def __init__(
        self, client: TestClient, key: str, key_id: str, role: str, business_id: str | None = None
    ) -> None:
        self.client = client
        self.key = key
        self.key_id = key_id
        self.role = role
        self.business_id = business_id

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **(extra or {})}

    def get(self, url: str, **kw):  # type: ignore[no-untyped-def]
        return self.client.get(url, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, url: str, json=None, **kw):  # type: ignore[no-untyped-def]
        return self.client.post(
            url, json=json, headers=self._headers(kw.pop("headers", None)), **kw
        )

    def delete(self, url: str, **kw):  # type: ignore[no-untyped-def]
        return self.client.delete(url, headers=self._headers(kw.pop("headers", None)), **kw)


class Api:
    """The app under test and a way to get callers of each role."""

    def __init__(self, client: TestClient, db: Database) -> None:
        self.client = client
        self.db = db
        self.admin = self.caller("admin")
        self.finance = self.caller("finance")
        self.ingest = self.caller("ingest")

    def caller(self, role: str, business_id: str | None = None, name: str = "test") -> Caller:
        made = self.db.run(key_service.create_key, role=role, name=name, business_id=business_id)
        return Caller(self.client, made["key"], made["id"], role, business_id)

    def advertiser(self, business_id: str) -> Caller:
        return self.caller("advertiser", business_id)


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(db=db, migrate=False), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def api(client: TestClient, db: Database) -> Api:
    return Api(client, db)
