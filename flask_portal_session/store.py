"""Table definitions and the session row operations, in SQLAlchemy Core.

The tables are created only by the shipped Alembic migrations; nothing here
runs DDL. Every operation on the request path is one prebuilt statement with
bound parameters, run on a pooled connection and committed before it returns.

All times are UTC epoch seconds (integers).
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError

from .config import ConfigError

__all__ = [
    "metadata",
    "sessions_table",
    "developers_table",
    "api_keys_table",
    "SessionRow",
    "SessionStore",
    "create_store_engine",
    "ALEMBIC_VERSION_TABLE",
]

logger = logging.getLogger(__name__)

#: Alembic's version table for this package, apart from the app's own.
ALEMBIC_VERSION_TABLE = "portal_session_alembic_version"

#: Maximum number of keys in one DELETE of ``SessionStore.delete``. Longer
#: lists, rare outside the app's own calls, are sent in chunks of this size.
MAX_DELETE_KEYS = 8

#: Naming convention so that constraint names are the same on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# MySQL and MariaDB cap a plain BLOB at 65,535 bytes, below the largest sealed
# session (max_session_bytes plus nonce, tag and version byte).
_Blob = LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")

#: One row per session. ``id`` is the SHA-256 hex of the session id.
sessions_table = Table(
    "portal_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("developer_id", String(64), nullable=True),
    Column("data", _Blob, nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("replaced_by", String(64), nullable=True),
    Index("ix_portal_sessions_developer_id", "developer_id"),
    Index("ix_portal_sessions_expires_at", "expires_at"),
)

#: Developers of the built-in store. ``email`` is stored in lower case.
developers_table = Table(
    "portal_developers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("password_hash", String(255), nullable=True),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

#: API keys of the built-in store; only the SHA-256 of each key is kept.
api_keys_table = Table(
    "portal_api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "developer_id",
        String(36),
        ForeignKey("portal_developers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("name", String(100), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_portal_api_keys_developer_id", "developer_id"),
)


class SessionRow(NamedTuple):
    """One stored session, with the developer's email and status when known.

    A named tuple rather than a frozen dataclass, because one is built on every
    authenticated request: 0.23 us against 1.07 us on CPython 3.11 (timeit).
    """

    key: str
    developer_id: str | None
    data: bytes
    key_id: str
    created_at: int
    expires_at: int
    last_seen_at: int
    replaced_by: str | None
    developer_email: str | None = None
    developer_status: str | None = None


def create_store_engine(url: str, **engine_options: Any) -> Engine:
    """Create the engine for ``url``; SQLite gets WAL mode and a busy timeout.

    WAL lets readers run beside a writer, and the busy timeout makes several
    worker processes that share one SQLite file wait for each other instead
    of failing with "database is locked".
    """
    parsed = make_url(url)
    try:
        engine = _create_engine_for(parsed, url, engine_options)
    except (ImportError, NoSuchModuleError) as error:
        backend = parsed.get_backend_name()
        extra = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}.get(backend)
        fix = (
            f"Install it with: pip install 'flask-portal-session[{extra}]'."
            if extra
            else "Install the SQLAlchemy dialect and driver for it, or use SQLite, PostgreSQL or MariaDB."
        )
        raise ConfigError(
            f"PORTAL_SESSION_DATABASE_URI uses the {parsed.drivername!r} driver, which could not be loaded "
            f"({type(error).__name__}: {error}). {fix}"
        ) from None
    if not (parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")):
        # An in-memory database lives in its connection: a new pool would lose it.
        _engines_made.add(engine)
    return engine


def create_lookup_engine(engine: Engine) -> Engine | None:
    """Create an engine for the per-request statements (``None`` for in-memory SQLite).

    These are the session lookup and the single-statement writes: an update
    of the data, an idle touch and a delete. On PostgreSQL and MariaDB each
    of them costs three or four round trips through the main engine: the
    pre-ping, BEGIN (psycopg), the statement and the commit or rollback. On
    SQLite, checking the connection back in costs about as much as the query
    (measured with cProfile on the benchmark's read request). This engine
    runs in autocommit mode without pre-ping or reset on return, so each
    statement is one round trip. A connection lost to a server restart is
    retried once on a fresh connection instead. The engine is disposed
    together with ``engine``.
    """
    if engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
        # Each connection to an in-memory database is a database of its own.
        return None
    lookup = create_store_engine(
        engine.url.render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=False,
        pool_reset_on_return=None,
    )
    event.listen(engine, "engine_disposed", lambda _engine: lookup.dispose())
    return lookup


def _create_engine_for(parsed: Any, url: str, engine_options: dict[str, Any]) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = os.path.dirname(os.path.abspath(database))
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as error:
                raise ConfigError(
                    f"PORTAL_SESSION_DATABASE_URI names a SQLite file in {folder!r}, but that folder cannot be "
                    f"created ({error.strerror}). Point the URL at a writable folder."
                ) from None
        engine = create_engine(url, **engine_options)
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine

    engine_options.setdefault("pool_pre_ping", True)
    return create_engine(url, **engine_options)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout = 5000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


class SessionStore:
    """Reads and writes ``portal_sessions`` rows.

    With ``join_developers`` the lookup also returns the developer's email and
    status from the built-in store in the same statement, so an authenticated
    request needs one query in all.
    """

    def __init__(self, engine: Engine, join_developers: bool = True, lookup_engine: Engine | None = None) -> None:
        self.engine = engine
        #: The engine of the per-request lookup; see :func:`create_lookup_engine`.
        self.lookup_engine = lookup_engine or engine
        s = sessions_table.c
        columns = [
            s.id,
            s.developer_id,
            s.data,
            s.key_id,
            s.created_at,
            s.expires_at,
            s.last_seen_at,
            s.replaced_by,
        ]
        if join_developers:
            d = developers_table.c
            self._select = (
                select(*columns, d.email, d.status)
                .select_from(sessions_table.outerjoin(developers_table, d.id == s.developer_id))
                .where(s.id == bindparam("key"))
            )
        else:
            self._select = select(*columns).where(s.id == bindparam("key"))
        self._insert = insert(sessions_table)
        self._update_data = (
            update(sessions_table)
            .where(s.id == bindparam("key"))
            .values(data=bindparam("new_data"), key_id=bindparam("new_key_id"), last_seen_at=bindparam("now"))
        )
        self._swap_data = self._update_data.where(s.data == bindparam("expected"), s.replaced_by.is_(None))
        # Writes nothing new, but takes the row's write lock (the database's, on SQLite).
        self._lock_row = update(sessions_table).where(s.id == bindparam("key")).values(last_seen_at=s.last_seen_at)
        self._touch = update(sessions_table).where(s.id == bindparam("key")).values(last_seen_at=bindparam("now"))
        self._mark_replaced = (
            update(sessions_table)
            .where(and_(s.id == bindparam("key"), s.replaced_by.is_(None)))
            .values(replaced_by=bindparam("successor"), expires_at=bindparam("discard_at"))
        )
        self._swap_replaced = self._mark_replaced.where(s.data == bindparam("expected"))
        self._delete_by_developer = delete(sessions_table).where(s.developer_id == bindparam("developer_id"))
        self._select_expired = (
            select(s.id).where(s.expires_at <= bindparam("now")).order_by(s.expires_at).limit(bindparam("limit"))
        )

        # The statements of a read, a write, an idle touch and a logout go to the
        # driver directly. Through an autocommit lookup engine each is one round
        # trip: no pre-ping, BEGIN or COMMIT.
        self._idle = _IdleConnections(self.lookup_engine) if self.lookup_engine is not engine else None
        self._lookup = self.precompile(self._select)
        self._fast_update_data = self.precompile(self._update_data)
        self._fast_swap_data = self.precompile(self._swap_data)
        self._fast_touch = self.precompile(self._touch)
        # A retried INSERT whose first try committed would fail on its own row.
        self._fast_insert = self.precompile(
            insert(sessions_table).values(
                id=bindparam("key"),
                developer_id=bindparam("developer_id"),
                data=bindparam("new_data"),
                key_id=bindparam("key_id"),
                created_at=bindparam("created_at"),
                expires_at=bindparam("expires_at"),
                last_seen_at=bindparam("now"),
                replaced_by=None,
            ),
            retry=False,
        )
        self._fast_deletes: dict[int, PrecompiledStatement] = {}

    def precompile(self, statement: Any, retry: bool = True) -> PrecompiledStatement:
        """Return ``statement`` compiled once, to run as one round trip on the per-request pool.

        Keep ``retry`` for statements that can safely run twice. The developer
        store sends its per-login statements this way too.
        """
        return PrecompiledStatement(
            self.lookup_engine, statement, report_engine=self.engine, idle=self._idle, retry=retry
        )

    def _delete_statement(self, count: int) -> PrecompiledStatement:
        statement = self._fast_deletes.get(count)
        if statement is None:
            keys = [bindparam(f"key{index}") for index in range(count)]
            statement = self.precompile(delete(sessions_table).where(sessions_table.c.id.in_(keys)))
            self._fast_deletes[count] = statement
        return statement

    def load(self, key: str) -> SessionRow | None:
        """Return the row stored under ``key``, or ``None``.

        This runs on nearly every request, so it sends the statement compiled
        once at start-up straight to a pooled DBAPI connection, which costs a
        quarter of a full Core ``execute`` on SQLite. Driver errors are raised
        as SQLAlchemy's ``DBAPIError`` subclasses like any other statement.
        """
        return _to_session_row(self._lookup.first({"key": key}))

    def insert(
        self,
        key: str,
        developer_id: str | None,
        data: bytes,
        key_id: str,
        created_at: int,
        expires_at: int,
        now: int,
        delete_keys: Iterable[str] = (),
    ) -> None:
        """Delete the rows in ``delete_keys``, then insert a new row.

        The two steps are separate transactions, each one statement on the
        per-request pool. On MariaDB and MySQL, deleting a
        key that is already gone takes a gap lock, and two logins that each hold
        one and then insert into that gap deadlock, as parallel logins with one
        old cookie do. Deleting first means a failed insert leaves no old session
        behind, only an error.
        """
        self.delete(list(delete_keys))
        self._fast_insert.rowcount(
            {
                "key": key,
                "developer_id": developer_id,
                "new_data": data,
                "key_id": key_id,
                "created_at": created_at,
                "expires_at": expires_at,
                "now": now,
            }
        )

    def update_data(self, key: str, data: bytes, key_id: str, now: int, expected: bytes | None = None) -> bool:
        """Replace the sealed data of a row; return ``False`` if nothing was written.

        With ``expected``, write only if the row still contains exactly that
        blob and has not been renewed. This is a compare-and-swap: every seal has
        a fresh nonce, so the blob changes with every write. Without
        ``expected``, ``False`` means the row is gone.
        """
        params = {"key": key, "new_data": data, "new_key_id": key_id, "now": now}
        if expected is None:
            return self._fast_update_data.rowcount(params) > 0
        params["expected"] = expected
        return self._fast_swap_data.rowcount(params) > 0

    def rewrite_data(
        self, key: str, rewrite: Callable[[SessionRow], tuple[bytes, str]], now: int
    ) -> SessionRow | None:
        """Replace a row's data with ``rewrite(row)`` while holding the row's lock.

        The row is locked first and read after, in one transaction, so no other
        write can land between the read and the write. ``rewrite`` returns
        ``(blob, key id)``. Returns the row as read, or ``None`` when it is
        gone. A row that was renewed is returned unchanged: its
        ``replaced_by`` names the row to write to instead.
        """
        with self.engine.begin() as connection:
            if connection.execute(self._lock_row, {"key": key}).rowcount == 0:
                return None
            row = _to_session_row(connection.execute(self._select, {"key": key}).first())
            if row is None or row.replaced_by:
                return row
            blob, key_id = rewrite(row)
            connection.execute(self._update_data, {"key": key, "new_data": blob, "new_key_id": key_id, "now": now})
        return row

    def touch(self, key: str, now: int) -> bool:
        """Record activity for the idle timeout; return ``False`` if the row is gone."""
        return self._fast_touch.rowcount({"key": key, "now": now}) > 0

    def renew(
        self,
        old_key: str,
        new_key: str,
        developer_id: str | None,
        data: bytes,
        key_id: str,
        created_at: int,
        expires_at: int,
        old_expires_at: int,
        now: int,
        expected: bytes | None = None,
    ) -> bool:
        """Replace ``old_key`` by a new row, unless another request already did.

        The old row keeps working until ``old_expires_at`` (the discard window)
        and points at its successor. Returns ``False`` when the old row was gone
        or already replaced, or with ``expected`` when its blob changed since it
        was read, in which case nothing is written.
        """
        params: dict[str, Any] = {"key": old_key, "successor": new_key, "discard_at": old_expires_at}
        statement = self._mark_replaced
        if expected is not None:
            statement = self._swap_replaced
            params["expected"] = expected
        with self.engine.begin() as connection:
            result = connection.execute(statement, params)
            if result.rowcount == 0:
                return False
            connection.execute(
                self._insert,
                {
                    "id": new_key,
                    "developer_id": developer_id,
                    "data": data,
                    "key_id": key_id,
                    "created_at": created_at,
                    "expires_at": expires_at,
                    "last_seen_at": now,
                    "replaced_by": None,
                },
            )
        return True

    def delete(self, keys: Sequence[str]) -> int:
        """Delete the rows in ``keys``; return how many existed.

        Each chunk of up to ``MAX_DELETE_KEYS`` keys is one precompiled statement.
        """
        wanted = [key for key in keys if key]
        if not wanted:
            return 0
        deleted = 0
        for start in range(0, len(wanted), MAX_DELETE_KEYS):
            chunk = wanted[start : start + MAX_DELETE_KEYS]
            params = {f"key{index}": key for index, key in enumerate(chunk)}
            deleted += self._delete_statement(len(chunk)).rowcount(params)
        return deleted

    def delete_for_developer(self, developer_id: str) -> int:
        """Delete every session of one developer; return how many there were."""
        with self.engine.begin() as connection:
            result = connection.execute(self._delete_by_developer, {"developer_id": str(developer_id)})
        return result.rowcount

    def delete_expired_batch(self, now: int, limit: int) -> int:
        """Delete up to ``limit`` rows whose ``expires_at`` has passed; return the count.

        The ids are selected first and deleted by primary key, because MySQL
        and MariaDB do not accept ``LIMIT`` inside an ``IN`` subquery.
        """
        with self.engine.begin() as connection:
            keys = connection.execute(self._select_expired, {"now": now, "limit": limit}).scalars().all()
            if not keys:
                return 0
            result = connection.execute(delete(sessions_table).where(sessions_table.c.id.in_(keys)))
        return result.rowcount

    def list_sessions(self, developer_id: str | None = None, now: int | None = None) -> list[SessionRow]:
        """Return the stored rows, optionally of one developer and unexpired at ``now``."""
        s = sessions_table.c
        statement = select(
            s.id, s.developer_id, s.data, s.key_id, s.created_at, s.expires_at, s.last_seen_at, s.replaced_by
        ).order_by(s.created_at)
        if developer_id is not None:
            statement = statement.where(s.developer_id == str(developer_id))
        if now is not None:
            statement = statement.where(s.expires_at > now)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        return [_to_session_row(row) for row in rows]


def add_statement_listener(engine: Engine, listener: Callable[[str], None]) -> None:
    """Call ``listener(sql)`` for every statement the precompiled queries send on ``engine``.

    Statements run through Core fire SQLAlchemy's ``before_cursor_execute``
    event; the precompiled lookups bypass it, so statement counts in tests and
    benchmarks listen here too.
    """
    _statement_listeners.setdefault(engine, []).append(listener)


def remove_statement_listener(engine: Engine, listener: Callable[[str], None]) -> None:
    """Stop calling a listener added with :func:`add_statement_listener`."""
    listeners = _statement_listeners.get(engine, [])
    if listener in listeners:
        listeners.remove(listener)


_statement_listeners: weakref.WeakKeyDictionary[Engine, list[Callable[[str], None]]] = weakref.WeakKeyDictionary()


class PrecompiledStatement:
    """A statement compiled once for the engine's dialect and run on a raw pooled connection.

    Each call is a transaction of its own. An autocommit engine commits it.
    On other engines a write is committed explicitly, and a read is rolled
    back when its connection returns to the pool. After a connection lost to
    a server restart, the statement is retried once on a fresh one, so
    statements that cannot safely run twice, such as an INSERT, are made
    with ``retry=False``.

    With ``idle``, the connections stay checked out between calls, on that
    stack of idle ones. That is only sound for an autocommit engine, whose
    idle connections hold no transaction open.
    """

    def __init__(
        self,
        engine: Engine,
        statement: Any,
        report_engine: Engine | None = None,
        idle: _IdleConnections | None = None,
        retry: bool = True,
    ) -> None:
        self.engine = engine
        self.retry = retry
        #: Statement listeners registered on this engine hear the statement.
        self.report_engine = report_engine or engine
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = compiled.string
        self._compiled = compiled
        self._positions = list(compiled.positiontup) if compiled.positional else None
        # When the dialect keeps the parameter names as they are, the caller's
        # dict goes to the driver unchanged, which skips construct_params.
        probe = {name: name for name in compiled.binds}
        self._direct = compiled.construct_params(probe) == probe
        self._dbapi_error = engine.dialect.loaded_dbapi.Error
        self._idle = idle
        self._commit = idle is None and not statement.is_select

    def first(self, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run the query with ``params`` and return its first row, or ``None``."""
        return self._run(params, fetch=True)

    def rowcount(self, params: dict[str, Any]) -> int:
        """Run the statement with ``params`` and return the number of rows it matched."""
        return int(self._run(params, fetch=False))

    def _run(self, params: dict[str, Any], fetch: bool) -> Any:
        bound: Any = params if self._direct else self._compiled.construct_params(params)
        if self._positions is not None:
            bound = tuple([bound[name] for name in self._positions])
        dbapi_error = self._dbapi_error
        idle = self._idle

        for attempt in (1, 2):
            generation = idle.generation if idle is not None else 0
            try:
                connection = idle.take() if idle is not None else self.engine.raw_connection()
            except dbapi_error as error:
                # The pool raises the driver's own exception when it cannot connect.
                raise DBAPIError.instance(
                    self.sql, bound, error, dbapi_error, connection_invalidated=True
                ) from error
            lost = False
            try:
                cursor = connection.cursor()
                try:
                    # The emptiness check first: it costs less than a weak-key lookup.
                    if _statement_listeners:
                        for listener in _statement_listeners.get(self.report_engine, ()):
                            listener(self.sql)
                    cursor.execute(self.sql, bound)
                    result = cursor.fetchone() if fetch else cursor.rowcount
                finally:
                    cursor.close()
                if self._commit:
                    connection.commit()
                return result
            except dbapi_error as error:
                lost = self.engine.dialect.is_disconnect(error, connection.dbapi_connection, None)
                if lost:
                    connection.invalidate(error)
                    if idle is not None:
                        # The others were opened before the same restart.
                        idle.close_all()
                if lost and attempt == 1 and self.retry:
                    # A pooled connection died (a server restart): retry once on a new one.
                    continue
                raise DBAPIError.instance(self.sql, bound, error, dbapi_error, connection_invalidated=lost) from error
            finally:
                if idle is not None and not lost:
                    idle.give_back(connection, generation)
                else:
                    connection.close()
        return None


class _IdleConnections:
    """A stack of connections kept checked out of ``engine``'s pool between lookups.

    Taking and giving back are a list ``pop`` and ``append``, which are atomic
    under the GIL, instead of a pool checkout and checkin with their events
    and locks. The engine's pool still creates every connection and caps how
    many exist. At most ``pool size`` of them are kept idle here, and the rest
    go back to the pool. Idle connections are closed when the engine
    is disposed and forgotten, unclosed, in a child process after ``fork``,
    because the parent still uses them.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: Counts :meth:`close_all` calls, so that a connection taken before one is not kept.
        self.generation = 0
        self._connections: list[Any] = []
        size = getattr(engine.pool, "size", None)
        self._keep = size() if callable(size) else 5
        event.listen(engine, "engine_disposed", lambda _engine: self.close_all())
        _all_idle_connections.add(self)

    def take(self) -> Any:
        """Return an idle connection, or a new one from the engine's pool."""
        try:
            return self._connections.pop()
        except IndexError:
            return self.engine.raw_connection()

    def give_back(self, connection: Any, generation: int) -> None:
        """Keep ``connection``, taken at ``generation``, for the next statement.

        It goes back to the pool instead when enough are kept, or when the
        engine was disposed or a lost connection dropped the others since it
        was taken.
        """
        if generation == self.generation and len(self._connections) < self._keep:
            self._connections.append(connection)
        else:
            connection.close()

    def close_all(self) -> None:
        """Return every idle connection to the pool, and those in use once they come back."""
        self.generation += 1
        connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def _forget_after_fork(self) -> None:
        # Closing would end the parent's sessions on the shared sockets, and so
        # would the garbage collector: keep the objects alive and unused.
        _inherited_from_parent.extend(self._connections)
        self._connections = []


_all_idle_connections: weakref.WeakSet[_IdleConnections] = weakref.WeakSet()

#: Engines made by :func:`create_store_engine`, which get a new pool in a child process.
_engines_made: weakref.WeakSet[Engine] = weakref.WeakSet()

#: Pools and connections a child process inherited, kept referenced and never used.
_inherited_from_parent: list[Any] = []


def _start_fresh_after_fork() -> None:
    """Give a forked child its own connections and leave the parent's alone.

    Runs in the child, as with ``gunicorn --preload`` when the master used
    the store before forking its workers. Engines that the app passed in are
    the app's to handle, as SQLAlchemy's pooling documentation describes.
    """
    for idle in list(_all_idle_connections):
        idle._forget_after_fork()
    for engine in list(_engines_made):
        _inherited_from_parent.append(engine.pool)
        engine.pool = engine.pool.recreate()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_start_fresh_after_fork)


def _to_session_row(row: Any) -> SessionRow | None:
    if row is None:
        return None
    if len(row) == len(SessionRow._fields) and type(row[2]) is bytes:
        # Every supported driver returns ints for the BIGINT columns.
        return SessionRow._make(row)
    return SessionRow(
        row[0],
        row[1],
        bytes(row[2]),
        row[3],
        int(row[4]),
        int(row[5]),
        int(row[6]),
        row[7],
        *row[8:10],
    )
