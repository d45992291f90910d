"""Brute force: lockout per account after consecutive failed logins.

The rules: after ``PORTAL_AUTH_LOGIN_ATTEMPTS`` consecutive failures the
account is locked 60 s, doubling with each further failure up to an hour.
While it is locked every attempt gets 429 with ``Retry-After``, even with the
right password. A success or an unlock resets the count. Other accounts are
not affected, and parallel guesses get no more tries than sequential ones.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask

from conftest import FakeClock, basic_header

from .conftest import (
    EMAIL,
    OTHER_EMAIL,
    OTHER_PASSWORD,
    PASSWORD,
    add_api_key,
    add_developer,
    count_verifications,
    session_set_cookies,
)

WRONG = "wrong password, long enough"
LIMIT = 3


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = make_app(PORTAL_AUTH_LOGIN_ATTEMPTS=LIMIT)
    add_developer(app)
    add_developer(app, OTHER_EMAIL, OTHER_PASSWORD)
    return app


def attempt(app: Flask, password: str, email: str = EMAIL) -> Any:
    return app.test_client(use_cookies=False).get("/auth", headers=basic_header(email, password))


def fail(app: Flask, count: int, email: str = EMAIL) -> list[int]:
    return [attempt(app, WRONG, email).status_code for _ in range(count)]


def test_failures_below_limit_401(app: Flask) -> None:
    assert fail(app, LIMIT) == [401] * LIMIT


def test_right_password_locked_429(app: Flask) -> None:
    fail(app, LIMIT)

    response = attempt(app, PASSWORD)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert session_set_cookies(response) == []


def test_locked_answer_is_json(app: Flask) -> None:
    fail(app, LIMIT)

    response = attempt(app, PASSWORD)

    assert response.mimetype == "application/json"
    assert isinstance(response.get_json()["message"], str)


def test_wrong_password_locked_429(app: Flask) -> None:
    fail(app, LIMIT)

    assert attempt(app, WRONG).status_code == 429


def test_lock_ends_after_60s(app: Flask, clock: FakeClock) -> None:
    fail(app, LIMIT)
    clock.advance(59)
    locked = attempt(app, PASSWORD)
    clock.advance(1)

    assert locked.status_code == 429
    assert attempt(app, PASSWORD).status_code == 200


def test_lock_doubles_per_failure(app: Flask, clock: FakeClock) -> None:
    fail(app, LIMIT)
    waits = []
    for _ in range(8):
        waits.append(int(attempt(app, PASSWORD).headers["Retry-After"]))
        clock.advance(waits[-1])
        assert attempt(app, WRONG).status_code == 401

    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_success_resets_count(app: Flask, clock: FakeClock) -> None:
    fail(app, LIMIT - 1)
    assert attempt(app, PASSWORD).status_code == 200

    assert fail(app, LIMIT) == [401] * LIMIT
    assert attempt(app, PASSWORD).status_code == 429


def test_unlock_resets(app: Flask) -> None:
    fail(app, LIMIT + 2)

    app.portal.developers.unlock(EMAIL)  # type: ignore[attr-defined]

    assert attempt(app, PASSWORD).status_code == 200


def test_other_account_unaffected(app: Flask) -> None:
    fail(app, LIMIT + 1)

    assert attempt(app, OTHER_PASSWORD, OTHER_EMAIL).status_code == 200


def test_other_account_failures_separate(app: Flask) -> None:
    fail(app, LIMIT - 1)
    fail(app, LIMIT - 1, OTHER_EMAIL)

    assert attempt(app, PASSWORD).status_code == 200
    assert attempt(app, OTHER_PASSWORD, OTHER_EMAIL).status_code == 200


def test_email_case_is_one_account(app: Flask) -> None:
    for email in (EMAIL, EMAIL.upper(), EMAIL.title()):
        attempt(app, WRONG, email)

    assert attempt(app, PASSWORD).status_code == 429


def test_unknown_email_never_locks(app: Flask) -> None:
    assert fail(app, LIMIT + 3, "nobody@example.test") == [401] * (LIMIT + 3)


def test_lockout_off(make_app: Any) -> None:
    app = make_app(PORTAL_AUTH_LOGIN_ATTEMPTS=0)
    add_developer(app)

    assert fail(app, 15) == [401] * 15
    assert attempt(app, PASSWORD).status_code == 200


def test_locked_session_still_valid(app: Flask) -> None:
    # A lockout stops new logins; it does not end sessions already open.
    token = attempt(app, PASSWORD).headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    fail(app, LIMIT)

    response = app.test_client(use_cookies=False).get("/private", headers={"Cookie": f"session={token}"})

    assert response.status_code == 200


def test_key_login_during_lockout(app: Flask) -> None:
    # NOTE: API keys are 256-bit random values that cannot be guessed, so a
    # password lockout does not block them.
    key = add_api_key(app)
    fail(app, LIMIT)

    response = app.test_client(use_cookies=False).get("/auth", headers={"apikey": key})

    assert response.status_code == 200


# -- parallel guesses -----------------------------------------------------------------------------


def parallel_attempts(app: Flask, passwords: list[str]) -> list[int]:
    """Send one login per password at the same moment; return the status codes."""
    start = threading.Barrier(len(passwords))

    def send(password: str) -> int:
        client = app.test_client(use_cookies=False)
        start.wait()
        return client.get("/auth", headers=basic_header(EMAIL, password)).status_code

    with ThreadPoolExecutor(max_workers=len(passwords)) as pool:
        return list(pool.map(send, passwords))


def test_parallel_guesses_limited(app: Flask) -> None:
    # Argon2 takes tens of milliseconds with production parameters; the
    # delay makes the checks of parallel guesses overlap as they would then.
    count_verifications(app, delay=0.05)

    statuses = parallel_attempts(app, [WRONG] * 12)

    assert statuses.count(401) == LIMIT
    assert statuses.count(429) == 12 - LIMIT


def test_parallel_guesses_then_locked(app: Flask) -> None:
    count_verifications(app, delay=0.05)
    parallel_attempts(app, [WRONG] * 12)

    assert attempt(app, PASSWORD).status_code == 429
