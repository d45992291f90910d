"""User enumeration: a login attempt must not tell whether the email exists.

Every case below verifies exactly one argon2 hash, so the time an attempt takes
does not depend on the account, and an unknown email gets the response a wrong
password gets, byte for byte. Only the right password of an unapproved
developer learns the status, as the HTTP contract requires.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update
from werkzeug.security import generate_password_hash

from conftest import basic_header
from flask_portal_session.store import developers_table

from .conftest import EMAIL, PASSWORD, add_developer, count_verifications, session_set_cookies

WRONG = "wrong password, long enough"


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = make_app(PORTAL_AUTH_LOGIN_ATTEMPTS=3)
    add_developer(app)
    add_developer(app, "pending@example.test", status="pending")
    add_developer(app, "locked@example.test")
    add_developer(app, "imported@example.test")
    with app.portal.engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(
            update(developers_table)
            .where(developers_table.c.email == "imported@example.test")
            .values(password_hash=generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"))
        )
    app.portal.developers.create("nopassword@example.test", None)  # type: ignore[attr-defined]
    client = app.test_client(use_cookies=False)
    for _ in range(3):
        client.get("/auth", headers=basic_header("locked@example.test", WRONG))
    return app


CASES = {
    "unknown email": ("nobody@example.test", WRONG),
    "unknown email, the right password of another": ("nobody@example.test", PASSWORD),
    "wrong password": (EMAIL, WRONG),
    "unapproved, right password": ("pending@example.test", PASSWORD),
    "unapproved, wrong password": ("pending@example.test", WRONG),
    "locked, right password": ("locked@example.test", PASSWORD),
    "locked, wrong password": ("locked@example.test", WRONG),
    "imported hash, wrong password": ("imported@example.test", WRONG),
    "no password set": ("nopassword@example.test", WRONG),
    "email in other case": (EMAIL.upper(), WRONG),
    "control character in email": ("dev\x01@example.test", WRONG),
    "right password": (EMAIL, PASSWORD),
}


@pytest.mark.parametrize(("email", "password"), CASES.values(), ids=CASES.keys())
def test_one_hash_verification(app: Flask, email: str, password: str) -> None:
    hasher = count_verifications(app)

    app.test_client(use_cookies=False).get("/auth", headers=basic_header(email, password))

    assert hasher.verify_calls == 1


SAME_ANSWER = {
    "unknown email": ("nobody@example.test", WRONG),
    "unapproved, wrong password": ("pending@example.test", WRONG),
    "imported hash, wrong password": ("imported@example.test", WRONG),
    "no password set": ("nopassword@example.test", WRONG),
    "control character in email": ("dev\x01@example.test", WRONG),
}


@pytest.mark.parametrize(("email", "password"), SAME_ANSWER.values(), ids=SAME_ANSWER.keys())
def test_same_answer_as_wrong_password(app: Flask, email: str, password: str) -> None:
    client = app.test_client(use_cookies=False)
    wrong = client.get("/auth", headers=basic_header(EMAIL, WRONG))

    response = client.get("/auth", headers=basic_header(email, password))

    assert response.status_code == wrong.status_code
    assert response.get_data() == wrong.get_data()
    assert response.headers.get("WWW-Authenticate") == wrong.headers.get("WWW-Authenticate")
    assert response.headers.get("Content-Type") == wrong.headers.get("Content-Type")
    assert session_set_cookies(response) == session_set_cookies(wrong) == []


def test_same_answer_for_scripts(app: Flask) -> None:
    client = app.test_client(use_cookies=False)
    xhr = {"X-Requested-With": "XMLHttpRequest"}
    wrong = client.get("/auth", headers={**basic_header(EMAIL, WRONG), **xhr})

    unknown = client.get("/auth", headers={**basic_header("nobody@example.test", WRONG), **xhr})

    assert unknown.status_code == wrong.status_code
    assert unknown.get_data() == wrong.get_data()
    assert unknown.headers.get("WWW-Authenticate") == wrong.headers.get("WWW-Authenticate")


def test_unknown_key_same_answer_as_revoked(app: Flask) -> None:
    developers = app.portal.developers  # type: ignore[attr-defined]
    key, record = developers.create_api_key(EMAIL)
    developers.revoke_api_key(record.id)
    client = app.test_client(use_cookies=False)

    revoked = client.get("/auth", headers={"apikey": key})
    unknown = client.get("/auth", headers={"apikey": "x" * len(key)})

    assert revoked.status_code == unknown.status_code == 401
    assert revoked.get_data() == unknown.get_data()


def test_hashing_work_equal_for_unknown_email(app: Flask) -> None:
    # The dummy hash uses the configured parameters, so an unknown email costs
    # what a real account costs.
    developers = app.portal.developers  # type: ignore[attr-defined]
    stored = developers._fetch_login_row(EMAIL).password_hash

    assert developers._dummy_hash.split("$")[3] == stored.split("$")[3]
