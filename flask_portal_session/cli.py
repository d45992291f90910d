"""The ``flask portal-session`` command group: migrations, developers, API keys, sessions.

Flask finds the group through the ``flask.commands`` entry point. Every command
loads the app itself instead of using Flask's ``with_appcontext``, so an
invalid PORTAL_* setting ends the command with the one-line ``ConfigError``
message instead of a traceback.

Exit codes: 0 on success. 1 when the command fails: an invalid value, an
unknown developer or key, a database that is unreachable or not migrated, or
an invalid config. 2 when click rejects the command line itself: a missing
argument, an unknown option, or a value of the wrong type.

No command prints a secret, a password, a session id or a whole row key. The
only exception is ``keys create``, which prints the new API key once.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from flask import current_app
from flask.cli import AppGroup, ScriptInfo
from sqlalchemy import inspect
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from . import migrate
from .config import MIN_SECRET_LENGTH, ConfigError, secret_weakness
from .credentials import DEVELOPER_STATUSES, CredentialError, Developer
from .extension import EXTENSION_KEY, MAX_CLEANUP_BATCH, PortalState
from .store import api_keys_table, developers_table, sessions_table

__all__ = ["load_portal_state", "portal_session_cli"]

#: Number of hex characters of a row key that ``sessions list`` prints. The rest is never printed.
ROW_KEY_PREFIX_LENGTH = 8

#: Default of ``cleanup --batch-size``, the same as ``PortalSession.cleanup``.
CLEANUP_BATCH_SIZE = 5000

_UPGRADE_HINT = "Run 'flask portal-session db upgrade' to create them."

_Command = TypeVar("_Command", bound=Callable[..., Any])


@click.group("portal-session", cls=AppGroup)
def portal_session_cli() -> None:
    """Manage flask_portal_session: migrations, developers, API keys and sessions."""


# -- loading the app ---------------------------------------------------------


def load_portal_state() -> PortalState:
    """Return the PortalSession state of the current app, loading the app if needed.

    The app comes from the active app context or else from the click context's
    ``ScriptInfo`` (``flask --app``), and its app context stays pushed until the
    command ends. Raises ``click.ClickException`` with a one-line reason when
    the app's PORTAL_* config is invalid or the app has no PortalSession.
    """
    if not current_app:
        context = click.get_current_context()
        try:
            app = context.ensure_object(ScriptInfo).load_app()
        except ConfigError as error:
            raise click.ClickException(_one_line(str(error))) from None
        context.with_resource(app.app_context())

    state = current_app.extensions.get(EXTENSION_KEY)
    if state is None:
        raise click.ClickException(
            f"The app {current_app.name!r} does not use flask_portal_session. "
            "Call PortalSession(app) or portal.init_app(app) where the app is created."
        )
    return state


def _portal_command(function: _Command) -> _Command:
    """Run ``function(state, **params)`` and turn expected failures into one-line errors.

    Invalid developer-store input, database errors and Alembic errors become
    ``click.ClickException`` (exit code 1) with a message that names the fix.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = load_portal_state()
        try:
            return function(state, *args, **kwargs)
        except CredentialError as error:
            raise click.ClickException(_one_line(str(error))) from None
        except (CommandError, RevisionError) as error:
            # An unknown revision, or a downgrade target above the current one.
            raise click.ClickException(
                f"Alembic failed: {_one_line(str(error))}. "
                "Run 'flask portal-session db current' to see where the database is."
            ) from None
        except SQLAlchemyError as error:
            raise click.ClickException(_database_error_message(state, error)) from None

    return wrapper  # type: ignore[return-value]


# -- db ----------------------------------------------------------------------


@portal_session_cli.group("db", cls=AppGroup)
def db_group() -> None:
    """Create, upgrade or remove the session tables with the shipped migrations."""


@db_group.command("upgrade", with_appcontext=False)
@click.argument("revision", default="head")
@_portal_command
def db_upgrade(state: PortalState, revision: str) -> None:
    """Upgrade the session database to REVISION (default: head)."""
    _migrate(state, migrate.upgrade, revision, "Upgraded")


@db_group.command("downgrade", with_appcontext=False)
@click.argument("revision")
@_portal_command
def db_downgrade(state: PortalState, revision: str) -> None:
    """Downgrade the session database to REVISION. 'base' drops every session table."""
    _migrate(state, migrate.downgrade, revision, "Downgraded")


def _migrate(state: PortalState, action: Callable[[Any, str], None], revision: str, verb: str) -> None:
    """Run ``action(engine, revision)`` and print the revision before and after it."""
    before = migrate.current_revision(state.engine)
    action(state.engine, revision)
    after = migrate.current_revision(state.engine)
    where = _describe_database(state.engine.url)
    if before == after:
        click.echo(f"The {where} is already at revision {_describe_revision(after)}. Nothing to do.")
    else:
        click.echo(f"{verb} the {where} from {_describe_revision(before)} to {_describe_revision(after)}.")


@db_group.command("current", with_appcontext=False)
@_portal_command
def db_current(state: PortalState) -> None:
    """Print the revision of the session database and whether it is the newest one."""
    current = migrate.current_revision(state.engine)
    head = migrate.head_revision()
    if current == head:
        click.echo(f"{current} (head)")
    elif current is None:
        click.echo(f"none: the session tables do not exist yet (head is {head}). {_UPGRADE_HINT}")
    else:
        click.echo(f"{current} (not the head, which is {head}). Run 'flask portal-session db upgrade'.")


# -- developers --------------------------------------------------------------


@portal_session_cli.group("developers", cls=AppGroup)
def developers_group() -> None:
    """Manage developers of the built-in developer store."""


@developers_group.command("add", with_appcontext=False)
@click.argument("email")
@click.option(
    "--status",
    default="approved",
    show_default=True,
    help=f"Status of the new developer: {', '.join(DEVELOPER_STATUSES)}.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--no-password", is_flag=True, help="Create the developer without a password (API-key logins only).")
@_portal_command
def developers_add(state: PortalState, email: str, status: str, password_stdin: bool, no_password: bool) -> None:
    """Create a developer. The password is prompted for twice unless --password-stdin is given."""
    _check_status(status)
    if password_stdin and no_password:
        raise click.ClickException("--password-stdin and --no-password exclude each other. Give one of them.")
    if state.developers.get_by_email(email) is not None:
        raise click.ClickException(
            f"A developer with the email {email!r} already exists. "
            "Change it with 'flask portal-session developers set-status' or 'set-password'."
        )

    password = None if no_password else _read_password(password_stdin)
    developer = state.developers.create(email, password, status=status)
    click.echo(f"Created developer {developer.email} with id {developer.id} and status {developer.status}.")


@developers_group.command("list", with_appcontext=False)
@_portal_command
def developers_list(state: PortalState) -> None:
    """List every developer, oldest first."""
    developers = state.developers.list()
    if not developers:
        click.echo("No developers. Add one with 'flask portal-session developers add EMAIL'.")
        return

    now = state.now()
    rows = [
        (
            developer.id,
            developer.email,
            developer.status,
            str(developer.failed_logins),
            _format_time(developer.locked_until) if (developer.locked_until or 0) > now else "-",
            _format_time(developer.created_at),
        )
        for developer in developers
    ]
    _echo_table(("ID", "EMAIL", "STATUS", "FAILED LOGINS", "LOCKED UNTIL", "CREATED"), rows)


@developers_group.command("set-status", with_appcontext=False)
@click.argument("email")
@click.argument("status")
@_portal_command
def developers_set_status(state: PortalState, email: str, status: str) -> None:
    """Set a developer's STATUS. Any status but approved also revokes their sessions."""
    _check_status(status)
    developer = state.portal.set_developer_status(email, status)
    message = f"Developer {developer.email} is now {developer.status}."
    if developer.status != "approved":
        message += " Their sessions were revoked."
    click.echo(message)


@developers_group.command("set-password", with_appcontext=False)
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@_portal_command
def developers_set_password(state: PortalState, email: str, password_stdin: bool) -> None:
    """Replace a developer's password and revoke their sessions."""
    state.developers.require(email)
    password = _read_password(password_stdin)
    developer = state.portal.set_developer_password(email, password)
    click.echo(f"Changed the password of {developer.email}. Their sessions were revoked.")


@developers_group.command("unlock", with_appcontext=False)
@click.argument("email")
@_portal_command
def developers_unlock(state: PortalState, email: str) -> None:
    """Clear a developer's failed-login count and lockout."""
    developer = state.developers.unlock(email)
    click.echo(f"Unlocked {developer.email}: the failed-login count is 0.")


# -- keys ----------------------------------------------------------------------


@portal_session_cli.group("keys", cls=AppGroup)
def keys_group() -> None:
    """Manage API keys of the built-in developer store."""


@keys_group.command("create", with_appcontext=False)
@click.argument("email")
@click.option("--name", default=None, help="A label for the key, at most 100 characters.")
@_portal_command
def keys_create(state: PortalState, email: str, name: str | None) -> None:
    """Create an API key for a developer and print it once.

    The key alone goes to standard output, so ``KEY=$(flask portal-session keys
    create EMAIL)`` captures it. The notes go to standard error.
    """
    developer = state.developers.require(email)
    key, record = state.developers.create_api_key(developer.email, name=name)
    click.echo(f"Created API key {record.id} (prefix {record.prefix}) for {developer.email}.", err=True)
    click.echo(key)
    click.echo("This key is shown only once: store it now. Only its hash is kept.", err=True)


@keys_group.command("list", with_appcontext=False)
@click.argument("email")
@_portal_command
def keys_list(state: PortalState, email: str) -> None:
    """List a developer's API keys, revoked ones included."""
    developer = state.developers.require(email)
    keys = state.developers.list_api_keys(developer.id)
    if not keys:
        click.echo(f"{developer.email} has no API keys. Create one with 'flask portal-session keys create EMAIL'.")
        return

    rows = [
        (
            str(key.id),
            key.prefix,
            key.name or "-",
            _format_time(key.created_at),
            _format_time(key.last_used_at),
            _format_time(key.revoked_at),
        )
        for key in keys
    ]
    _echo_table(("ID", "PREFIX", "NAME", "CREATED", "LAST USED", "REVOKED"), rows)


@keys_group.command("revoke", with_appcontext=False)
@click.argument("key_id", metavar="ID", type=int)
@_portal_command
def keys_revoke(state: PortalState, key_id: int) -> None:
    """Revoke the API key with this ID. Logins with it fail from now on."""
    if not state.developers.revoke_api_key(key_id):
        raise click.ClickException(
            f"No active API key has the id {key_id}: it does not exist or is already revoked. "
            "List keys with 'flask portal-session keys list EMAIL'."
        )
    click.echo(f"Revoked API key {key_id}.")


# -- sessions ------------------------------------------------------------------


@portal_session_cli.group("sessions", cls=AppGroup)
def sessions_group() -> None:
    """List or revoke stored sessions."""


@sessions_group.command("list", with_appcontext=False)
@click.option("--developer", "email", default=None, help="Only the sessions of the developer with this email.")
@click.option("--developer-id", default=None, help="Only the sessions of this developer id (an app's own store).")
@click.option("--all", "include_expired", is_flag=True, help="Include expired rows not yet deleted by cleanup.")
@_portal_command
def sessions_list(state: PortalState, email: str | None, developer_id: str | None, include_expired: bool) -> None:
    """List stored sessions, each shown by the first characters of its row key."""
    developer_id = _resolve_developer_id(state, email, developer_id)
    now = state.now()
    rows = state.store.list_sessions(developer_id, now=None if include_expired else now)
    if not rows:
        click.echo("No sessions.")
        return

    emails = {developer.id: developer.email for developer in state.developers.list()}
    table = []
    for row in rows:
        if row.developer_id is None:
            owner = "(anonymous)"
        else:
            owner = emails.get(row.developer_id, row.developer_id)
        if row.expires_at <= now:
            condition = "expired"
        elif row.replaced_by is not None:
            condition = "replaced"
        else:
            condition = "active"
        table.append(
            (
                row.key[:ROW_KEY_PREFIX_LENGTH],
                owner,
                _format_time(row.created_at),
                _format_time(row.expires_at),
                _format_time(row.last_seen_at),
                condition,
            )
        )
    _echo_table(("KEY PREFIX", "DEVELOPER", "CREATED", "EXPIRES", "LAST SEEN", "STATE"), table)


@sessions_group.command("revoke", with_appcontext=False)
@click.option("--developer", "email", default=None, help="Revoke the sessions of the developer with this email.")
@click.option("--developer-id", default=None, help="Revoke the sessions of this developer id (an app's store).")
@_portal_command
def sessions_revoke(state: PortalState, email: str | None, developer_id: str | None) -> None:
    """Delete every session of one developer and print how many there were."""
    resolved = _resolve_developer_id(state, email, developer_id)
    if resolved is None:
        raise click.ClickException("Say whose sessions to revoke: give --developer EMAIL or --developer-id ID.")
    count = state.portal.revoke_sessions(resolved)
    click.echo(f"Revoked {count} {_plural(count, 'session')} of {email or resolved}.")


# -- cleanup -------------------------------------------------------------------


@portal_session_cli.command("cleanup", with_appcontext=False)
@click.option(
    "--batch-size",
    type=int,
    default=CLEANUP_BATCH_SIZE,
    show_default=True,
    help="Most rows deleted per transaction, at least 1; batches start smaller and grow while fast.",
)
@_portal_command
def cleanup(state: PortalState, batch_size: int) -> None:
    """Delete expired session rows in batches and print how many were deleted."""
    if not 1 <= batch_size <= MAX_CLEANUP_BATCH:
        raise click.ClickException(
            f"Invalid --batch-size {batch_size}: use a whole number from 1 to {MAX_CLEANUP_BATCH}."
        )
    count = state.portal.cleanup(batch_size=batch_size)
    click.echo(f"Deleted {count} expired {_plural(count, 'session')}.")


# -- check-config ----------------------------------------------------------------


@portal_session_cli.command("check-config", with_appcontext=False)
@click.option("--strict", is_flag=True, help="Exit with status 1 when there is any warning.")
def check_config(strict: bool) -> None:
    """Print the effective settings, a sample Set-Cookie header and every warning.

    Secrets are shown as their length and whether they look weak, never as
    values. The database is not contacted. Exits 1 when the config is invalid,
    or with --strict when there are warnings.
    """
    state = load_portal_state()
    config = state.config
    conf = state.session_conf

    click.echo("Settings")
    _echo_pairs(
        [
            ("PORTAL_AUTH", ", ".join(config.auth_methods)),
            ("PORTAL_AUTH_CONF", _format_fields(config.auth_conf)),
            ("PORTAL_AUTH_LOGIN_ATTEMPTS", _describe_login_attempts(config.login_attempts)),
            ("PORTAL_SESSION_DATABASE_URI", _describe_database_setting(state)),
            ("PORTAL_GUI_HOST", config.gui_origin or "not set"),
            ("PORTAL_API_URL", config.api_url or "not set"),
            ("PORTAL_LOGIN_VIEW", config.login_view or "not set"),
            ("PORTAL_URL_PREFIX", json.dumps(config.url_prefix)),
            ("PORTAL_PASSWORD_HASH_CONF", _format_fields(config.password_hash)),
        ]
    )

    click.echo("PORTAL_SESSION_CONF")
    pairs = [
        ("secret", _describe_secret(conf.secret)),
        ("secret_fallbacks", _describe_fallbacks(conf.secret_fallbacks)),
    ]
    for field in dataclasses.fields(conf):
        if field.name not in ("secret", "secret_fallbacks"):
            pairs.append((field.name, _format_value(getattr(conf, field.name))))
    if conf.cookie_samesite is None:
        index = [name for name, _ in pairs].index("cookie_samesite")
        pairs[index] = ("cookie_samesite", 'null ("off": no SameSite attribute)')
    _echo_pairs(pairs)

    click.echo("Sample Set-Cookie (<token> stands for a session token)")
    click.echo(f"  Set-Cookie: {_sample_set_cookie(state)}")

    warnings = config.warnings
    click.echo(f"Warnings ({len(warnings)})")
    for warning in warnings:
        click.echo(f"  - {warning}")

    if strict and warnings:
        count = len(warnings)
        raise click.ClickException(f"The config has {count} {_plural(count, 'warning')} and --strict is set.")
    click.echo("The configuration is valid.")


# -- helpers ---------------------------------------------------------------------


def _read_password(from_stdin: bool) -> str:
    """Return a password from the first line of standard input or from a hidden, confirmed prompt."""
    if not from_stdin:
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise click.ClickException(
            "--password-stdin read no password: the first line of standard input is empty. "
            "Pipe the password in, such as: printf '%s\\n' \"$PASSWORD\" | flask portal-session ..."
        )
    return password


def _check_status(status: str) -> None:
    if status not in DEVELOPER_STATUSES:
        raise click.ClickException(
            f"Invalid developer status {status!r}: use one of {', '.join(DEVELOPER_STATUSES)}."
        )


def _resolve_developer_id(state: PortalState, email: str | None, developer_id: str | None) -> str | None:
    """Return the developer id named by --developer or --developer-id, or None when neither is given."""
    if email is not None and developer_id is not None:
        raise click.ClickException("--developer and --developer-id exclude each other. Give one of them.")
    if email is not None:
        developer: Developer = state.developers.require(email)
        return developer.id
    return developer_id


def _database_error_message(state: PortalState, error: SQLAlchemyError) -> str:
    """Explain a database error: server unreachable, tables missing, or the driver's message.

    A second, short connection finds out which. Only the driver's first line is
    shown, never the SQL statement or its bound parameters.
    """
    where = _describe_database(state.engine.url)
    try:
        with state.engine.connect() as connection:
            inspector = inspect(connection)
            missing = [
                table.name
                for table in (developers_table, sessions_table, api_keys_table)
                if not inspector.has_table(table.name)
            ]
    except SQLAlchemyError as connect_error:
        return (
            f"Cannot connect to the {where}: {_driver_message(connect_error)}. "
            "Check PORTAL_SESSION_DATABASE_URI and that the database server is running."
        )
    if missing:
        return f"The {where} has no {_plural(len(missing), 'table')} {', '.join(missing)}. {_UPGRADE_HINT}"
    return f"The {where} failed: {_driver_message(error)}."


def _driver_message(error: SQLAlchemyError) -> str:
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return first.rstrip(".")


def _describe_database(url: URL) -> str:
    """Name the database without its password or query string, such as "SQLite database /srv/portal.sqlite3"."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            return "in-memory SQLite database"
        return f"SQLite database {url.database}"
    host = url.host or "localhost"
    if url.port is not None:
        host = f"{host}:{url.port}"
    return f"{backend} database {url.database or '(default)'} on {host}"


def _describe_database_setting(state: PortalState) -> str:
    description = _describe_database(state.engine.url)
    if state.config.database_uri_is_default:
        description += " (the embedded default: no database URL is set)"
    return description


def _describe_revision(revision: str | None) -> str:
    if revision is None:
        return "none (no session tables)"
    if revision == migrate.head_revision():
        return f"{revision} (head)"
    return revision


def _describe_login_attempts(attempts: int) -> str:
    if attempts == 0:
        return "0 (lockout off)"
    return f"{attempts} consecutive failed logins before a lockout"


def _describe_secret(secret: str) -> str:
    weakness = _secret_weakness(secret)
    text = f"{len(secret)} {_plural(len(secret), 'character')}"
    return f"{text} (weak: {weakness})" if weakness else f"{text}, not weak"


def _describe_fallbacks(fallbacks: Sequence[str]) -> str:
    if not fallbacks:
        return "none"
    parts = [f"[{index}] {_describe_secret(secret)}" for index, secret in enumerate(fallbacks)]
    return f"{len(fallbacks)}: " + "; ".join(parts)


def _secret_weakness(secret: str) -> str | None:
    """Return why a secret looks weak, by the rule the config warnings use, or None."""
    weakness = secret_weakness(secret)
    if weakness == "placeholder":
        return "a well-known placeholder"
    if weakness == "short":
        return f"shorter than {MIN_SECRET_LENGTH} characters"
    return None


def _sample_set_cookie(state: PortalState) -> str:
    """Build the Set-Cookie header a login would send, with a placeholder token."""
    now = state.now()
    # A Secure cookie is meant for HTTPS requests; building the sample on a
    # plain-HTTP request would log the Secure-over-HTTP warning for a sound config.
    base_url = "https://localhost/" if state.session_conf.cookie_secure else "http://localhost/"
    with current_app.test_request_context(base_url=base_url):
        response = current_app.response_class()
        state.interface.set_cookie(response, "<token>", state.expires_at_for(now, now))
    return response.headers.get("Set-Cookie", "")


def _format_fields(value: Any) -> str:
    pairs = [f"{field.name}={_format_value(getattr(value, field.name))}" for field in dataclasses.fields(value)]
    return ", ".join(pairs)


def _format_value(value: Any) -> str:
    """Write a setting's value as it would appear in the JSON config."""
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


def _format_time(epoch_seconds: int | None) -> str:
    """Write epoch seconds as ISO 8601 UTC, such as 2027-01-15T08:00:00Z, or "-" for None."""
    if epoch_seconds is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(epoch_seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(header), *(len(row[index]) for row in rows)) for index, header in enumerate(headers)]
    for line in (headers, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def _echo_pairs(pairs: Sequence[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        click.echo(f"  {name.ljust(width)}  {value}")


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def _one_line(text: str) -> str:
    return " ".join(text.split())
