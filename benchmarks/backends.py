"""Fresh databases for the benchmark, and bulk inserts of session rows.

Every database the benchmark uses is created here and dropped at the end:
SQLite files in a temporary folder, and on PostgreSQL and MariaDB databases
named ``bench_<label>_<pid>_<random>`` on the server the user named.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, bindparam, create_engine, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from flask_portal_session.store import sessions_table

logger = logging.getLogger("benchmarks")

#: Example server URLs, by backend, for error messages.
EXAMPLE_URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}

#: Display names of the backends, by the name the command line uses.
BACKEND_LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}


class BenchmarkError(RuntimeError):
    """Failure of a set-up step, with a message that names the fix."""


class DatabaseFactory:
    """Creates empty databases and drops every one of them in :meth:`drop_all`."""

    def __init__(self, servers: Mapping[str, str]) -> None:
        #: Server URLs by backend name; SQLite needs none.
        self.servers = dict(servers)
        self._folder = tempfile.mkdtemp(prefix="portal-bench-")
        self._created: list[tuple[str, str]] = []

    def create(self, backend: str, label: str) -> str:
        """Create an empty database for ``backend``; return its SQLAlchemy URL."""
        if backend == "sqlite":
            path = os.path.join(self._folder, f"{label}.sqlite3")
            return f"sqlite:///{path}"

        name = f"bench_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._admin_execute(backend, _create_statements(backend, name))
        self._created.append((backend, name))
        return make_url(self.servers[backend]).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every database made by :meth:`create` and remove the SQLite folder."""
        for backend, name in reversed(self._created):
            try:
                self._admin_execute(backend, [_drop_statement(backend, name)])
            except BenchmarkError as error:
                logger.error("Dropping database %s failed: %s", name, error)
        self._created.clear()
        shutil.rmtree(self._folder, ignore_errors=True)

    def server_version(self, backend: str) -> str:
        """Return the server's version string (SQLite: the linked library's)."""
        if backend == "sqlite":
            import sqlite3

            return sqlite3.sqlite_version
        query = "SHOW server_version" if backend == "postgresql" else "SELECT VERSION()"
        return str(self._admin_execute(backend, [query]))

    def _admin_execute(self, backend: str, statements: Iterable[str]) -> Any:
        url = self.servers[backend]
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                result = None
                for statement in statements:
                    result = connection.execute(text(statement))
                return result.scalar() if result is not None and result.returns_rows else None
        except SQLAlchemyError as error:
            safe_url = make_url(url).render_as_string(hide_password=True)
            first_line = str(getattr(error, "orig", error)).strip().splitlines()[0]
            raise BenchmarkError(
                f"A statement on the {BACKEND_LABELS[backend]} server at {safe_url} failed: {first_line}. "
                "Check that the server runs and that the URL's user may create databases."
            ) from error
        finally:
            engine.dispose()


def _create_statements(backend: str, name: str) -> list[str]:
    if backend == "postgresql":
        return [f'CREATE DATABASE "{name}"']
    return [f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"]


def _drop_statement(backend: str, name: str) -> str:
    if backend == "postgresql":
        return f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    return f"DROP DATABASE IF EXISTS `{name}`"


def check_server_url(url: str, backend: str) -> str | None:
    """Return what is wrong with ``url`` as a server URL for ``backend``, or ``None`` when it fits."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        masked = re.sub(r"://[^@/]*@", "://***@", url)
        return f"is not a database URL: {masked!r}. Write it as {EXAMPLE_URLS[backend]}."
    name = parsed.get_backend_name()
    if name != backend and not (backend == "mariadb" and name == "mysql"):
        return (
            f"names the {name!r} dialect, not {backend!r}: {parsed.render_as_string(hide_password=True)}. "
            f"Write it as {EXAMPLE_URLS[backend]}."
        )
    return None


def backend_of(url: str) -> str:
    """Return ``sqlite``, ``postgresql`` or ``mariadb`` for a SQLAlchemy URL."""
    name = make_url(url).get_backend_name()
    return "mariadb" if name in ("mysql", "mariadb") else name


class BulkSessionInserter:
    """Inserts ``portal_sessions`` rows with multi-row ``INSERT ... VALUES`` statements.

    Each statement carries ``rows_per_statement`` rows and is compiled once,
    then sent straight to the driver, so inserting a million rows costs
    little more than the database's own work. Eight columns times 500 rows is
    4,000 bound parameters, under SQLite's limit of 32,766 and the 65,535 of
    PostgreSQL and MariaDB.
    """

    def __init__(self, engine: Engine, rows_per_statement: int = 500) -> None:
        self.engine = engine
        self.rows_per_statement = rows_per_statement
        self._columns = [column.name for column in sessions_table.columns]
        self._compiled: dict[int, Any] = {}

    def insert(self, rows: Iterable[Mapping[str, Any]], rows_per_commit: int = 50_000) -> int:
        """Insert ``rows`` (dicts keyed by column name); return how many were inserted."""
        total = 0
        pending: list[Mapping[str, Any]] = []
        connection = self.engine.connect()
        try:
            transaction = connection.begin()
            for row in rows:
                pending.append(row)
                if len(pending) == self.rows_per_statement:
                    self._send(connection, pending)
                    total += len(pending)
                    pending = []
                    if total % rows_per_commit == 0:
                        transaction.commit()
                        transaction = connection.begin()
            if pending:
                self._send(connection, pending)
                total += len(pending)
            transaction.commit()
        finally:
            connection.close()
        return total

    def _send(self, connection: Any, rows: list[Mapping[str, Any]]) -> None:
        compiled = self._compiled.get(len(rows))
        if compiled is None:
            placeholders = [
                {name: bindparam(f"{name}_{index}") for name in self._columns} for index in range(len(rows))
            ]
            compiled = insert(sessions_table).values(placeholders).compile(dialect=self.engine.dialect)
            self._compiled[len(rows)] = compiled

        params = {f"{name}_{index}": row[name] for index, row in enumerate(rows) for name in self._columns}
        bound: Any = compiled.construct_params(params)
        if compiled.positional:
            bound = tuple(bound[name] for name in compiled.positiontup)
        connection.exec_driver_sql(compiled.string, bound)
