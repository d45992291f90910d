"""Cookie attribute rules: bad names, domains and paths are ConfigErrors, prefixes are enforced.

A cookie setting that reaches a Set-Cookie header unchecked can inject
attributes (``path=/; Domain=evil``), split the header, or produce a cookie
that browsers silently drop. Every such value must fail at init_app.
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import TEST_SECRET
from flask_portal_session import ConfigError
from flask_portal_session.config import SESSION_DEFAULTS, parse_session_conf

from .conftest import only_on, session_set_cookies

#: Characters that would end, split or corrupt a cookie attribute.
BAD_CHARACTERS = {
    "semicolon": ";",
    "comma": ",",
    "space": " ",
    "tab": "\t",
    "newline": "\n",
    "carriage return": "\r",
    "nul": "\x00",
    "escape": "\x1b",
    "delete": "\x7f",
    "next line": "\x85",
    "line separator": "\u2028",
}


def conf(**values: Any) -> dict[str, Any]:
    return {"secret": TEST_SECRET, **values}


def config_error(**values: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_session_conf(conf(**values))
    return caught.value


@pytest.mark.parametrize("character", BAD_CHARACTERS.values(), ids=BAD_CHARACTERS.keys())
def test_cookie_name_bad_character(character: str) -> None:
    error = config_error(cookie_name=f"portal{character}session")

    assert error.key == "cookie_name"


@pytest.mark.parametrize("character", [*BAD_CHARACTERS.values(), "=", '"', "(", ")", "/", "@", "é"])
def test_cookie_name_not_token(character: str) -> None:
    assert config_error(cookie_name=f"portal{character}").key == "cookie_name"


@pytest.mark.parametrize("character", BAD_CHARACTERS.values(), ids=BAD_CHARACTERS.keys())
def test_cookie_domain_bad_character(character: str) -> None:
    error = config_error(cookie_domain=f"example{character}.test")

    assert error.key == "cookie_domain"


@pytest.mark.parametrize("character", BAD_CHARACTERS.values(), ids=BAD_CHARACTERS.keys())
def test_cookie_path_bad_character(character: str) -> None:
    error = config_error(cookie_path=f"/portal{character}x")

    assert error.key == "cookie_path"


INJECTIONS = {
    "cookie_name": "session; Domain=evil.test",
    "cookie_domain": "example.test; SameSite=None",
    "cookie_path": "/; Domain=evil.test",
}


@pytest.mark.parametrize(("key", "value"), INJECTIONS.items(), ids=INJECTIONS.keys())
def test_attribute_injection_rejected(key: str, value: str) -> None:
    assert config_error(**{key: value}).key == key


@pytest.mark.parametrize(("key", "value"), INJECTIONS.items(), ids=INJECTIONS.keys())
def test_error_names_key_and_fix(key: str, value: str) -> None:
    message = str(config_error(**{key: value}))

    assert key in message
    assert "Use" in message or "Write" in message or "choose" in message


@pytest.mark.parametrize(
    "domain", ["http://example.test", "example.test/portal", "example.test:8080", ".test", "", "exa mple.test"]
)
def test_cookie_domain_not_host(domain: str) -> None:
    assert config_error(cookie_domain=domain).key == "cookie_domain"


@pytest.mark.parametrize("path", ["", "portal", "./portal", "é"])
def test_cookie_path_not_absolute(path: str) -> None:
    assert config_error(cookie_path=path).key == "cookie_path"


def test_samesite_none_needs_secure() -> None:
    error = config_error(cookie_samesite="None", cookie_secure=False)

    assert error.key == "cookie_samesite"
    assert "cookie_secure" in str(error)


def test_samesite_none_with_secure() -> None:
    parsed, _ = parse_session_conf(conf(cookie_samesite="None", cookie_secure=True))

    assert parsed.cookie_samesite == "None"


def test_samesite_alias_none_needs_secure() -> None:
    assert config_error(cookie_same_site="none", cookie_secure=False).key == "cookie_samesite"


HOST_PREFIX_VIOLATIONS = {
    "not secure": {"cookie_secure": False},
    "path": {"cookie_path": "/portal"},
    "domain": {"cookie_domain": "example.test"},
}


@pytest.mark.parametrize("name", ["__Host-session", "__host-session", "__HOST-session"])
@pytest.mark.parametrize("violation", HOST_PREFIX_VIOLATIONS.values(), ids=HOST_PREFIX_VIOLATIONS.keys())
def test_host_prefix_rules(name: str, violation: dict[str, Any]) -> None:
    settings = {"cookie_secure": True, **violation}

    assert config_error(cookie_name=name, **settings).key == "cookie_name"


def test_host_prefix_valid() -> None:
    parsed, _ = parse_session_conf(conf(cookie_name="__Host-session", cookie_secure=True))

    assert parsed.cookie_name == "__Host-session"


@pytest.mark.parametrize("name", ["__Secure-session", "__secure-session"])
def test_secure_prefix_needs_secure(name: str) -> None:
    assert config_error(cookie_name=name, cookie_secure=False).key == "cookie_name"


def test_secure_prefix_valid_with_domain() -> None:
    parsed, _ = parse_session_conf(
        conf(cookie_name="__Secure-session", cookie_secure=True, cookie_domain="example.test", cookie_path="/p")
    )

    assert parsed.cookie_domain == "example.test"


def test_defaults_are_strict() -> None:
    assert SESSION_DEFAULTS["cookie_secure"] is True
    assert SESSION_DEFAULTS["cookie_httponly"] is True
    assert SESSION_DEFAULTS["cookie_samesite"] == "Strict"
    assert SESSION_DEFAULTS["cookie_persistent"] is False


@pytest.mark.parametrize("value", ["true", "false", 1, 0, None, "yes"])
def test_secure_flag_must_be_boolean(value: Any) -> None:
    assert config_error(cookie_secure=value).key == "cookie_secure"


@pytest.mark.parametrize("value", ["true", "false", 1, 0, None])
def test_httponly_flag_must_be_boolean(value: Any) -> None:
    assert config_error(cookie_httponly=value).key == "cookie_httponly"


# -- what reaches the browser ----------------------------------------------------------------------


@only_on("sqlite")
def test_init_app_rejects_injection(make_app: Any) -> None:
    with pytest.raises(ConfigError):
        make_app({"cookie_path": "/; Domain=evil.test"})


@only_on("sqlite")
def test_host_prefix_cookie_attributes(make_app: Any) -> None:
    app = make_app({"cookie_name": "__Host-portal", "cookie_secure": True})

    response = app.test_client(use_cookies=False).get("/put?a=1", base_url="https://portal.example.test")
    header = session_set_cookies(response, "__Host-portal")[0]

    assert "Secure" in header
    assert "Path=/" in header
    assert "Domain=" not in header


@only_on("sqlite")
def test_host_prefix_logout_expires_same_cookie(make_app: Any) -> None:
    app = make_app({"cookie_name": "__Host-portal", "cookie_secure": True, "cookie_samesite": "Lax"})
    client = app.test_client(use_cookies=False)
    created = client.get("/put?a=1", base_url="https://portal.example.test")
    token = session_set_cookies(created, "__Host-portal")[0].split(";")[0]

    response = client.post(
        "/auth?session_logout=1", headers={"Cookie": token}, base_url="https://portal.example.test"
    )
    expiries = session_set_cookies(response, "__Host-portal")

    assert len(expiries) == 1
    assert "Max-Age=0" in expiries[0]
    assert "Secure" in expiries[0]
    assert "Domain=" not in expiries[0]


@only_on("sqlite")
def test_secure_default_cookie_attributes(make_app: Any) -> None:
    app = make_app({"cookie_secure": True})

    response = app.test_client(use_cookies=False).get("/put?a=1", base_url="https://portal.example.test")
    header = session_set_cookies(response)[0]

    assert "Secure" in header
    assert "HttpOnly" in header
    assert "SameSite=Strict" in header
    assert "Expires=" not in header
