"""Property tests: arbitrary input never gives a 500, session values survive a round trip,
and the config parser raises nothing but ConfigError.

The HTTP properties run on SQLite only, because what they exercise (header
parsing, the cookie tag check, the credential checks) does not depend on the
backend. The example counts are modest so the suite stays quick on two cores.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from flask import Flask, session
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from conftest import TEST_SECRET
from flask_portal_session import ConfigError
from flask_portal_session.config import (
    AUTH_CONF_DEFAULTS,
    PASSWORD_HASH_DEFAULTS,
    SESSION_DEFAULTS,
    SESSION_KEY_ALIASES,
    load_config,
    parse_auth_conf,
    parse_password_hash_conf,
    parse_session_conf,
)
from flask_portal_session.crypto import KeyRing, new_session_id

from .conftest import EMAIL, PASSWORD, add_api_key, add_developer, only_on

HTTP_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PARSER_SETTINGS = settings(max_examples=300, deadline=None)

#: Text a WSGI server can hand to the app as a header value: Latin-1 without line breaks.
header_text = st.text(st.characters(min_codepoint=0, max_codepoint=255, exclude_characters="\r\n"), max_size=300)


@pytest.fixture
def app(make_app: Any) -> Flask:
    """A portal app with one developer and one API key; lockout off so fuzzing cannot lock it."""
    app = make_app(PORTAL_AUTH_LOGIN_ATTEMPTS=0)
    add_developer(app)
    add_api_key(app)
    return app


def real_token() -> str:
    return KeyRing(TEST_SECRET).encode_token(new_session_id())


# -- arbitrary cookies, Authorization and apikey headers ------------------------------------------


@only_on("sqlite")
@HTTP_SETTINGS
@given(cookie=header_text)
@example(cookie="session=" + "A" * 8192)
@example(cookie="session=; session=;;; =session")
@example(cookie='session="' + "\\" * 64 + '"')
def test_any_cookie_header_no_500(app: Flask, cookie: str) -> None:
    client = app.test_client(use_cookies=False)

    for path in ("/get", "/private", "/session", "/plain"):
        response = client.get(path, headers={"Cookie": cookie})
        assert response.status_code < 500, (path, response.status_code)


@only_on("sqlite")
@HTTP_SETTINGS
@given(value=header_text)
@example(value=real_token()[:-1] + "\xff")
def test_any_session_cookie_value_no_500(app: Flask, value: str) -> None:
    client = app.test_client(use_cookies=False)

    response = client.post("/put?a=1&session_logout=1", headers={"Cookie": f"session={value}"})

    assert response.status_code == 200


@only_on("sqlite")
@HTTP_SETTINGS
@given(authorization=header_text)
@example(authorization="Basic " + "A" * 1_000_000)
@example(authorization="Basic\t" + base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode() + "\x00")
def test_any_authorization_401(app: Flask, authorization: str) -> None:
    response = app.test_client(use_cookies=False).get("/auth", headers={"Authorization": authorization})

    assert response.status_code == 401
    assert isinstance(response.get_json()["message"], str)


@only_on("sqlite")
@HTTP_SETTINGS
@given(credentials=st.binary(max_size=200))
@example(credentials=EMAIL.encode() + b":" + b"\xff" * 3)
@example(credentials=b":" + PASSWORD.encode())
def test_any_basic_credentials_401(app: Flask, credentials: bytes) -> None:
    header = "Basic " + base64.b64encode(credentials).decode("ascii")

    response = app.test_client(use_cookies=False).get("/auth", headers={"Authorization": header})

    assert response.status_code == 401
    assert isinstance(response.get_json()["message"], str)


@only_on("sqlite")
@HTTP_SETTINGS
@given(key=header_text)
@example(key="")
@example(key=" \t ")
def test_any_apikey_header_401(app: Flask, key: str) -> None:
    response = app.test_client(use_cookies=False).get("/auth", headers={"apikey": key})

    assert response.status_code == 401
    assert isinstance(response.get_json()["message"], str)


# -- session values survive sealing, storage and opening ----------------------------------------

#: UTC datetimes in whole seconds from 1900 on: Flask's tagged JSON keeps exactly these.
#: It writes datetimes as HTTP dates, which drop the microseconds and the time zone,
#: and it reads some years before 1000 back wrongly (Flask 3.1).
exact_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(timezone.utc)
).map(lambda value: value.replace(microsecond=0))

session_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | exact_datetimes
    | st.uuids()
    | st.text().map(Markup)
)

session_values = st.recursive(
    session_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.lists(children, max_size=4).map(tuple)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def same(left: Any, right: Any) -> bool:
    """Compare two values and the types of everything inside them (Markup is not str, tuple is not list)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[key], right[key]) for key in left)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right))
    return bool(left == right)


class Holder:
    """Carries a value from the test into a view and back."""

    value: Any = None
    loaded: Any = None


@pytest.fixture
def round_trip_app(make_app: Any) -> Flask:
    app = make_app()

    @app.get("/store")
    def store() -> Any:
        session["value"] = Holder.value
        return {}

    @app.get("/load")
    def load() -> Any:
        Holder.loaded = session.get("value", "<missing>")
        return {}

    return app


@only_on("sqlite")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=session_values)
@example(value={" t": ["tag-like key"]})
@example(value=[uuid.UUID(int=0), b"\x00\xff", Markup("<b>bold</b>"), ("a", 1)])
@example(value="lone surrogate \ud800 and \udfff")
def test_session_value_round_trip(round_trip_app: Flask, value: Any) -> None:
    client = round_trip_app.test_client()
    Holder.value = value

    assert client.get("/store").status_code == 200
    assert client.get("/load").status_code == 200
    assert same(Holder.loaded, value), (Holder.loaded, value)


@only_on("sqlite")
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=session_values)
@example(value="lone surrogate \ud800")
def test_round_trip_without_ensure_ascii(round_trip_app: Flask, value: Any) -> None:
    # Apps that serve UTF-8 JSON turn ensure_ascii off, and the session serializer
    # then writes lone surrogates from request JSON as they are.
    round_trip_app.json.ensure_ascii = False  # type: ignore[attr-defined]
    client = round_trip_app.test_client()
    Holder.value = value

    assert client.get("/store").status_code == 200
    assert client.get("/load").status_code == 200
    assert same(Holder.loaded, value), (Holder.loaded, value)


# -- the config parser raises ConfigError and nothing else ---------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)

#: Values close to valid ones, so the checks past the type checks run too.
plausible_values = (
    json_values
    | st.integers(min_value=-5, max_value=10**6)
    | st.sampled_from(["/", "/portal", ".example.test", "example.test", "Strict", "Lax", "None", "off", "kong"])
    | st.lists(st.sampled_from(["GET", "POST", "DELETE", "PUT", "post"]), max_size=4)
    | st.text(st.characters(codec="utf-8"), max_size=20)
    | st.text(st.characters(categories=["Cs", "Cc", "Zs"]), max_size=6)
)


def conf_objects(known: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.sampled_from(known) | st.text(max_size=12)
    return st.dictionaries(keys, plausible_values, max_size=6)


session_confs = st.builds(
    lambda secret, rest: {"secret": secret, **rest} if secret is not None else rest,
    st.none() | st.just(TEST_SECRET) | st.text(max_size=40) | json_values,
    conf_objects(("secret", *SESSION_DEFAULTS, *SESSION_KEY_ALIASES)),
)


def parse_or_config_error(parse: Any, value: Any) -> None:
    """Call ``parse(value)``; a ConfigError is a valid outcome, any other exception fails the test."""
    try:
        parse(value)
    except ConfigError:
        pass


HUGE_NUMBER = "1" + "0" * 5000


@PARSER_SETTINGS
@given(conf=session_confs)
@example(conf={"secret": "\ud800" * 40})
@example(conf={"secret": TEST_SECRET, "secret_fallbacks": ["old \udfff secret"]})
def test_session_conf_dict_config_error_only(conf: dict[str, Any]) -> None:
    parse_or_config_error(parse_session_conf, conf)


@PARSER_SETTINGS
@given(conf=session_confs)
@example(conf={"secret": TEST_SECRET, "cookie_lifetime": float("inf")})
def test_session_conf_json_config_error_only(conf: dict[str, Any]) -> None:
    text = json.dumps(conf)

    parse_or_config_error(parse_session_conf, text)
    parse_or_config_error(parse_session_conf, text.encode("utf-8", "surrogatepass"))


@PARSER_SETTINGS
@given(text=st.text(max_size=200))
@example(text='{"secret": "' + TEST_SECRET + '", "cookie_lifetime": ' + HUGE_NUMBER + "}")
@example(text='{"secret": "\\ud800\\ud800"}')
@example(text="[" * 100_000)
def test_session_conf_any_text_config_error_only(text: str) -> None:
    parse_or_config_error(parse_session_conf, text)


@PARSER_SETTINGS
@given(conf=conf_objects(tuple(AUTH_CONF_DEFAULTS)))
def test_auth_conf_config_error_only(conf: dict[str, Any]) -> None:
    parse_or_config_error(parse_auth_conf, conf)
    parse_or_config_error(parse_auth_conf, json.dumps(conf))


@PARSER_SETTINGS
@given(conf=conf_objects(tuple(PASSWORD_HASH_DEFAULTS)))
def test_password_hash_conf_config_error_only(conf: dict[str, Any]) -> None:
    parse_or_config_error(parse_password_hash_conf, conf)
    parse_or_config_error(parse_password_hash_conf, json.dumps(conf))


@PARSER_SETTINGS
@given(
    settings_values=st.fixed_dictionaries(
        {},
        optional={
            "PORTAL_AUTH": plausible_values | st.sampled_from(["basic-auth", "key-auth", '["key-auth"]']),
            "PORTAL_AUTH_CONF": conf_objects(tuple(AUTH_CONF_DEFAULTS)) | json_values,
            "PORTAL_AUTH_LOGIN_ATTEMPTS": plausible_values,
            "PORTAL_SESSION_CONF": session_confs | json_values,
            "PORTAL_SESSION_DATABASE_URI": plausible_values | st.just("sqlite:///x.db"),
            "PORTAL_GUI_HOST": plausible_values | st.just("portal.example.test"),
            "PORTAL_GUI_PROTOCOL": plausible_values | st.sampled_from(["http", "https"]),
            "PORTAL_API_URL": plausible_values | st.just("https://api.example.test"),
            "PORTAL_LOGIN_VIEW": plausible_values,
            "PORTAL_URL_PREFIX": plausible_values,
            "PORTAL_PASSWORD_HASH_CONF": conf_objects(tuple(PASSWORD_HASH_DEFAULTS)) | json_values,
        },
    )
)
@example(settings_values={"PORTAL_AUTH": "[" + HUGE_NUMBER + "]", "PORTAL_SESSION_CONF": {"secret": TEST_SECRET}})
def test_load_config_config_error_only(settings_values: dict[str, Any]) -> None:
    parse_or_config_error(lambda value: load_config(value, "/nonexistent/instance"), settings_values)


HUGE_NUMBER_CASES = {
    "lifetime": (parse_session_conf, {"secret": TEST_SECRET, "cookie_lifetime": 10**5000}),
    "alias conflict": (parse_session_conf, {"secret": TEST_SECRET, "cookie_lifetime": 10**5000, "rolling_timeout": 1}),
    "in a list": (parse_session_conf, {"secret": TEST_SECRET, "cookie_path": [10**5000]}),
    "key name": (parse_auth_conf, {"key_names": [10**5000]}),
    "time cost": (parse_password_hash_conf, {"time_cost": 10**5000}),
    "json literal": (parse_session_conf, '{"secret": "' + TEST_SECRET + '", "cookie_lifetime": ' + HUGE_NUMBER + "}"),
}


@pytest.mark.parametrize(("parse", "conf"), HUGE_NUMBER_CASES.values(), ids=HUGE_NUMBER_CASES.keys())
def test_huge_number_config_error(parse: Any, conf: Any) -> None:
    # Python will not turn integers of more than 4300 digits into text, which
    # used to escape from the error messages as a plain ValueError.
    with pytest.raises(ConfigError):
        parse(conf)


def test_surrogate_secret_fails_at_init(tmp_path: Any) -> None:
    from flask_portal_session import PortalSession

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(PORTAL_AUTH="basic-auth", PORTAL_SESSION_CONF='{"secret": "\\ud800' + "x" * 40 + '"}')

    with pytest.raises(ConfigError, match="secret"):
        PortalSession(app)
