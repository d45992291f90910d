"""The floor of any server-side session: bare Flask plus one SQL statement.

The floor app serves the same five routes as the other contenders. Each
route that a server-side session must take to the database runs the one
statement it needs at least, and nothing else: no cookie parsing, no tag, no
encryption, no Flask session object. The statement is compiled once and sent
on one DBAPI connection that stays open in autocommit mode. What the table
shows between this column and bare Flask is the database's own cost on this
machine, and what it shows between this column and flask-portal-session is
what the package adds on top.

``GET /private`` reads a session row by primary key, joined with its
developer, as the package's lookup does. ``POST /note`` updates one row by
primary key, ``POST /login`` inserts a row, and ``POST /logout`` deletes one
by primary key.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify
from sqlalchemy import Engine, bindparam, delete, insert, select, update

from flask_portal_session.store import create_store_engine, developers_table, sessions_table

from contenders import Contender, build_bare_app

#: Row key and developer id of the session row that ``GET /private`` reads.
FLOOR_KEY = "f" * 64
FLOOR_DEVELOPER_ID = "floor-developer"


class FloorStore:
    """One DBAPI connection and the four statements of the floor, compiled once.

    ``statements`` counts what was sent, because raw DBAPI calls fire no
    SQLAlchemy events. Not thread-safe: each gunicorn sync worker and the
    in-process benchmark use one thread.
    """

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_store_engine(url, isolation_level="AUTOCOMMIT")
        self._pooled = self.engine.raw_connection()
        self._connection = self._pooled.dbapi_connection
        self.statements = 0

        s = sessions_table.c
        d = developers_table.c
        self._select = self._compile(
            select(
                s.id, s.developer_id, s.data, s.key_id, s.created_at, s.expires_at, s.last_seen_at, s.replaced_by,
                d.email, d.status,
            )
            .select_from(sessions_table.outerjoin(developers_table, d.id == s.developer_id))
            .where(s.id == bindparam("key"))
        )
        self._update = self._compile(
            update(sessions_table)
            .where(s.id == bindparam("key"))
            .values(data=bindparam("new_data"), last_seen_at=bindparam("now"))
        )
        self._insert = self._compile(
            insert(sessions_table).values(
                id=bindparam("key"),
                developer_id=bindparam("developer_id"),
                data=bindparam("new_data"),
                key_id=bindparam("key_id"),
                created_at=bindparam("now"),
                expires_at=bindparam("expires_at"),
                last_seen_at=bindparam("now"),
            )
        )
        self._delete = self._compile(delete(sessions_table).where(s.id == bindparam("key")))

    def _compile(self, statement: Any) -> tuple[str, list[str] | None]:
        compiled = statement.compile(dialect=self.engine.dialect)
        return compiled.string, list(compiled.positiontup) if compiled.positional else None

    def run(self, statement: tuple[str, list[str] | None], values: dict[str, Any]) -> Any:
        """Send one compiled statement; return the first row of a SELECT, else ``None``."""
        sql, positions = statement
        parameters: Any = values if positions is None else tuple([values[name] for name in positions])
        self.statements += 1
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql, parameters)
            return cursor.fetchone() if cursor.description else None
        finally:
            cursor.close()

    def read(self) -> Any:
        """Return the floor's session row."""
        return self.run(self._select, {"key": FLOOR_KEY})

    def write(self, data: bytes, now: int) -> None:
        """Replace the floor row's data."""
        self.run(self._update, {"key": FLOOR_KEY, "new_data": data, "now": now})

    def create(self, key: str, data: bytes, now: int) -> None:
        """Insert a session row under ``key``."""
        values = {
            "key": key,
            "developer_id": FLOOR_DEVELOPER_ID,
            "new_data": data,
            "key_id": "floor",
            "now": now,
            "expires_at": now + 3600,
        }
        self.run(self._insert, values)

    def remove(self, key: str) -> None:
        """Delete the row under ``key``."""
        self.run(self._delete, {"key": key})

    def close(self) -> None:
        """Return the connection and dispose of the engine."""
        self._pooled.close()
        self.engine.dispose()


def prepare_floor_database(url: str) -> None:
    """Add the floor's developer and session row to a migrated database at ``url``."""
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(developers_table).values(
                    id=FLOOR_DEVELOPER_ID,
                    email="floor@example.com",
                    status="approved",
                    password_hash=None,
                    failed_logins=0,
                    created_at=0,
                    updated_at=0,
                )
            )
            connection.execute(
                insert(sessions_table).values(
                    id=FLOOR_KEY,
                    developer_id=FLOOR_DEVELOPER_ID,
                    data=b"\x01" + bytes(60),
                    key_id="floor",
                    created_at=0,
                    expires_at=2**40,
                    last_seen_at=0,
                )
            )
    finally:
        engine.dispose()


def build_floor_app(url: str, clock: Callable[[], float] = time.time) -> tuple[Flask, FloorStore]:
    """Build the floor app on a database prepared by :func:`prepare_floor_database`.

    It is the bare Flask app with the views of its four session routes
    replaced by views that send their statement first.
    """
    store = FloorStore(url)
    app = build_bare_app()

    def private() -> Any:
        row = store.read()
        if row is None:
            return jsonify(message="Unauthorized"), 401
        return jsonify(user=row[1], note=None)

    def note() -> Any:
        store.write(secrets.token_bytes(61), int(clock()))
        return jsonify(ok=True)

    def login() -> Any:
        store.create(secrets.token_hex(32), secrets.token_bytes(61), int(clock()))
        return jsonify(user=FLOOR_DEVELOPER_ID)

    def logout() -> Any:
        store.remove(secrets.token_hex(32))
        return jsonify(message="Logged out")

    app.view_functions.update(private=private, note=note, login=login, logout=logout)
    return app, store


def floor_contender(url: str) -> Contender:
    """Build the floor contender on a migrated database at ``url``, adding its rows first."""
    prepare_floor_database(url)
    app, store = build_floor_app(url)
    return Contender(
        key="floor",
        label="1-query floor",
        app=app,
        cookie_name=None,
        count_statements=lambda: store.statements,
        close=store.close,
    )
