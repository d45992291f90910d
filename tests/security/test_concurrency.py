"""Concurrent requests with one cookie, against a real threaded server on 127.0.0.1.

Browsers send many requests at once with the same cookie (a page and its API
calls, several tabs). When the session is due for renewal, they all carry the
old cookie: every one of them must succeed, only one successor row may be
created, and the writes they make must all land in the successor. Writes to
different keys of one session are merged; writes to the same key keep the
value of the last one to commit.

The app uses the fake clock, so every request reads the same time and the
renewal is due for all of them at once.
"""

from __future__ import annotations

import http.client
import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import pytest
from flask import Flask

from conftest import FakeClock, basic_header

from .conftest import (
    EMAIL,
    PASSWORD,
    add_developer,
    log_in,
    session_rows,
)

#: Requests sent at once in each test, and the threads that send them.
REQUESTS = 24
WORKERS = 12


@dataclass
class Reply:
    status: int
    body: Any
    cookies: list[tuple[str, bool]]  # (value, is an expiry)


def send(port: int, method: str, path: str, cookie: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        all_headers = dict(headers or {})
        if cookie is not None:
            all_headers["Cookie"] = f"session={cookie}"
        connection.request(method, path, headers=all_headers)
        response = connection.getresponse()
        body = response.read()
        cookies = []
        for header in response.headers.get_all("Set-Cookie") or []:
            parsed = SimpleCookie()
            parsed.load(header)
            if "session" in parsed:
                cookies.append((parsed["session"].value, parsed["session"]["max-age"] == "0"))
        return Reply(response.status, json.loads(body) if body else None, cookies)
    finally:
        connection.close()


def send_all(port: int, paths: list[str], cookie: str | None = None, method: str = "GET") -> list[Reply]:
    """Send one request per path, all released at the same moment."""
    start = threading.Barrier(min(len(paths), WORKERS))

    def one(index_and_path: tuple[int, str]) -> Reply:
        index, path = index_and_path
        if index < WORKERS:
            start.wait()
        return send(port, method, path, cookie)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(one, enumerate(paths)))


def new_cookies(replies: list[Reply]) -> list[str]:
    return [value for reply in replies for value, expired in reply.cookies if not expired]


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100, "cookie_discard": 10})
    add_developer(app)
    return app


@pytest.fixture
def port(app: Flask, live_server: Any) -> int:
    return live_server(app).port


def renewal_due(app: Flask, clock: FakeClock) -> str:
    """Log in, then move the clock into the renewal window; return the cookie."""
    token = log_in(app)
    clock.advance(950)
    return token


def test_parallel_renewal_all_succeed(app: Flask, port: int, clock: FakeClock) -> None:
    token = renewal_due(app, clock)

    replies = send_all(port, ["/private"] * REQUESTS, token)

    assert [reply.status for reply in replies] == [200] * REQUESTS


def test_parallel_renewal_one_successor(app: Flask, port: int, clock: FakeClock) -> None:
    token = renewal_due(app, clock)

    replies = send_all(port, ["/private"] * REQUESTS, token)
    rows = session_rows(app.portal.engine)  # type: ignore[attr-defined]

    assert len(new_cookies(replies)) == 1
    assert len(rows) == 2
    assert sum(row.replaced_by is not None for row in rows) == 1


def test_parallel_renewal_successor_works(app: Flask, port: int, clock: FakeClock) -> None:
    token = renewal_due(app, clock)
    successor = new_cookies(send_all(port, ["/private"] * REQUESTS, token))[0]
    clock.advance(60)

    assert send(port, "GET", "/private", token).status == 401
    assert send(port, "GET", "/private", successor).status == 200


def test_parallel_writes_during_renewal_kept(app: Flask, port: int, clock: FakeClock) -> None:
    token = renewal_due(app, clock)
    paths = [f"/put?key{index}=value{index}" for index in range(REQUESTS)]

    replies = send_all(port, paths, token)
    successor = new_cookies(replies)[0]
    stored = send(port, "GET", "/get", successor).body

    assert [reply.status for reply in replies] == [200] * REQUESTS
    assert stored == {f"key{index}": f"value{index}" for index in range(REQUESTS)}


def test_parallel_writes_without_renewal_kept(app: Flask, port: int) -> None:
    token = log_in(app)
    paths = [f"/put?key{index}=value{index}" for index in range(REQUESTS)]

    replies = send_all(port, paths, token)
    stored = send(port, "GET", "/get", token).body

    assert [reply.status for reply in replies] == [200] * REQUESTS
    assert stored == {f"key{index}": f"value{index}" for index in range(REQUESTS)}


def test_parallel_writes_keep_earlier_data(app: Flask, port: int, clock: FakeClock) -> None:
    token = log_in(app)
    send(port, "GET", "/put?kept=yes", token)
    clock.advance(950)

    successor = new_cookies(send_all(port, [f"/put?key{index}=1" for index in range(REQUESTS)], token))[0]

    assert send(port, "GET", "/get", successor).body["kept"] == "yes"


def test_parallel_same_key_one_value(app: Flask, port: int) -> None:
    # Writes to one key race: the last to commit wins, and it is one of them.
    token = log_in(app)
    values = {f"value{index}" for index in range(REQUESTS)}

    replies = send_all(port, [f"/put?theme={value}" for value in sorted(values)], token)

    assert [reply.status for reply in replies] == [200] * REQUESTS
    assert send(port, "GET", "/get", token).body["theme"] in values


def test_parallel_first_requests(app: Flask, port: int) -> None:
    replies = send_all(port, [f"/put?cart={index}" for index in range(REQUESTS)])

    assert [reply.status for reply in replies] == [200] * REQUESTS
    assert len(set(new_cookies(replies))) == REQUESTS
    assert len(session_rows(app.portal.engine)) == REQUESTS  # type: ignore[attr-defined]


def test_parallel_logins(app: Flask, port: int) -> None:
    planted = send(port, "GET", "/put?cart=1").cookies[0][0]
    start = threading.Barrier(WORKERS)

    def login(_: int) -> Reply:
        start.wait()
        headers = {**basic_header(EMAIL, PASSWORD), "Cookie": f"session={planted}"}
        return send(port, "GET", "/auth", headers=headers)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        replies = list(pool.map(login, range(WORKERS)))

    assert [reply.status for reply in replies] == [200] * WORKERS
    assert len(set(new_cookies(replies))) == WORKERS
    assert send(port, "GET", "/get", planted).body == {}


def test_parallel_logins_store_no_deadlock(app: Flask) -> None:
    # Each login deletes the rows of the cookies it carried, then inserts its
    # own. On MariaDB, deleting a key that another login already deleted takes
    # a gap lock, so the two steps in one transaction deadlocked.
    store = app.portal.state().store  # type: ignore[attr-defined]
    errors: list[str] = []

    def login_insert(key: str, start: threading.Barrier) -> None:
        start.wait()
        try:
            store.insert(key, None, b"sealed", "key-id", 1, 2, 1, delete_keys=["a" * 64])
        except Exception as error:  # noqa: BLE001 - every failure is the finding
            errors.append(f"{type(error).__name__}: {error}")

    # Each round hits the deadlock only some of the time: 30 rounds make a miss unlikely.
    for _ in range(30):
        # An empty table makes one gap of the whole key space, as on a fresh install.
        keys = [secrets.token_hex(32) for _ in range(WORKERS)]
        start = threading.Barrier(WORKERS)
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            list(pool.map(lambda key: login_insert(key, start), keys))
        store.delete(keys)

    assert errors == []


def test_parallel_logout_and_writes(app: Flask, port: int) -> None:
    # Writes racing a logout must not bring the session back.
    token = log_in(app)
    paths = ["/put?session_logout=1"] + [f"/put?key{index}=1" for index in range(REQUESTS - 1)]

    replies = send_all(port, paths, token, method="POST")
    rows = session_rows(app.portal.engine)  # type: ignore[attr-defined]

    assert all(reply.status == 200 for reply in replies)
    assert send(port, "GET", "/private", token).status == 401
    assert [row.developer_id for row in rows if row.developer_id is not None] == []


# -- interleavings made exact: a request that runs inside another one's view ----------------------


@pytest.fixture
def nested_app(app: Flask) -> Flask:
    """Adds /outer, which reads the session, lets another request with the same cookie run, then writes."""
    from flask import request, session

    @app.get("/outer")
    def outer() -> Any:
        session.get("anything")
        method, path = request.args["inner"].split(" ")
        headers = {"Cookie": request.headers["Cookie"]}
        inner = app.test_client(use_cookies=False).open(path, method=method, headers=headers)
        assert inner.status_code == 200
        for key in request.args.getlist("delete"):
            session.pop(key, None)
        for item in request.args.getlist("set"):
            key, value = item.split("=")
            session[key] = value
        return {}

    return app


def outer(app: Flask, token: str, inner: str, **changes: Any) -> Any:
    from urllib.parse import urlencode

    query = urlencode({"inner": inner, **changes}, doseq=True)
    return app.test_client(use_cookies=False).get(f"/outer?{query}", headers={"Cookie": f"session={token}"})


def stored_data(app: Flask, token: str) -> Any:
    return app.test_client(use_cookies=False).get("/get", headers={"Cookie": f"session={token}"}).get_json()


def test_interleaved_writes_merge(nested_app: Flask) -> None:
    token = log_in(nested_app)

    outer(nested_app, token, "GET /put?inner=1", set="outer=1")

    assert stored_data(nested_app, token) == {"inner": "1", "outer": "1"}


def test_interleaved_delete_and_set(nested_app: Flask) -> None:
    token = log_in(nested_app)
    nested_app.test_client(use_cookies=False).get("/put?old=1", headers={"Cookie": f"session={token}"})

    outer(nested_app, token, "GET /put?inner=1", delete="old")

    assert stored_data(nested_app, token) == {"inner": "1"}


def test_interleaved_same_key_later_wins(nested_app: Flask) -> None:
    token = log_in(nested_app)

    outer(nested_app, token, "GET /put?theme=inner", set="theme=outer")

    assert stored_data(nested_app, token) == {"theme": "outer"}


def test_interleaved_renewal_write_lands(nested_app: Flask, clock: FakeClock) -> None:
    # The inner request renews the session; the outer one, which read the old
    # row, writes into the successor.
    token = log_in(nested_app)
    clock.advance(950)

    response = outer(nested_app, token, "GET /put?inner=1", set="outer=1")
    rows = session_rows(nested_app.portal.engine)  # type: ignore[attr-defined]

    assert response.status_code == 200
    assert response.headers.getlist("Set-Cookie") == []
    assert sorted(row.replaced_by is None for row in rows) == [False, True]
    assert stored_data(nested_app, token) == {"inner": "1", "outer": "1"}


def test_interleaved_write_after_logout_lost(nested_app: Flask) -> None:
    # A write that loses to a logout does not bring the session back.
    token = log_in(nested_app)

    response = outer(nested_app, token, "DELETE /auth", set="outer=1")

    assert response.status_code == 200
    assert session_rows(nested_app.portal.engine) == []  # type: ignore[attr-defined]

