"""DeveloperStore: accounts, password hashing, lockout and API keys, on every backend."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from werkzeug.security import generate_password_hash

from flask_portal_session.credentials import (
    MAX_PASSWORD_BYTES,
    CredentialError,
    DeveloperStore,
    lockout_seconds,
)
from flask_portal_session.store import api_keys_table, developers_table

from conftest import FAST_HASH, FakeClock

EMAIL = "dev@example.test"
PASSWORD = "correct horse battery staple"


class CountingHasher:
    """Wraps an argon2 ``PasswordHasher`` and counts calls of ``verify`` and ``hash``.

    ``PasswordHasher`` uses ``__slots__``, so its methods cannot be replaced
    on the instance; the store's ``hasher`` attribute is swapped instead.
    """

    def __init__(self, hasher: Any) -> None:
        self.hasher = hasher
        self.verify_calls = 0
        self.hash_calls = 0

    def verify(self, password_hash: str, password: str) -> bool:
        self.verify_calls += 1
        return self.hasher.verify(password_hash, password)

    def hash(self, password: str) -> str:
        self.hash_calls += 1
        return self.hasher.hash(password)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.hasher, name)


@pytest.fixture
def store(engine: Engine, clock: FakeClock) -> DeveloperStore:
    return DeveloperStore(engine, login_attempts=3, clock=clock, **FAST_HASH)


def stored_password_hash(engine: Engine, email: str) -> str:
    """Read a developer's password hash straight from the table."""
    with engine.connect() as connection:
        return connection.execute(
            select(developers_table.c.password_hash).where(developers_table.c.email == email)
        ).scalar_one()


def set_stored_password_hash(engine: Engine, email: str, password_hash: str) -> None:
    """Overwrite a developer's password hash, as an account import would."""
    with engine.begin() as connection:
        connection.execute(
            update(developers_table).where(developers_table.c.email == email).values(password_hash=password_hash)
        )


def count_verifies(store: DeveloperStore) -> CountingHasher:
    """Swap the store's hasher for a counting wrapper and return the wrapper."""
    counter = CountingHasher(store.hasher)
    store.hasher = counter  # type: ignore[assignment]
    return counter


# -- accounts -----------------------------------------------------------------


def test_create_returns_developer(store: DeveloperStore) -> None:
    developer = store.create(EMAIL, PASSWORD)

    assert developer.email == EMAIL
    assert developer.status == "approved"
    assert developer.id


def test_create_stores_email_lower_case(store: DeveloperStore) -> None:
    developer = store.create("Dev@Example.TEST", PASSWORD)

    assert developer.email == EMAIL
    assert store.get_by_email(EMAIL) is not None


def test_get_by_email_ignores_case(store: DeveloperStore) -> None:
    created = store.create(EMAIL, PASSWORD)

    found = store.get_by_email("DEV@EXAMPLE.TEST")

    assert found is not None
    assert found.id == created.id


def test_create_duplicate_other_case_raises(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)

    with pytest.raises(CredentialError, match="already exists"):
        store.create("DEV@example.Test", "another password")


def test_create_duplicate_keeps_one_row(store: DeveloperStore, engine: Engine) -> None:
    store.create(EMAIL, PASSWORD)
    with pytest.raises(CredentialError):
        store.create(EMAIL.upper(), "another password")

    with engine.connect() as connection:
        rows = connection.execute(select(developers_table.c.id)).all()

    assert len(rows) == 1


@pytest.mark.parametrize(
    "email",
    [
        "",
        "no-at-sign",
        "@example.test",
        "dev@",
        "dev @example.test",
        "dev\t@example.test",
        "dev:colon@example.test",
        "dev\x00@example.test",
        "a" * 250 + "@example.test",
    ],
)
def test_create_invalid_email_raises(store: DeveloperStore, email: str) -> None:
    with pytest.raises(CredentialError) as raised:
        store.create(email, PASSWORD)

    assert repr(email) in str(raised.value)


def test_create_non_string_email_raises(store: DeveloperStore) -> None:
    with pytest.raises(CredentialError) as raised:
        store.create(None, PASSWORD)  # type: ignore[arg-type]

    assert "None" in str(raised.value)


@pytest.mark.parametrize("status", ["active", "APPROVED", "", "deleted"])
def test_create_invalid_status_raises(store: DeveloperStore, status: str) -> None:
    with pytest.raises(CredentialError) as raised:
        store.create(EMAIL, PASSWORD, status=status)

    assert repr(status) in str(raised.value)


def test_set_status_invalid_raises(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)

    with pytest.raises(CredentialError) as raised:
        store.set_status(EMAIL, "banned")

    assert "'banned'" in str(raised.value)


def test_create_empty_password_raises(store: DeveloperStore) -> None:
    with pytest.raises(CredentialError, match="empty"):
        store.create(EMAIL, "")


def test_create_invalid_input_stores_nothing(store: DeveloperStore, engine: Engine) -> None:
    for email, password, status in [("bad", PASSWORD, "approved"), (EMAIL, "", "approved"), (EMAIL, PASSWORD, "x")]:
        with pytest.raises(CredentialError):
            store.create(email, password, status=status)

    with engine.connect() as connection:
        rows = connection.execute(select(developers_table.c.id)).all()

    assert rows == []


@pytest.mark.parametrize("status", ["approved", "pending", "rejected", "revoked"])
def test_create_each_status(store: DeveloperStore, status: str) -> None:
    assert store.create(EMAIL, PASSWORD, status=status).status == status


# -- password hashing -----------------------------------------------------------


def test_password_stored_as_argon2id(store: DeveloperStore, engine: Engine) -> None:
    store.create(EMAIL, PASSWORD)

    password_hash = stored_password_hash(engine, EMAIL)

    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash


def test_check_password_ok(store: DeveloperStore) -> None:
    created = store.create(EMAIL, PASSWORD)

    result = store.check_password(EMAIL, PASSWORD)

    assert result.outcome == "ok"
    assert result.developer is not None
    assert result.developer.id == created.id


def test_check_password_email_any_case(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)

    assert store.check_password("DEV@Example.Test", PASSWORD).outcome == "ok"


def test_check_password_wrong_is_invalid(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)

    result = store.check_password(EMAIL, "wrong password")

    assert result.outcome == "invalid"
    assert result.developer is None


def test_check_password_unknown_email_invalid(store: DeveloperStore) -> None:
    result = store.check_password("nobody@example.test", PASSWORD)

    assert result.outcome == "invalid"
    assert result.developer is None


@pytest.mark.parametrize("email", ["dev\x00@example.test", "dev@example.test\x00", "\x00"])
def test_check_password_nul_email_invalid(store: DeveloperStore, email: str) -> None:
    # No stored email can contain NUL, and PostgreSQL rejects NUL in text
    # parameters, so the store must answer before sending the query.
    store.create(EMAIL, PASSWORD)

    assert store.check_password(email, PASSWORD).outcome == "invalid"


def test_get_by_email_nul_is_none(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)

    assert store.get_by_email("dev\x00@example.test") is None


@pytest.mark.parametrize("status", ["pending", "rejected", "revoked"])
def test_check_password_unapproved_status(store: DeveloperStore, status: str) -> None:
    store.create(EMAIL, PASSWORD, status=status)

    result = store.check_password(EMAIL, PASSWORD)

    assert result.outcome == "status"
    assert result.developer is not None
    assert result.developer.status == status


def test_rehash_when_parameters_change(store: DeveloperStore, engine: Engine, clock: FakeClock) -> None:
    store.create(EMAIL, PASSWORD)
    old_hash = stored_password_hash(engine, EMAIL)
    stronger = DeveloperStore(engine, time_cost=2, memory_cost=16, parallelism=1, clock=clock)

    result = stronger.check_password(EMAIL, PASSWORD)
    new_hash = stored_password_hash(engine, EMAIL)

    assert result.outcome == "ok"
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$")
    assert "m=16,t=2,p=1" in new_hash


def test_rehashed_password_still_verifies(store: DeveloperStore, engine: Engine, clock: FakeClock) -> None:
    store.create(EMAIL, PASSWORD)
    stronger = DeveloperStore(engine, time_cost=2, memory_cost=16, parallelism=1, clock=clock)
    stronger.check_password(EMAIL, PASSWORD)

    assert stronger.check_password(EMAIL, PASSWORD).outcome == "ok"
    assert stronger.check_password(EMAIL, "wrong password").outcome == "invalid"


def test_no_rehash_with_same_parameters(store: DeveloperStore, engine: Engine) -> None:
    store.create(EMAIL, PASSWORD)
    old_hash = stored_password_hash(engine, EMAIL)

    store.check_password(EMAIL, PASSWORD)

    assert stored_password_hash(engine, EMAIL) == old_hash


def test_no_rehash_on_wrong_password(store: DeveloperStore, engine: Engine, clock: FakeClock) -> None:
    store.create(EMAIL, PASSWORD)
    old_hash = stored_password_hash(engine, EMAIL)
    stronger = DeveloperStore(engine, time_cost=2, memory_cost=16, parallelism=1, clock=clock)

    stronger.check_password(EMAIL, "wrong password")

    assert stored_password_hash(engine, EMAIL) == old_hash


@pytest.mark.parametrize("method", ["pbkdf2:sha256", "scrypt"])
def test_werkzeug_hash_verifies(store: DeveloperStore, engine: Engine, method: str) -> None:
    store.create(EMAIL, None)
    set_stored_password_hash(engine, EMAIL, generate_password_hash(PASSWORD, method=method))

    assert store.check_password(EMAIL, PASSWORD).outcome == "ok"


@pytest.mark.parametrize("method", ["pbkdf2:sha256", "scrypt"])
def test_werkzeug_hash_replaced_by_argon2id(store: DeveloperStore, engine: Engine, method: str) -> None:
    store.create(EMAIL, None)
    set_stored_password_hash(engine, EMAIL, generate_password_hash(PASSWORD, method=method))

    store.check_password(EMAIL, PASSWORD)
    new_hash = stored_password_hash(engine, EMAIL)

    assert new_hash.startswith("$argon2id$")
    assert store.check_password(EMAIL, PASSWORD).outcome == "ok"


@pytest.mark.parametrize("method", ["pbkdf2:sha256", "scrypt"])
def test_werkzeug_hash_wrong_password(store: DeveloperStore, engine: Engine, method: str) -> None:
    store.create(EMAIL, None)
    imported = generate_password_hash(PASSWORD, method=method)
    set_stored_password_hash(engine, EMAIL, imported)

    result = store.check_password(EMAIL, "wrong password")

    assert result.outcome == "invalid"
    assert stored_password_hash(engine, EMAIL) == imported


def test_no_password_account_rejected(store: DeveloperStore) -> None:
    store.create(EMAIL, None)

    assert store.check_password(EMAIL, "").outcome == "invalid"
    assert store.check_password(EMAIL, PASSWORD).outcome == "invalid"


def test_verify_once_for_unknown_email(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    counter = count_verifies(store)

    store.check_password("nobody@example.test", PASSWORD)

    assert counter.verify_calls == 1


def test_verify_once_for_wrong_password(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    counter = count_verifies(store)

    store.check_password(EMAIL, "wrong password")

    assert counter.verify_calls == 1


def test_verify_once_for_right_password(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    counter = count_verifies(store)

    store.check_password(EMAIL, PASSWORD)

    assert counter.verify_calls == 1


def test_verify_once_for_pending_developer(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD, status="pending")
    counter = count_verifies(store)

    store.check_password(EMAIL, PASSWORD)

    assert counter.verify_calls == 1


def test_verify_once_for_locked_account(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    for _ in range(3):
        store.check_password(EMAIL, "wrong password")
    counter = count_verifies(store)

    result = store.check_password(EMAIL, PASSWORD)

    assert result.outcome == "locked"
    assert counter.verify_calls == 1


@pytest.mark.parametrize("method", ["pbkdf2:sha256", "scrypt"])
def test_verify_once_for_werkzeug_hash(store: DeveloperStore, engine: Engine, method: str) -> None:
    store.create(EMAIL, None)
    set_stored_password_hash(engine, EMAIL, generate_password_hash(PASSWORD, method=method))
    counter = count_verifies(store)

    store.check_password(EMAIL, "wrong password")

    assert counter.verify_calls == 1


def test_long_password_rejected_unhashed(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    counter = count_verifies(store)

    result = store.check_password(EMAIL, "x" * 2000)

    assert result.outcome == "invalid"
    assert counter.verify_calls == 0
    assert counter.hash_calls == 0


def test_long_multibyte_password_rejected_unhashed(store: DeveloperStore) -> None:
    # 700 characters but 2100 UTF-8 bytes: the limit counts bytes.
    store.create(EMAIL, PASSWORD)
    counter = count_verifies(store)

    result = store.check_password(EMAIL, "€" * 700)

    assert result.outcome == "invalid"
    assert counter.verify_calls == 0


def test_long_password_create_raises(store: DeveloperStore) -> None:
    counter = count_verifies(store)

    with pytest.raises(CredentialError, match=str(MAX_PASSWORD_BYTES)):
        store.create(EMAIL, "x" * 2000)

    assert counter.hash_calls == 0


def test_long_password_counts_no_failure(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)

    store.check_password(EMAIL, "x" * 2000)

    assert store.require(EMAIL).failed_logins == 0


# -- lockout --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [
        (3, 60),
        (4, 120),
        (5, 240),
        (6, 480),
        (7, 960),
        (8, 1920),
        (9, 3600),
        (10, 3600),
        (50, 3600),
        (10_000, 3600),
    ],
)
def test_lockout_seconds_table(failures: int, seconds: int) -> None:
    assert lockout_seconds(failures, 3) == seconds


def test_lockout_seconds_other_limit() -> None:
    assert lockout_seconds(10, 10) == 60
    assert lockout_seconds(11, 10) == 120


def test_lockout_after_limit(store: DeveloperStore, clock: FakeClock) -> None:
    store.create(EMAIL, PASSWORD)
    for _ in range(3):
        store.check_password(EMAIL, "wrong password")

    result = store.check_password(EMAIL, PASSWORD)

    assert result.outcome == "locked"
    assert result.retry_after == 60
    assert store.require(EMAIL).locked_until == int(clock.now) + 60


def test_no_lockout_below_limit(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    for _ in range(2):
        store.check_password(EMAIL, "wrong password")

    assert store.check_password(EMAIL, PASSWORD).outcome == "ok"


def test_lockout_expires(store: DeveloperStore, clock: FakeClock) -> None:
    store.create(EMAIL, PASSWORD)
    for _ in range(3):
        store.check_password(EMAIL, "wrong password")
    clock.advance(60)

    assert store.check_password(EMAIL, PASSWORD).outcome == "ok"


def test_lockout_doubles_on_next_failure(store: DeveloperStore, clock: FakeClock) -> None:
    store.create(EMAIL, PASSWORD)
    for _ in range(3):
        store.check_password(EMAIL, "wrong password")
    clock.advance(60)

    store.check_password(EMAIL, "wrong password")
    result = store.check_password(EMAIL, PASSWORD)

    assert result.outcome == "locked"
    assert result.retry_after == 120


def test_success_resets_failures(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    for _ in range(2):
        store.check_password(EMAIL, "wrong password")

    store.check_password(EMAIL, PASSWORD)
    developer = store.require(EMAIL)

    assert developer.failed_logins == 0
    assert developer.locked_until is None


def test_lockout_restarts_after_success(store: DeveloperStore, clock: FakeClock) -> None:
    store.create(EMAIL, PASSWORD)
    for _ in range(3):
        store.check_password(EMAIL, "wrong password")
    clock.advance(60)
    store.check_password(EMAIL, PASSWORD)

    for _ in range(3):
        store.check_password(EMAIL, "wrong password")
    result = store.check_password(EMAIL, PASSWORD)

    assert result.outcome == "locked"
    assert result.retry_after == 60


def test_unlock_clears_lockout(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    for _ in range(3):
        store.check_password(EMAIL, "wrong password")

    store.unlock(EMAIL)

    assert store.check_password(EMAIL, PASSWORD).outcome == "ok"


def test_lockout_off_with_zero_attempts(engine: Engine, clock: FakeClock) -> None:
    store = DeveloperStore(engine, login_attempts=0, clock=clock, **FAST_HASH)
    store.create(EMAIL, PASSWORD)
    for _ in range(20):
        store.check_password(EMAIL, "wrong password")

    assert store.check_password(EMAIL, PASSWORD).outcome == "ok"


# -- API keys -------------------------------------------------------------------


def test_api_key_is_43_characters(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)

    key, record = store.create_api_key(EMAIL)

    assert len(key) == 43
    assert record.prefix == key[:8]


def test_api_keys_differ(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)

    first, _ = store.create_api_key(EMAIL)
    second, _ = store.create_api_key(EMAIL)

    assert first != second


def test_api_key_row_stores_hash_and_prefix(store: DeveloperStore, engine: Engine) -> None:
    store.create(EMAIL, PASSWORD)
    key, _ = store.create_api_key(EMAIL, name="ci")

    with engine.connect() as connection:
        row = connection.execute(select(api_keys_table)).one()

    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.prefix == key[:8]
    assert len(row.prefix) == 8


def test_api_key_row_lacks_whole_key(store: DeveloperStore, engine: Engine) -> None:
    store.create(EMAIL, PASSWORD)
    key, _ = store.create_api_key(EMAIL, name="ci")

    with engine.connect() as connection:
        row = connection.execute(select(api_keys_table)).one()

    assert [value for value in row if isinstance(value, str) and key in value] == []
    assert [value for value in row if isinstance(value, str) and key[8:] in value] == []


def test_api_key_unknown_email_raises(store: DeveloperStore) -> None:
    with pytest.raises(CredentialError, match="nobody@example.test"):
        store.create_api_key("nobody@example.test")


def test_api_key_list(store: DeveloperStore) -> None:
    developer = store.create(EMAIL, PASSWORD)
    _, first = store.create_api_key(EMAIL, name="one")
    _, second = store.create_api_key(EMAIL, name="two")

    keys = store.list_api_keys(developer.id)

    assert [key.id for key in keys] == [first.id, second.id]
    assert [key.name for key in keys] == ["one", "two"]


def test_api_key_list_other_developer_empty(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    other = store.create("other@example.test", PASSWORD)
    store.create_api_key(EMAIL)

    assert store.list_api_keys(other.id) == []


def test_api_key_check_ok(store: DeveloperStore) -> None:
    developer = store.create(EMAIL, PASSWORD)
    key, _ = store.create_api_key(EMAIL)

    result = store.check_api_key(key)

    assert result.outcome == "ok"
    assert result.developer is not None
    assert result.developer.id == developer.id


def test_api_key_each_key_works(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    first, _ = store.create_api_key(EMAIL)
    second, _ = store.create_api_key(EMAIL)

    assert store.check_api_key(first).outcome == "ok"
    assert store.check_api_key(second).outcome == "ok"


@pytest.mark.parametrize("key", ["", "   ", "unknown-key", "x" * 10_000])
def test_api_key_check_invalid(store: DeveloperStore, key: str) -> None:
    store.create(EMAIL, PASSWORD)
    store.create_api_key(EMAIL)

    assert store.check_api_key(key).outcome == "invalid"


def test_api_key_prefix_alone_invalid(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    key, _ = store.create_api_key(EMAIL)

    assert store.check_api_key(key[:8]).outcome == "invalid"


def test_api_key_pending_developer_status(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    key, _ = store.create_api_key(EMAIL)
    store.set_status(EMAIL, "pending")

    assert store.check_api_key(key).outcome == "status"


def test_api_key_revoke(store: DeveloperStore, clock: FakeClock) -> None:
    developer = store.create(EMAIL, PASSWORD)
    key, record = store.create_api_key(EMAIL)

    revoked = store.revoke_api_key(record.id)
    listed = store.list_api_keys(developer.id)

    assert revoked is True
    assert store.check_api_key(key).outcome == "invalid"
    assert listed[0].revoked_at == int(clock.now)


def test_api_key_revoke_twice_false(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    _, record = store.create_api_key(EMAIL)
    store.revoke_api_key(record.id)

    assert store.revoke_api_key(record.id) is False


def test_api_key_revoke_unknown_false(store: DeveloperStore) -> None:
    assert store.revoke_api_key(987654) is False


def test_api_key_revoke_other_developer_fails(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    other = store.create("other@example.test", PASSWORD)
    key, record = store.create_api_key(EMAIL)

    revoked = store.revoke_api_key(record.id, developer_id=other.id)

    assert revoked is False
    assert store.check_api_key(key).outcome == "ok"


def test_api_key_revoke_own_developer(store: DeveloperStore) -> None:
    developer = store.create(EMAIL, PASSWORD)
    key, record = store.create_api_key(EMAIL)

    assert store.revoke_api_key(record.id, developer_id=developer.id) is True
    assert store.check_api_key(key).outcome == "invalid"


def test_api_key_revoke_leaves_others(store: DeveloperStore) -> None:
    store.create(EMAIL, PASSWORD)
    first, record = store.create_api_key(EMAIL)
    second, _ = store.create_api_key(EMAIL)

    store.revoke_api_key(record.id)

    assert store.check_api_key(first).outcome == "invalid"
    assert store.check_api_key(second).outcome == "ok"


def test_api_key_list_without_revoked(store: DeveloperStore) -> None:
    developer = store.create(EMAIL, PASSWORD)
    _, revoked = store.create_api_key(EMAIL)
    _, active = store.create_api_key(EMAIL)
    store.revoke_api_key(revoked.id)

    keys = store.list_api_keys(developer.id, include_revoked=False)

    assert [key.id for key in keys] == [active.id]


def test_api_key_last_used_at_set(store: DeveloperStore, clock: FakeClock) -> None:
    developer = store.create(EMAIL, PASSWORD)
    key, record = store.create_api_key(EMAIL)
    clock.advance(42)

    store.check_api_key(key)
    listed = store.list_api_keys(developer.id)

    assert record.last_used_at is None
    assert listed[0].last_used_at == int(clock.now)


def test_api_key_last_used_unchanged_on_miss(store: DeveloperStore) -> None:
    developer = store.create(EMAIL, PASSWORD)
    store.create_api_key(EMAIL)

    store.check_api_key("unknown-key")

    assert store.list_api_keys(developer.id)[0].last_used_at is None
