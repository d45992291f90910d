"""Store faults: with the database unreachable, session requests get 503 and the rest keep working.

A small TCP proxy of the test's own sits between the app and the database
server on 127.0.0.1. Cutting it closes the listener and every open
connection, as a database restart or a network partition would. Restoring it
listens on the same port again. While the store is gone the app must return
503 ``Session store unavailable`` and log an ERROR line. It must never return
a 500, nor a 200 that sets a cookie for a session that was not stored, and it
must recover on its own once the store is back.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, session
from sqlalchemy.engine import make_url

from conftest import basic_header
from flask_portal_session import SessionStoreUnavailable, developer_logged_in

from .conftest import EMAIL, PASSWORD, add_developer, cookie_header, log_in, only_on, session_rows

UNAVAILABLE = {"message": "Session store unavailable"}

pytestmark = only_on("postgresql", "mariadb")


class TcpProxy:
    """Forwards connections from 127.0.0.1 to a target address; ``cut`` drops them all."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Listen on 127.0.0.1 (on the same port as before after a cut)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and close every forwarded connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            _close(sock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(sink)


def _close(sock: socket.socket) -> None:
    # shutdown() wakes a thread blocked in accept() or recv(); close() alone does not.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@pytest.fixture
def proxy(db_url: str) -> Iterator[TcpProxy]:
    url = make_url(db_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or {"postgresql": 5432}.get(url.get_backend_name(), 3306)))
    proxy.start()
    yield proxy
    proxy.cut()


@pytest.fixture
def app(make_app: Any, db_url: str, proxy: TcpProxy) -> Flask:
    """A portal app whose only way to its database is through the proxy."""
    url = make_url(db_url).set(host="127.0.0.1", port=proxy.port)
    timeout = {"connect_timeout": "5"}
    app = make_app(PORTAL_SESSION_DATABASE_URI=url.update_query_dict(timeout).render_as_string(hide_password=False))
    add_developer(app)
    return app


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503
    assert response.get_json() == UNAVAILABLE
    assert response.headers.getlist("Set-Cookie") == []


SESSION_REQUESTS = {
    "login required": ("GET", "/private", {}),
    "session route": ("GET", "/session", {}),
    "read": ("GET", "/get", {}),
    "write": ("GET", "/put?a=1", {}),
    "logout": ("DELETE", "/auth", {}),
    "logout on a route": ("POST", "/put?session_logout=1", {}),
    "login": ("GET", "/auth", basic_header(EMAIL, PASSWORD)),
}


@pytest.mark.parametrize(("method", "path", "headers"), SESSION_REQUESTS.values(), ids=SESSION_REQUESTS.keys())
def test_cut_store_503(app: Flask, proxy: TcpProxy, method: str, path: str, headers: dict[str, str]) -> None:
    token = log_in(app)
    proxy.cut()

    response = app.test_client(use_cookies=False).open(path, method=method, headers={**headers, **cookie_header(token)})

    assert_unavailable(response)


def test_cut_store_503_without_cookie(app: Flask, proxy: TcpProxy) -> None:
    proxy.cut()

    assert_unavailable(app.test_client(use_cookies=False).get("/put?a=1"))
    assert_unavailable(app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, PASSWORD)))


def test_cut_store_logs_error(app: Flask, proxy: TcpProxy, caplog: pytest.LogCaptureFixture) -> None:
    token = log_in(app)
    proxy.cut()

    with caplog.at_level(logging.ERROR, logger="flask_portal_session"):
        app.test_client(use_cookies=False).get("/private", headers=cookie_header(token))
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]

    assert len(errors) == 1
    assert "session store" in errors[0].getMessage()
    assert token not in errors[0].getMessage()


def test_cut_store_plain_routes_work(app: Flask, proxy: TcpProxy) -> None:
    token = log_in(app)
    proxy.cut()
    client = app.test_client(use_cookies=False)

    assert client.get("/plain").status_code == 200
    assert client.get("/plain", headers=cookie_header(token)).status_code == 200
    assert client.get("/plain", headers=cookie_header("A" * 66)).status_code == 200


def test_store_back_without_restart(app: Flask, proxy: TcpProxy) -> None:
    token = log_in(app)
    client = app.test_client(use_cookies=False)
    proxy.cut()
    assert_unavailable(client.get("/private", headers=cookie_header(token)))

    proxy.start()

    assert client.get("/private", headers=cookie_header(token)).status_code == 200
    assert client.get("/put?b=2", headers=cookie_header(token)).status_code == 200
    assert client.get("/auth", headers=basic_header(EMAIL, PASSWORD)).status_code == 200


def test_kept_connections_replaced_after_outage(app: Flask, proxy: TcpProxy) -> None:
    # Three kept connections die with the cut: the first failure must drop them
    # all, or the retry would take the next dead one and the request would fail.
    token = log_in(app)
    client = app.test_client(use_cookies=False)
    idle = app.extensions["portal_session"].store._idle
    connections = [idle.take() for _ in range(3)]
    for connection in connections:
        idle.give_back(connection, idle.generation)
    proxy.cut()
    proxy.start()

    read = client.get("/private", headers=cookie_header(token))
    logout = client.delete("/auth?session_logout=true", headers=cookie_header(token))

    assert read.status_code == 200
    assert logout.status_code == 200
    assert session_rows(app.portal.engine) == []
    assert client.get("/private", headers=cookie_header(token)).status_code == 401


def test_repeated_outages(app: Flask, proxy: TcpProxy) -> None:
    token = log_in(app)
    client = app.test_client(use_cookies=False)

    for _ in range(3):
        proxy.cut()
        assert_unavailable(client.get("/private", headers=cookie_header(token)))
        proxy.start()
        assert client.get("/private", headers=cookie_header(token)).status_code == 200


def test_cut_between_read_and_write(app: Flask, proxy: TcpProxy) -> None:
    # The store goes away after the view read the session: the change is not
    # kept, the cookie is not touched, and the session is intact afterwards.
    @app.get("/cut-then-write")
    def cut_then_write() -> Any:
        session.get("a")
        proxy.cut()
        session["written"] = "yes"
        return {"ok": True}

    token = log_in(app)
    client = app.test_client(use_cookies=False)

    assert_unavailable(client.get("/cut-then-write", headers=cookie_header(token)))
    proxy.start()
    assert client.get("/private", headers=cookie_header(token)).get_json()["data"] == {}


def test_cut_during_login(app: Flask, proxy: TcpProxy) -> None:
    # The password check passed, then the store went away: no cookie for a
    # session that was never stored.
    def cut(sender: Any, **kwargs: Any) -> None:
        proxy.cut()

    with developer_logged_in.connected_to(cut, app):
        response = app.test_client(use_cookies=False).get("/auth", headers=basic_header(EMAIL, PASSWORD))

    assert_unavailable(response)


def test_failed_read_not_anonymous(app: Flask, proxy: TcpProxy) -> None:
    # A view that catches the error and goes on must not see an empty,
    # anonymous session: writing to it would replace the developer's cookie
    # with that of a new anonymous session.
    @app.get("/retry")
    def retry() -> Any:
        try:
            session.get("a")
        except SessionStoreUnavailable:
            proxy.start()
        session["after"] = "retry"
        return {"developer": session.developer_id}  # type: ignore[attr-defined]

    token = log_in(app)
    proxy.cut()

    response = app.test_client(use_cookies=False).get("/retry", headers=cookie_header(token))
    rows = session_rows(app.portal.engine)  # type: ignore[attr-defined]

    assert response.status_code == 200
    assert response.get_json()["developer"] is not None
    assert response.headers.getlist("Set-Cookie") == []
    assert len(rows) == 1
