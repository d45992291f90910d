"""The session store's lookup path: kept connections, disposal and fork."""

from __future__ import annotations

import os
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, insert

from conftest import basic_header
from flask_portal_session.store import MAX_DELETE_KEYS, SessionRow, SessionStore, sessions_table

EMAIL = "dev@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
def logged_in(make_app: Any) -> tuple[Flask, SessionStore, str]:
    """Return an app, its store and the row key of a logged-in session."""
    app = make_app()
    with app.app_context():
        app.portal.developers.create(EMAIL, PASSWORD)
    response = app.test_client().get("/auth", headers=basic_header(EMAIL, PASSWORD))
    assert response.status_code == 200
    store = app.extensions["portal_session"].store
    rows = store.list_sessions()
    assert len(rows) == 1
    return app, store, rows[0].key


def count_events(engine: Any, name: str) -> list[int]:
    seen: list[int] = []
    event.listen(engine, name, lambda *_args: seen.append(1))
    return seen


def test_lookup_reuses_one_connection(logged_in: tuple[Flask, SessionStore, str]) -> None:
    _app, store, key = logged_in
    assert store.lookup_engine is not store.engine
    store.load(key)
    connects = count_events(store.lookup_engine, "connect")
    checkouts = count_events(store.lookup_engine, "checkout")

    rows = [store.load(key) for _ in range(20)]

    assert all(isinstance(row, SessionRow) and row.key == key for row in rows)
    assert connects == []
    assert checkouts == []


def test_lookup_unknown_key_returns_none(logged_in: tuple[Flask, SessionStore, str]) -> None:
    _app, store, _key = logged_in
    assert store.load("0" * 64) is None


def test_idle_connections_capped_at_pool_size(logged_in: tuple[Flask, SessionStore, str]) -> None:
    _app, store, _key = logged_in
    idle = store._idle
    assert idle is not None
    keep = store.lookup_engine.pool.size()

    connections = [idle.take() for _ in range(keep + 3)]
    for connection in connections:
        idle.give_back(connection, idle.generation)

    assert len(idle._connections) == keep
    assert store.lookup_engine.pool.checkedout() == keep


def test_dispose_closes_idle_connections(logged_in: tuple[Flask, SessionStore, str]) -> None:
    app, store, key = logged_in
    store.load(key)
    idle = store._idle
    assert idle is not None and idle._connections

    app.portal.engine.dispose()

    assert idle._connections == []
    assert store.load(key) is not None


def test_connection_used_during_dispose_dropped(logged_in: tuple[Flask, SessionStore, str]) -> None:
    app, store, key = logged_in
    idle = store._idle
    assert idle is not None
    generation = idle.generation
    in_use = idle.take()

    app.portal.engine.dispose()
    idle.give_back(in_use, generation)

    assert idle._connections == []
    assert store.load(key) is not None


def test_forked_child_spares_parent_connection(
    logged_in: tuple[Flask, SessionStore, str],
) -> None:
    _app, store, key = logged_in
    store.load(key)
    idle = store._idle
    assert idle is not None
    parent_connections = list(idle._connections)
    assert parent_connections

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            fresh = idle._connections == []
            row = store.load(key)
            code = 0 if fresh and row is not None and row.key == key else 2
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert idle._connections == parent_connections
    row = store.load(key)
    assert row is not None and row.key == key


@pytest.mark.parametrize("path", ["/put?a=1", "/auth?session_logout=true"])
def test_write_and_logout_skip_main_pool(make_app: Any, path: str) -> None:
    app = make_app()
    with app.app_context():
        app.portal.developers.create(EMAIL, PASSWORD)
    client = app.test_client()
    assert client.get("/auth", headers=basic_header(EMAIL, PASSWORD)).status_code == 200
    store = app.extensions["portal_session"].store
    assert client.get("/private").status_code == 200
    checkouts = count_events(store.engine, "checkout")

    method = "DELETE" if "logout" in path else "GET"
    response = client.open(path, method=method)

    assert response.status_code == 200
    assert checkouts == []
    rows = store.list_sessions()
    if "logout" in path:
        assert rows == []
    else:
        assert len(rows) == 1
        assert client.get("/get").get_json() == {"a": "1"}


def connection_identity(engine: Any) -> int:
    """Return the server's id for the connection a pooled checkout gets (the object's id on SQLite)."""
    queries = {
        "postgresql": "SELECT pg_backend_pid()",
        "mysql": "SELECT CONNECTION_ID()",
        "mariadb": "SELECT CONNECTION_ID()",
    }
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            return id(connection.connection.dbapi_connection)
        return int(connection.exec_driver_sql(queries[engine.dialect.name]).scalar_one())


def test_forked_child_opens_own_main_connection(make_app: Any) -> None:
    app = make_app()
    engine = app.portal.engine
    parent_identity = connection_identity(engine)
    read_end, write_end = os.pipe()

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(read_end)
            os.write(write_end, str(connection_identity(engine)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_identity = int(pipe.read())
    _pid, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert child_identity != parent_identity
    assert connection_identity(engine) == parent_identity


def test_password_login_takes_main_pool_once(make_app: Any) -> None:
    app = make_app()
    with app.app_context():
        app.portal.developers.create(EMAIL, PASSWORD)
    store = app.extensions["portal_session"].store
    checkouts = count_events(store.engine, "checkout")

    response = app.test_client().get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert response.status_code == 200
    # Only the lockout claim needs a transaction of more than one statement.
    assert checkouts == [1]
    assert len(store.list_sessions()) == 1


def test_api_key_login_skips_main_pool(make_app: Any) -> None:
    app = make_app()
    with app.app_context():
        app.portal.developers.create(EMAIL, PASSWORD)
        key, record = app.portal.developers.create_api_key(EMAIL)
    store = app.extensions["portal_session"].store
    checkouts = count_events(store.engine, "checkout")

    response = app.test_client().get("/auth", headers={"apikey": key})

    assert response.status_code == 200
    assert checkouts == []
    with app.app_context():
        used = app.portal.developers.list_api_keys(record.developer_id)
    assert used[0].last_used_at is not None


def test_delete_long_key_list_in_chunks(logged_in: tuple[Flask, SessionStore, str]) -> None:
    app, store, key = logged_in
    extra = [f"{index:064x}" for index in range(MAX_DELETE_KEYS * 2 + 3)]
    rows = [
        {
            "id": extra_key,
            "developer_id": None,
            "data": b"x",
            "key_id": "k",
            "created_at": 0,
            "expires_at": 2**40,
            "last_seen_at": 0,
            "replaced_by": None,
        }
        for extra_key in extra
    ]
    with store.engine.begin() as connection:
        connection.execute(insert(sessions_table), rows)

    deleted = store.delete(extra + ["0" * 64])

    assert deleted == len(extra)
    assert [row.key for row in store.list_sessions()] == [key]
