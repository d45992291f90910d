"""Parse and validate the PORTAL_* settings of a Flask app into frozen objects.

This module owns every configuration default, the rules each setting must follow,
and the wording of the errors and warnings about them. ``load_config`` reads a whole
``app.config``. The ``parse_*`` functions read one setting, given as a mapping or as
a JSON object string (the form an environment variable takes).

Errors raise ``ConfigError`` at the first problem found. The message names the
setting and key, shows the rejected value and gives the fix. The values of
``secret`` and ``secret_fallbacks`` never appear in a message, and neither does a
database URL, because it may contain a password. Findings that do not stop the app,
such as a weak secret, are returned as warnings and logged by ``load_config``.
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import json
import logging
import os
import re
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import SplitResult, urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

__all__ = [
    "AUTH_CONF_DEFAULTS",
    "AUTH_METHODS",
    "DEFAULT_DATABASE_FILENAME",
    "GUI_PROTOCOL_DEFAULT",
    "LOGIN_ATTEMPTS_DEFAULT",
    "LOGOUT_METHODS",
    "MAX_SECONDS",
    "MIN_SECRET_LENGTH",
    "PASSWORD_HASH_DEFAULTS",
    "PLACEHOLDER_SECRETS",
    "secret_weakness",
    "SESSION_DEFAULTS",
    "SESSION_KEY_ALIASES",
    "SETTINGS",
    "URL_PREFIX_DEFAULT",
    "AuthConf",
    "ConfigError",
    "PasswordHashConf",
    "PortalConfig",
    "SessionConf",
    "load_config",
    "parse_auth_conf",
    "parse_password_hash_conf",
    "parse_session_conf",
]

logger = logging.getLogger(__name__)


# Defaults and limits. Every default of every setting is defined here and nowhere else.

#: Defaults of PORTAL_SESSION_CONF by canonical key, in the order the keys are
#: checked. ``secret`` is required and has no default. Times are in seconds, and
#: 0 turns cookie_idletime and absolute_timeout off. The values follow Kong's
#: Session plugin (2.x names) except absolute_timeout, secret_fallbacks and
#: max_session_bytes, which this package adds.
SESSION_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "secret_fallbacks": (),
        "cookie_name": "session",
        "storage": "kong",
        "cookie_lifetime": 3600,
        "cookie_renew": 600,
        "cookie_idletime": 0,
        "cookie_discard": 10,
        "absolute_timeout": 86400,
        "cookie_path": "/",
        "cookie_domain": None,
        "cookie_samesite": "Strict",
        "cookie_httponly": True,
        "cookie_secure": True,
        "cookie_persistent": False,
        "logout_methods": ("POST", "DELETE"),
        "logout_query_arg": "session_logout",
        "logout_post_arg": "session_logout",
        "max_session_bytes": 65536,
    }
)

#: Kong 3.x names accepted in PORTAL_SESSION_CONF, mapped to the canonical Kong 2.x
#: key. An alias may appear together with its canonical key only at the same value.
SESSION_KEY_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "rolling_timeout": "cookie_lifetime",
        "idling_timeout": "cookie_idletime",
        "stale_ttl": "cookie_discard",
        "cookie_same_site": "cookie_samesite",
        "cookie_http_only": "cookie_httponly",
    }
)

#: Defaults of PORTAL_AUTH_CONF. key_in_query is false here although Kong's
#: key-auth plugin defaults it to true, because keys in URLs end up in access logs.
AUTH_CONF_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "realm": "portal",
        "key_names": ("apikey",),
        "key_in_header": True,
        "key_in_query": False,
        "key_in_body": False,
    }
)

#: Defaults of PORTAL_PASSWORD_HASH_CONF: the argon2id parameters of
#: ``argon2.PasswordHasher()`` in argon2-cffi 25.1 (memory_cost in KiB).
PASSWORD_HASH_DEFAULTS: Mapping[str, int] = MappingProxyType(
    {
        "time_cost": 3,
        "memory_cost": 65536,
        "parallelism": 4,
    }
)

#: Values accepted in PORTAL_AUTH.
AUTH_METHODS: tuple[str, ...] = ("basic-auth", "key-auth")

#: HTTP methods allowed in logout_methods.
LOGOUT_METHODS: tuple[str, ...] = ("GET", "POST", "DELETE")

#: Default of PORTAL_AUTH_LOGIN_ATTEMPTS: consecutive failed logins before a lockout.
LOGIN_ATTEMPTS_DEFAULT = 10

#: Default of PORTAL_GUI_PROTOCOL, the scheme of a PORTAL_GUI_HOST written without one.
GUI_PROTOCOL_DEFAULT = "http"

#: Default of PORTAL_URL_PREFIX: /auth and /session are mounted at the app's root.
URL_PREFIX_DEFAULT = ""

#: File name of the embedded SQLite database, created in the app's instance folder
#: when neither PORTAL_SESSION_DATABASE_URI nor SQLALCHEMY_DATABASE_URI is set.
DEFAULT_DATABASE_FILENAME = "portal_session.sqlite3"

#: Secrets shorter than this many characters get a warning.
MIN_SECRET_LENGTH = 32

#: Secrets that get a warning because they appear in documentation and examples,
#: compared in lower case. Any value written as ``<SOMETHING>`` also counts.
PLACEHOLDER_SECRETS: frozenset[str] = frozenset(
    {
        "change-this-secret",
        "super-secret",
        "<set_secret>",
        "secret",
        "changeme",
        "change-me",
        "changeit",
        "my-secret",
        "mysecret",
        "secret-key",
        "secret_key",
        "your-secret",
        "password",
    }
)

#: Largest accepted time setting in seconds (ten years). It keeps cookie expiry
#: dates inside the range of ``datetime`` and catches values given in milliseconds.
MAX_SECONDS = 10 * 365 * 86400

#: Every setting that ``load_config`` reads from app.config.
SETTINGS: tuple[str, ...] = (
    "PORTAL_AUTH",
    "PORTAL_AUTH_CONF",
    "PORTAL_AUTH_LOGIN_ATTEMPTS",
    "PORTAL_SESSION_CONF",
    "PORTAL_SESSION_DATABASE_URI",
    "PORTAL_GUI_HOST",
    "PORTAL_GUI_PROTOCOL",
    "PORTAL_API_URL",
    "PORTAL_LOGIN_VIEW",
    "PORTAL_URL_PREFIX",
    "PORTAL_PASSWORD_HASH_CONF",
)


class ConfigError(ValueError):
    """An invalid or missing setting, raised by ``init_app`` before the app serves.

    The message names the setting and key, the rejected value and the fix.
    ``setting`` is the app.config name (such as ``"PORTAL_SESSION_CONF"``) and
    ``key`` the key inside it, or None for a whole setting or a rule that spans
    several settings.
    """

    def __init__(self, message: str, *, setting: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting
        self.key = key


@dataclass(frozen=True)
class SessionConf:
    """Validated PORTAL_SESSION_CONF: the session cookie, its timeouts and logout."""

    #: Key material for cookie tags and session encryption. Left out of repr().
    secret: str = field(repr=False)
    #: Older secrets, tried only to read cookies and rows sealed before a rotation.
    secret_fallbacks: tuple[str, ...] = field(repr=False)
    cookie_name: str
    #: Always "kong": session rows live in the database.
    storage: str
    #: Seconds a session stays valid after it is created or renewed.
    cookie_lifetime: int
    #: Seconds left before expiry at which a request renews the session.
    cookie_renew: int
    #: Seconds without a request after which the session ends, 0 = off.
    cookie_idletime: int
    #: Seconds the replaced row stays valid after a renewal.
    cookie_discard: int
    #: Seconds after creation at which the session ends whatever renewals, 0 = off.
    absolute_timeout: int
    cookie_path: str
    cookie_domain: str | None
    #: "Strict", "Lax", "None", or None to send no SameSite attribute.
    cookie_samesite: str | None
    cookie_httponly: bool
    cookie_secure: bool
    #: True adds Expires and Max-Age, so the cookie survives a browser restart.
    cookie_persistent: bool
    #: Upper-case subset of GET, POST and DELETE.
    logout_methods: tuple[str, ...]
    logout_query_arg: str
    logout_post_arg: str
    #: Largest serialized session, in bytes, that is stored.
    max_session_bytes: int


@dataclass(frozen=True)
class AuthConf:
    """Validated PORTAL_AUTH_CONF: the Basic realm and where API keys are read from."""

    realm: str
    key_names: tuple[str, ...]
    key_in_header: bool
    key_in_query: bool
    key_in_body: bool


@dataclass(frozen=True)
class PasswordHashConf:
    """Validated PORTAL_PASSWORD_HASH_CONF: argon2id parameters (memory_cost in KiB)."""

    time_cost: int
    memory_cost: int
    parallelism: int


@dataclass(frozen=True)
class PortalConfig:
    """Every PORTAL_* setting of one app, validated, with defaults filled in."""

    #: "basic-auth" and/or "key-auth", in the order given.
    auth_methods: tuple[str, ...]
    auth_conf: AuthConf
    session_conf: SessionConf
    #: Consecutive failed logins before a lockout, 0 = off.
    login_attempts: int
    #: SQLAlchemy URL of the session store. Left out of repr() because it may
    #: contain a password.
    database_uri: str = field(repr=False)
    #: True when neither database setting was given and the embedded SQLite file is used.
    database_uri_is_default: bool
    #: Origin of the portal GUI, such as "http://portal.xyz.com", allowed by CORS.
    gui_origin: str | None
    api_url: str | None
    #: Endpoint that login_required redirects HTML requests to.
    login_view: str | None
    #: Path where /auth and /session are mounted: "" or "/something" without a trailing "/".
    url_prefix: str
    password_hash: PasswordHashConf
    #: Non-fatal findings, one sentence each with its fix. load_config logs them too.
    warnings: tuple[str, ...]


def load_config(config: Mapping[str, Any], instance_path: str) -> PortalConfig:
    """Parse and validate every PORTAL_* setting of a Flask app.config.

    ``instance_path`` is the folder of the default SQLite database. Settings set to
    None count as not set. Raises ConfigError at the first invalid or missing
    setting. Each warning is logged with ``logger.warning`` and kept in
    ``PortalConfig.warnings``.
    """
    warnings = _unknown_setting_warnings(config)

    auth_methods = _parse_auth_methods(config)
    auth_conf = parse_auth_conf(config.get("PORTAL_AUTH_CONF"))
    warnings.extend(_check_key_auth(auth_methods, auth_conf))

    session_value = config.get("PORTAL_SESSION_CONF")
    if session_value is None:
        raise ConfigError(
            "PORTAL_SESSION_CONF is missing. Set it to a dict or JSON object with at least a secret, "
            f'such as {{"secret": "<random string>"}}, and use a secret {_SECRET_HINT}.'
            + _near_miss_hint(config, "PORTAL_SESSION_CONF"),
            setting="PORTAL_SESSION_CONF",
        )
    session_conf, session_warnings = parse_session_conf(session_value)
    warnings.extend(session_warnings)

    login_attempts = LOGIN_ATTEMPTS_DEFAULT
    if config.get("PORTAL_AUTH_LOGIN_ATTEMPTS") is not None:
        login_attempts = _integer(
            _Path("PORTAL_AUTH_LOGIN_ATTEMPTS"),
            config["PORTAL_AUTH_LOGIN_ATTEMPTS"],
            minimum=0,
            example=LOGIN_ATTEMPTS_DEFAULT,
            noun="an integer count of failed logins",
        )

    database_uri, database_uri_is_default = _resolve_database_uri(config, instance_path)

    gui = _parse_gui_host(config.get("PORTAL_GUI_HOST"), config.get("PORTAL_GUI_PROTOCOL"))
    api = _parse_api_url(config.get("PORTAL_API_URL"))
    _check_cookie_reaches_hosts(session_conf, gui, api)

    login_view = _parse_login_view(config.get("PORTAL_LOGIN_VIEW"))
    url_prefix = _parse_url_prefix(config.get("PORTAL_URL_PREFIX"))
    password_hash = parse_password_hash_conf(config.get("PORTAL_PASSWORD_HASH_CONF"))

    for warning in warnings:
        logger.warning("%s", warning)

    return PortalConfig(
        auth_methods=auth_methods,
        auth_conf=auth_conf,
        session_conf=session_conf,
        login_attempts=login_attempts,
        database_uri=database_uri,
        database_uri_is_default=database_uri_is_default,
        gui_origin=gui.origin if gui is not None else None,
        api_url=api.url if api is not None else None,
        login_view=login_view,
        url_prefix=url_prefix,
        password_hash=password_hash,
        warnings=tuple(warnings),
    )


def parse_session_conf(value: Mapping[str, Any] | str | bytes) -> tuple[SessionConf, list[str]]:
    """Validate PORTAL_SESSION_CONF and return it with its warnings.

    ``value`` is a mapping or a JSON object as str or bytes. Kong 3.x aliases are
    resolved to the canonical keys and missing keys take SESSION_DEFAULTS. Raises
    ConfigError on an unknown key, a wrong type, a value out of range or a
    conflicting alias. The warnings are not logged here.
    """
    setting = "PORTAL_SESSION_CONF"
    entries = _read_object(setting, value, ("secret", *SESSION_DEFAULTS), SESSION_KEY_ALIASES, secret=True)

    if "secret" not in entries:
        raise ConfigError(
            f'{setting} has no "secret". Add "secret" with a random string of at least '
            f"{MIN_SECRET_LENGTH} characters, {_SECRET_HINT}. Every worker and node must use "
            "the same secret.",
            setting=setting,
            key="secret",
        )
    values = {"secret": _validate_entries(setting, "secret", entries["secret"], _validate_secret)}
    for key, default in SESSION_DEFAULTS.items():
        if key in entries:
            values[key] = _validate_entries(setting, key, entries[key], _SESSION_VALIDATORS[key])
        else:
            values[key] = default

    conf = SessionConf(**values)
    _check_session_rules(conf)
    return conf, _session_warnings(conf)


def parse_auth_conf(value: Mapping[str, Any] | str | bytes | None) -> AuthConf:
    """Validate PORTAL_AUTH_CONF, a mapping or a JSON object string, None for all defaults.

    Raises ConfigError on an unknown key, a wrong type or an invalid value. Whether
    a key location is enabled is checked by ``load_config``, which reads PORTAL_AUTH.
    """
    setting = "PORTAL_AUTH_CONF"
    if value is None:
        return AuthConf(**AUTH_CONF_DEFAULTS)
    entries = _read_object(setting, value, tuple(AUTH_CONF_DEFAULTS), {})

    values = dict(AUTH_CONF_DEFAULTS)
    for key in AUTH_CONF_DEFAULTS:
        if key in entries:
            values[key] = _validate_entries(setting, key, entries[key], _AUTH_VALIDATORS[key])
    return AuthConf(**values)


def parse_password_hash_conf(value: Mapping[str, Any] | str | bytes | None) -> PasswordHashConf:
    """Validate PORTAL_PASSWORD_HASH_CONF, a mapping or a JSON object string, None for all defaults.

    Each parameter is an integer of at least 1 within Argon2's limits, and
    memory_cost (KiB) must be at least 8 times parallelism, as Argon2 requires.
    """
    setting = "PORTAL_PASSWORD_HASH_CONF"
    if value is None:
        return PasswordHashConf(**PASSWORD_HASH_DEFAULTS)
    entries = _read_object(setting, value, tuple(PASSWORD_HASH_DEFAULTS), {})

    values = dict(PASSWORD_HASH_DEFAULTS)
    for key in PASSWORD_HASH_DEFAULTS:
        if key in entries:
            values[key] = _validate_entries(setting, key, entries[key], _PASSWORD_HASH_VALIDATORS[key])

    if values["memory_cost"] < 8 * values["parallelism"]:
        raise ConfigError(
            f'{setting}["memory_cost"] must be at least 8 times parallelism ({values["parallelism"]}), '
            f"so at least {8 * values['parallelism']} KiB, got {values['memory_cost']}. "
            f"Raise memory_cost, such as to {PASSWORD_HASH_DEFAULTS['memory_cost']}, or lower parallelism.",
            setting=setting,
            key="memory_cost",
        )
    return PasswordHashConf(**values)


# Locations and value descriptions used in messages.

# Ends messages that ask for a new secret.
_SECRET_HINT = 'such as the output of python -c "import secrets; print(secrets.token_urlsafe(32))"'

# RFC 6265 cookie names and RFC 9110 header and method names are "tokens": visible
# ASCII characters other than separators.
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_CHARACTERS = "letters, digits and !#$%&'*+-.^_`|~"

_HOST_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)

_SAMESITE_VALUES: Mapping[str, str | None] = MappingProxyType(
    {"strict": "Strict", "lax": "Lax", "none": "None", "off": None}
)

_BOOLEAN_WORDS: Mapping[str, bool] = MappingProxyType(
    {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False, "1": True, "0": False}
)

_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlist = 6
_repr.maxtuple = 6
_repr.maxdict = 4
_repr.maxlevel = 2


@dataclass(frozen=True)
class _Path:
    """Location of a value: a setting, a key inside it and an index inside a list."""

    setting: str
    key: str | None = None
    index: int | None = None

    def __str__(self) -> str:
        text = self.setting
        if self.key is not None:
            text += f'["{self.key}"]'
        if self.index is not None:
            text += f"[{self.index}]"
        return text

    def item(self, index: int) -> _Path:
        return _Path(self.setting, self.key, index)

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self} {message}", setting=self.setting, key=self.key)


def _describe(value: Any) -> str:
    """Show a value and its type for a message, shortened to a few dozen characters."""
    if value is None:
        return "null (None)"
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (a boolean)"
    if isinstance(value, str):
        kind = "a string"
    elif isinstance(value, bytes):
        kind = "bytes"
    elif isinstance(value, int):
        kind = "an integer"
    elif isinstance(value, float):
        kind = "a float"
    elif isinstance(value, (list, tuple)):
        kind = "a list"
    elif isinstance(value, Mapping):
        kind = "an object"
    else:
        kind = f"a {type(value).__name__}"
    return f"{_short_repr(value)} ({kind})"


def _short_repr(value: Any) -> str:
    """Return a repr of a value shortened to a few dozen characters.

    Python refuses to convert an integer of more than 4300 digits to text (see
    ``sys.get_int_max_str_digits``), so such a value is described, not shown.
    """
    try:
        return _repr.repr(value)
    except ValueError:
        return "<a number too long to show>"


def _describe_type(value: Any) -> str:
    """Name a value's type without showing it, for secrets."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a value of type {type(value).__name__}"


def _describe_character(character: str) -> str:
    if character == " ":
        return "a space"
    if character.isspace() or not character.isprintable():
        return f"the control character {character!r}"
    return repr(character)


# Reading a setting into keys and values.


def _read_object(
    setting: str,
    value: Any,
    keys: tuple[str, ...],
    aliases: Mapping[str, str],
    *,
    secret: bool = False,
) -> dict[str, list[tuple[str, Any]]]:
    """Turn a mapping or JSON object into {canonical key: [(name as given, value), ...]}.

    The list has two entries when a key and its alias were both given. Raises
    ConfigError on a value that is not an object, a key that is not a string and
    an unknown key. With ``secret`` the value is never shown in a message.
    """
    if isinstance(value, (str, bytes)):
        value = _load_json_object(setting, value)
    elif not isinstance(value, Mapping):
        description = _describe_type(value) if secret else _describe(value)
        raise ConfigError(
            f"{setting} must be a dict or a JSON object string, got {description}. "
            f'Write it as {{"key": value, ...}}.',
            setting=setting,
        )

    entries: dict[str, list[tuple[str, Any]]] = {}
    for name, item in value.items():
        if not isinstance(name, str):
            raise ConfigError(
                f"{setting} has a key that is not a string: {_describe(name)}. Write every key as a string.",
                setting=setting,
            )
        canonical = aliases.get(name, name)
        if canonical not in keys:
            message = _unknown_key_message(setting, name, (*keys, *aliases))
            raise ConfigError(message, setting=setting, key=name)
        entries.setdefault(canonical, []).append((name, item))
    return entries


def _unknown_key_message(setting: str, name: str, known: tuple[str, ...]) -> str:
    message = f"{setting} has an unknown key {name!r}."
    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not matches:
        matches = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    if matches:
        return f"{message} Did you mean {matches[0]!r}?"
    return f"{message} Remove it. The known keys are: {', '.join(known)}."


def _validate_entries(
    setting: str,
    key: str,
    entries: list[tuple[str, Any]],
    validate: Callable[[_Path, Any], Any],
) -> Any:
    """Validate a key given once, or a key and its alias given at the same value."""
    values = {name: validate(_Path(setting, name), raw) for name, raw in entries}
    if len(values) == 1:
        return values[entries[0][0]]

    # Both the canonical key and its alias were given. They agree when they
    # normalize to the same value, so "lax" and "Lax" are no conflict.
    raw_values = dict(entries)
    alias = next(name for name in values if name != key)
    if values[key] != values[alias]:
        raise ConfigError(
            f'{setting} sets both "{key}" ({_short_repr(raw_values[key])}) and its Kong 3.x alias '
            f'"{alias}" ({_short_repr(raw_values[alias])}) to different values. Remove one of them.',
            setting=setting,
            key=key,
        )
    return values[key]


def _load_json_object(setting: str, text: str | bytes) -> dict[str, Any]:
    """Decode a JSON object, reporting errors with line, column and a likely cause.

    The document itself is never quoted, because it may contain the secret.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"{setting} is not valid UTF-8 ({error.reason} at byte {error.start}). Encode it as UTF-8.",
                setting=setting,
            ) from None
    if not text.strip():
        raise ConfigError(
            f'{setting} is an empty string. Set it to a JSON object such as {{"key": value}}, '
            "or leave it unset.",
            setting=setting,
        )

    try:
        value = json.loads(text, object_pairs_hook=lambda pairs: _reject_duplicate_keys(setting, pairs))
    except json.JSONDecodeError as error:
        raise ConfigError(_json_error_message(setting, text, error), setting=setting) from None
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(
            f"{setting} is nested too deeply to decode. Write a flat JSON object of settings.",
            setting=setting,
        ) from None
    except ValueError:
        # The json module raises a plain ValueError for an integer literal longer
        # than sys.get_int_max_str_digits() (4300 digits by default).
        raise ConfigError(
            f"{setting} contains a number too long to read. Write numbers of a few digits, such as 3600.",
            setting=setting,
        ) from None

    if not isinstance(value, dict):
        raise ConfigError(
            f"{setting} must be a JSON object, got {_describe_type(value)}. "
            f'Write it as {{"key": value, ...}}.',
            setting=setting,
        )
    return value


def _reject_duplicate_keys(setting: str, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ConfigError(
                f"{setting} has the key {name!r} twice, and JSON would silently keep only the last one. "
                "Remove one of them.",
                setting=setting,
                key=name,
            )
        result[name] = value
    return result


def _json_error_message(setting: str, text: str, error: json.JSONDecodeError) -> str:
    message = f"{setting} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
    next_character = text[error.pos : error.pos + 1]

    if error.msg == "Expecting ',' delimiter":
        previous_line = text[: error.pos].rstrip().count("\n") + 1
        return (
            f"{message} A comma is probably missing after the previous member, which ends on line "
            f'{previous_line}. Separate members with commas, as in {{"a": 1, "b": 2}}. '
            "The examples in Kong's Dev Portal documentation omit them."
        )
    if _is_trailing_comma(text, error.pos):
        return f"{message} Remove the trailing comma after the last member."
    if next_character == "'":
        return f"{message} JSON needs double quotes around keys and strings."
    if next_character == "<":
        return f"{message} Replace the <PLACEHOLDER> with a real value."
    return f"{message} Fix the JSON syntax at that position."


def _is_trailing_comma(text: str, position: int) -> bool:
    """Tell whether a decode error sits at a comma followed by "}" or "]".

    Python 3.13 reports such an error at the comma, older versions after it.
    """
    before = text[:position].rstrip()
    after = text[position:].lstrip()
    if after.startswith(","):
        after = after[1:].lstrip()
    elif not before.endswith(","):
        return False
    return after[:1] in ("}", "]")


# Value validators. Each takes the value's location and the raw value, and
# returns the normalized value or raises ConfigError.


def _integer(
    path: _Path,
    value: Any,
    *,
    minimum: int,
    example: int,
    noun: str,
    maximum: int | None = None,
    allow_timedelta: bool = False,
) -> int:
    """Validate a whole number: bools, strings and floats with a fraction are rejected."""
    if isinstance(value, bool):
        raise path.error(
            f"must be {noun}, got {_describe(value)}. Write a number such as {example}, not true or false."
        )
    if allow_timedelta and isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
        if not seconds.is_integer():
            raise path.error(
                f"must be a whole number of seconds, got {seconds:g} seconds (a timedelta). "
                "Round it to whole seconds."
            )
        number = int(seconds)
    elif isinstance(value, int):
        number = int(value)
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        digits = value.strip()
        if len(digits) <= 20 and re.fullmatch(r"[+-]?[0-9]+", digits):
            fix = f"Write {int(digits)} without quotes."
        else:
            fix = f"Write a whole number such as {example}."
        raise path.error(f"must be {noun}, got {_describe(value)}. {fix}")
    elif value is None:
        raise path.error(
            f"must be {noun}, got null. Remove the key to use the default, or write a number such as "
            f"{example}."
        )
    else:
        raise path.error(f"must be {noun}, got {_describe(value)}. Write a whole number such as {example}.")

    if number < minimum:
        raise path.error(
            f"must be at least {minimum}, got {_short_repr(number)}. Set it to {example} or another value of at least "
            f"{minimum}."
        )
    if maximum is not None and number > maximum:
        raise path.error(
            f"must be at most {maximum}, got {_short_repr(number)}. Set it to {example} or another value of at most "
            f"{maximum}."
        )
    return number


def _bounded_integer(
    minimum: int, example: int, noun: str, maximum: int | None = None, allow_timedelta: bool = False
) -> Callable[[_Path, Any], int]:
    def validate(path: _Path, value: Any) -> int:
        return _integer(
            path,
            value,
            minimum=minimum,
            maximum=maximum,
            example=example,
            noun=noun,
            allow_timedelta=allow_timedelta,
        )

    return validate


def _seconds(minimum: int, example: int) -> Callable[[_Path, Any], int]:
    """Validate a time setting: whole seconds, a timedelta also accepted, at most MAX_SECONDS."""
    noun = "an integer number of seconds"
    return _bounded_integer(minimum, example, noun, MAX_SECONDS, allow_timedelta=True)


def _boolean(path: _Path, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_WORDS:
        word = "true" if _BOOLEAN_WORDS[value.strip().lower()] else "false"
        fix = f"Write {word} without quotes ({word.capitalize()} in a Python config)."
    else:
        fix = "Write true or false (True or False in a Python config)."
    raise path.error(f"must be a boolean, got {_describe(value)}. {fix}")


def _string(path: _Path, value: Any, example: str) -> str:
    if not isinstance(value, str):
        raise path.error(
            f'must be a string, got {_describe(value)}. Write it in quotes, such as "{example}".'
        )
    if not value:
        raise path.error(
            f'must not be empty. Set it to a value such as "{example}", or remove the key for the default.'
        )
    return value


def _token(path: _Path, value: Any, example: str, name_kind: str) -> str:
    """Validate an RFC 6265 / RFC 9110 token, such as a cookie or header name."""
    text = _string(path, value, example)
    if not _TOKEN_RE.fullmatch(text):
        bad = next(character for character in text if not _TOKEN_RE.fullmatch(character))
        raise path.error(
            f"contains {_describe_character(bad)}, which is not allowed in {name_kind}, "
            f'got {_describe(text)}. Use only {_TOKEN_CHARACTERS}, such as "{example}".'
        )
    return text


def _validate_secret(path: _Path, value: Any) -> str:
    if not isinstance(value, str):
        raise path.error(
            f"must be a string, got {_describe_type(value)}. "
            f"Set it to a random string of at least {MIN_SECRET_LENGTH} characters, {_SECRET_HINT}."
        )
    if not value.strip():
        raise path.error(
            f"is empty. Set it to a random string of at least {MIN_SECRET_LENGTH} characters, {_SECRET_HINT}."
        )
    if not _is_utf8_text(value):
        raise path.error(
            f"contains a lone surrogate (such as the JSON escape \\ud800 without its pair), which cannot be "
            f"encoded as UTF-8 to derive keys. Set it to a random string of at least {MIN_SECRET_LENGTH} "
            f"characters, {_SECRET_HINT}."
        )
    return value


def _validate_secret_fallbacks(path: _Path, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise path.error(
            'must be a list of strings, got a string. Wrap the old secret in a list: ["<old secret>"].'
        )
    if not isinstance(value, (list, tuple)):
        raise path.error(
            f'must be a list of strings, got {_describe_type(value)}. Write ["<old secret>", ...] or [].'
        )
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise path.item(index).error(
                f"must be a string, got {_describe_type(item)}. Write each old secret as a string."
            )
        if not item.strip():
            raise path.item(index).error("is empty. Remove it from the list.")
        if not _is_utf8_text(item):
            raise path.item(index).error(
                "contains a lone surrogate (such as the JSON escape \\ud800 without its pair), which cannot be "
                "encoded as UTF-8, so no cookie or row was ever sealed with it. Remove it from the list."
            )
    return tuple(value)


def _is_utf8_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _validate_cookie_name(path: _Path, value: Any) -> str:
    return _token(path, value, "portal_session", "a cookie name")


def _validate_storage(path: _Path, value: Any) -> str:
    if value == "kong":
        return "kong"
    reason = (
        "flask_portal_session stores sessions server-side only, so that logout, renewal and revocation "
        "can destroy them"
    )
    if value == "cookie":
        raise path.error(f'is "cookie", but {reason}. Set "storage": "kong" or remove the key.')
    raise path.error(
        f'must be "kong", got {_describe(value)}, because {reason}. Set "storage": "kong" or remove the key.'
    )


def _validate_cookie_path(path: _Path, value: Any) -> str:
    text = _string(path, value, "/")
    if not text.startswith("/"):
        raise path.error(f'must start with "/", got {_describe(text)}. Write it as "/{text}".')
    for character in text:
        if character in ";," or character.isspace() or not character.isprintable() or not character.isascii():
            raise path.error(
                f"contains {_describe_character(character)}, which is not allowed in a cookie path, got "
                f"{_describe(text)}. Percent-encode it or choose another path."
            )
    return text


def _validate_cookie_domain(path: _Path, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise path.error(
            f'must be a host name string or null, got {_describe(value)}. Write it in quotes, such as '
            '".xyz.com".'
        )
    if not value:
        raise path.error("is empty. Set it to null or remove the key to send no Domain attribute.")
    if "://" in value:
        raise path.error(
            f'must be a host name without a scheme, got {_describe(value)}. Write only the host, such as '
            '".xyz.com".'
        )
    for character in value:
        if character in ";,/" or character.isspace() or not character.isprintable():
            raise path.error(
                f"contains {_describe_character(character)}, which is not allowed in a cookie domain, got "
                f'{_describe(value)}. Write only a host name, such as ".xyz.com".'
            )

    leading_dot = value.startswith(".")
    host = value[1:] if leading_dot else value
    address = _ip_address(host)
    if address is not None:
        if address.version == 6:
            raise path.error(
                f"is an IPv6 address, got {_describe(value)}. Set it to null to send no Domain attribute."
            )
        if leading_dot:
            raise path.error(
                f"is an IP address with a leading dot, got {_describe(value)}. Write {host!r} without the "
                "dot."
            )
        return value
    if ":" in host:
        raise path.error(
            f"must not contain a port, got {_describe(value)}. Write {host.split(':')[0]!r} without the "
            "port."
        )
    _check_host_name(path, host, value)
    if leading_dot and "." not in host:
        raise path.error(
            f"names a top-level domain, got {_describe(value)}. Browsers reject it, so use your own "
            'domain, such as ".xyz.com".'
        )
    return value


def _validate_cookie_samesite(path: _Path, value: Any) -> str | None:
    if isinstance(value, str) and value.strip().lower() in _SAMESITE_VALUES:
        return _SAMESITE_VALUES[value.strip().lower()]
    fix = 'Write "Strict", "Lax", "None", or "off" to send no SameSite attribute.'
    raise path.error(f"must be Strict, Lax, None or off, got {_describe(value)}. {fix}")


def _validate_logout_methods(path: _Path, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise path.error(
            f'must be a list of HTTP methods, got {_describe(value)}. Write it as a list: '
            f'["{value.strip().upper()}"].'
        )
    if not isinstance(value, (list, tuple)):
        raise path.error(f'must be a list of HTTP methods, got {_describe(value)}. Write ["POST", "DELETE"].')
    if not value:
        raise path.error('is empty, so no request could log out. Write ["POST", "DELETE"].')

    methods: list[str] = []
    for index, item in enumerate(value):
        method = item.strip().upper() if isinstance(item, str) else None
        if method not in LOGOUT_METHODS:
            raise path.item(index).error(
                f"must be one of {', '.join(LOGOUT_METHODS)}, got {_describe(item)}. "
                "Remove it or replace it with one of those methods."
            )
        if method in methods:
            raise path.item(index).error(f"repeats {method!r}. Remove the duplicate.")
        methods.append(method)
    return tuple(methods)


def _validate_logout_arg(path: _Path, value: Any) -> str:
    return _token(path, value, "session_logout", "a query or form argument name")


def _validate_realm(path: _Path, value: Any) -> str:
    text = _string(path, value, "portal")
    for character in text:
        if character in '"\\' or not (" " <= character <= "~"):
            raise path.error(
                f"contains {_describe_character(character)}, which cannot appear in the WWW-Authenticate "
                f'header, got {_describe(text)}. Use printable ASCII without " or \\, such as "portal".'
            )
    return text


def _validate_key_names(path: _Path, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        raise path.error(f'must be a list of names, got {_describe(value)}. Write it as a list: ["{value}"].')
    if not isinstance(value, (list, tuple)):
        raise path.error(f'must be a list of names, got {_describe(value)}. Write ["apikey"].')
    if not value:
        raise path.error('is empty, so no API key could be found. Write ["apikey"].')

    names: list[str] = []
    for index, item in enumerate(value):
        name = _token(path.item(index), item, "apikey", "a header or argument name")
        if name.lower() in (known.lower() for known in names):
            raise path.item(index).error(
                f"repeats {name!r} (header names ignore case). Remove the duplicate."
            )
        names.append(name)
    return tuple(names)


_SESSION_VALIDATORS: Mapping[str, Callable[[_Path, Any], Any]] = MappingProxyType(
    {
        "secret_fallbacks": _validate_secret_fallbacks,
        "cookie_name": _validate_cookie_name,
        "storage": _validate_storage,
        "cookie_lifetime": _seconds(1, 3600),
        "cookie_renew": _seconds(0, 600),
        "cookie_idletime": _seconds(0, 1800),
        "cookie_discard": _seconds(0, 10),
        "absolute_timeout": _seconds(0, 86400),
        "cookie_path": _validate_cookie_path,
        "cookie_domain": _validate_cookie_domain,
        "cookie_samesite": _validate_cookie_samesite,
        "cookie_httponly": _boolean,
        "cookie_secure": _boolean,
        "cookie_persistent": _boolean,
        "logout_methods": _validate_logout_methods,
        "logout_query_arg": _validate_logout_arg,
        "logout_post_arg": _validate_logout_arg,
        "max_session_bytes": _bounded_integer(1, 65536, "an integer number of bytes"),
    }
)

# Argon2 (RFC 9106) limits passes and memory to 32 bits and lanes to 2**24 - 1.
_PASSWORD_HASH_VALIDATORS: Mapping[str, Callable[[_Path, Any], int]] = MappingProxyType(
    {
        "time_cost": _bounded_integer(1, 3, "an integer number of passes", 2**32 - 1),
        "memory_cost": _bounded_integer(1, 65536, "an integer number of KiB", 2**32 - 1),
        "parallelism": _bounded_integer(1, 4, "an integer number of lanes", 2**24 - 1),
    }
)

_AUTH_VALIDATORS: Mapping[str, Callable[[_Path, Any], Any]] = MappingProxyType(
    {
        "realm": _validate_realm,
        "key_names": _validate_key_names,
        "key_in_header": _boolean,
        "key_in_query": _boolean,
        "key_in_body": _boolean,
    }
)


# Rules that span several keys, and warnings.


def _check_session_rules(conf: SessionConf) -> None:
    setting = "PORTAL_SESSION_CONF"
    if conf.cookie_renew >= conf.cookie_lifetime:
        raise ConfigError(
            f'{setting}["cookie_renew"] must be less than cookie_lifetime ({conf.cookie_lifetime}), '
            f"got {conf.cookie_renew}, so every request would renew the session. "
            f"Set cookie_renew below {conf.cookie_lifetime}, such as {conf.cookie_lifetime // 6}.",
            setting=setting,
            key="cookie_renew",
        )

    name = conf.cookie_name
    if name.lower().startswith("__host-"):
        fixes = []
        if not conf.cookie_secure:
            fixes.append("set cookie_secure to true")
        if conf.cookie_path != "/":
            fixes.append('set cookie_path to "/"')
        if conf.cookie_domain is not None:
            fixes.append("remove cookie_domain")
        if fixes:
            fix = " and ".join(fixes)
            raise ConfigError(
                f'{setting}["cookie_name"] {name!r} starts with __Host-, which browsers accept only with '
                f"Secure, Path=/ and no Domain. {fix[0].upper()}{fix[1:]}, or drop the prefix.",
                setting=setting,
                key="cookie_name",
            )
    if name.lower().startswith("__secure-") and not conf.cookie_secure:
        raise ConfigError(
            f'{setting}["cookie_name"] {name!r} starts with __Secure-, which browsers accept only with '
            "Secure. Set cookie_secure to true, or drop the prefix.",
            setting=setting,
            key="cookie_name",
        )

    if conf.cookie_samesite == "None" and not conf.cookie_secure:
        raise ConfigError(
            f'{setting}["cookie_samesite"] is "None", which browsers accept only on a Secure cookie, '
            'but cookie_secure is false. Set cookie_secure to true, or set cookie_samesite to "Lax".',
            setting=setting,
            key="cookie_samesite",
        )


def _session_warnings(conf: SessionConf) -> list[str]:
    setting = "PORTAL_SESSION_CONF"
    warnings = []

    weak = _weak_secret_warning(f'{setting}["secret"]', conf.secret)
    if weak:
        warnings.append(weak)
    for index, fallback in enumerate(conf.secret_fallbacks):
        weak = _weak_secret_warning(f'{setting}["secret_fallbacks"][{index}]', fallback)
        if weak:
            warnings.append(weak)

    if not conf.cookie_secure:
        warnings.append(
            f'Set {setting}["cookie_secure"] to true outside plain-HTTP testing, because while it is false '
            "browsers also send the session cookie over unencrypted HTTP."
        )
    if not conf.cookie_httponly:
        warnings.append(
            f'Set {setting}["cookie_httponly"] to true unless a script must read the session cookie, because '
            "while it is false any script on the page can read it."
        )
    if "GET" in conf.logout_methods:
        warnings.append(
            f'Remove GET from {setting}["logout_methods"] unless you need it, because with GET any link or '
            "image, even on another site, can log users out."
        )
    if 0 < conf.absolute_timeout < conf.cookie_lifetime:
        warnings.append(
            f'Raise {setting}["absolute_timeout"] ({conf.absolute_timeout}) to at least cookie_lifetime '
            f"({conf.cookie_lifetime}) or set it to 0, because now every session ends at the absolute "
            "timeout before its lifetime runs out."
        )
    if conf.cookie_idletime >= conf.cookie_lifetime:
        warnings.append(
            f'Lower {setting}["cookie_idletime"] ({conf.cookie_idletime}) below cookie_lifetime '
            f"({conf.cookie_lifetime}) or set it to 0, because at this value the idle timeout never ends "
            "a session before the lifetime does."
        )
    return warnings


def secret_weakness(secret: str) -> str | None:
    """Return why ``secret`` looks weak ("placeholder" or "short"), or ``None``.

    A secret is weak when it is a well-known placeholder (including Kong's
    ``<SET_SECRET>`` style) or shorter than ``MIN_SECRET_LENGTH`` characters.
    """
    normalized = secret.strip().lower()
    if normalized in PLACEHOLDER_SECRETS or re.fullmatch(r"<[^<>]*>", normalized):
        return "placeholder"
    if len(secret) < MIN_SECRET_LENGTH:
        return "short"
    return None


def _weak_secret_warning(label: str, secret: str) -> str | None:
    weakness = secret_weakness(secret)
    if weakness is None:
        return None
    replace = (
        f"Replace {label} with a random string of at least {MIN_SECRET_LENGTH} characters "
        f"({_SECRET_HINT})"
    )
    if weakness == "placeholder":
        return (
            f"{replace}, because it is a well-known placeholder that protects neither the cookie tags "
            "nor the stored session data."
        )
    return f"{replace}, because it is shorter than {MIN_SECRET_LENGTH} characters."


# Top-level settings.


def _parse_auth_methods(config: Mapping[str, Any]) -> tuple[str, ...]:
    path = _Path("PORTAL_AUTH")
    value = config.get("PORTAL_AUTH")
    supported = 'Set it to "basic-auth", "key-auth", or ["basic-auth", "key-auth"] for both.'
    if value is None:
        raise path.error(
            'is missing. Set PORTAL_AUTH = "basic-auth" to log developers in with their email and password, '
            'or "key-auth" for API keys.' + _near_miss_hint(config, "PORTAL_AUTH")
        )

    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise path.error(f"is not valid UTF-8. {supported}") from None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise path.error(f"is empty. {supported}")
        if text.startswith("["):
            items = _load_json_list(path, text)
        else:
            items = [part.strip() for part in text.split(",")]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise path.error(f"must be a string or a list, got {_describe(value)}. {supported}")
    if not items:
        raise path.error(f"is an empty list. {supported}")

    methods: list[str] = []
    for item in items:
        if item not in AUTH_METHODS:
            message = f"contains {_describe(item)}, which is not supported. {supported}"
            if isinstance(item, str):
                matches = difflib.get_close_matches(item.strip().lower(), AUTH_METHODS, n=1, cutoff=0.6)
                if matches:
                    message += f" Did you mean {matches[0]!r}?"
            raise path.error(message)
        if item in methods:
            raise path.error(f"lists {item!r} twice. Remove the duplicate.")
        methods.append(item)
    return tuple(methods)


def _load_json_list(path: _Path, text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise path.error(
            f"looks like a JSON list but is not valid JSON: {error.msg} at line {error.lineno}, column "
            f'{error.colno}. Write it as ["basic-auth", "key-auth"].'
        ) from None
    except RecursionError:
        raise path.error('is nested too deeply. Write it as ["basic-auth", "key-auth"].') from None
    except ValueError:
        # An integer literal longer than sys.get_int_max_str_digits() digits.
        raise path.error('contains a number too long to read. Write it as ["basic-auth", "key-auth"].') from None
    if not isinstance(value, list):
        raise path.error(
            f'must be a JSON list, got {_describe(value)}. Write it as ["basic-auth", "key-auth"].'
        )
    return value


def _check_key_auth(auth_methods: tuple[str, ...], auth_conf: AuthConf) -> list[str]:
    """Check that key-auth can find a key, and return the warnings about where it looks."""
    if "key-auth" not in auth_methods:
        return []
    if not (auth_conf.key_in_header or auth_conf.key_in_query or auth_conf.key_in_body):
        raise ConfigError(
            "PORTAL_AUTH_CONF sets key_in_header, key_in_query and key_in_body all to false, so key-auth "
            "could never find an API key. Set key_in_header to true.",
            setting="PORTAL_AUTH_CONF",
            key="key_in_header",
        )
    if auth_conf.key_in_query:
        return [
            'Set PORTAL_AUTH_CONF["key_in_query"] to false and send API keys in a header, because keys in '
            "URLs end up in access logs, browser history and Referer headers."
        ]
    return []


def _resolve_database_uri(config: Mapping[str, Any], instance_path: str) -> tuple[str, bool]:
    """Pick the session store URL and whether it is the embedded SQLite default."""
    value = config.get("PORTAL_SESSION_DATABASE_URI")
    if value is not None:
        return _validate_database_uri(_Path("PORTAL_SESSION_DATABASE_URI"), value), False

    fallback = config.get("SQLALCHEMY_DATABASE_URI")
    if fallback is not None and fallback != "":
        return _validate_database_uri(_Path("SQLALCHEMY_DATABASE_URI"), fallback), False

    return "sqlite:///" + os.path.join(os.fspath(instance_path), DEFAULT_DATABASE_FILENAME), True


def _validate_database_uri(path: _Path, value: Any) -> str:
    """Check that a database URL parses, without ever showing it (it may contain a password)."""
    if isinstance(value, URL):
        return value.render_as_string(hide_password=False)
    example = (
        "such as postgresql+psycopg://user:password@localhost/portal "
        "or sqlite:////var/lib/portal/sessions.db"
    )
    if not isinstance(value, str):
        raise path.error(f"must be a SQLAlchemy URL string, got {_describe_type(value)}. Write it {example}.")
    if not value.strip():
        raise path.error(f"is empty. Set it to a SQLAlchemy URL {example}, or remove it to use the default.")
    try:
        make_url(value)
    except (ArgumentError, ValueError):
        raise path.error(
            "is not a valid SQLAlchemy URL. Write it as dialect+driver://user:password@host/database, "
            f"{example}."
        ) from None
    return value


@dataclass(frozen=True)
class _Endpoint:
    """A parsed PORTAL_GUI_HOST or PORTAL_API_URL."""

    setting: str
    url: str
    origin: str
    scheme: str
    host: str
    scheme_is_default: bool = False


def _parse_gui_host(value: Any, protocol: Any) -> _Endpoint | None:
    """Build the GUI origin from PORTAL_GUI_HOST and PORTAL_GUI_PROTOCOL.

    Like Kong, the host is host[:port] and the scheme comes from PORTAL_GUI_PROTOCOL
    (default http). A full http(s) URL is accepted too. Default ports are dropped,
    because browsers leave them out of the Origin header.
    """
    protocol_path = _Path("PORTAL_GUI_PROTOCOL")
    if protocol is not None:
        if not isinstance(protocol, str) or protocol.strip().lower() not in ("http", "https"):
            raise protocol_path.error(
                f'must be "http" or "https", got {_describe(protocol)}. Set it to "https" or "http".'
            )
        protocol = protocol.strip().lower()
    if value is None:
        return None

    path = _Path("PORTAL_GUI_HOST")
    example = 'such as "portal.xyz.com" or "portal.xyz.com:8003"'
    text = _plain_text(path, value, example)
    scheme_is_default = False
    if "://" in text:
        scheme, rest = text.split("://", 1)
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise path.error(
                f"must use http or https, got {_describe(value)}. Write the host only, {example}."
            )
        if protocol is not None and protocol != scheme:
            raise path.error(
                f"uses {scheme}:// but PORTAL_GUI_PROTOCOL is {protocol!r}. Remove the scheme from "
                "PORTAL_GUI_HOST or make the two agree."
            )
    else:
        scheme, rest = protocol or GUI_PROTOCOL_DEFAULT, text
        scheme_is_default = protocol is None

    parts = _split_url(path, f"{scheme}://{rest}", value, example)
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in rest or "#" in rest:
        raise path.error(
            f"must be a host and optional port without a path, got {_describe(value)}. Write it {example}."
        )
    if parts.username is not None or parts.password is not None:
        raise path.error(f"must not contain a user name or password. Write it {example}.")
    host = _url_host(path, parts, value, example)
    origin = f"{scheme}://{_origin_netloc(scheme, host, _url_port(path, parts, value, example))}"
    return _Endpoint("PORTAL_GUI_HOST", origin, origin, scheme, host, scheme_is_default)


def _parse_api_url(value: Any) -> _Endpoint | None:
    if value is None:
        return None
    path = _Path("PORTAL_API_URL")
    example = 'such as "https://portalapi.xyz.com"'
    text = _plain_text(path, value, example)
    parts = _split_url(path, text, value, example)
    if parts.scheme.lower() not in ("http", "https") or "://" not in text:
        raise path.error(
            f"must be a full http:// or https:// URL, got {_describe(value)}. Write it {example}."
        )
    if parts.username is not None or parts.password is not None:
        raise path.error(f"must not contain a user name or password. Write it {example}.")
    if parts.query or parts.fragment:
        raise path.error(f"must not contain a query or fragment, got {_describe(value)}. Write it {example}.")
    scheme = parts.scheme.lower()
    host = _url_host(path, parts, value, example)
    origin = f"{scheme}://{_origin_netloc(scheme, host, _url_port(path, parts, value, example))}"
    return _Endpoint("PORTAL_API_URL", text, origin, scheme, host)


def _plain_text(path: _Path, value: Any, example: str) -> str:
    if not isinstance(value, str):
        raise path.error(f"must be a string, got {_describe(value)}. Write it {example}.")
    if not value:
        raise path.error(f"is empty. Write it {example}, or remove it.")
    for character in value:
        if character.isspace() or not character.isprintable():
            raise path.error(
                f"contains {_describe_character(character)}, got {_describe(value)}. Write it {example}."
            )
    return value


def _split_url(path: _Path, text: str, value: Any, example: str) -> SplitResult:
    try:
        return urlsplit(text)
    except ValueError as error:
        raise path.error(
            f"is not a valid URL ({error}), got {_describe(value)}. Write it {example}."
        ) from None


def _url_host(path: _Path, parts: SplitResult, value: Any, example: str) -> str:
    host = parts.hostname
    if not host:
        raise path.error(f"has no host name, got {_describe(value)}. Write it {example}.")
    if _ip_address(host) is None:
        _check_host_name(path, host, value)
    return host.lower()


def _url_port(path: _Path, parts: SplitResult, value: Any, example: str) -> int | None:
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise path.error(
            f"has an invalid port, got {_describe(value)}. Use a port from 1 to 65535, {example}."
        )
    return port


def _origin_netloc(scheme: str, host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    if port is None or port == {"http": 80, "https": 443}[scheme]:
        return shown
    return f"{shown}:{port}"


def _check_host_name(path: _Path, host: str, value: Any) -> None:
    if not host.isascii():
        raise path.error(
            f"contains a non-ASCII host name, got {_describe(value)}. Write it in its xn-- (punycode) form."
        )
    labels = host.split(".")
    if len(host) > 253 or not all(_HOST_LABEL_RE.fullmatch(label) for label in labels):
        raise path.error(
            f"is not a valid host name, got {_describe(value)}. Use labels of letters, digits and hyphens "
            'separated by dots, such as "portal.xyz.com".'
        )


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _check_cookie_reaches_hosts(conf: SessionConf, gui: _Endpoint | None, api: _Endpoint | None) -> None:
    """Check that the session cookie set by the API reaches both the GUI and the API hosts.

    Raises ConfigError when the hosts differ and cookie_domain does not cover both,
    when cookie_domain does not cover a configured host, and when a Secure cookie
    would be used over plain HTTP.
    """
    setting = "PORTAL_SESSION_CONF"
    endpoints = [endpoint for endpoint in (gui, api) if endpoint is not None]

    if gui is not None and api is not None and gui.host != api.host:
        domain = conf.cookie_domain
        if domain is None or not all(_domain_covers(domain, endpoint.host) for endpoint in endpoints):
            parent = _common_parent_domain(gui.host, api.host)
            if parent is None:
                raise ConfigError(
                    f"PORTAL_GUI_HOST ({gui.host}) and PORTAL_API_URL ({api.host}) share no parent "
                    "domain, so no cookie can reach both. Serve the portal GUI and API under one parent "
                    "domain, such as portal.xyz.com and portalapi.xyz.com, and set cookie_domain to it, "
                    'such as ".xyz.com".',
                    setting=setting,
                    key="cookie_domain",
                )
            if domain is None:
                current = "is not set"
            else:
                current = f"is {domain!r}, which does not cover both"
            raise ConfigError(
                f"PORTAL_GUI_HOST ({gui.host}) and PORTAL_API_URL ({api.host}) are different hosts, so the "
                f'session cookie needs a Domain that covers both, but {setting}["cookie_domain"] {current}. '
                f'Set "cookie_domain": "{parent}".',
                setting=setting,
                key="cookie_domain",
            )

    if conf.cookie_domain is not None:
        for endpoint in endpoints:
            if not _domain_covers(conf.cookie_domain, endpoint.host):
                raise ConfigError(
                    f'{setting}["cookie_domain"] is {conf.cookie_domain!r}, which does not cover the '
                    f"{endpoint.setting} host {endpoint.host}, so browsers would reject the cookie. Set "
                    f'cookie_domain to a parent domain of {endpoint.host}, or to null.',
                    setting=setting,
                    key="cookie_domain",
                )

    if conf.cookie_secure:
        for endpoint in endpoints:
            if endpoint.scheme == "http":
                default_note = " (PORTAL_GUI_PROTOCOL defaults to http)" if endpoint.scheme_is_default else ""
                raise ConfigError(
                    f"{endpoint.setting} ({endpoint.url}) uses plain HTTP{default_note}, but "
                    f'{setting}["cookie_secure"] is true, and browsers will not send a Secure cookie '
                    "over plain HTTP. Set cookie_secure to false for plain-HTTP testing, or serve the "
                    "portal over HTTPS.",
                    setting=setting,
                    key="cookie_secure",
                )


def _domain_covers(cookie_domain: str, host: str) -> bool:
    domain = cookie_domain.lstrip(".").lower()
    host = host.lower()
    if _ip_address(host) is not None:
        return host == domain
    return host == domain or host.endswith("." + domain)


def _common_parent_domain(first: str, second: str) -> str | None:
    """Return the longest parent domain of two host names with at least two labels, such as ".xyz.com".

    NOTE: without the Public Suffix List this may propose a public suffix such as
    ".co.uk", which browsers reject as a cookie domain.
    """
    if _ip_address(first) is not None or _ip_address(second) is not None:
        return None
    common: list[str] = []
    for first_label, second_label in zip(reversed(first.split(".")), reversed(second.split("."))):
        if first_label != second_label:
            break
        common.insert(0, first_label)
    if len(common) < 2:
        return None
    return "." + ".".join(common)


def _parse_login_view(value: Any) -> str | None:
    """Validate PORTAL_LOGIN_VIEW.

    NOTE: the endpoint is not looked up here, because the app may register it after
    init_app. A wrong name raises werkzeug's BuildError when login_required first redirects.
    """
    if value is None:
        return None
    path = _Path("PORTAL_LOGIN_VIEW")
    if not isinstance(value, str) or not value.strip():
        raise path.error(
            f'must be an endpoint name, got {_describe(value)}. Write it such as "login" or "auth.login".'
        )
    if any(character.isspace() or not character.isprintable() for character in value):
        raise path.error(
            f'must be an endpoint name without spaces, got {_describe(value)}. Write it such as '
            '"auth.login".'
        )
    return value


def _parse_url_prefix(value: Any) -> str:
    if value is None:
        return URL_PREFIX_DEFAULT
    path = _Path("PORTAL_URL_PREFIX")
    if not isinstance(value, str):
        raise path.error(f'must be a string, got {_describe(value)}. Write "" or a path such as "/portal".')
    if value == "":
        return value
    if not value.startswith("/"):
        raise path.error(f'must start with "/", got {_describe(value)}. Write "/{value}".')
    if value.endswith("/"):
        fixed = value.rstrip("/")
        replacement = f'"{fixed}"' if fixed else '"" to mount at the root'
        raise path.error(f"must not end with \"/\", got {_describe(value)}. Write {replacement}.")
    for character in value:
        if character in "?#" or character.isspace() or not character.isprintable():
            raise path.error(
                f"contains {_describe_character(character)}, got {_describe(value)}. "
                'Write a plain path such as "/portal".'
            )
    return value


def _unknown_setting_warnings(config: Mapping[str, Any]) -> list[str]:
    """Warn about app.config keys that look like a misspelled or lower-case PORTAL_* setting."""
    warnings = []
    for name in config:
        if not isinstance(name, str) or name in SETTINGS:
            continue
        suggestion = _suggest_setting(name)
        if suggestion is not None:
            warnings.append(
                f"Rename app.config[{name!r}] to {suggestion!r} if it is meant for flask_portal_session, "
                "which ignores the current name."
            )
    return warnings


def _suggest_setting(name: str) -> str | None:
    upper = name.upper()
    if upper in SETTINGS:
        return upper
    if not upper.startswith("PORTAL_"):
        return None
    matches = difflib.get_close_matches(upper, SETTINGS, n=1, cutoff=0.85)
    return matches[0] if matches else None


def _near_miss_hint(config: Mapping[str, Any], setting: str) -> str:
    for name in config:
        if isinstance(name, str) and name != setting and _suggest_setting(name) == setting:
            return f" The config has {name!r}, which is ignored. Did you mean {setting}?"
    return ""
