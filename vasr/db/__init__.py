"""Database schema, migrations and queries (SQLite by default, PostgreSQL for teams)."""
