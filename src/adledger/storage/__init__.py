"""Storage adapter: SQLAlchemy Core tables, queries and Alembic migrations."""
