"""WSGI entry point for gunicorn: ``gunicorn --pythonpath benchmarks wsgi:app``.

``BENCH_APP`` picks the app (``bare``, ``floor`` or ``portal``), and for the
last two ``BENCH_DATABASE_URL`` names the migrated database. Each worker
builds its own app and database connections after the fork.
"""

from __future__ import annotations

import os

from contenders import build_bare_app, build_portal_app
from floor import build_floor_app

_kind = os.environ.get("BENCH_APP", "")
if _kind == "bare":
    app = build_bare_app()
elif _kind == "portal":
    app, _portal = build_portal_app(os.environ["BENCH_DATABASE_URL"])
elif _kind == "floor":
    app, _store = build_floor_app(os.environ["BENCH_DATABASE_URL"])
else:
    raise RuntimeError(f"Invalid BENCH_APP {_kind!r}: set it to 'bare', 'floor' or 'portal'.")
