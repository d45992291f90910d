"""Prepare the example portal's database and its demo developer.

Run by ``make demo`` before the server starts, with the same environment
variables as ``app.py``. It upgrades the configured database to the newest
migration, then creates ``demo@example.com`` with a random password and an
API key and prints both once. When the developer already exists it prints
how to reset the password instead. It needs no network.
"""

from __future__ import annotations

import os
import secrets
import sys

from sqlalchemy.engine import make_url

# Run as a script, so Python has put this file's folder first on sys.path.
from app import create_app, portal
from flask_portal_session.migrate import upgrade

#: Email of the developer that the demo creates.
DEMO_EMAIL = "demo@example.com"


def main() -> int:
    """Migrate the database and create the demo developer; return the exit status."""
    app = create_app()
    with app.app_context():
        config = portal.config
        upgrade(config.database_uri)
        print(f"Database is up to date ({_describe_database(config.database_uri)}).")

        developers = portal.developers
        if developers.get_by_email(DEMO_EMAIL) is not None:
            print(f"The demo developer {DEMO_EMAIL} already exists; its password was shown when it was created.")
            print("To set a new password, run:")
            print(f"  .venv/bin/flask --app examples/portal/app.py portal-session developers set-password {DEMO_EMAIL}")
            print("To create another API key, run:")
            print(f"  .venv/bin/flask --app examples/portal/app.py portal-session keys create {DEMO_EMAIL}")
            return 0

        password = secrets.token_urlsafe(12)
        developers.create(DEMO_EMAIL, password, status="approved")
        key, _record = developers.create_api_key(DEMO_EMAIL, name="demo")

    print()
    print("Created the demo developer. The password and API key are shown only this once:")
    print(f"  email:    {DEMO_EMAIL}")
    print(f"  password: {password}")
    print(f"  API key:  {key}")
    print()
    base_url = f"http://127.0.0.1:{os.environ.get('PORT', '5000')}"
    print(f"Log in at {base_url}/login, or with curl:")
    print(f"  curl -i -u '{DEMO_EMAIL}:{password}' -X POST {base_url}/auth")
    return 0


def _describe_database(url: str) -> str:
    """Return the database's backend and name, without the password a URL may contain."""
    parsed = make_url(url)
    return f"{parsed.get_backend_name()}: {parsed.database}"


if __name__ == "__main__":
    sys.exit(main())
