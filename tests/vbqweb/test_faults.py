"""An unreachable database answers 503 + Retry-After, JSON or a short page, never a 500.

The database really is unreachable here: the connection is pointed at a file in a folder that
does not exist (SQLite) or at a port where nothing listens (PostgreSQL), and reopened. The test
with a real PostgreSQL server stopped under a real gunicorn is
``tests/integration/test_database_restart.py``.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from vbqweb.faults import RETRY_AFTER

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def database_unreachable() -> Iterator[None]:
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-vbq-folder/db.sqlite3"
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(port))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.fixture
def reader_client(world) -> Client:
    client = Client(raise_request_exception=False)  # as a browser sees it: no re-raise
    client.force_login(world.reader)
    return client


def test_an_autosave_gets_a_retryable_json_503(reader_client) -> None:
    url = reverse("readers:rois", kwargs={"public_id": uuid.uuid4()})
    with database_unreachable():
        response = reader_client.post(url, {"rois": []}, content_type="application/json")
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER)
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "database_unavailable"
    assert "try again" in body["message"]
    assert "no-store" in response["Cache-Control"]


def test_a_page_gets_a_short_503_page(reader_client) -> None:
    with database_unreachable():
        response = reader_client.get(reverse("home"), HTTP_ACCEPT="text/html")
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER)
    assert response["Content-Type"].startswith("text/html")
    assert b"Unavailable for a moment" in response.content
    assert b"Traceback" not in response.content


def test_the_health_check_says_unavailable(db) -> None:
    client = Client(raise_request_exception=False)
    with database_unreachable():
        response = client.get(reverse("healthz"))
    assert response.status_code == 503


def test_the_site_answers_again_once_the_database_is_back(reader_client) -> None:
    with database_unreachable():
        assert reader_client.get(reverse("home")).status_code == 503
    assert reader_client.get(reverse("home")).status_code == 200


def test_other_server_errors_stay_500(reader_client, world) -> None:
    """Only an unreachable database is retryable: a missing table (a bug) is not."""
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {world.reader._meta.db_table} RENAME TO vbq_renamed")
    try:
        response = reader_client.get(reverse("home"))
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE vbq_renamed RENAME TO {world.reader._meta.db_table}")
    assert response.status_code == 500
