"""The Flask session interface and the server-side session object.

``open_session`` only checks the cookie's tag; the row is read on the first
access to the session, so a request that never touches ``flask.session``
runs no query. ``save_session`` decides what to write (nothing unless the
session changed, logged in or out, renewed, or is due an idle touch), commits
it, and then sets or expires the cookie.

Requests that carry the same cookie may run at the same time. Renewal is
guarded in the database so only one of them creates the successor row, and
the others keep working through the old row's discard window, writing into
the successor. A write is first tried as a compare-and-swap on the sealed
blob read with the row (one statement). When another request wrote or
renewed the row in between, this request's own changes (the keys it set or
deleted) are applied to what is stored now, under the row's lock, so
concurrent writes to different keys all land. Two requests that set the
same key still race: the value of the later one to commit stays. A write
whose row was deleted meanwhile (logout, revocation, or a login that
replaced the session) is dropped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, Response, has_request_context, request
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy.exc import SQLAlchemyError

from . import signals
from .crypto import new_session_id, row_key
from .errors import SessionStoreUnavailable, SessionTooLarge
from .store import SessionRow

if TYPE_CHECKING:
    from .extension import PortalState

__all__ = ["PortalSessionInterface", "ServerSession"]

logger = logging.getLogger(__name__)

_serializer = TaggedJSONSerializer()

#: Error handler for the UTF-8 text of session data. With the app's
#: ``json.ensure_ascii`` off, strings holding lone surrogates (which JSON
#: request bodies can carry) reach the serialized text unescaped; they are
#: stored as they are, so they round-trip instead of failing the request.
_TEXT_ERRORS = "surrogatepass"

#: Maximum renewals followed from an old cookie to the row that contains the data now.
_MAX_SUCCESSOR_HOPS = 4

#: Cookies of the session's name whose rows one request looks up. Browsers send
#: two or three at most (a host-only and a domain cookie, or several paths), and
#: each costs a query, so a crafted header of stale tokens is cut off here.
MAX_SESSION_COOKIES = 4

#: Maximum gap between two idle-timeout touches of one row, in seconds.
IDLE_TOUCH_INTERVAL = 60


@dataclass(frozen=True)
class _CookieChange:
    """The cookie change ``save_session`` makes: set ``token``, or expire the cookie when ``None``."""

    token: str | None
    expires_at: int | None = None


def _unique(keys: list[str | None]) -> list[str]:
    return list(dict.fromkeys(key for key in keys if key))


@dataclass
class _Candidate:
    """A cookie value whose tag checked out: the session id and the secret index."""

    session_id: bytes
    secret_index: int


class ServerSession(SessionMixin):
    """The object behind ``flask.session``: a dict loaded from the row on first use.

    ``developer_id`` is the logged-in developer, kept in the row's own column
    rather than in the data, so views cannot forge it by assigning a key.
    """

    def __init__(self, portal: PortalState, candidates: list[_Candidate], cookie_sent: bool) -> None:
        self._portal = portal
        self._candidates = candidates
        #: True when the request sent a cookie with the session's name.
        self.cookie_sent = cookie_sent
        #: Number of cookies with the session's name in the request.
        self.cookie_count = 0
        self._loaded = False
        self._data: dict[str, Any] = {}
        #: The data as read from the row, serialized, to tell this request's changes from others'.
        self._loaded_text: str | None = None
        self._row: SessionRow | None = None
        self._session_id: bytes | None = None
        self._write_key: str | None = None
        self._secret_index = 0
        self._developer: Any = None
        self._developer_resolved = False
        self.developer_id: str | None = None
        self.accessed = False
        self.modified = False
        self.new = True

        # Decisions made while loading, carried out in save_session.
        self._renew_due = False
        self._touch_due = False
        self._reseal_due = False
        self._destroy_keys: list[str] = []
        self._stale_keys: list[str] = []
        self._expire_cookie = False
        self._pending: str | None = None
        self._login_developer_id: str | None = None

    # -- mapping protocol; every access loads the row first ---------------

    def __getitem__(self, key: str) -> Any:
        self._access()
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._access()
        self._data[key] = value
        self.modified = True

    def __delitem__(self, key: str) -> None:
        self._access()
        del self._data[key]
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        self._access()
        return iter(list(self._data))

    def __len__(self) -> int:
        self._access()
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        self._access()
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        self._access()
        return self._data.get(key, default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._access()
        if key not in self._data:
            self._data[key] = default
            self.modified = True
        return self._data[key]

    def pop(self, key: str, *default: Any) -> Any:
        self._access()
        if key in self._data:
            self.modified = True
        return self._data.pop(key, *default)

    def clear(self) -> None:
        self._access()
        if self._data:
            self.modified = True
        self._data.clear()

    def __repr__(self) -> str:
        state = "loaded" if self._loaded else "not loaded"
        return f"<ServerSession {state}, {len(self._data)} keys, developer={self.developer_id!r}>"

    # -- state ------------------------------------------------------------

    @property
    def is_valid(self) -> bool:
        """Whether the request carried a cookie whose session row is valid now."""
        self._access()
        return self._row is not None

    @property
    def is_authenticated(self) -> bool:
        """Whether a valid session belongs to an approved developer."""
        self._access()
        return self.developer_id is not None and self.developer is not None

    @property
    def row(self) -> SessionRow | None:
        """The valid row this session was read from (the successor when renewed), or ``None``."""
        self._access()
        return self._row

    @property
    def developer(self) -> Any:
        """The logged-in developer object, or ``None`` when anonymous or not approved."""
        self._access()
        if not self._developer_resolved:
            self._developer_resolved = True
            self._developer = self._portal._resolve_developer(self)
        return self._developer

    def load(self) -> None:
        """Read the row on first use; later calls do nothing.

        Raises :class:`SessionStoreUnavailable` when the database fails. The
        session then stays unloaded, so the next access tries again instead of
        finding an empty, anonymous session, and nothing is written for it.
        """
        if self._loaded:
            return
        try:
            self._load_first_valid()
        except SQLAlchemyError as error:
            logger.error("Reading the session store failed: %s", describe_store_error(error))
            raise SessionStoreUnavailable() from error
        self._loaded = True

    # -- private ----------------------------------------------------------

    def _access(self) -> None:
        self.accessed = True
        self.load()

    def _load_first_valid(self) -> None:
        portal = self._portal
        conf = portal.session_conf
        now = portal.now()
        found_any = False
        for candidate in self._candidates:
            key = row_key(candidate.session_id)
            row = portal.store.load(key)
            if row is None:
                continue
            found_any = True
            if not portal.is_row_valid(row, now):
                self._stale_keys.append(row.key)
                continue

            target = self._follow_successors(row, now)
            if target is None:
                continue

            plaintext = portal.keyring.open(target.data, target.key, target.key_id)
            if plaintext is None:
                logger.warning(
                    "Session row %s... could not be decrypted (altered, copied from another row, or sealed "
                    "with a secret that is not configured); the request is treated as anonymous.",
                    target.key[:8],
                )
                continue
            try:
                text = plaintext.decode("utf-8", _TEXT_ERRORS)
                data = load_tagged_json(text)
            except (ValueError, UnicodeDecodeError):
                logger.warning("Session row %s... contains data that is not valid tagged JSON.", target.key[:8])
                continue
            if not isinstance(data, dict):
                logger.warning("Session row %s... contains data that is not a JSON object.", target.key[:8])
                continue

            self._row = target
            self._data = data
            self._loaded_text = text
            self._session_id = candidate.session_id
            self._write_key = target.key
            self._secret_index = candidate.secret_index
            self.developer_id = target.developer_id
            self.new = False
            if target is row:
                # Near the absolute deadline a new id would not live longer: keep the row.
                self._renew_due = (
                    conf.cookie_renew > 0
                    and row.expires_at - now < conf.cookie_renew
                    and portal.expires_at_for(row.created_at, now) > row.expires_at
                )
            self._reseal_due = candidate.secret_index > 0 or target.key_id != portal.keyring.current_key_id
            self._touch_due = conf.cookie_idletime > 0 and now - target.last_seen_at >= _touch_interval(
                conf.cookie_idletime
            )
            return

        # A cookie came with the request but named no valid session.
        if self.cookie_sent:
            self._expire_cookie = True
            if not found_any and self._candidates:
                logger.info("A session cookie named no stored session; the request is treated as anonymous.")

    def _follow_successors(self, row: SessionRow, now: int) -> SessionRow | None:
        """Return the newest valid row in ``row``'s renewal chain, or ``None``.

        A cookie from before a renewal names a row in its discard window; the
        data lives in the row that replaced it, which may itself have been
        renewed while the old cookie was still in use.
        """
        target = row
        for _ in range(_MAX_SUCCESSOR_HOPS):
            if not target.replaced_by:
                return target
            successor = self._portal.store.load(target.replaced_by)
            if successor is None or not self._portal.is_row_valid(successor, now):
                return None
            target = successor
        return None if target.replaced_by else target

    def changes(self) -> tuple[dict[str, Any], list[str]]:
        """Return the keys this request set, with their values, and the keys it deleted.

        The comparison is with the data as read from the row, in serialized form,
        so values changed in place (a list appended to) count as set too.
        """
        original = load_tagged_json(self._loaded_text) if self._loaded_text is not None else {}
        updated = {
            key: value
            for key, value in self._data.items()
            if key not in original or _serializer.dumps(value) != _serializer.dumps(original[key])
        }
        removed = [key for key in original if key not in self._data]
        return updated, removed

    def mark_destroyed(self, reason: str = "destroy") -> None:
        """Schedule this session's rows for deletion and its cookie for expiry.

        ``reason`` is ``"logout"`` or ``"destroy"``; the data is dropped at once.
        """
        keys: list[str | None] = [self._row.key if self._row else None, self._write_key]
        keys.extend(row_key(candidate.session_id) for candidate in self._candidates)
        self._destroy_keys.extend(key for key in keys if key)
        self._pending = reason
        self._expire_cookie = True
        self._data = {}
        self._row = None
        self.developer_id = None
        self._developer = None
        self._developer_resolved = True

    def mark_login(self, developer_id: str) -> None:
        """Schedule a fresh session id for ``developer_id``, deleting the current rows.

        Data stored before the login is kept unless it belonged to another developer.
        """
        self.load()
        if self.developer_id is not None and self.developer_id != developer_id:
            self._data = {}
        keys: list[str | None] = [self._row.key if self._row else None, self._write_key]
        keys.extend(row_key(candidate.session_id) for candidate in self._candidates)
        self._destroy_keys.extend(key for key in keys if key)
        self._pending = "login"
        self._login_developer_id = developer_id
        self.developer_id = developer_id
        self._developer_resolved = False
        self.modified = True


class _RateLimitedWarning:
    """Logs one WARNING per ``interval`` seconds, with the count of events since the last one."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._last = float("-inf")
        self._count = 0
        self._lock = threading.Lock()

    def emit(self, message: str) -> None:
        """Count one event and log ``message % count`` if the interval has passed."""
        with self._lock:
            self._count += 1
            now = time.monotonic()
            if now - self._last < self.interval:
                return
            count, self._count, self._last = self._count, 0, now
        logger.warning(message, count)


_rejected_tag_log = _RateLimitedWarning()
_insecure_request_log = _RateLimitedWarning()


def cookie_values(header: str, name: str) -> list[str]:
    """Return the values of every cookie called ``name`` in a ``Cookie`` header.

    A plain split is enough here and runs on every request, unlike a full
    parse of every cookie: a session token is base64url, so a quoted or
    escaped value is not a token and fails its tag check either way.
    """
    if name not in header:
        return []
    prefix = name + "="
    values = []
    for part in header.split(";"):
        part = part.strip()
        if part.startswith(prefix):
            values.append(part[len(prefix) :])
    return values


def load_tagged_json(text: str) -> Any:
    """Parse session data written by Flask's ``TaggedJSONSerializer``.

    This is the serializer's own ``loads`` without the trip through the
    app's JSON provider, which costs more than parsing a small session. The
    stored text is plain JSON, and the serializer's ``untag`` turns the tags
    (``{" t": [...]}`` and the like) back into Python values. Raises
    ``ValueError`` for text that is not JSON.
    """
    if text == "{}":
        return {}
    return _untag(json.loads(text))


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        return _serializer.untag({key: _untag(item) for key, item in value.items()})
    if isinstance(value, list):
        return [_untag(item) for item in value]
    return value


def add_vary_cookie(response: Response) -> None:
    """Add ``Cookie`` to the response's ``Vary`` header unless it is listed already.

    Works on the raw header; ``response.vary`` parses it into a set and writes
    it back, which costs several times more on every request.
    """
    existing = response.headers.get("Vary")
    if not existing:
        response.headers["Vary"] = "Cookie"
    elif existing.strip() != "*" and "cookie" not in (part.strip().lower() for part in existing.split(",")):
        response.headers["Vary"] = f"{existing}, Cookie"


def _touch_interval(idletime: int) -> int:
    return max(1, min(IDLE_TOUCH_INTERVAL, idletime // 2))


def describe_store_error(error: BaseException) -> str:
    """Return the exception's class and first line, without bound parameters."""
    text = str(getattr(error, "orig", None) or error).splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


class PortalSessionInterface(SessionInterface):
    """Stores ``flask.session`` in ``portal_sessions`` rows, sealed with AES-GCM.

    Requests with the same cookie may run at once. Their changes to different
    keys are merged, the later of two writes to one key wins, and writes that
    land after the session was deleted are dropped (see the module docstring).
    """

    #: Flask passes this in the ``Set-Cookie`` for the session cookie.
    pickle_based = False

    def __init__(self, portal: PortalState) -> None:
        self.portal = portal

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        """Check the session cookies' tags, without any I/O, and return a lazy session."""
        conf = self.portal.session_conf
        values = cookie_values(request.environ.get("HTTP_COOKIE", ""), conf.cookie_name)
        candidates = []
        seen: set[bytes] = set()
        for value in values:
            decoded = self.portal.keyring.decode_token(value)
            if decoded is None:
                continue
            session_id, secret_index = decoded
            if session_id not in seen:
                seen.add(session_id)
                candidates.append(_Candidate(session_id, secret_index))
            if len(candidates) == MAX_SESSION_COOKIES:
                break

        session = ServerSession(self.portal, candidates, cookie_sent=bool(values))
        session.cookie_count = len(values)
        if values and not candidates:
            # Every cookie failed its tag check: expire it without a query.
            session._loaded = True
            session._expire_cookie = True
            _rejected_tag_log.emit(
                "Rejected session cookies whose tag did not verify (%d since the last report). Forged or "
                "damaged cookies look like this; so do cookies from another node when the nodes do not share "
                "one 'secret' in PORTAL_SESSION_CONF, or cookies made before a secret change that is not in "
                "secret_fallbacks."
            )
        return session

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Write what changed, commit, then set or expire the cookie.

        A response with status 500 or more persists nothing. When the store
        fails, the response becomes 503 ``Session store unavailable`` and
        carries no session cookie.
        """
        if not isinstance(session, ServerSession):
            return
        if session.accessed:
            add_vary_cookie(response)
        if response.status_code >= 500:
            return

        try:
            cookie = self.persist(app, session)
        except SQLAlchemyError as error:
            logger.error("Writing the session store failed: %s", describe_store_error(error))
            _turn_into_store_error(response)
            return

        if cookie is None:
            return
        if not session.accessed:
            add_vary_cookie(response)
        if cookie.token is None:
            self.expire_cookie(response, session.cookie_count)
        else:
            self.set_cookie(response, cookie.token, cookie.expires_at)
        response.headers["Cache-Control"] = "no-store"

    def persist(self, app: Flask, session: ServerSession) -> _CookieChange | None:
        """Carry out the session's pending writes; return the cookie change, if any.

        Raises ``SQLAlchemyError`` when the store fails and
        :class:`SessionTooLarge` when the data is over ``max_session_bytes``.
        """
        portal = self.portal
        store = portal.store
        now = portal.now()

        if session._pending in ("logout", "destroy"):
            store.delete(_unique(session._destroy_keys + session._stale_keys))
            return _CookieChange(None) if session.cookie_sent else None

        if session._pending == "login":
            session_id, key = new_session_keys()
            blob, key_id = seal_data(portal, session._data, key)
            created_at = now
            store.insert(
                key,
                session._login_developer_id,
                blob,
                key_id,
                created_at=created_at,
                expires_at=portal.expires_at_for(created_at, now),
                now=now,
                delete_keys=_unique(session._destroy_keys + session._stale_keys),
            )
            return _CookieChange(portal.keyring.encode_token(session_id), portal.expires_at_for(created_at, now))

        if not session._loaded:
            return None

        if session._stale_keys:
            # Expired rows met while loading: the cookie naming them is dead anyway.
            store.delete(_unique(session._stale_keys))

        row = session._row
        if row is None:
            if session.modified and session._data:
                return self._create_anonymous(session, now)
            return _CookieChange(None) if session._expire_cookie else None

        if session.developer_id is None and session.modified and not session._data:
            # An anonymous session emptied by the view: nothing is left to keep.
            store.delete(_unique([row.key, session._write_key]))
            return _CookieChange(None)

        if session._renew_due or session.modified or session._reseal_due:
            return self._write(app, session, row, now)

        if session._touch_due:
            if not store.touch(session._write_key, now):
                return _CookieChange(None)
        return None

    def _create_anonymous(self, session: ServerSession, now: int) -> _CookieChange:
        portal = self.portal
        session_id, key = new_session_keys()
        blob, key_id = seal_data(portal, session._data, key)
        expires_at = portal.expires_at_for(now, now)
        portal.store.insert(key, None, blob, key_id, created_at=now, expires_at=expires_at, now=now)
        return _CookieChange(portal.keyring.encode_token(session_id), expires_at)

    def _write(self, app: Flask, session: ServerSession, row: SessionRow, now: int) -> _CookieChange | None:
        """Renew or update the session's row, merging in writes of concurrent requests.

        The first try is a compare-and-swap on the blob read with the row. When
        it loses, another request wrote or renewed the row since: the renewal is
        left to a later request, and this request's changes, if any, are merged
        into the row that contains the session now.
        """
        if session._renew_due:
            change = self._renew(app, row, session._data, now)
            if change is not None:
                return change
        else:
            blob, key_id = seal_data(self.portal, session._data, row.key)
            if self.portal.store.update_data(row.key, blob, key_id, now, expected=row.data):
                return self._retag(session, row)
        if not (session.modified or session._reseal_due):
            return None
        return self._merge_into_current(session, row, now)

    def _merge_into_current(self, session: ServerSession, row: SessionRow, now: int) -> _CookieChange | None:
        """Apply this request's changes to the newest row of the session, under its lock."""
        changes = session.changes()

        def rewrite(stored: SessionRow) -> tuple[bytes, str]:
            return seal_data(self.portal, self._merge(stored, changes, session._data), stored.key)

        key = row.key
        for _ in range(_MAX_SUCCESSOR_HOPS + 1):
            current = self.portal.store.rewrite_data(key, rewrite, now)
            if current is None:
                return _CookieChange(None)
            if not current.replaced_by:
                return self._retag(session, current)
            successor = self.portal.store.load(current.replaced_by)
            if successor is None or not self.portal.is_row_valid(successor, now):
                return _CookieChange(None)
            key = successor.key
        return _CookieChange(None)

    def _renew(self, app: Flask, row: SessionRow, data: dict[str, Any], now: int) -> _CookieChange | None:
        """Move ``data`` to a new row and id; return ``None`` when ``row`` changed since it was read."""
        portal = self.portal
        session_id, key = new_session_keys()
        blob, key_id = seal_data(portal, data, key)
        expires_at = portal.expires_at_for(row.created_at, now)
        discard_at = min(row.expires_at, now + portal.session_conf.cookie_discard)
        renewed = portal.store.renew(
            old_key=row.key,
            new_key=key,
            developer_id=row.developer_id,
            data=blob,
            key_id=key_id,
            created_at=row.created_at,
            expires_at=expires_at,
            old_expires_at=discard_at,
            now=now,
            expected=row.data,
        )
        if not renewed:
            return None
        logger.debug("Renewed session %s... as %s...", row.key[:8], key[:8])
        signals.session_renewed.send(app, developer_id=row.developer_id)
        return _CookieChange(portal.keyring.encode_token(session_id), expires_at)

    def _merge(
        self, current: SessionRow, changes: tuple[dict[str, Any], list[str]], own: dict[str, Any]
    ) -> dict[str, Any]:
        """Return the data of ``current`` with this request's changes applied.

        A row that does not open (sealed with a secret this node lacks) is
        overwritten with this request's whole data.
        """
        plaintext = self.portal.keyring.open(current.data, current.key, current.key_id)
        if plaintext is None:
            return own
        try:
            stored = load_tagged_json(plaintext.decode("utf-8", _TEXT_ERRORS))
        except (ValueError, UnicodeDecodeError):
            return own
        if not isinstance(stored, dict):
            return own
        updated, removed = changes
        stored.update(updated)
        for key in removed:
            stored.pop(key, None)
        return stored

    def _retag(self, session: ServerSession, row: SessionRow) -> _CookieChange | None:
        """Re-tag a cookie made under a fallback secret once its own row was re-sealed."""
        if session._secret_index > 0 and row.key == row_key(session._session_id):
            return _CookieChange(self.portal.keyring.encode_token(session._session_id), row.expires_at)
        return None

    def set_cookie(self, response: Response, token: str, expires_at: int | None) -> None:
        """Add the session cookie with the configured Domain, Path, Secure, HttpOnly and SameSite."""
        conf = self.portal.session_conf
        if conf.cookie_secure and has_request_context() and not request.is_secure:
            _insecure_request_log.emit(
                "Set a Secure session cookie on a request that arrived over plain HTTP (%d since the last "
                "report). Browsers drop Secure cookies over HTTP, so logins will not stick. Serve over HTTPS, "
                "apply ProxyFix behind a TLS-terminating proxy, or set cookie_secure to false for plain-HTTP "
                "testing."
            )
        max_age = None
        if conf.cookie_persistent and expires_at is not None:
            max_age = max(0, expires_at - self.portal.now())
        response.set_cookie(
            conf.cookie_name,
            token,
            max_age=max_age,
            expires=(expires_at if max_age is not None else None),
            path=conf.cookie_path,
            domain=conf.cookie_domain,
            secure=conf.cookie_secure,
            httponly=conf.cookie_httponly,
            samesite=conf.cookie_samesite,
        )

    def expire_cookie(self, response: Response, cookie_count: int = 1) -> None:
        """Expire the session cookie with the same attributes it was set with.

        When the request sent several cookies of that name and a
        ``cookie_domain`` is configured, a host-only cookie left from before
        the domain was set is expired as well.
        """
        conf = self.portal.session_conf
        domains: list[str | None] = [conf.cookie_domain]
        if cookie_count > 1 and conf.cookie_domain is not None and not conf.cookie_name.startswith("__Host-"):
            domains.append(None)
        for domain in domains:
            response.delete_cookie(
                conf.cookie_name,
                path=conf.cookie_path,
                domain=domain,
                secure=conf.cookie_secure,
                httponly=conf.cookie_httponly,
                samesite=conf.cookie_samesite,
            )


def _turn_into_store_error(response: Response) -> None:
    error = SessionStoreUnavailable()
    response.status_code = 503
    response.set_data(error.get_body())
    response.mimetype = "application/json"
    response.headers["Retry-After"] = "5"
    response.headers["Cache-Control"] = "no-store"
    response.headers.pop("Set-Cookie", None)


def seal_data(portal: PortalState, data: dict[str, Any], key: str) -> tuple[bytes, str]:
    """Serialize and seal session data for row ``key``; return ``(blob, key id)``."""
    plaintext = _serializer.dumps(data).encode("utf-8", _TEXT_ERRORS)
    limit = portal.session_conf.max_session_bytes
    if len(plaintext) > limit:
        raise SessionTooLarge(len(plaintext), limit)
    return portal.keyring.seal(plaintext, key)


def new_session_keys() -> tuple[bytes, str]:
    """Return a fresh session id and its row key."""
    session_id = new_session_id()
    return session_id, row_key(session_id)

