"""The shipped Alembic migrations on SQLite, PostgreSQL and MariaDB, each on a fresh database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, insert, inspect, select, text

from conftest import BACKENDS, FAST_HASH, TEST_SECRET, StatementCounter, fresh_database_url
from flask_portal_session import PortalSession
from flask_portal_session.migrate import current_revision, downgrade, head_revision, upgrade
from flask_portal_session.store import ALEMBIC_VERSION_TABLE, create_store_engine, metadata

REPOSITORY = Path(__file__).resolve().parent.parent

PORTAL_TABLES = {"portal_sessions", "portal_developers", "portal_api_keys"}


def include_object(obj: Any, name: str, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Compare only the package's tables and their parts, as migrations/env.py does."""
    if type_ == "table":
        return name in metadata.tables
    table = getattr(obj, "table", None)
    if table is not None:
        return table.name in metadata.tables
    return True


def schema_differences(engine: Engine) -> list[Any]:
    """Return what autogenerate would change to make the database match ``store.metadata``."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": ALEMBIC_VERSION_TABLE,
                "include_object": include_object,
                "compare_type": True,
            },
        )
        return compare_metadata(context, metadata)


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def create_app_tables(engine: Engine) -> MetaData:
    """Create an app's own table and its own ``alembic_version``, each with one row."""
    app_metadata = MetaData()
    items = Table("app_items", app_metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))
    versions = Table("alembic_version", app_metadata, Column("version_num", String(32), primary_key=True))
    app_metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(items).values(id=1, name="widget"))
        connection.execute(insert(versions).values(version_num="app0001"))
    return app_metadata


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend, dropped after the test."""
    url, drop = fresh_database_url(request.param, tmp_path, "migration")
    yield url
    drop()


@pytest.fixture
def fresh_engine(fresh_url: str) -> Iterator[Engine]:
    engine = create_store_engine(fresh_url)
    yield engine
    engine.dispose()


def test_upgrade_creates_tables(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    assert table_names(fresh_engine) == PORTAL_TABLES | {ALEMBIC_VERSION_TABLE}


def test_upgrade_records_head(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    assert current_revision(fresh_engine) == head_revision()


def test_upgrade_twice(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    upgrade(fresh_engine)
    assert current_revision(fresh_engine) == head_revision()


def test_upgrade_by_url(fresh_url: str, fresh_engine: Engine) -> None:
    upgrade(fresh_url)
    assert PORTAL_TABLES <= table_names(fresh_engine)


def test_autogenerate_no_difference(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    assert schema_differences(fresh_engine) == []


def test_autogenerate_sees_missing_table(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    with fresh_engine.begin() as connection:
        connection.execute(text("DROP TABLE portal_api_keys"))
    differences = schema_differences(fresh_engine)
    assert differences[0][0] == "add_table"
    assert differences[0][1].name == "portal_api_keys"


def test_downgrade_to_base(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    downgrade(fresh_engine, "base")
    assert table_names(fresh_engine) & PORTAL_TABLES == set()
    assert current_revision(fresh_engine) is None


def test_downgrade_then_upgrade(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    downgrade(fresh_engine, "base")
    upgrade(fresh_engine)
    assert PORTAL_TABLES <= table_names(fresh_engine)
    assert schema_differences(fresh_engine) == []


def test_app_tables_untouched(fresh_engine: Engine) -> None:
    app_metadata = create_app_tables(fresh_engine)
    items = app_metadata.tables["app_items"]
    versions = app_metadata.tables["alembic_version"]

    upgrade(fresh_engine)
    with fresh_engine.connect() as connection:
        assert connection.execute(select(versions.c.version_num)).scalars().all() == ["app0001"]
        assert connection.execute(select(items.c.name)).scalars().all() == ["widget"]
    assert schema_differences(fresh_engine) == []

    downgrade(fresh_engine, "base")
    with fresh_engine.connect() as connection:
        assert connection.execute(select(versions.c.version_num)).scalars().all() == ["app0001"]
        assert connection.execute(select(items.c.name)).scalars().all() == ["widget"]
    assert {"app_items", "alembic_version"} <= table_names(fresh_engine)


def test_alembic_command_line(fresh_url: str, fresh_engine: Engine) -> None:
    env = {**os.environ, "PORTAL_SESSION_DATABASE_URI": fresh_url}
    completed = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "migrations/alembic.ini", "upgrade", "head"],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert table_names(fresh_engine) == PORTAL_TABLES | {ALEMBIC_VERSION_TABLE}
    assert current_revision(fresh_engine) == head_revision()


def test_alembic_command_line_without_url() -> None:
    env = {key: value for key, value in os.environ.items() if key != "PORTAL_SESSION_DATABASE_URI"}
    completed = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "migrations/alembic.ini", "upgrade", "head"],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode != 0
    assert "PORTAL_SESSION_DATABASE_URI" in completed.stderr


def test_init_app_runs_no_ddl(fresh_engine: Engine, tmp_path: Path) -> None:
    app = Flask("no_ddl_app", instance_path=str(tmp_path / "instance"))
    app.config.update(
        PORTAL_AUTH=["basic-auth", "key-auth"],
        PORTAL_SESSION_CONF={"secret": TEST_SECRET, "cookie_secure": False},
        PORTAL_PASSWORD_HASH_CONF=FAST_HASH,
    )
    with StatementCounter(fresh_engine) as counter:
        PortalSession(app, engine=fresh_engine)
    assert counter.statements == []
    assert table_names(fresh_engine) == set()


def test_init_app_by_url_creates_nothing(fresh_url: str, fresh_engine: Engine, tmp_path: Path) -> None:
    app = Flask("no_ddl_url_app", instance_path=str(tmp_path / "instance"))
    app.config.update(
        PORTAL_AUTH="basic-auth",
        PORTAL_SESSION_CONF={"secret": TEST_SECRET, "cookie_secure": False},
        PORTAL_SESSION_DATABASE_URI=fresh_url,
        PORTAL_PASSWORD_HASH_CONF=FAST_HASH,
    )
    portal = PortalSession(app)
    with app.app_context():
        portal.engine.dispose()
    assert table_names(fresh_engine) == set()
