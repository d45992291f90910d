"""The built wheel ships the migrations: ``flask portal-session db upgrade`` works from a clean venv.

The test builds a wheel from a copy of the checkout and installs it with pip
into a new virtualenv without the system site-packages. It then runs the
command in a folder outside the checkout, so nothing is imported from the
source tree. pip takes the dependencies from the package index it is
configured with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from flask_portal_session.migrate import head_revision

REPOSITORY = Path(__file__).resolve().parent.parent

#: Files a fresh clone does not have. Copying them would slow the build or leak local state.
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    "instance",
    "test-artifacts",
    "*.sqlite3*",
)

APP_SOURCE = """\
from flask import Flask

from flask_portal_session import PortalSession

app = Flask(__name__)
app.config.update(
    PORTAL_AUTH="basic-auth",
    PORTAL_SESSION_CONF={"secret": "wheel-test-secret-0123456789abcdef"},
    PORTAL_SESSION_DATABASE_URI="sqlite:///portal.sqlite3",
)
PortalSession(app)
"""


def run_checked(command: list[str], cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    """Run ``command`` and fail the test with its output when it exits non-zero."""
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, f"{command} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


def clean_env(venv: Path | None = None) -> dict[str, str]:
    """Return the environment without anything that points Python at the checkout or another venv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not key.startswith("FLASK_")
    }
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.slow
def test_wheel_ships_migrations(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(REPOSITORY, source, ignore=COPY_IGNORE)
    dist = tmp_path / "dist"
    build = [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(source)]
    run_checked(build, tmp_path, clean_env(), 900)
    wheels = list(dist.glob("flask_portal_session-*.whl"))
    assert len(wheels) == 1

    venv = tmp_path / "venv"
    run_checked([sys.executable, "-m", "venv", str(venv)], tmp_path, clean_env(), 300)
    python = venv / "bin" / "python"
    env = clean_env(venv)
    run_checked([str(python), "-m", "pip", "install", "--quiet", str(wheels[0])], tmp_path, env, 900)

    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(APP_SOURCE)
    flask = str(venv / "bin" / "flask")

    show_location = "import flask_portal_session; print(flask_portal_session.__file__)"
    where = run_checked([str(python), "-c", show_location], project, env, 120)
    assert where.stdout.strip().startswith(str(venv))

    upgraded = run_checked([flask, "--app", "app.py", "portal-session", "db", "upgrade"], project, env, 300)
    assert f"to {head_revision()} (head)" in upgraded.stdout

    engine = create_engine(f"sqlite:///{project / 'portal.sqlite3'}")
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"portal_sessions", "portal_developers", "portal_api_keys", "portal_session_alembic_version"} <= tables

    current = run_checked([flask, "--app", "app.py", "portal-session", "db", "current"], project, env, 300)
    assert current.stdout.strip() == f"{head_revision()} (head)"
