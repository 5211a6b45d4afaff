"""Alembic environment: runs on the connection `storage.migrate.upgrade` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from adledger.storage.tables import metadata

config = context.config
connection = config.attributes.get("connection")


def _run(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=metadata,
        render_as_batch=conn.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:  # the alembic command line, for making new revisions
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///./adledger.db")
    with engine.begin() as conn:
        _run(conn)
