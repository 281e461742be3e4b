"""Fixtures of the monitor tests: a real PostgreSQL schema of their own (dropped after), skipped
with the reason when the server at 127.0.0.1:5432 (trust auth, database ``test``) is absent."""
from __future__ import annotations

import uuid

import pytest

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_url():
    """A postgresql:// URL whose tables land in a fresh schema (search_path), dropped after the test."""
    sa = pytest.importorskip("sqlalchemy", reason="the 'store' extra (SQLAlchemy) is not installed")
    pytest.importorskip("psycopg", reason="the 'store' extra (psycopg) is not installed")
    schema = f"flowdet_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_SERVER.replace("postgresql://", "postgresql+psycopg://"),
                             connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as c:
            c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as e:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER}: {str(e.orig).splitlines()[0]}")
    yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    with admin.begin() as c:
        c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
