"""Run the shipped Alembic migrations against a database URL or engine.

The migrations live in the top-level ``migrations/`` folder of a checkout,
which is installed as ``flask_portal_session.migrations``, so the same code
works from a checkout and from an installed wheel.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from .store import ALEMBIC_VERSION_TABLE, create_store_engine

__all__ = ["alembic_config", "current_revision", "downgrade", "head_revision", "migrations_path", "upgrade"]


def migrations_path() -> str:
    """Return the folder holding ``env.py`` and ``versions/``."""
    try:
        from . import migrations as installed

        return os.path.dirname(os.path.abspath(installed.__file__))
    except ImportError:
        checkout = Path(__file__).resolve().parent.parent / "migrations"
        if (checkout / "env.py").is_file():
            return str(checkout)
        raise RuntimeError(
            "The portal session migrations were not found. Reinstall flask-portal-session, "
            "which ships them as flask_portal_session.migrations."
        ) from None


def alembic_config(url: str) -> Config:
    """Return an Alembic config for the shipped migrations and ``url``."""
    location = migrations_path()
    config = Config()
    config.set_main_option("script_location", location)
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.path.join(location, "versions"))
    config.attributes["url"] = url
    return config


def upgrade(target: str | Engine, revision: str = "head") -> None:
    """Upgrade the database at ``target`` (a URL or an engine) to ``revision``."""
    _run(target, lambda config: command.upgrade(config, revision))


def downgrade(target: str | Engine, revision: str) -> None:
    """Downgrade the database at ``target`` to ``revision`` (``base`` removes every table)."""
    _run(target, lambda config: command.downgrade(config, revision))


def current_revision(target: str | Engine) -> str | None:
    """Return the revision the database is at, or ``None`` before the first upgrade."""
    engine, owned = _engine(target)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": ALEMBIC_VERSION_TABLE})
            return context.get_current_revision()
    finally:
        if owned:
            engine.dispose()


def head_revision() -> str:
    """Return the newest revision shipped with this package."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


def _run(target: str | Engine, action) -> None:  # noqa: ANN001
    engine, owned = _engine(target)
    try:
        with engine.begin() as connection:
            config = alembic_config(engine.url.render_as_string(hide_password=False))
            config.attributes["connection"] = connection
            action(config)
    finally:
        if owned:
            engine.dispose()


def _engine(target: str | Engine) -> tuple[Engine, bool]:
    if isinstance(target, Engine):
        return target, False
    return create_store_engine(target), True
