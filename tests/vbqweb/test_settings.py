"""Settings come from the environment; production settings are deploy-clean."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from tests.helpers.paths import REPO

ROOT = REPO


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
        | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _run(f"import sys; sys.argv = ['manage.py', *{list(args)!r}]; import runpy; "
                "runpy.run_path('manage.py', run_name='__main__')", **env)  # fmt: skip


def test_production_settings_pass_check_deploy_without_warnings() -> None:
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="vbqweb.settings_production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="vbq.example.org",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key() -> None:
    result = _manage("check", DJANGO_SETTINGS_MODULE="vbqweb.settings_production")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in result.stderr


def test_database_url_switches_to_postgresql_and_sqlite_is_the_default() -> None:
    code = (
        "import django.conf as c, os; os.environ['DJANGO_SETTINGS_MODULE']='vbqweb.settings'; "
        "print(c.settings.DATABASES['default']['ENGINE'], c.settings.DATABASES['default']['NAME'])"
    )
    pg = _run(code, DATABASE_URL="postgres://u:p@db.example:5432/vbqdb")
    assert pg.stdout.split() == ["django.db.backends.postgresql", "vbqdb"], pg.stderr
    default = _run(code)
    engine, name = default.stdout.split()
    assert engine == "vbqweb.sqlite_backend"  # Django's, with writers queued (sqlite_backend)
    assert name.endswith("db.sqlite3")


def test_redis_url_is_the_celery_broker() -> None:
    code = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE']='vbqweb.settings'; "
        "from vbqweb.celery import app; print(app.conf.broker_url)"
    )
    result = _run(code, REDIS_URL="redis://broker.example:6380/3")
    assert result.stdout.strip() == "redis://broker.example:6380/3", result.stderr


def test_production_refuses_the_fault_tests_pause() -> None:
    result = _manage(
        "check",
        DJANGO_SETTINGS_MODULE="vbqweb.settings_production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        VBQ_TEST_PAUSE="score=600",
    )
    assert result.returncode != 0
    assert "VBQ_TEST_PAUSE is for the fault tests only" in result.stderr


def test_the_fault_tests_pause_is_read_from_the_environment() -> None:
    code = (
        "import django.conf as c, os; os.environ['DJANGO_SETTINGS_MODULE']='vbqweb.settings'; "
        "print(sorted(c.settings.VBQ_TEST_PAUSE.items()))"
    )
    assert _run(code, VBQ_TEST_PAUSE="score=600, ingest=2.5").stdout.strip() == (
        "[('ingest', 2.5), ('score', 600.0)]"
    )
    assert _run(code).stdout.strip() == "[]"
