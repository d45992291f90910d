"""The built-in developer store: accounts, password and API-key checks, lockout.

Passwords are hashed with argon2id and rehashed on login when the configured
parameters change; Werkzeug ``pbkdf2:``/``scrypt:`` hashes of imported
accounts are verified once and replaced by argon2id. API keys are
``secrets.token_urlsafe(32)`` strings shown once; only their SHA-256 and a
short display prefix are stored.

Every password check does the same hashing work whether the email is unknown,
the password is wrong, the developer is not approved or the account is
locked, so neither the response nor its timing reveals which one it was.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections import namedtuple
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash

from .store import PrecompiledStatement, api_keys_table, developers_table

__all__ = [
    "DEVELOPER_STATUSES",
    "MAX_EMAIL_LENGTH",
    "MAX_PASSWORD_BYTES",
    "MAX_API_KEY_LENGTH",
    "ApiKey",
    "CredentialError",
    "Developer",
    "DeveloperLike",
    "DeveloperStore",
    "LoginResult",
    "developer_to_dict",
    "hash_api_key",
]

logger = logging.getLogger(__name__)

#: The statuses a developer can have; only ``approved`` developers may log in.
DEVELOPER_STATUSES = ("approved", "pending", "rejected", "revoked")

#: Maximum email length (the RFC 5321 path limit).
MAX_EMAIL_LENGTH = 254

#: Maximum password length in UTF-8 bytes. Longer ones fail before any hashing.
MAX_PASSWORD_BYTES = 1024

#: Longest API key accepted; the keys this store issues are 43 characters.
MAX_API_KEY_LENGTH = 256

#: First lockout, in seconds; each further failure doubles it.
LOCKOUT_BASE_SECONDS = 60

#: Maximum lockout, in seconds.
LOCKOUT_MAX_SECONDS = 3600

_API_KEY_PREFIX_LENGTH = 8

#: Largest API key id: the id column is a 32-bit signed integer on PostgreSQL.
MAX_API_KEY_ID = 2**31 - 1


class DeveloperLike(Protocol):
    """The attributes the package reads from a developer object, built-in or the app's own."""

    id: Any
    email: str
    status: str


class CredentialError(ValueError):
    """Invalid input to a developer-store operation (unknown email, bad status, ...)."""


@dataclass(frozen=True)
class Developer:
    """A developer of the built-in store."""

    id: str
    email: str
    status: str
    failed_logins: int = 0
    locked_until: int | None = None
    created_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the public fields sent in ``/auth`` and ``/session`` responses."""
        return {"id": self.id, "email": self.email, "status": self.status}


@dataclass(frozen=True)
class ApiKey:
    """An API key's stored record; the key itself is never kept."""

    id: int
    developer_id: str
    prefix: str
    name: str | None
    created_at: int
    last_used_at: int | None
    revoked_at: int | None

    def to_dict(self) -> dict[str, Any]:
        """Return the fields safe to show to the key's owner."""
        return asdict(self)


@dataclass(frozen=True)
class LoginResult:
    """Outcome of a credential check.

    ``outcome`` is one of ``"ok"``, ``"invalid"`` (unknown developer or wrong
    secret), ``"status"`` (right credentials, developer not approved) and
    ``"locked"`` (``retry_after`` seconds left).
    """

    outcome: str
    developer: DeveloperLike | None = None
    retry_after: int = 0


def developer_to_dict(developer: DeveloperLike) -> dict[str, Any]:
    """Return ``{"id", "email", "status"}`` for any developer-like object."""
    to_dict = getattr(developer, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return {"id": developer.id, "email": developer.email, "status": developer.status}


def hash_api_key(key: str) -> str:
    """Return the stored form of an API key: its SHA-256 in hex.

    Lone surrogates (from a JSON body) are hashed as they are, so such a key
    matches nothing instead of failing the request.
    """
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def normalize_email(email: str) -> str:
    """Return the email as stored: stripped and lower case."""
    return email.strip().lower()


class DeveloperStore:
    """Developer accounts and API keys in ``portal_developers`` and ``portal_api_keys``."""

    def __init__(
        self,
        engine: Engine,
        time_cost: int = 3,
        memory_cost: int = 65536,
        parallelism: int = 4,
        login_attempts: int = 10,
        clock: Callable[[], float] = time.time,
        precompile: Callable[..., Any] | None = None,
    ) -> None:
        self.engine = engine
        self.login_attempts = login_attempts
        self.clock = clock
        # With SessionStore.precompile, the reads and resets of a login are one
        # round trip each on the per-request pool; without it they use ``engine``.
        self._statements = _LoginStatements(precompile or functools.partial(PrecompiledStatement, engine))
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        # A real hash to verify against when the email is unknown, so that
        # case costs the same as a wrong password.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    # -- accounts ---------------------------------------------------------

    def create(self, email: str, password: str | None, status: str = "approved") -> Developer:
        """Create a developer; raise :class:`CredentialError` on bad input or a taken email."""
        address = _check_email(email)
        _check_status(status)
        if password is not None:
            _check_password(password)
        password_hash = self.hasher.hash(password) if password is not None else None
        now = self._now()
        developer_id = str(uuid.uuid4())
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(developers_table).values(
                        id=developer_id,
                        email=address,
                        status=status,
                        password_hash=password_hash,
                        failed_logins=0,
                        locked_until=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise CredentialError(
                f"A developer with the email {address!r} already exists. "
                "Use another email, or change the existing developer's status or password."
            ) from None
        return Developer(id=developer_id, email=address, status=status, created_at=now)

    def get(self, developer_id: str) -> Developer | None:
        """Return the developer with this id, or ``None``."""
        return self._fetch_one(developers_table.c.id == str(developer_id))

    def get_by_email(self, email: str) -> Developer | None:
        """Return the developer with this email (any case), or ``None``."""
        if not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH or _has_forbidden_character(email):
            return None
        return self._fetch_one(developers_table.c.email == normalize_email(email))

    def require(self, email: str) -> Developer:
        """Return the developer with this email or raise :class:`CredentialError`."""
        developer = self.get_by_email(email)
        if developer is None:
            raise CredentialError(
                f"No developer has the email {email!r}. List them with 'flask portal-session developers list'."
            )
        return developer

    def list(self) -> list[Developer]:
        """Return every developer, oldest first."""
        statement = select(*_DEVELOPER_COLUMNS).order_by(developers_table.c.created_at, developers_table.c.email)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [_to_developer(row) for row in rows]

    def set_status(self, email: str, status: str) -> Developer:
        """Change a developer's status and return the updated developer."""
        _check_status(status)
        developer = self.require(email)
        with self.engine.begin() as connection:
            connection.execute(
                update(developers_table)
                .where(developers_table.c.id == developer.id)
                .values(status=status, updated_at=self._now())
            )
        return Developer(
            id=developer.id,
            email=developer.email,
            status=status,
            failed_logins=developer.failed_logins,
            locked_until=developer.locked_until,
            created_at=developer.created_at,
        )

    def set_password(self, email: str, password: str) -> Developer:
        """Replace a developer's password hash."""
        _check_password(password)
        developer = self.require(email)
        with self.engine.begin() as connection:
            connection.execute(
                update(developers_table)
                .where(developers_table.c.id == developer.id)
                .values(password_hash=self.hasher.hash(password), updated_at=self._now())
            )
        return developer

    def unlock(self, email: str) -> Developer:
        """Clear the failed-login counter and any lockout."""
        developer = self.require(email)
        self._reset_failures(developer.id)
        return developer

    # -- logins -----------------------------------------------------------

    def check_password(self, email: str, password: str) -> LoginResult:
        """Check an email and password, counting failures toward a lockout.

        Every path verifies one argon2 hash, so unknown emails, wrong
        passwords, unapproved developers and locked accounts cost the same.
        Oversized input is rejected before any hashing. An attempt on an
        existing account is counted before its password is checked, so parallel
        guesses get no more tries than sequential ones.
        """
        if (
            not isinstance(email, str)
            or not isinstance(password, str)
            or not email.strip()
            or len(email) > MAX_EMAIL_LENGTH
            or len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES
        ):
            return LoginResult("invalid")
        if _has_forbidden_character(email):
            # No stored email has one, PostgreSQL rejects NUL in a parameter, and
            # drivers cannot encode lone surrogates.
            self._verify(self._dummy_hash, password)
            return LoginResult("invalid")

        row = self._fetch_login_row(normalize_email(email))
        if row is None or not row.password_hash:
            self._verify(self._dummy_hash, password)
            return LoginResult("invalid")

        now = self._now()
        developer = _to_developer(row)
        claim = self._claim_attempt(row.id, now)
        if claim.locked_until is not None:
            # Same work as any other attempt, but the password is not checked at all.
            self._verify(self._dummy_hash, password)
            return LoginResult("locked", developer, retry_after=max(0, claim.locked_until - now))
        if not self._verify(row.password_hash, password):
            if claim.lock_seconds:
                logger.warning(
                    "Developer %s locked for %d seconds after %d failed logins.",
                    row.id,
                    claim.lock_seconds,
                    claim.failures,
                )
            return LoginResult("invalid")

        self._after_success(row, password)
        if row.status != "approved":
            return LoginResult("status", developer)
        return LoginResult("ok", developer)

    def check_api_key(self, key: str) -> LoginResult:
        """Look up an API key; unknown, revoked and malformed keys are ``invalid``."""
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_API_KEY_LENGTH:
            return LoginResult("invalid")
        key_hash = hash_api_key(key)
        found = self._statements.api_key_row.first({"key_hash": key_hash})
        if found is None:
            return LoginResult("invalid")
        row = _ApiKeyRow._make(found)
        if not hmac.compare_digest(row.key_hash, key_hash):
            return LoginResult("invalid")

        self._statements.key_used.rowcount({"api_key_id": row.api_key_id, "now": self._now()})
        developer = _to_developer(row)
        if developer.status != "approved":
            return LoginResult("status", developer)
        return LoginResult("ok", developer)

    # -- API keys ---------------------------------------------------------

    def create_api_key(self, email: str, name: str | None = None) -> tuple[str, ApiKey]:
        """Create an API key for a developer; return ``(key, record)``.

        The key is returned only here: the store keeps its hash.
        """
        developer = self.require(email)
        if name is not None and (not isinstance(name, str) or len(name) > 100):
            raise CredentialError(f"Invalid API key name {name!r}: use at most 100 characters.")
        key = secrets.token_urlsafe(32)
        now = self._now()
        prefix = key[:_API_KEY_PREFIX_LENGTH]
        with self.engine.begin() as connection:
            result = connection.execute(
                insert(api_keys_table).values(
                    developer_id=developer.id,
                    key_hash=hash_api_key(key),
                    prefix=prefix,
                    name=name,
                    created_at=now,
                    last_used_at=None,
                    revoked_at=None,
                )
            )
            key_id = int(result.inserted_primary_key[0])
        record = ApiKey(
            id=key_id,
            developer_id=developer.id,
            prefix=prefix,
            name=name,
            created_at=now,
            last_used_at=None,
            revoked_at=None,
        )
        return key, record

    def list_api_keys(self, developer_id: str, include_revoked: bool = True) -> list[ApiKey]:
        """Return a developer's API keys, oldest first."""
        statement = select(api_keys_table).where(api_keys_table.c.developer_id == str(developer_id))
        if not include_revoked:
            statement = statement.where(api_keys_table.c.revoked_at.is_(None))
        statement = statement.order_by(api_keys_table.c.id)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [_to_api_key(row) for row in rows]

    def revoke_api_key(self, key_id: int, developer_id: str | None = None) -> bool:
        """Revoke one API key; with ``developer_id``, only if it is that developer's.

        Returns ``False`` when no such unrevoked key exists, including for ids
        outside the column's range, which no key can have.
        """
        if isinstance(key_id, bool) or not isinstance(key_id, int) or not 1 <= key_id <= MAX_API_KEY_ID:
            return False
        statement = (
            update(api_keys_table)
            .where(api_keys_table.c.id == int(key_id), api_keys_table.c.revoked_at.is_(None))
            .values(revoked_at=self._now())
        )
        if developer_id is not None:
            statement = statement.where(api_keys_table.c.developer_id == str(developer_id))
        with self.engine.begin() as connection:
            result = connection.execute(statement)
        return result.rowcount > 0

    # -- private ----------------------------------------------------------

    def _now(self) -> int:
        return int(self.clock())

    def _verify(self, password_hash: str, password: str) -> bool:
        if password_hash.startswith(("pbkdf2:", "scrypt:")):
            # Werkzeug hashes of imported accounts. Spend the argon2 work
            # too, so these accounts cost what the others cost.
            self._argon2_verify(self._dummy_hash, password)
            return _is_utf8_text(password) and check_password_hash(password_hash, password)
        return self._argon2_verify(password_hash, password)

    def _argon2_verify(self, password_hash: str, password: str) -> bool:
        # argon2 encodes text as strict UTF-8 itself. Encoding here with
        # surrogatepass gives the same bytes for every valid password, and lets a
        # password with lone surrogates cost the same work and match nothing.
        secret = password.encode("utf-8", "surrogatepass")
        try:
            return self.hasher.verify(password_hash, secret)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            logger.warning("A stored password hash could not be read; treating the password as wrong.")
            return False

    def _fetch_one(self, condition: Any) -> Developer | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(*_DEVELOPER_COLUMNS).where(condition)).first()
        return _to_developer(row) if row is not None else None

    def _fetch_login_row(self, email: str) -> Any:
        row = self._statements.login_row.first({"email": email})
        return _LoginRow._make(row) if row is not None else None

    def _claim_attempt(self, developer_id: str, now: int) -> _Claim:
        """Count a login attempt as a failure before its password is checked.

        The increment and the lock it may trigger happen in one transaction
        whose UPDATE skips a locked account, so parallel guesses are serialized
        by the row lock: no more of them reach the password check than the
        lockout allows. A success resets the count afterwards.
        """
        d = developers_table.c
        with self.engine.begin() as connection:
            claimed = connection.execute(
                update(developers_table)
                .where(d.id == developer_id, or_(d.locked_until.is_(None), d.locked_until <= now))
                .values(failed_logins=d.failed_logins + 1, updated_at=now)
            ).rowcount
            if not claimed:
                locked_until = connection.execute(select(d.locked_until).where(d.id == developer_id)).scalar()
                return _Claim(locked_until=int(locked_until) if locked_until is not None else now)
            if self.login_attempts <= 0:
                return _Claim()
            failures = connection.execute(select(d.failed_logins).where(d.id == developer_id)).scalar_one()
            if failures < self.login_attempts:
                return _Claim(failures=failures)
            seconds = lockout_seconds(failures, self.login_attempts)
            connection.execute(
                update(developers_table).where(d.id == developer_id).values(locked_until=now + seconds)
            )
        return _Claim(failures=failures, lock_seconds=seconds)

    def _after_success(self, row: Any, password: str) -> None:
        # _claim_attempt counted this attempt as a failure: always reset.
        if _needs_rehash(self.hasher, row.password_hash):
            values = {
                "failed_logins": 0,
                "locked_until": None,
                "password_hash": self.hasher.hash(password),
                "updated_at": self._now(),
            }
            with self.engine.begin() as connection:
                connection.execute(update(developers_table).where(developers_table.c.id == row.id).values(**values))
            return
        self._reset_failures(row.id)

    def _reset_failures(self, developer_id: str) -> None:
        self._statements.reset_failures.rowcount({"developer_id": developer_id, "now": self._now()})


@dataclass(frozen=True)
class _Claim:
    """Outcome of :meth:`DeveloperStore._claim_attempt`.

    ``locked_until`` is set when the account was already locked and the
    attempt was not counted. ``lock_seconds`` is set when this attempt reached
    the limit and locked the account, in case its password turns out wrong.
    """

    locked_until: int | None = None
    failures: int = 0
    lock_seconds: int = 0


def lockout_seconds(failures: int, allowed: int) -> int:
    """Return the lockout after ``failures`` consecutive failures when ``allowed`` are allowed.

    60 s at the limit, doubled for each failure past it, at most an hour.
    """
    extra = max(0, failures - allowed)
    if extra >= 6:
        return LOCKOUT_MAX_SECONDS
    return min(LOCKOUT_BASE_SECONDS * (2**extra), LOCKOUT_MAX_SECONDS)


_DEVELOPER_COLUMNS = (
    developers_table.c.id,
    developers_table.c.email,
    developers_table.c.status,
    developers_table.c.failed_logins,
    developers_table.c.locked_until,
    developers_table.c.created_at,
)


_DEVELOPER_FIELDS = [column.name for column in _DEVELOPER_COLUMNS]

#: A developer's columns with the password hash, as the login check selects them.
_LoginRow = namedtuple("_LoginRow", [*_DEVELOPER_FIELDS, "password_hash"])

#: An API key's id and hash with its developer's columns, as the key check selects them.
_ApiKeyRow = namedtuple("_ApiKeyRow", ["api_key_id", *_DEVELOPER_FIELDS, "key_hash"])


class _LoginStatements:
    """The single statements of a login, compiled once by ``precompile``."""

    def __init__(self, precompile: Callable[..., Any]) -> None:
        d = developers_table.c
        k = api_keys_table.c
        self.login_row = precompile(
            select(*_DEVELOPER_COLUMNS, d.password_hash).where(d.email == bindparam("email"))
        )
        self.api_key_row = precompile(
            select(k.id.label("api_key_id"), *_DEVELOPER_COLUMNS, k.key_hash)
            .select_from(api_keys_table.join(developers_table, d.id == k.developer_id))
            .where(k.key_hash == bindparam("key_hash"), k.revoked_at.is_(None))
        )
        self.key_used = precompile(
            update(api_keys_table).where(k.id == bindparam("api_key_id")).values(last_used_at=bindparam("now"))
        )
        self.reset_failures = precompile(
            update(developers_table)
            .where(d.id == bindparam("developer_id"))
            .values(failed_logins=0, locked_until=None, updated_at=bindparam("now"))
        )


def _to_developer(row: Any) -> Developer:
    return Developer(
        id=row.id,
        email=row.email,
        status=row.status,
        failed_logins=int(row.failed_logins or 0),
        locked_until=int(row.locked_until) if row.locked_until is not None else None,
        created_at=int(row.created_at),
    )


def _to_api_key(row: Any) -> ApiKey:
    return ApiKey(
        id=int(row.id),
        developer_id=row.developer_id,
        prefix=row.prefix,
        name=row.name,
        created_at=int(row.created_at),
        last_used_at=int(row.last_used_at) if row.last_used_at is not None else None,
        revoked_at=int(row.revoked_at) if row.revoked_at is not None else None,
    )


def _needs_rehash(hasher: PasswordHasher, password_hash: str) -> bool:
    if password_hash.startswith(("pbkdf2:", "scrypt:")):
        return True
    try:
        return hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return False


def _has_forbidden_character(value: str) -> bool:
    """Tell whether text has a control character or a lone surrogate; no stored email has either."""
    return any(
        ord(character) < 32 or ord(character) == 127 or 0xD800 <= ord(character) <= 0xDFFF for character in value
    )


def _check_email(email: str) -> str:
    if not isinstance(email, str):
        raise CredentialError(f"Invalid email {email!r}: expected a string such as 'dev@example.com'.")
    address = normalize_email(email)
    local, at, domain = address.partition("@")
    if (
        not at
        or not local
        or not domain
        or len(address) > MAX_EMAIL_LENGTH
        or any(character.isspace() for character in address)
        or _has_forbidden_character(address)
        or ":" in address
    ):
        raise CredentialError(
            f"Invalid email {email!r}: expected an address such as 'dev@example.com' "
            f"of at most {MAX_EMAIL_LENGTH} characters, without spaces or colons."
        )
    return address


def _check_status(status: str) -> None:
    if status not in DEVELOPER_STATUSES:
        raise CredentialError(f"Invalid developer status {status!r}: use one of {', '.join(DEVELOPER_STATUSES)}.")


def _check_password(password: str) -> None:
    if not isinstance(password, str) or not password:
        raise CredentialError("The password is empty. Give a non-empty password.")
    if not _is_utf8_text(password):
        raise CredentialError(
            "The password contains a lone surrogate, which is not valid text (input that was not UTF-8 "
            "decodes to one). Give the password as UTF-8 text."
        )
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise CredentialError(f"The password is longer than {MAX_PASSWORD_BYTES} bytes. Use a shorter password.")


def _is_utf8_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
