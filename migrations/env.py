"""Alembic environment for flask_portal_session's tables.

The URL is taken, in order, from a connection or URL passed in by
``flask_portal_session.migrate``, from the ``PORTAL_SESSION_DATABASE_URI``
environment variable, or from ``sqlalchemy.url`` in alembic.ini.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import engine_from_config, pool

from flask_portal_session.store import ALEMBIC_VERSION_TABLE, metadata

config = context.config
target_metadata = metadata


def _include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001
    """Compare only this package's tables, so an app's own tables are left alone."""
    if type_ == "table":
        return name in metadata.tables
    table = getattr(obj, "table", None)
    if table is not None:
        return table.name in metadata.tables
    return True


def _database_url() -> str:
    url = config.attributes.get("url") or os.environ.get("PORTAL_SESSION_DATABASE_URI") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit(
            "No database URL for the portal session migrations. Set PORTAL_SESSION_DATABASE_URI, "
            "for example PORTAL_SESSION_DATABASE_URI=sqlite:///portal.sqlite3, or use 'flask portal-session db upgrade'."
        )
    return url


def _configure(**options) -> None:  # noqa: ANN003
    context.configure(
        target_metadata=target_metadata,
        version_table=ALEMBIC_VERSION_TABLE,
        include_object=_include_object,
        compare_type=True,
        render_as_batch=True,
        **options,
    )


def run_migrations_offline() -> None:
    _configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return

    section = config.get_section(config.config_ini_section) or {}
    section["sqlalchemy.url"] = _database_url()
    engine = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
