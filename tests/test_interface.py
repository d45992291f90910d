"""Helpers of the session interface that run on every request."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from flask import Flask, Response
from flask.json.tag import TaggedJSONSerializer
from markupsafe import Markup

from flask_portal_session.interface import add_vary_cookie, load_tagged_json

TAGGED_VALUES: list[Any] = [
    {},
    {"a": 1, "b": [1, 2.5, None, True], "c": {"d": "e"}},
    {"tuple": (1, "two"), "bytes": b"\x00\xff", "markup": Markup("<b>x</b>")},
    {"uuid": uuid.UUID("12345678-1234-5678-1234-567812345678")},
    {"when": datetime.datetime(2026, 12, 4, 21, 0, 0, tzinfo=datetime.timezone.utc)},
    {"nested": [{"t": (1, (2, b"3"))}], " t": "a key that looks like a tag"},
    {" di": {"k": "v"}},
    {"text": "caf\u00e9 \U0001f600"},
]


@pytest.mark.parametrize("value", TAGGED_VALUES)
def test_load_tagged_json_matches_flask(value: dict[str, Any]) -> None:
    serializer = TaggedJSONSerializer()
    with Flask(__name__).app_context():
        text = serializer.dumps(value)
        expected = serializer.loads(text)

    assert load_tagged_json(text) == expected
    assert load_tagged_json(text) == value


def test_load_tagged_json_invalid_text() -> None:
    with pytest.raises(ValueError):
        load_tagged_json("{not json")


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (None, "Cookie"),
        ("", "Cookie"),
        ("Accept-Encoding", "Accept-Encoding, Cookie"),
        ("Accept-Encoding, cookie", "Accept-Encoding, cookie"),
        ("Cookie", "Cookie"),
        ("*", "*"),
    ],
)
def test_add_vary_cookie_adds_cookie_once(existing: str | None, expected: str) -> None:
    response = Response()
    if existing is not None:
        response.headers["Vary"] = existing

    add_vary_cookie(response)
    add_vary_cookie(response)

    assert response.headers.getlist("Vary") == [expected]
