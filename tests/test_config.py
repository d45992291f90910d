"""Tests of PORTAL_* parsing and validation: defaults, rules, messages and warnings.

Each rejected value is checked for the exception type and for a message that names
the key, shows the value and gives the fix. No Flask app is needed.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
from pathlib import Path
from typing import Any

import argon2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_portal_session.config import (
    AUTH_CONF_DEFAULTS,
    MAX_SECONDS,
    PASSWORD_HASH_DEFAULTS,
    SESSION_DEFAULTS,
    SESSION_KEY_ALIASES,
    AuthConf,
    ConfigError,
    PasswordHashConf,
    PortalConfig,
    SessionConf,
    load_config,
    parse_auth_conf,
    parse_password_hash_conf,
    parse_session_conf,
)

#: A strong secret that no message or warning may contain.
SECRET = "config-test-secret-Zq8vN3kLp0Wm7xR2tY5u"

# The three portal_session_conf examples from Kong's "Sessions in the Dev Portal"
# page, as published: the members are not separated by commas.
KONG_HTTPS_EXAMPLE = """{
    "cookie_name":"$4m04$"
    "secret":"change-this-secret"
    "storage":"kong"
    "cookie_secure":true
}"""

KONG_HTTP_EXAMPLE = """{
    "cookie_name":"04tm34l"
    "secret":"change-this-secret"
    "storage":"kong"
    "cookie_secure":false
}"""

KONG_DOMAINS_EXAMPLE = """{
    "storage":"kong"
    "cookie_name":"portal_session"
    "cookie_domain": ".xyz.com"
    "secret":"super-secret"
    "cookie_secure":false
    "cookie_lifetime":31557600,
    "cookie_samesite":"off"
}"""


def session(**overrides: Any) -> dict[str, Any]:
    """Return a valid PORTAL_SESSION_CONF dict with ``overrides`` applied."""
    return {"secret": SECRET, **overrides}


def portal_config(**overrides: Any) -> dict[str, Any]:
    """Return a valid app.config dict with ``overrides`` applied."""
    return {"PORTAL_AUTH": "basic-auth", "PORTAL_SESSION_CONF": session(), **overrides}


def session_error(value: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_session_conf(value)
    return info.value


def load_error(tmp_path: Path, **overrides: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(portal_config(**overrides), str(tmp_path))
    return info.value


def assert_mentions(error: Exception | str, *parts: str) -> None:
    """Assert that the message contains each part, one assert per part."""
    message = str(error)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def add_missing_commas(text: str) -> str:
    """Insert the commas that Kong's examples leave out between object members."""
    return re.sub(r'(?<=[^,{\s])(\s*\n\s*")', r",\1", text)


# Defaults


def test_session_conf_defaults() -> None:
    conf, warnings = parse_session_conf(session())

    assert conf.secret == SECRET
    for key, default in SESSION_DEFAULTS.items():
        assert getattr(conf, key) == default, key
    assert warnings == []


def test_session_defaults_values() -> None:
    assert SESSION_DEFAULTS["cookie_name"] == "session"
    assert SESSION_DEFAULTS["storage"] == "kong"
    assert SESSION_DEFAULTS["cookie_lifetime"] == 3600
    assert SESSION_DEFAULTS["cookie_renew"] == 600
    assert SESSION_DEFAULTS["cookie_idletime"] == 0
    assert SESSION_DEFAULTS["cookie_discard"] == 10
    assert SESSION_DEFAULTS["absolute_timeout"] == 86400
    assert SESSION_DEFAULTS["cookie_path"] == "/"
    assert SESSION_DEFAULTS["cookie_domain"] is None
    assert SESSION_DEFAULTS["cookie_samesite"] == "Strict"
    assert SESSION_DEFAULTS["cookie_httponly"] is True
    assert SESSION_DEFAULTS["cookie_secure"] is True
    assert SESSION_DEFAULTS["cookie_persistent"] is False
    assert SESSION_DEFAULTS["logout_methods"] == ("POST", "DELETE")
    assert SESSION_DEFAULTS["logout_query_arg"] == "session_logout"
    assert SESSION_DEFAULTS["logout_post_arg"] == "session_logout"
    assert SESSION_DEFAULTS["max_session_bytes"] == 65536
    assert SESSION_DEFAULTS["secret_fallbacks"] == ()


def test_defaults_are_read_only() -> None:
    with pytest.raises(TypeError):
        SESSION_DEFAULTS["cookie_lifetime"] = 1  # type: ignore[index]


def test_auth_conf_defaults() -> None:
    conf = parse_auth_conf(None)

    assert conf == AuthConf(
        realm="portal", key_names=("apikey",), key_in_header=True, key_in_query=False, key_in_body=False
    )
    assert parse_auth_conf({}) == conf
    assert dict(AUTH_CONF_DEFAULTS)["key_in_query"] is False


def test_password_hash_defaults_match_argon2() -> None:
    hasher = argon2.PasswordHasher()

    conf = parse_password_hash_conf(None)

    assert conf == PasswordHashConf(time_cost=3, memory_cost=65536, parallelism=4)
    assert conf.time_cost == hasher.time_cost
    assert conf.memory_cost == hasher.memory_cost
    assert conf.parallelism == hasher.parallelism
    assert dict(PASSWORD_HASH_DEFAULTS) == {"time_cost": 3, "memory_cost": 65536, "parallelism": 4}


def test_load_config_defaults(tmp_path: Path) -> None:
    config = load_config(portal_config(), str(tmp_path))

    assert isinstance(config, PortalConfig)
    assert config.auth_methods == ("basic-auth",)
    assert config.auth_conf == parse_auth_conf(None)
    assert config.session_conf == parse_session_conf(session())[0]
    assert config.login_attempts == 10
    assert config.database_uri == "sqlite:///" + str(tmp_path / "portal_session.sqlite3")
    assert config.database_uri_is_default is True
    assert config.gui_origin is None
    assert config.api_url is None
    assert config.login_view is None
    assert config.url_prefix == ""
    assert config.password_hash == parse_password_hash_conf(None)
    assert config.warnings == ()


def test_config_objects_are_frozen(tmp_path: Path) -> None:
    config = load_config(portal_config(), str(tmp_path))

    with pytest.raises(AttributeError):
        config.session_conf.cookie_lifetime = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        config.login_attempts = 1  # type: ignore[misc]


def test_repr_hides_secrets_and_database_uri(tmp_path: Path) -> None:
    database_uri = "postgresql+psycopg://portal:db-password-123@localhost/portal"
    conf = session(secret_fallbacks=["old-secret-value-Kx93nd0Zp4Lq7sQe2Wm1"])

    config = load_config(
        portal_config(PORTAL_SESSION_CONF=conf, PORTAL_SESSION_DATABASE_URI=database_uri), str(tmp_path)
    )

    assert SECRET not in repr(config)
    assert "old-secret-value" not in repr(config)
    assert "db-password-123" not in repr(config)
    assert config.database_uri == database_uri


# JSON strings and Kong's examples


@pytest.mark.parametrize("example", [KONG_HTTPS_EXAMPLE, KONG_HTTP_EXAMPLE, KONG_DOMAINS_EXAMPLE])
def test_kong_example_reports_missing_comma(example: str) -> None:
    error = session_error(example)

    assert_mentions(error, "PORTAL_SESSION_CONF", "line 3, column 5", "Expecting ',' delimiter")
    assert_mentions(error, "comma is probably missing", "ends on line 2")
    assert error.setting == "PORTAL_SESSION_CONF"


def test_kong_example_error_hides_secret() -> None:
    error = session_error(KONG_HTTPS_EXAMPLE.replace("change-this-secret", SECRET))

    assert SECRET not in str(error)


def test_kong_https_example_parses_with_commas() -> None:
    conf, warnings = parse_session_conf(add_missing_commas(KONG_HTTPS_EXAMPLE))

    assert conf.cookie_name == "$4m04$"
    assert conf.secret == "change-this-secret"
    assert conf.storage == "kong"
    assert conf.cookie_secure is True
    assert len(warnings) == 1
    assert_mentions(warnings[0], '"secret"', "placeholder")


def test_kong_http_example_parses_with_commas() -> None:
    conf, warnings = parse_session_conf(add_missing_commas(KONG_HTTP_EXAMPLE))

    assert conf.cookie_name == "04tm34l"
    assert conf.cookie_secure is False
    assert len(warnings) == 2
    assert_mentions(warnings[0], "placeholder")
    assert_mentions(warnings[1], "cookie_secure", "plain-HTTP testing")


def test_kong_domains_example_parses_with_commas() -> None:
    conf, warnings = parse_session_conf(add_missing_commas(KONG_DOMAINS_EXAMPLE))

    assert conf.storage == "kong"
    assert conf.cookie_name == "portal_session"
    assert conf.cookie_domain == ".xyz.com"
    assert conf.secret == "super-secret"
    assert conf.cookie_secure is False
    assert conf.cookie_lifetime == 31557600
    assert conf.cookie_samesite is None
    assert conf.cookie_renew == 600
    assert len(warnings) == 3
    assert_mentions(warnings[0], "placeholder")
    assert_mentions(warnings[1], "cookie_secure")
    assert_mentions(warnings[2], "absolute_timeout", "86400", "31557600")


def test_kong_domains_example_loads_with_hosts(tmp_path: Path) -> None:
    config = load_config(
        portal_config(
            PORTAL_SESSION_CONF=add_missing_commas(KONG_DOMAINS_EXAMPLE),
            PORTAL_GUI_HOST="portal.xyz.com",
            PORTAL_API_URL="http://portalapi.xyz.com:8004",
        ),
        str(tmp_path),
    )

    assert config.gui_origin == "http://portal.xyz.com"
    assert config.api_url == "http://portalapi.xyz.com:8004"
    assert config.session_conf.cookie_domain == ".xyz.com"


def test_session_conf_accepts_json_bytes() -> None:
    conf, _ = parse_session_conf(json.dumps(session(cookie_lifetime=7200)).encode())

    assert conf.cookie_lifetime == 7200


def test_session_conf_rejects_invalid_utf8() -> None:
    error = session_error(b'{"secret": "\xff"}')

    assert_mentions(error, "PORTAL_SESSION_CONF", "UTF-8", "Encode")


def test_session_conf_rejects_empty_string() -> None:
    error = session_error("  ")

    assert_mentions(error, "PORTAL_SESSION_CONF", "empty string", "JSON object")


@pytest.mark.parametrize("document", ["[1, 2]", '"text"', "42", "null"])
def test_session_conf_rejects_json_non_object(document: str) -> None:
    error = session_error(document)

    assert_mentions(error, "PORTAL_SESSION_CONF", "must be a JSON object", '{"key": value')


def test_session_conf_rejects_non_mapping() -> None:
    error = session_error(["secret", SECRET])

    assert_mentions(error, "PORTAL_SESSION_CONF", "a list", "dict or a JSON object")
    assert SECRET not in str(error)


def test_session_conf_reports_trailing_comma() -> None:
    error = session_error('{"secret": "x",\n}')

    assert_mentions(error, "PORTAL_SESSION_CONF", "at line ", "trailing comma")


def test_session_conf_reports_single_quotes() -> None:
    error = session_error("{'secret': 'x'}")

    assert_mentions(error, "line 1, column 2", "double quotes")


def test_session_conf_reports_placeholder_value() -> None:
    error = session_error('{"secret": "x", "cookie_lifetime": <NUMBER_OF_SECONDS_TO_LIVE>}')

    assert_mentions(error, "Expecting value", "column 36", "<PLACEHOLDER>")


def test_session_conf_rejects_duplicate_json_key() -> None:
    error = session_error('{"secret": "a", "cookie_name": "a", "cookie_name": "b"}')

    assert_mentions(error, "PORTAL_SESSION_CONF", "'cookie_name' twice", "Remove one")
    assert error.key == "cookie_name"


def test_session_conf_rejects_deep_nesting() -> None:
    error = session_error('{"secret": ' + "[" * 100000 + "]" * 100000 + "}")

    assert_mentions(error, "PORTAL_SESSION_CONF", "nested too deeply")


# Unknown keys and aliases


def test_session_conf_suggests_nearest_key() -> None:
    error = session_error(session(cookie_samesit="Lax"))

    assert_mentions(
        error, "PORTAL_SESSION_CONF", "unknown key 'cookie_samesit'", "Did you mean 'cookie_samesite'?"
    )
    assert error.key == "cookie_samesit"


def test_session_conf_suggests_alias() -> None:
    error = session_error(session(rolling_timout=60))

    assert_mentions(error, "'rolling_timout'", "Did you mean 'rolling_timeout'?")


def test_session_conf_lists_keys_without_match() -> None:
    error = session_error(session(zzzz=1))

    assert_mentions(error, "unknown key 'zzzz'", "Remove it", "cookie_lifetime")


def test_session_conf_rejects_non_string_key() -> None:
    error = session_error({"secret": SECRET, 1: "x"})

    assert_mentions(error, "PORTAL_SESSION_CONF", "1 (an integer)", "as a string")


@pytest.mark.parametrize(
    ("alias", "canonical", "value", "expected"),
    [
        ("rolling_timeout", "cookie_lifetime", 1800, 1800),
        ("idling_timeout", "cookie_idletime", 900, 900),
        ("stale_ttl", "cookie_discard", 30, 30),
        ("cookie_same_site", "cookie_samesite", "lax", "Lax"),
        ("cookie_http_only", "cookie_httponly", False, False),
    ],
)
def test_session_conf_accepts_alias(alias: str, canonical: str, value: Any, expected: Any) -> None:
    conf, _ = parse_session_conf(session(**{alias: value}))

    assert getattr(conf, canonical) == expected
    assert SESSION_KEY_ALIASES[alias] == canonical


def test_session_conf_accepts_alias_at_same_value() -> None:
    conf, _ = parse_session_conf(session(cookie_lifetime=1800, rolling_timeout=1800))

    assert conf.cookie_lifetime == 1800


def test_session_conf_alias_compares_normalized() -> None:
    conf, _ = parse_session_conf(session(cookie_samesite="Lax", cookie_same_site="lax"))

    assert conf.cookie_samesite == "Lax"


def test_session_conf_rejects_conflicting_alias() -> None:
    error = session_error(session(cookie_lifetime=3600, rolling_timeout=1800))

    assert_mentions(error, '"cookie_lifetime" (3600)', '"rolling_timeout" (1800)', "Remove one")
    assert error.key == "cookie_lifetime"


def test_session_conf_checks_alias_value() -> None:
    error = session_error(session(stale_ttl="10"))

    assert_mentions(error, 'PORTAL_SESSION_CONF["stale_ttl"]', "'10'", "Write 10 without quotes")


# secret and secret_fallbacks


def test_session_conf_requires_secret() -> None:
    error = session_error({"cookie_name": "portal"})

    assert_mentions(error, "PORTAL_SESSION_CONF", '"secret"', "secrets.token_urlsafe")
    assert error.key == "secret"


@pytest.mark.parametrize("value", ["", "   "])
def test_session_conf_rejects_empty_secret(value: str) -> None:
    error = session_error({"secret": value})

    assert_mentions(error, 'PORTAL_SESSION_CONF["secret"]', "is empty", "random string")


@pytest.mark.parametrize("value", [123456789012345678901234567890123, None, True, ["a"]])
def test_session_conf_rejects_non_string_secret(value: Any) -> None:
    error = session_error({"secret": value})

    assert_mentions(error, 'PORTAL_SESSION_CONF["secret"]', "must be a string", "random string")
    assert str(value) not in str(error)


def test_session_conf_warns_short_secret() -> None:
    short = "Kx93nd0Zp4Lq7sQe2W"

    conf, warnings = parse_session_conf({"secret": short})

    assert conf.secret == short
    assert len(warnings) == 1
    assert_mentions(warnings[0], '"secret"', "shorter than 32 characters", "Replace")
    assert short not in warnings[0]


@pytest.mark.parametrize(
    "placeholder",
    [
        "change-this-secret",
        "super-secret",
        "<SET_SECRET>",
        "secret",
        "changeme",
        "CHANGEME",
        "<your secret here>",
    ],
)
def test_session_conf_warns_placeholder_secret(placeholder: str) -> None:
    _, warnings = parse_session_conf({"secret": placeholder})

    assert len(warnings) == 1
    assert_mentions(warnings[0], '"secret"', "placeholder", "Replace")
    # The key name and the token_urlsafe hint contain the word "secret" themselves.
    assert placeholder not in warnings[0].replace('["secret"]', "").replace("secrets", "")


def test_session_conf_accepts_secret_fallbacks() -> None:
    old = "old-secret-value-Kx93nd0Zp4Lq7sQe2Wm1"

    conf, warnings = parse_session_conf(session(secret_fallbacks=[old]))

    assert conf.secret_fallbacks == (old,)
    assert warnings == []


def test_session_conf_rejects_string_fallbacks() -> None:
    error = session_error(session(secret_fallbacks="old-secret-value"))

    assert_mentions(
        error, 'PORTAL_SESSION_CONF["secret_fallbacks"]', "got a string", "Wrap the old secret in a list"
    )
    assert "old-secret-value" not in str(error)


@pytest.mark.parametrize(("item", "expected"), [("", "is empty"), (42, "a value of type int")])
def test_session_conf_rejects_bad_fallback(item: Any, expected: str) -> None:
    error = session_error(session(secret_fallbacks=["old-secret-value-Kx93nd0Zp4Lq7sQe2Wm1", item]))

    assert_mentions(error, 'PORTAL_SESSION_CONF["secret_fallbacks"][1]', expected)
    assert "old-secret-value" not in str(error)


def test_session_conf_warns_weak_fallback() -> None:
    _, warnings = parse_session_conf(session(secret_fallbacks=["changeme"]))

    assert len(warnings) == 1
    assert_mentions(warnings[0], '"secret_fallbacks"][0]', "placeholder")


# cookie_name


@pytest.mark.parametrize(
    "name", ["$4m04$", "04tm34l", "portal_session", "__Host-session", "a!#$%&'*+-.^_`|~z"]
)
def test_session_conf_accepts_token_cookie_name(name: str) -> None:
    conf, _ = parse_session_conf(session(cookie_name=name))

    assert conf.cookie_name == name


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("my;session", "';'"),
        ("my,session", "','"),
        ("my session", "a space"),
        ("my=session", "'='"),
        ('my"session', "'\"'"),
        ("my\x01session", "control character"),
        ("my\tsession", "control character"),
        ("sessión", "'ó'"),
        ("my(session)", "'('"),
    ],
)
def test_session_conf_rejects_bad_cookie_name(name: str, shown: str) -> None:
    error = session_error(session(cookie_name=name))

    assert_mentions(
        error, 'PORTAL_SESSION_CONF["cookie_name"]', shown, "not allowed in a cookie name", "Use only"
    )


def test_session_conf_rejects_empty_cookie_name() -> None:
    error = session_error(session(cookie_name=""))

    assert_mentions(error, 'PORTAL_SESSION_CONF["cookie_name"]', "must not be empty", "such as")


def test_session_conf_rejects_non_string_cookie_name() -> None:
    error = session_error(session(cookie_name=5))

    assert_mentions(error, 'PORTAL_SESSION_CONF["cookie_name"]', "5 (an integer)", "in quotes")


@pytest.mark.parametrize(
    ("overrides", "fix"),
    [
        ({"cookie_secure": False}, "Set cookie_secure to true"),
        ({"cookie_path": "/portal"}, 'Set cookie_path to "/"'),
        ({"cookie_domain": ".xyz.com"}, "Remove cookie_domain"),
    ],
)
def test_session_conf_host_prefix_rules(overrides: dict[str, Any], fix: str) -> None:
    error = session_error(session(cookie_name="__Host-portal", **overrides))

    assert_mentions(error, 'PORTAL_SESSION_CONF["cookie_name"]', "'__Host-portal'", fix, "drop the prefix")


def test_session_conf_secure_prefix_needs_secure() -> None:
    error = session_error(session(cookie_name="__Secure-portal", cookie_secure=False))

    assert_mentions(
        error, 'PORTAL_SESSION_CONF["cookie_name"]', "'__Secure-portal'", "Set cookie_secure to true"
    )


def test_session_conf_accepts_secure_prefix() -> None:
    conf, _ = parse_session_conf(session(cookie_name="__Secure-portal", cookie_domain=".xyz.com"))

    assert conf.cookie_name == "__Secure-portal"


# storage


def test_session_conf_rejects_cookie_storage() -> None:
    error = session_error(session(storage="cookie"))

    assert_mentions(error, 'PORTAL_SESSION_CONF["storage"]', '"cookie"', "server-side", "logout", '"kong"')


@pytest.mark.parametrize("value", ["redis", "KONG", None, 1])
def test_session_conf_rejects_other_storage(value: Any) -> None:
    error = session_error(session(storage=value))

    assert_mentions(error, 'PORTAL_SESSION_CONF["storage"]', repr(value), 'Set "storage": "kong"')


# Integer time settings


def test_session_conf_rejects_string_lifetime() -> None:
    error = session_error(session(cookie_lifetime="3600"))

    assert_mentions(
        error, 'PORTAL_SESSION_CONF["cookie_lifetime"]', "'3600' (a string)", "Write 3600 without quotes"
    )
    assert error.key == "cookie_lifetime"


def test_session_conf_rejects_word_lifetime() -> None:
    error = session_error(session(cookie_lifetime="one hour"))

    assert_mentions(error, '"cookie_lifetime"', "'one hour'", "Write a whole number such as 3600")


@pytest.mark.parametrize("value", [True, False])
def test_session_conf_rejects_bool_lifetime(value: bool) -> None:
    error = session_error(session(cookie_lifetime=value))

    assert_mentions(error, '"cookie_lifetime"', f"{str(value).lower()} (a boolean)", "not true or false")


def test_session_conf_rejects_fractional_lifetime() -> None:
    error = session_error(session(cookie_lifetime=3600.5))

    assert_mentions(error, '"cookie_lifetime"', "3600.5 (a float)", "whole number")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_session_conf_rejects_nonfinite_lifetime(value: float) -> None:
    error = session_error(session(cookie_lifetime=value))

    assert_mentions(error, '"cookie_lifetime"', repr(value), "whole number")


def test_session_conf_accepts_whole_float() -> None:
    conf, _ = parse_session_conf(session(cookie_lifetime=7200.0))

    assert conf.cookie_lifetime == 7200
    assert type(conf.cookie_lifetime) is int


def test_session_conf_accepts_timedelta() -> None:
    conf, _ = parse_session_conf(session(cookie_lifetime=datetime.timedelta(hours=2)))

    assert conf.cookie_lifetime == 7200


def test_session_conf_rejects_fractional_timedelta() -> None:
    error = session_error(session(cookie_lifetime=datetime.timedelta(seconds=1.5)))

    assert_mentions(error, '"cookie_lifetime"', "1.5 seconds", "whole seconds")


@pytest.mark.parametrize("value", [0, -1])
def test_session_conf_rejects_nonpositive_lifetime(value: int) -> None:
    error = session_error(session(cookie_lifetime=value))

    assert_mentions(error, '"cookie_lifetime"', "at least 1", f"got {value}", "Set it to 3600")


def test_session_conf_rejects_huge_lifetime() -> None:
    error = session_error(session(cookie_lifetime=MAX_SECONDS + 1))

    assert_mentions(error, '"cookie_lifetime"', f"at most {MAX_SECONDS}", f"got {MAX_SECONDS + 1}")


def test_session_conf_rejects_null_lifetime() -> None:
    error = session_error(session(cookie_lifetime=None))

    assert_mentions(error, '"cookie_lifetime"', "got null", "Remove the key")


@pytest.mark.parametrize("value", [[3600], {"seconds": 3600}])
def test_session_conf_rejects_container_lifetime(value: Any) -> None:
    error = session_error(session(cookie_lifetime=value))

    assert_mentions(error, '"cookie_lifetime"', repr(value), "whole number")


def test_session_conf_rejects_renew_not_below_lifetime() -> None:
    error = session_error(session(cookie_lifetime=600, cookie_renew=600))

    assert_mentions(
        error, '"cookie_renew"', "less than cookie_lifetime (600)", "got 600", "Set cookie_renew below 600"
    )


def test_session_conf_accepts_zero_renew() -> None:
    conf, _ = parse_session_conf(session(cookie_renew=0))

    assert conf.cookie_renew == 0


@pytest.mark.parametrize("key", ["cookie_renew", "cookie_idletime", "cookie_discard", "absolute_timeout"])
def test_session_conf_rejects_negative_seconds(key: str) -> None:
    error = session_error(session(**{key: -5}))

    assert_mentions(error, f'PORTAL_SESSION_CONF["{key}"]', "at least 0", "got -5")


def test_session_conf_accepts_zero_timeouts() -> None:
    conf, warnings = parse_session_conf(session(cookie_idletime=0, absolute_timeout=0, cookie_discard=0))

    assert conf.cookie_idletime == 0
    assert conf.absolute_timeout == 0
    assert conf.cookie_discard == 0
    assert warnings == []


def test_session_conf_warns_short_absolute_timeout() -> None:
    conf, warnings = parse_session_conf(session(absolute_timeout=1800))

    assert conf.absolute_timeout == 1800
    assert len(warnings) == 1
    assert_mentions(warnings[0], '"absolute_timeout"', "(1800)", "cookie_lifetime (3600)", "set it to 0")


def test_session_conf_warns_long_idletime() -> None:
    _, warnings = parse_session_conf(session(cookie_idletime=3600))

    assert len(warnings) == 1
    assert_mentions(warnings[0], '"cookie_idletime"', "(3600)", "below cookie_lifetime")


def test_session_conf_rejects_string_max_bytes() -> None:
    error = session_error(session(max_session_bytes="64k"))

    assert_mentions(error, '"max_session_bytes"', "'64k'", "such as 65536")


def test_session_conf_rejects_zero_max_bytes() -> None:
    error = session_error(session(max_session_bytes=0))

    assert_mentions(error, '"max_session_bytes"', "at least 1", "got 0")


# Booleans


@pytest.mark.parametrize("key", ["cookie_httponly", "cookie_secure", "cookie_persistent"])
def test_session_conf_rejects_string_false(key: str) -> None:
    error = session_error(session(**{key: "false"}))

    assert_mentions(
        error, f'PORTAL_SESSION_CONF["{key}"]', "'false' (a string)", "Write false without quotes"
    )


def test_session_conf_rejects_string_true() -> None:
    error = session_error(session(cookie_persistent="True"))

    assert_mentions(error, '"cookie_persistent"', "'True'", "Write true without quotes")


@pytest.mark.parametrize("value", [0, 1, None, "maybe"])
def test_session_conf_rejects_non_boolean(value: Any) -> None:
    error = session_error(session(cookie_secure=value))

    assert_mentions(error, '"cookie_secure"', "must be a boolean", "Write true or false")


def test_session_conf_warns_insecure_cookie() -> None:
    conf, warnings = parse_session_conf(session(cookie_secure=False))

    assert conf.cookie_secure is False
    assert len(warnings) == 1
    assert_mentions(warnings[0], '"cookie_secure"', "plain-HTTP testing", "to true")


def test_session_conf_warns_script_readable_cookie() -> None:
    _, warnings = parse_session_conf(session(cookie_httponly=False))

    assert len(warnings) == 1
    assert_mentions(warnings[0], '"cookie_httponly"', "to true")


# cookie_path and cookie_domain


def test_session_conf_accepts_cookie_path() -> None:
    conf, _ = parse_session_conf(session(cookie_path="/portal/api"))

    assert conf.cookie_path == "/portal/api"


def test_session_conf_rejects_relative_cookie_path() -> None:
    error = session_error(session(cookie_path="portal"))

    assert_mentions(error, '"cookie_path"', "'portal'", 'start with "/"', 'Write it as "/portal"')


@pytest.mark.parametrize(
    ("path", "shown"),
    [("/a;b", "';'"), ("/a,b", "','"), ("/a b", "a space"), ("/a\x7fb", "control character"), ("/é", "'é'")],
)
def test_session_conf_rejects_bad_cookie_path(path: str, shown: str) -> None:
    error = session_error(session(cookie_path=path))

    assert_mentions(error, '"cookie_path"', shown, "not allowed in a cookie path", "Percent-encode")


@pytest.mark.parametrize(
    "domain", [".xyz.com", "xyz.com", "portal.xyz.com", "localhost", "127.0.0.1", "XYZ.com"]
)
def test_session_conf_accepts_cookie_domain(domain: str) -> None:
    conf, _ = parse_session_conf(session(cookie_domain=domain))

    assert conf.cookie_domain == domain


def test_session_conf_accepts_null_cookie_domain() -> None:
    conf, _ = parse_session_conf('{"secret": "%s", "cookie_domain": null}' % SECRET)

    assert conf.cookie_domain is None


@pytest.mark.parametrize(
    ("domain", "expected", "fix"),
    [
        ("xyz.com:8000", "must not contain a port", "'xyz.com' without the port"),
        ("https://xyz.com", "without a scheme", "Write only the host"),
        ("xyz.com;x=1", "';'", "Write only a host name"),
        ("xyz.com,abc.com", "','", "Write only a host name"),
        ("xyz .com", "a space", "Write only a host name"),
        ("", "is empty", "null"),
        (".com", "top-level domain", "your own domain"),
        (".127.0.0.1", "IP address with a leading dot", "without the dot"),
        ("::1", "IPv6", "null"),
        ("-bad.xyz.com", "not a valid host name", "letters, digits and hyphens"),
        ("xyz..com", "not a valid host name", "letters, digits and hyphens"),
        ("xyz.com.", "not a valid host name", "letters, digits and hyphens"),
        ("bücher.de", "non-ASCII", "punycode"),
        ("xyz_com.org", "not a valid host name", "letters, digits and hyphens"),
    ],
)
def test_session_conf_rejects_bad_cookie_domain(domain: str, expected: str, fix: str) -> None:
    error = session_error(session(cookie_domain=domain))

    assert_mentions(
        error, 'PORTAL_SESSION_CONF["cookie_domain"]', repr(domain) if domain else "is empty", expected, fix
    )


def test_session_conf_rejects_non_string_domain() -> None:
    error = session_error(session(cookie_domain=True))

    assert_mentions(error, '"cookie_domain"', "true (a boolean)", "host name string or null")


# cookie_samesite


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Strict", "Strict"),
        ("strict", "Strict"),
        ("LAX", "Lax"),
        ("lax", "Lax"),
        ("none", "None"),
        ("off", None),
        ("OFF", None),
    ],
)
def test_session_conf_normalizes_samesite(value: str, expected: str | None) -> None:
    conf, _ = parse_session_conf(session(cookie_samesite=value))

    assert conf.cookie_samesite == expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Default", "'Default'"),
        ("", "''"),
        (None, "null"),
        (False, "false (a boolean)"),
        ("strict-ish", "'strict-ish'"),
    ],
)
def test_session_conf_rejects_bad_samesite(value: Any, shown: str) -> None:
    error = session_error(session(cookie_samesite=value))

    assert_mentions(error, '"cookie_samesite"', shown, '"off"')


def test_session_conf_samesite_none_needs_secure() -> None:
    error = session_error(session(cookie_samesite="None", cookie_secure=False))

    assert_mentions(error, '"cookie_samesite"', '"None"', "Secure", "Set cookie_secure to true")


# Logout settings


def test_session_conf_normalizes_logout_methods() -> None:
    conf, _ = parse_session_conf(session(logout_methods=["delete", " Post "]))

    assert conf.logout_methods == ("DELETE", "POST")


@pytest.mark.parametrize(
    ("value", "expected", "fix"),
    [
        ("POST", "'POST' (a string)", 'Write it as a list: ["POST"]'),
        ([], "is empty", '["POST", "DELETE"]'),
        (["PUT"], "'PUT'", "GET, POST, DELETE"),
        ([1], "1 (an integer)", "GET, POST, DELETE"),
        (["POST", "post"], "repeats 'POST'", "Remove the duplicate"),
        ({"POST": True}, "an object", '["POST", "DELETE"]'),
    ],
)
def test_session_conf_rejects_bad_logout_methods(value: Any, expected: str, fix: str) -> None:
    error = session_error(session(logout_methods=value))

    assert_mentions(error, 'PORTAL_SESSION_CONF["logout_methods"]', expected, fix)


def test_session_conf_warns_get_logout() -> None:
    conf, warnings = parse_session_conf(session(logout_methods=["GET", "POST"]))

    assert conf.logout_methods == ("GET", "POST")
    assert len(warnings) == 1
    assert_mentions(warnings[0], '"logout_methods"', "GET", "link or image", "Remove GET")


@pytest.mark.parametrize("key", ["logout_query_arg", "logout_post_arg"])
@pytest.mark.parametrize(
    ("value", "expected"), [("", "must not be empty"), ("log out", "a space"), (7, "7 (an integer)")]
)
def test_session_conf_rejects_bad_logout_arg(key: str, value: Any, expected: str) -> None:
    error = session_error(session(**{key: value}))

    assert_mentions(error, f'PORTAL_SESSION_CONF["{key}"]', expected, "session_logout")


def test_session_conf_accepts_logout_args() -> None:
    conf, _ = parse_session_conf(session(logout_query_arg="logout", logout_post_arg="do_logout"))

    assert conf.logout_query_arg == "logout"
    assert conf.logout_post_arg == "do_logout"


# PORTAL_AUTH_CONF


def test_auth_conf_accepts_json_string() -> None:
    conf = parse_auth_conf(
        '{"realm": "developers", "key_names": ["apikey", "X-Api-Key"], "key_in_body": true}'
    )

    assert conf.realm == "developers"
    assert conf.key_names == ("apikey", "X-Api-Key")
    assert conf.key_in_body is True
    assert conf.key_in_header is True


def test_auth_conf_suggests_nearest_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse_auth_conf({"key_in_headers": True})

    assert_mentions(info.value, "PORTAL_AUTH_CONF", "'key_in_headers'", "Did you mean 'key_in_header'?")


def test_auth_conf_rejects_string_boolean() -> None:
    with pytest.raises(ConfigError) as info:
        parse_auth_conf({"key_in_query": "false"})

    assert_mentions(info.value, 'PORTAL_AUTH_CONF["key_in_query"]', "'false'", "Write false without quotes")


@pytest.mark.parametrize(
    ("value", "expected", "fix"),
    [
        ("apikey", "'apikey' (a string)", '["apikey"]'),
        ([], "is empty", '["apikey"]'),
        ([""], "must not be empty", "apikey"),
        (["api key"], "a space", "Use only"),
        (["apikey", "APIKEY"], "repeats 'APIKEY'", "Remove the duplicate"),
        ([3], "3 (an integer)", "in quotes"),
    ],
)
def test_auth_conf_rejects_bad_key_names(value: Any, expected: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_auth_conf({"key_names": value})

    assert_mentions(info.value, 'PORTAL_AUTH_CONF["key_names"]', expected, fix)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "must not be empty"),
        ('my "portal"', "'\"'"),
        ("a\nb", "control character"),
        ("a\\b", "'\\\\'"),
        (1, "1 (an integer)"),
    ],
)
def test_auth_conf_rejects_bad_realm(value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_auth_conf({"realm": value})

    assert_mentions(info.value, 'PORTAL_AUTH_CONF["realm"]', expected, '"portal"')


def test_auth_conf_rejects_invalid_json() -> None:
    with pytest.raises(ConfigError) as info:
        parse_auth_conf('{"realm": "portal"\n "key_in_body": true}')

    assert_mentions(info.value, "PORTAL_AUTH_CONF", "line 2, column 2", "comma is probably missing")


def test_load_config_rejects_keyless_key_auth(tmp_path: Path) -> None:
    error = load_error(tmp_path, PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_in_header": False})

    assert_mentions(
        error, "PORTAL_AUTH_CONF", "key_in_header", "never find an API key", "Set key_in_header to true"
    )


def test_load_config_allows_keyless_basic_auth(tmp_path: Path) -> None:
    config = load_config(portal_config(PORTAL_AUTH_CONF={"key_in_header": False}), str(tmp_path))

    assert config.auth_conf.key_in_header is False


def test_load_config_warns_key_in_query(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_portal_session.config"):
        config = load_config(
            portal_config(PORTAL_AUTH="key-auth", PORTAL_AUTH_CONF={"key_in_query": True}), str(tmp_path)
        )

    assert len(config.warnings) == 1
    assert_mentions(config.warnings[0], '"key_in_query"', "access logs", "to false")
    assert config.warnings[0] in caplog.messages


# PORTAL_AUTH


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("basic-auth", ("basic-auth",)),
        ("key-auth", ("key-auth",)),
        (["key-auth", "basic-auth"], ("key-auth", "basic-auth")),
        (("basic-auth",), ("basic-auth",)),
        ('["basic-auth", "key-auth"]', ("basic-auth", "key-auth")),
        ("basic-auth, key-auth", ("basic-auth", "key-auth")),
        (b"key-auth", ("key-auth",)),
    ],
)
def test_load_config_reads_auth_methods(tmp_path: Path, value: Any, expected: tuple[str, ...]) -> None:
    config = load_config(portal_config(PORTAL_AUTH=value), str(tmp_path))

    assert config.auth_methods == expected


def test_load_config_requires_auth(tmp_path: Path) -> None:
    error = load_error(tmp_path, PORTAL_AUTH=None)

    assert_mentions(error, "PORTAL_AUTH", "is missing", 'PORTAL_AUTH = "basic-auth"')
    assert error.setting == "PORTAL_AUTH"


def test_load_config_hints_lowercase_auth(tmp_path: Path) -> None:
    error = load_error(tmp_path, PORTAL_AUTH=None, portal_auth="basic-auth")

    assert_mentions(error, "is missing", "'portal_auth'", "Did you mean PORTAL_AUTH?")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("openid-connect", "'openid-connect'"),
        ("", "is empty"),
        ([], "empty list"),
        (["basic-auth", "oauth2"], "'oauth2'"),
        (["basic-auth", 1], "1 (an integer)"),
        (1, "1 (an integer)"),
        ("basic-auth,,key-auth", "'' (a string)"),
    ],
)
def test_load_config_rejects_bad_auth(tmp_path: Path, value: Any, expected: str) -> None:
    error = load_error(tmp_path, PORTAL_AUTH=value)

    assert_mentions(error, "PORTAL_AUTH", expected, '"basic-auth", "key-auth"')


def test_load_config_suggests_auth_method(tmp_path: Path) -> None:
    error = load_error(tmp_path, PORTAL_AUTH="basic_auth")

    assert_mentions(error, "'basic_auth'", "Did you mean 'basic-auth'?")


def test_load_config_rejects_duplicate_auth(tmp_path: Path) -> None:
    error = load_error(tmp_path, PORTAL_AUTH=["key-auth", "key-auth"])

    assert_mentions(error, "PORTAL_AUTH", "'key-auth' twice", "Remove the duplicate")


def test_load_config_rejects_invalid_auth_json(tmp_path: Path) -> None:
    error = load_error(tmp_path, PORTAL_AUTH='["basic-auth" "key-auth"]')

    assert_mentions(error, "PORTAL_AUTH", "line 1, column 15", '["basic-auth", "key-auth"]')


# PORTAL_SESSION_CONF through load_config


def test_load_config_requires_session_conf(tmp_path: Path) -> None:
    error = load_error(tmp_path, PORTAL_SESSION_CONF=None)

    assert_mentions(error, "PORTAL_SESSION_CONF", "is missing", '"secret"', "secrets.token_urlsafe")


def test_load_config_reports_session_error(tmp_path: Path) -> None:
    error = load_error(tmp_path, PORTAL_SESSION_CONF=session(cookie_lifetime="3600"))

    assert_mentions(error, 'PORTAL_SESSION_CONF["cookie_lifetime"]', "'3600'", "without quotes")


def test_load_config_reads_kong_json_with_commas(tmp_path: Path) -> None:
    config = load_config(
        portal_config(PORTAL_SESSION_CONF=add_missing_commas(KONG_HTTPS_EXAMPLE)), str(tmp_path)
    )

    assert config.session_conf.cookie_name == "$4m04$"


def test_load_config_rejects_kong_json(tmp_path: Path) -> None:
    error = load_error(tmp_path, PORTAL_SESSION_CONF=KONG_HTTP_EXAMPLE)

    assert_mentions(error, "PORTAL_SESSION_CONF", "line 3, column 5", "comma is probably missing")


def test_load_config_logs_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    conf = session(secret="changeme", cookie_secure=False, logout_methods=["GET"])

    with caplog.at_level(logging.WARNING, logger="flask_portal_session.config"):
        config = load_config(portal_config(PORTAL_SESSION_CONF=conf), str(tmp_path))

    assert len(config.warnings) == 3
    assert list(config.warnings) == caplog.messages
    assert all(record.name == "flask_portal_session.config" for record in caplog.records)
    assert "changeme" not in caplog.text


def test_load_config_warns_misspelled_setting(tmp_path: Path) -> None:
    config = load_config(portal_config(PORTAL_SESION_CONF={"secret": "x"}), str(tmp_path))

    assert len(config.warnings) == 1
    assert_mentions(config.warnings[0], "'PORTAL_SESION_CONF'", "'PORTAL_SESSION_CONF'", "Rename")


def test_load_config_ignores_unrelated_settings(tmp_path: Path) -> None:
    config = load_config(portal_config(PORTAL_TITLE="Docs", SECRET_KEY="x", DEBUG=True), str(tmp_path))

    assert config.warnings == ()


# PORTAL_AUTH_LOGIN_ATTEMPTS


@pytest.mark.parametrize("value", [0, 3, 10])
def test_load_config_reads_login_attempts(tmp_path: Path, value: int) -> None:
    config = load_config(portal_config(PORTAL_AUTH_LOGIN_ATTEMPTS=value), str(tmp_path))

    assert config.login_attempts == value


@pytest.mark.parametrize(
    ("value", "expected", "fix"),
    [
        (-1, "at least 0", "Set it to 10"),
        ("5", "'5' (a string)", "Write 5 without quotes"),
        (True, "true (a boolean)", "not true or false"),
        (2.5, "2.5 (a float)", "whole number"),
    ],
)
def test_load_config_rejects_bad_login_attempts(tmp_path: Path, value: Any, expected: str, fix: str) -> None:
    error = load_error(tmp_path, PORTAL_AUTH_LOGIN_ATTEMPTS=value)

    assert_mentions(error, "PORTAL_AUTH_LOGIN_ATTEMPTS", expected, fix)


# Database URL


def test_load_config_prefers_portal_database_uri(tmp_path: Path) -> None:
    config = load_config(
        portal_config(
            PORTAL_SESSION_DATABASE_URI="sqlite:///portal.db", SQLALCHEMY_DATABASE_URI="sqlite:///app.db"
        ),
        str(tmp_path),
    )

    assert config.database_uri == "sqlite:///portal.db"
    assert config.database_uri_is_default is False


def test_load_config_falls_back_to_sqlalchemy_uri(tmp_path: Path) -> None:
    config = load_config(
        portal_config(SQLALCHEMY_DATABASE_URI="postgresql://u:p@localhost/app"), str(tmp_path)
    )

    assert config.database_uri == "postgresql://u:p@localhost/app"
    assert config.database_uri_is_default is False


def test_load_config_accepts_url_object(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    url = make_url("postgresql+psycopg://portal:pw@localhost/portal")

    config = load_config(portal_config(SQLALCHEMY_DATABASE_URI=url), str(tmp_path))

    assert config.database_uri == "postgresql+psycopg://portal:pw@localhost/portal"


@pytest.mark.parametrize(
    ("value", "expected"), [("", "is empty"), ("  ", "is empty"), (5, "a value of type int")]
)
def test_load_config_rejects_bad_database_uri(tmp_path: Path, value: Any, expected: str) -> None:
    error = load_error(tmp_path, PORTAL_SESSION_DATABASE_URI=value)

    assert_mentions(error, "PORTAL_SESSION_DATABASE_URI", expected, "SQLAlchemy URL")


def test_load_config_hides_unparsable_database_uri(tmp_path: Path) -> None:
    error = load_error(tmp_path, PORTAL_SESSION_DATABASE_URI="postgres ql://u:secret-pw@h/db")

    assert_mentions(error, "PORTAL_SESSION_DATABASE_URI", "not a valid SQLAlchemy URL", "dialect+driver://")
    assert "secret-pw" not in str(error)


# PORTAL_GUI_HOST, PORTAL_GUI_PROTOCOL and PORTAL_API_URL


@pytest.mark.parametrize(
    ("host", "protocol", "origin"),
    [
        ("portal.xyz.com", "https", "https://portal.xyz.com"),
        ("portal.xyz.com:8003", "https", "https://portal.xyz.com:8003"),
        ("portal.xyz.com:443", "https", "https://portal.xyz.com"),
        ("https://Portal.XYZ.com/", None, "https://portal.xyz.com"),
        ("https://portal.xyz.com:8446", "HTTPS", "https://portal.xyz.com:8446"),
        ("127.0.0.1:8003", "https", "https://127.0.0.1:8003"),
        ("[::1]:8003", "https", "https://[::1]:8003"),
    ],
)
def test_load_config_builds_gui_origin(tmp_path: Path, host: str, protocol: str | None, origin: str) -> None:
    config = load_config(portal_config(PORTAL_GUI_HOST=host, PORTAL_GUI_PROTOCOL=protocol), str(tmp_path))

    assert config.gui_origin == origin


def test_load_config_gui_defaults_to_http(tmp_path: Path) -> None:
    config = load_config(
        portal_config(PORTAL_GUI_HOST="portal.xyz.com", PORTAL_SESSION_CONF=session(cookie_secure=False)),
        str(tmp_path),
    )

    assert config.gui_origin == "http://portal.xyz.com"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("", "is empty"),
        ("portal.xyz.com/portal", "without a path"),
        ("portal.xyz.com?x=1", "without a path"),
        ("ftp://portal.xyz.com", "must use http or https"),
        ("portal.xyz.com:99999", "invalid port"),
        ("portal.xyz.com:abc", "invalid port"),
        ("portal xyz.com", "a space"),
        ("user:pw@portal.xyz.com", "user name or password"),
        ("https://[::1", "not a valid URL"),
        ("portal_xyz.com", "not a valid host name"),
        (8003, "8003 (an integer)"),
    ],
)
def test_load_config_rejects_bad_gui_host(tmp_path: Path, host: Any, expected: str) -> None:
    error = load_error(tmp_path, PORTAL_GUI_HOST=host, PORTAL_GUI_PROTOCOL="https")

    assert_mentions(error, "PORTAL_GUI_HOST", expected, '"portal.xyz.com"')


@pytest.mark.parametrize("protocol", ["ftp", "", 1])
def test_load_config_rejects_bad_gui_protocol(tmp_path: Path, protocol: Any) -> None:
    error = load_error(tmp_path, PORTAL_GUI_HOST="portal.xyz.com", PORTAL_GUI_PROTOCOL=protocol)

    assert_mentions(error, "PORTAL_GUI_PROTOCOL", repr(protocol), '"https" or "http"')


def test_load_config_rejects_conflicting_gui_scheme(tmp_path: Path) -> None:
    error = load_error(tmp_path, PORTAL_GUI_HOST="https://portal.xyz.com", PORTAL_GUI_PROTOCOL="http")

    assert_mentions(
        error, "PORTAL_GUI_HOST", "https://", "PORTAL_GUI_PROTOCOL is 'http'", "make the two agree"
    )


def test_load_config_reads_api_url(tmp_path: Path) -> None:
    config = load_config(
        portal_config(PORTAL_API_URL="https://portalapi.xyz.com:8447/default"), str(tmp_path)
    )

    assert config.api_url == "https://portalapi.xyz.com:8447/default"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("portalapi.xyz.com", "full http:// or https:// URL"),
        ("ftp://portalapi.xyz.com", "full http:// or https:// URL"),
        ("https://", "no host name"),
        ("https://portalapi.xyz.com:0", "invalid port"),
        ("https://portalapi.xyz.com/?a=1", "query or fragment"),
        ("https://u:p@portalapi.xyz.com", "user name or password"),
        ("", "is empty"),
    ],
)
def test_load_config_rejects_bad_api_url(tmp_path: Path, url: str, expected: str) -> None:
    error = load_error(tmp_path, PORTAL_API_URL=url)

    assert_mentions(error, "PORTAL_API_URL", expected, "https://portalapi.xyz.com")


def test_load_config_requires_domain_for_two_hosts(tmp_path: Path) -> None:
    error = load_error(
        tmp_path, PORTAL_GUI_HOST="https://portal.xyz.com", PORTAL_API_URL="https://portalapi.xyz.com"
    )

    assert_mentions(error, "PORTAL_GUI_HOST (portal.xyz.com)", "PORTAL_API_URL (portalapi.xyz.com)")
    assert_mentions(error, '"cookie_domain"] is not set', 'Set "cookie_domain": ".xyz.com"')
    assert error.key == "cookie_domain"


def test_load_config_rejects_uncovering_domain(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        PORTAL_GUI_HOST="https://portal.dev.xyz.com",
        PORTAL_API_URL="https://api.dev.xyz.com",
        PORTAL_SESSION_CONF=session(cookie_domain=".abc.com"),
    )

    assert_mentions(error, "'.abc.com', which does not cover both", 'Set "cookie_domain": ".dev.xyz.com"')


def test_load_config_rejects_hosts_without_parent(tmp_path: Path) -> None:
    error = load_error(
        tmp_path, PORTAL_GUI_HOST="https://portal.abc.com", PORTAL_API_URL="https://api.xyz.org"
    )

    assert_mentions(
        error, "portal.abc.com", "api.xyz.org", "share no parent domain", "under one parent domain"
    )


def test_load_config_rejects_ip_hosts_without_parent(tmp_path: Path) -> None:
    error = load_error(tmp_path, PORTAL_GUI_HOST="https://10.0.0.1", PORTAL_API_URL="https://10.0.0.2")

    assert_mentions(error, "10.0.0.1", "10.0.0.2", "share no parent domain")


def test_load_config_accepts_covering_domain(tmp_path: Path) -> None:
    config = load_config(
        portal_config(
            PORTAL_GUI_HOST="portal.XYZ.com:8446",
            PORTAL_GUI_PROTOCOL="https",
            PORTAL_API_URL="https://portalapi.xyz.com:8447",
            PORTAL_SESSION_CONF=session(cookie_domain="XYZ.com"),
        ),
        str(tmp_path),
    )

    assert config.gui_origin == "https://portal.xyz.com:8446"
    assert config.session_conf.cookie_domain == "XYZ.com"


def test_load_config_same_host_needs_no_domain(tmp_path: Path) -> None:
    config = load_config(
        portal_config(
            PORTAL_GUI_HOST="https://portal.xyz.com", PORTAL_API_URL="https://portal.xyz.com:8447/api"
        ),
        str(tmp_path),
    )

    assert config.session_conf.cookie_domain is None


def test_load_config_rejects_domain_missing_api_host(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        PORTAL_API_URL="https://api.xyz.com",
        PORTAL_SESSION_CONF=session(cookie_domain="portal.xyz.com"),
    )

    assert_mentions(
        error, '"cookie_domain"] is \'portal.xyz.com\'', "PORTAL_API_URL host api.xyz.com", "parent domain"
    )


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"PORTAL_API_URL": "http://portal.xyz.com"}, "PORTAL_API_URL (http://portal.xyz.com)"),
        ({"PORTAL_GUI_HOST": "portal.xyz.com"}, "PORTAL_GUI_PROTOCOL defaults to http"),
        ({"PORTAL_GUI_HOST": "http://portal.xyz.com:8003"}, "PORTAL_GUI_HOST (http://portal.xyz.com:8003)"),
    ],
)
def test_load_config_rejects_secure_over_http(tmp_path: Path, overrides: dict[str, str], named: str) -> None:
    error = load_error(tmp_path, **overrides)

    assert_mentions(error, named, '"cookie_secure"] is true', "will not send a Secure cookie")
    assert_mentions(error, "Set cookie_secure to false for plain-HTTP testing", "HTTPS")
    assert error.key == "cookie_secure"


def test_load_config_allows_http_when_insecure(tmp_path: Path) -> None:
    config = load_config(
        portal_config(
            PORTAL_API_URL="http://localhost:5000", PORTAL_SESSION_CONF=session(cookie_secure=False)
        ),
        str(tmp_path),
    )

    assert config.api_url == "http://localhost:5000"
    assert len(config.warnings) == 1
    assert_mentions(config.warnings[0], "cookie_secure")


# PORTAL_LOGIN_VIEW and PORTAL_URL_PREFIX


def test_load_config_reads_login_view(tmp_path: Path) -> None:
    config = load_config(portal_config(PORTAL_LOGIN_VIEW="auth.login"), str(tmp_path))

    assert config.login_view == "auth.login"


@pytest.mark.parametrize(
    ("value", "expected"), [("", "''"), ("auth login", "'auth login'"), (3, "3 (an integer)")]
)
def test_load_config_rejects_bad_login_view(tmp_path: Path, value: Any, expected: str) -> None:
    error = load_error(tmp_path, PORTAL_LOGIN_VIEW=value)

    assert_mentions(error, "PORTAL_LOGIN_VIEW", expected, '"auth.login"')


@pytest.mark.parametrize("prefix", ["", "/portal", "/api/v1"])
def test_load_config_reads_url_prefix(tmp_path: Path, prefix: str) -> None:
    config = load_config(portal_config(PORTAL_URL_PREFIX=prefix), str(tmp_path))

    assert config.url_prefix == prefix


@pytest.mark.parametrize(
    ("prefix", "expected", "fix"),
    [
        ("portal", 'start with "/"', 'Write "/portal"'),
        ("/portal/", 'end with "/"', 'Write "/portal"'),
        ("/", 'end with "/"', "mount at the root"),
        ("/por tal", "a space", '"/portal"'),
        ("/portal?x", "'?'", '"/portal"'),
        (5, "5 (an integer)", '"/portal"'),
    ],
)
def test_load_config_rejects_bad_url_prefix(tmp_path: Path, prefix: Any, expected: str, fix: str) -> None:
    error = load_error(tmp_path, PORTAL_URL_PREFIX=prefix)

    assert_mentions(error, "PORTAL_URL_PREFIX", expected, fix)


# PORTAL_PASSWORD_HASH_CONF


def test_password_hash_conf_reads_json() -> None:
    conf = parse_password_hash_conf('{"time_cost": 1, "memory_cost": 8, "parallelism": 1}')

    assert conf == PasswordHashConf(time_cost=1, memory_cost=8, parallelism=1)


def test_load_config_reads_password_hash(tmp_path: Path) -> None:
    config = load_config(portal_config(PORTAL_PASSWORD_HASH_CONF={"time_cost": 2}), str(tmp_path))

    assert config.password_hash == PasswordHashConf(time_cost=2, memory_cost=65536, parallelism=4)


@pytest.mark.parametrize(
    ("value", "expected", "fix"),
    [
        ({"time_cost": 0}, "at least 1", "Set it to 3"),
        ({"memory_cost": "65536"}, "'65536'", "Write 65536 without quotes"),
        ({"parallelism": True}, "true (a boolean)", "not true or false"),
        ({"parallelism": 2**24}, f"at most {2**24 - 1}", "Set it to 4"),
        ({"memory_cost": 16}, "at least 8 times parallelism (4)", "Raise memory_cost"),
        ({"time": 3}, "'time'", "Did you mean 'time_cost'?"),
    ],
)
def test_password_hash_conf_rejects_bad_values(value: dict[str, Any], expected: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_password_hash_conf(value)

    assert_mentions(info.value, "PORTAL_PASSWORD_HASH_CONF", expected, fix)


# Error type


def test_config_error_is_value_error() -> None:
    error = session_error(session(cookie_lifetime=0))

    assert isinstance(error, ValueError)
    assert error.setting == "PORTAL_SESSION_CONF"
    assert error.key == "cookie_lifetime"


# Property test: any JSON object gives a SessionConf or a ConfigError, never another error.

KNOWN_SESSION_KEYS = ["secret", *SESSION_DEFAULTS, *SESSION_KEY_ALIASES]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)

plausible_values = st.sampled_from(
    [
        0, 1, 10, 600, 3600, 86400, -1, 3600.0, 3600.5, "3600", True, False, "false", None, "", "/",
        ".xyz.com", "xyz.com:80", "Strict", "lax", "None", "off", ["POST"], ["GET", "post"], [], ["PUT"],
        "kong", "cookie", "__Host-x", "__Secure-x", "session", "a b", ["old-secret"], [""],
    ]
)  # fmt: skip


@st.composite
def near_miss_keys(draw: st.DrawFn) -> str:
    """Draw a real key name with one character deleted, inserted, replaced or upper-cased."""
    key = draw(st.sampled_from(KNOWN_SESSION_KEYS))
    index = draw(st.integers(min_value=0, max_value=len(key) - 1))
    edit = draw(st.sampled_from(["delete", "insert", "replace", "upper", "keep"]))
    character = draw(st.characters(codec="utf-8"))
    if edit == "delete":
        return key[:index] + key[index + 1 :]
    if edit == "insert":
        return key[:index] + character + key[index:]
    if edit == "replace":
        return key[:index] + character + key[index + 1 :]
    if edit == "upper":
        return key.upper()
    return key


session_objects = st.dictionaries(
    st.text(max_size=20) | near_miss_keys() | st.sampled_from(KNOWN_SESSION_KEYS),
    json_values | plausible_values,
    max_size=8,
)


def parse_or_config_error(value: Any) -> SessionConf | ConfigError:
    try:
        conf, warnings = parse_session_conf(value)
    except ConfigError as error:
        return error
    assert all(isinstance(warning, str) for warning in warnings)
    return conf


@settings(max_examples=300, deadline=None)
@given(extra=session_objects, with_secret=st.booleans())
def test_session_conf_raises_only_config_error(extra: dict[str, Any], with_secret: bool) -> None:
    value = {"secret": SECRET, **extra} if with_secret else extra

    result = parse_or_config_error(value)

    if isinstance(result, ConfigError):
        assert SECRET not in str(result)
    else:
        assert result.cookie_renew < result.cookie_lifetime
        assert result.storage == "kong"
        assert set(result.logout_methods) <= {"GET", "POST", "DELETE"}
        assert result.cookie_samesite in ("Strict", "Lax", "None", None)


@settings(max_examples=200, deadline=None)
@given(extra=session_objects)
def test_session_conf_json_raises_only_config_error(extra: dict[str, Any]) -> None:
    document = json.dumps({"secret": SECRET, **extra})

    result = parse_or_config_error(document)

    if isinstance(result, ConfigError):
        assert SECRET not in str(result)


@settings(max_examples=200, deadline=None)
@given(document=st.text(max_size=60))
def test_session_conf_text_raises_only_config_error(document: str) -> None:
    parse_or_config_error(document)
