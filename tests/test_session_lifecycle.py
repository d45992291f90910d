"""Session lifecycle rules: creation, renewal, timeouts, login rotation, logout, failures."""

from __future__ import annotations

from http.cookies import SimpleCookie
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask, request, session
from sqlalchemy import func, insert, select, update

from conftest import TEST_SECRET, StatementCounter, basic_header
from flask_portal_session import SessionTooLarge, extension, session_renewed
from flask_portal_session.crypto import KeyRing, new_session_id, row_key
from flask_portal_session.store import sessions_table

EMAIL = "dev@example.com"
PASSWORD = "correct horse battery"


def add_developer(app: Flask, email: str = EMAIL, status: str = "approved") -> Any:
    with app.app_context():
        return app.portal.developers.create(email, PASSWORD, status=status)


def login(client: Any, email: str = EMAIL) -> str:
    response = client.get("/auth", headers=basic_header(email, PASSWORD))
    assert response.status_code == 200, response.json
    return session_cookie(response)


def session_cookie(response: Any, name: str = "session") -> str:
    for header in response.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            return cookie[name].value
    raise AssertionError(f"no {name} cookie in {response.headers.getlist('Set-Cookie')}")


def set_cookie_headers(response: Any) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def row_count(app: Flask) -> int:
    with app.portal.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(sessions_table)).scalar_one()


def use_cookie(client: Any, value: str, name: str = "session") -> None:
    client.set_cookie(name, value)


# -- creation ---------------------------------------------------------------


def test_untouched_session_runs_no_query(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    with StatementCounter(app.portal.engine) as counter:
        response = client.get("/plain")
    assert response.status_code == 200
    assert counter.count == 0
    assert set_cookie_headers(response) == []
    assert "Cookie" not in response.headers.get("Vary", "")


def test_untouched_session_with_cookie_runs_no_query(make_app: Any) -> None:
    app = make_app()
    add_developer(app)
    client = app.test_client()
    login(client)
    with StatementCounter(app.portal.engine) as counter:
        response = client.get("/plain")
    assert response.status_code == 200
    assert counter.count == 0


def test_empty_session_creates_no_row(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    response = client.get("/get")
    assert response.json == {}
    assert set_cookie_headers(response) == []
    assert row_count(app) == 0


def test_anonymous_data_creates_row_and_cookie(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    response = client.get("/put?cart=3")
    assert row_count(app) == 1
    assert session_cookie(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/get").json == {"cart": "3"}


def test_authenticated_read_runs_one_statement(make_app: Any) -> None:
    app = make_app()
    add_developer(app)
    client = app.test_client()
    login(client)
    with StatementCounter(app.portal.engine) as counter:
        response = client.get("/private")
    assert response.status_code == 200
    assert counter.count == 1
    assert set_cookie_headers(response) == []
    assert "Cookie" in response.headers["Vary"]


def test_unchanged_session_is_not_written(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    client.get("/put?a=1")
    with StatementCounter(app.portal.engine) as counter:
        client.get("/get")
        client.get("/put?a=1")
    writes = [s for s in counter.statements if not s.lstrip().upper().startswith("SELECT")]
    assert writes == [s for s in writes if s.lstrip().upper().startswith("UPDATE")]
    assert len(writes) == 1


def test_session_modification_is_persisted(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    client.get("/put?a=1")
    client.get("/put?b=2")
    assert client.get("/get").json == {"a": "1", "b": "2"}
    assert row_count(app) == 1


def test_emptied_anonymous_session_is_deleted(make_app: Any) -> None:
    app = make_app()

    @app.get("/clear")
    def clear() -> Any:
        session.clear()
        return {}

    client = app.test_client()
    client.get("/put?a=1")
    response = client.get("/clear")
    assert row_count(app) == 0
    assert "Max-Age=0" in set_cookie_headers(response)[0]


# -- cookies that name no valid session --------------------------------------


def test_forged_cookie_is_rejected_without_query(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    use_cookie(client, "A" * 66)
    with StatementCounter(app.portal.engine) as counter:
        response = client.get("/get")
    assert counter.count == 0
    assert response.json == {}
    assert "Max-Age=0" in set_cookie_headers(response)[0]


def test_unknown_session_id_is_never_adopted(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    session_id = new_session_id()
    use_cookie(client, KeyRing(TEST_SECRET).encode_token(session_id))
    response = client.get("/put?a=1")
    new_value = session_cookie(response)
    assert new_value != KeyRing(TEST_SECRET).encode_token(session_id)
    with app.portal.engine.connect() as connection:
        keys = connection.execute(select(sessions_table.c.id)).scalars().all()
    assert row_key(session_id) not in keys
    assert len(keys) == 1


def test_unknown_session_id_expires_cookie(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    use_cookie(client, KeyRing(TEST_SECRET).encode_token(new_session_id()))
    response = client.get("/get")
    assert "Max-Age=0" in set_cookie_headers(response)[0]


def test_session_id_is_not_stored(make_app: Any) -> None:
    app = make_app()
    add_developer(app)
    client = app.test_client()
    token = login(client)
    session_id, _ = KeyRing(TEST_SECRET).decode_token(token)
    with app.portal.engine.connect() as connection:
        rows = connection.execute(select(sessions_table)).all()
    assert len(rows) == 1
    stored = repr(tuple(rows[0]))
    assert session_id.hex() not in stored
    assert token not in stored
    assert rows[0].id == row_key(session_id)


# -- lifetime, renewal, discard window ---------------------------------------


def test_session_expires_after_lifetime(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_lifetime": 100, "cookie_renew": 0})
    add_developer(app)
    client = app.test_client()
    login(client)
    clock.advance(99)
    assert client.get("/private").status_code == 200
    clock.advance(1)
    response = client.get("/private")
    assert response.status_code == 401
    assert "Max-Age=0" in set_cookie_headers(response)[0]
    assert row_count(app) == 0


def test_renewal_issues_new_id(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100})
    add_developer(app)
    client = app.test_client()
    first = login(client)
    clock.advance(850)
    assert set_cookie_headers(client.get("/private")) == []
    clock.advance(60)
    response = client.get("/private")
    assert response.status_code == 200
    second = session_cookie(response)
    assert second != first
    assert row_count(app) == 2
    clock.advance(990)
    assert client.get("/private").status_code == 200


def test_renewal_sends_signal(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100})
    add_developer(app)
    client = app.test_client()
    login(client)
    received: list[Any] = []
    clock.advance(950)
    with session_renewed.connected_to(lambda sender, **kwargs: received.append(kwargs), app):
        client.get("/private")
    assert len(received) == 1


def test_old_cookie_works_within_discard_window(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100, "cookie_discard": 10})
    add_developer(app)
    client = app.test_client()
    old = login(client)
    clock.advance(950)
    new = session_cookie(client.get("/private"))

    stale = app.test_client()
    use_cookie(stale, old)
    clock.advance(9)
    response = stale.get("/private")
    assert response.status_code == 200
    assert set_cookie_headers(response) == []
    assert row_count(app) == 2

    clock.advance(1)
    assert stale.get("/private").status_code == 401
    fresh = app.test_client()
    use_cookie(fresh, new)
    assert fresh.get("/private").status_code == 200


def test_renewal_happens_once(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100})
    add_developer(app)
    client = app.test_client()
    old = login(client)
    clock.advance(950)
    client.get("/private")

    other = app.test_client()
    use_cookie(other, old)
    response = other.get("/private")
    assert response.status_code == 200
    assert set_cookie_headers(response) == []
    assert row_count(app) == 2


def test_write_through_old_cookie_lands_in_successor(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100})
    add_developer(app)
    client = app.test_client()
    old = login(client)
    clock.advance(950)
    client.get("/private")

    other = app.test_client()
    use_cookie(other, old)
    other.get("/put?theme=dark")
    assert client.get("/private").json["data"] == {"theme": "dark"}


def test_renewal_keeps_data(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100})
    client = app.test_client()
    client.get("/put?a=1")
    clock.advance(950)
    response = client.get("/get")
    assert session_cookie(response)
    assert client.get("/get").json == {"a": "1"}


# -- absolute and idle timeouts -----------------------------------------------


def test_absolute_timeout_caps_renewal(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 500, "absolute_timeout": 1500})
    add_developer(app)
    client = app.test_client()
    login(client)
    clock.advance(600)
    client.get("/private")
    info = client.get("/session").json["session"]
    assert info["expires"] == int(clock.now) - 600 + 1500
    assert info["absolute_expires"] == int(clock.now) - 600 + 1500
    clock.advance(899)
    assert client.get("/private").status_code == 200
    clock.advance(1)
    assert client.get("/private").status_code == 401


def test_no_renewal_past_absolute_deadline(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 500, "absolute_timeout": 1200})
    add_developer(app)
    client = app.test_client()
    login(client)
    clock.advance(600)
    assert session_cookie(client.get("/private"))
    for _ in range(3):
        clock.advance(100)
        response = client.get("/private")
        assert response.status_code == 200
        assert set_cookie_headers(response) == []
    assert row_count(app) == 2


def test_old_cookie_follows_two_renewals(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 100, "cookie_discard": 30})
    add_developer(app)
    client = app.test_client()
    first = login(client)
    clock.advance(950)
    client.get("/private")
    clock.advance(1)
    with app.portal.engine.begin() as connection:
        connection.execute(update(sessions_table).values(expires_at=int(clock.now) + 50).where(
            sessions_table.c.replaced_by.is_(None)
        ))
    assert session_cookie(client.get("/private"))

    old = app.test_client()
    use_cookie(old, first)
    old.get("/put?via=first")
    assert client.get("/private").json["data"] == {"via": "first"}


def test_absolute_timeout_off(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_lifetime": 1000, "cookie_renew": 500, "absolute_timeout": 0})
    add_developer(app)
    client = app.test_client()
    login(client)
    for _ in range(5):
        clock.advance(600)
        assert client.get("/private").status_code == 200
    assert client.get("/session").json["session"]["absolute_expires"] is None


def test_idle_timeout_ends_session(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_idletime": 300})
    add_developer(app)
    client = app.test_client()
    login(client)
    clock.advance(299)
    assert client.get("/private").status_code == 200
    clock.advance(299)
    assert client.get("/private").status_code == 200
    clock.advance(300)
    assert client.get("/private").status_code == 401


def test_idle_touch_is_rate_limited(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_idletime": 600})
    add_developer(app)
    client = app.test_client()
    login(client)
    with StatementCounter(app.portal.engine) as counter:
        for _ in range(5):
            clock.advance(5)
            client.get("/private")
    assert counter.count == 5
    with StatementCounter(app.portal.engine) as counter:
        clock.advance(60)
        client.get("/private")
    assert counter.count == 2


# -- login and logout ---------------------------------------------------------


def test_login_rotates_id_and_deletes_previous_row(make_app: Any) -> None:
    app = make_app()
    add_developer(app)
    client = app.test_client()
    client.get("/put?cart=3")
    before = client.get_cookie("session").value
    after = login(client)
    assert after != before
    assert row_count(app) == 1
    assert client.get("/private").json["data"] == {"cart": "3"}


def test_login_drops_data_of_another_developer(make_app: Any) -> None:
    app = make_app()
    add_developer(app)
    add_developer(app, "other@example.com")
    client = app.test_client()
    login(client, "other@example.com")
    client.get("/put?secret=other")
    login(client)
    assert client.get("/private").json["data"] == {}
    assert row_count(app) == 1


def test_pre_login_cookie_is_worthless_after_login(make_app: Any) -> None:
    app = make_app()
    add_developer(app)
    client = app.test_client()
    client.get("/put?a=1")
    planted = client.get_cookie("session").value
    login(client)
    attacker = app.test_client()
    use_cookie(attacker, planted)
    assert attacker.get("/private").status_code == 401


def test_logout_deletes_row_and_expires_cookie(make_app: Any) -> None:
    conf = {"cookie_domain": "example.test", "cookie_path": "/", "cookie_samesite": "Lax"}
    app = make_app(conf)
    add_developer(app)
    client = app.test_client()
    response = client.get("/auth", headers=basic_header(EMAIL, PASSWORD), base_url="http://portal.example.test")
    token = session_cookie(response)
    response = client.delete("/auth?session_logout=true", base_url="http://portal.example.test")
    assert response.status_code == 200
    assert response.json == {"message": "Logged out"}
    header = set_cookie_headers(response)[0]
    assert "Max-Age=0" in header
    assert "Domain=example.test" in header
    assert "SameSite=Lax" in header
    assert "HttpOnly" in header
    assert row_count(app) == 0

    replay = app.test_client()
    replay.set_cookie("session", token, domain="portal.example.test")
    assert replay.get("/private", base_url="http://portal.example.test").status_code == 401
    assert row_count(app) == 0


def test_logout_on_any_route_skips_view(make_app: Any) -> None:
    app = make_app()
    add_developer(app)
    client = app.test_client()
    login(client)
    response = client.post("/put?session_logout=1&x=1")
    assert response.json == {"message": "Logged out"}
    assert row_count(app) == 0


def test_logout_by_form_field(make_app: Any) -> None:
    app = make_app()
    add_developer(app)
    client = app.test_client()
    login(client)
    response = client.post("/put", data={"session_logout": "true"})
    assert response.json == {"message": "Logged out"}
    assert row_count(app) == 0


def test_logout_by_get_is_off_by_default(make_app: Any) -> None:
    app = make_app()
    add_developer(app)
    client = app.test_client()
    login(client)
    response = client.get("/private?session_logout=true")
    assert response.status_code == 200
    assert row_count(app) == 1


def test_logout_by_get_when_enabled(make_app: Any) -> None:
    app = make_app({"logout_methods": ["GET", "POST", "DELETE"]})
    add_developer(app)
    client = app.test_client()
    login(client)
    assert client.get("/private?session_logout=true").json == {"message": "Logged out"}
    assert row_count(app) == 0


def test_logout_without_session_on_other_route_runs_view(make_app: Any) -> None:
    app = make_app()
    response = app.test_client().post("/put?session_logout=true&a=1")
    assert response.json == {"ok": True}


def test_revoke_sessions_ends_every_session(make_app: Any) -> None:
    app = make_app()
    developer = add_developer(app)
    first, second = app.test_client(), app.test_client()
    login(first)
    login(second)
    with app.app_context():
        assert app.portal.revoke_sessions(developer.id) == 2
    assert first.get("/private").status_code == 401
    assert second.get("/private").status_code == 401
    assert row_count(app) == 0


def test_status_change_ends_session(make_app: Any) -> None:
    app = make_app()
    add_developer(app)
    client = app.test_client()
    login(client)
    with app.portal.engine.begin() as connection:
        from flask_portal_session.store import developers_table

        connection.execute(update(developers_table).values(status="revoked"))
    response = client.get("/private")
    assert response.status_code == 401
    assert row_count(app) == 0


def test_set_developer_status_revokes_sessions(make_app: Any) -> None:
    app = make_app()
    add_developer(app)
    client = app.test_client()
    login(client)
    with app.app_context():
        app.portal.set_developer_status(EMAIL, "pending")
    assert row_count(app) == 0
    assert client.get("/private").status_code == 401


# -- cookie attributes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("conf", "expected", "absent"),
    [
        ({}, ["HttpOnly", "Path=/", "SameSite=Strict"], ["Domain=", "Max-Age", "Secure"]),
        ({"cookie_secure": True}, ["Secure"], []),
        ({"cookie_samesite": "off"}, ["HttpOnly"], ["SameSite"]),
        ({"cookie_samesite": "Lax", "cookie_httponly": False}, ["SameSite=Lax"], ["HttpOnly"]),
        ({"cookie_path": "/portal"}, ["Path=/portal"], []),
        ({"cookie_persistent": True, "cookie_lifetime": 1200}, ["Max-Age=1200", "Expires="], []),
        ({"cookie_name": "portal_cookie"}, ["portal_cookie="], []),
    ],
)
def test_cookie_attributes_follow_config(make_app: Any, conf: dict, expected: list, absent: list) -> None:
    app = make_app(conf)
    response = app.test_client().get("/put?a=1")
    header = set_cookie_headers(response)[0]
    for part in expected:
        assert part in header
    for part in absent:
        assert part not in header


# -- failures -----------------------------------------------------------------


def test_server_error_persists_nothing(make_app: Any) -> None:
    app = make_app()

    @app.get("/boom")
    def boom() -> Any:
        session["a"] = 1
        return {"error": True}, 500

    client = app.test_client()
    response = client.get("/boom")
    assert response.status_code == 500
    assert set_cookie_headers(response) == []
    assert row_count(app) == 0


def test_oversized_session_stores_nothing(make_app: Any) -> None:
    app = make_app({"max_session_bytes": 100})

    @app.get("/big")
    def big() -> Any:
        session["blob"] = "x" * 200
        return {}

    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(SessionTooLarge, match="max_session_bytes"):
        app.test_client().get("/big")
    assert row_count(app) == 0


def test_unreachable_store_gives_503(make_app: Any) -> None:
    app = make_app(PORTAL_SESSION_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2")
    client = app.test_client()
    assert client.get("/plain").status_code == 200
    response = client.get("/put?a=1")
    assert response.status_code == 503
    assert response.json == {"message": "Session store unavailable"}
    assert set_cookie_headers(response) == []


def test_unreachable_store_on_login_gives_503(make_app: Any) -> None:
    app = make_app(PORTAL_SESSION_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2")
    response = app.test_client().get("/auth", headers={"apikey": "x" * 43})
    assert response.status_code == 503
    assert response.json == {"message": "Session store unavailable"}


def test_unreachable_store_with_cookie_gives_503(make_app: Any, db_url: str) -> None:
    app = make_app()
    client = app.test_client()
    client.get("/put?a=1")
    cookie = client.get_cookie("session").value
    broken = make_app(PORTAL_SESSION_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2")
    other = broken.test_client()
    other.set_cookie("session", cookie)
    response = other.get("/get")
    assert response.status_code == 503
    assert response.json == {"message": "Session store unavailable"}


def test_cleanup_deletes_only_expired_rows(make_app: Any, clock: Any) -> None:
    app = make_app({"cookie_lifetime": 100, "cookie_renew": 0})
    clients = [app.test_client() for _ in range(7)]
    for client in clients[:5]:
        client.get("/put?a=1")
    clock.advance(101)
    for client in clients[5:]:
        client.get("/put?a=2")
    with app.app_context():
        assert app.portal.cleanup(batch_size=2) == 5
    assert row_count(app) == 2
    assert clients[6].get("/get").json == {"a": "2"}


def add_expired_rows(app: Flask, count: int) -> None:
    rows = [
        {
            "id": f"{index:064x}",
            "developer_id": None,
            "data": b"x",
            "key_id": "k",
            "created_at": 0,
            "expires_at": 1,
            "last_seen_at": 0,
            "replaced_by": None,
        }
        for index in range(count)
    ]
    with app.portal.engine.begin() as connection:
        connection.execute(insert(sessions_table), rows)


@pytest.mark.parametrize(
    ("seconds_per_row", "expected_sizes"),
    [
        # Fast deletes: start at 500, grow 4x per batch, stop at batch_size.
        (0.00005, [500, 2000, 5000]),
        # Slow deletes: 500 rows took 0.5 s, so batches shrink to 0.25 s worth.
        (0.001, [500, 250, 250, 250, 250, 250, 250, 250, 250, 250]),
    ],
)
def test_cleanup_sizes_batches_by_rate(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, seconds_per_row: float, expected_sizes: list[int]
) -> None:
    app = make_app()
    add_expired_rows(app, 2700)
    store = app.extensions["portal_session"].store
    real_delete = store.delete_expired_batch
    timer = [0.0]
    sizes: list[int] = []

    def timed_delete(now: int, limit: int) -> int:
        # The real delete runs; only the clock the cleanup reads is simulated.
        sizes.append(limit)
        deleted = real_delete(now, limit)
        timer[0] += deleted * seconds_per_row
        return deleted

    monkeypatch.setattr(store, "delete_expired_batch", timed_delete)
    monkeypatch.setattr(extension, "time", SimpleNamespace(perf_counter=lambda: timer[0]))

    with app.app_context():
        deleted = app.portal.cleanup(batch_size=5000)

    assert deleted == 2700
    assert sizes == expected_sizes
    assert row_count(app) == 0


def test_cleanup_rejects_bad_batch_size(make_app: Any) -> None:
    app = make_app()
    with app.app_context():
        for size in (0, -1, 100_001, True, "5"):
            with pytest.raises(ValueError, match="batch_size"):
                app.portal.cleanup(batch_size=size)


def test_logout_check_keeps_raw_body_readable(make_app: Any) -> None:
    app = make_app()

    @app.post("/raw")
    def raw() -> Any:
        return {"body": request.get_data(as_text=True)}

    response = app.test_client().post(
        "/raw", data="a=1&b=2", content_type="application/x-www-form-urlencoded"
    )
    assert response.json == {"body": "a=1&b=2"}
