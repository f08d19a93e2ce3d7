"""Fixtures shared by every Django test: personas, studies and an isolated media root."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import override_settings

from studies.models import Role
from tests.helpers import factories

# One Redis server and one environment for the Celery processes, for the whole session: the
# test process's Celery app keeps its connection pool, so the packages that start workers
# (tests/browser, tests/integration; package-scoped there) must share one broker.
from tests.helpers.workers import celery_processes, redis_server, redis_url  # noqa: F401

TESTS = Path(__file__).resolve().parent
PURE_FOLDERS = (
    "readers/measurement/",
    "readers/dicomweb/test_io.py",
    "readers/dicomweb/test_query_render.py",
    "studies/ingest/",
    "studies/phantom/",
    "studies/stats/",
)
"""Tests of the pure packages (they mirror them): no database, so ``scripts/check`` runs them
once, not again on PostgreSQL (``-m "not pure and not browser"``)."""


BROWSER_FOLDER = "browser/"
"""Tests that drive the site through Chromium. ``scripts/check`` runs them on SQLite only: they
exercise pages and scripts, and what differs between databases lies under the views, where the
other tests run on both."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path.relative_to(TESTS).as_posix()
        if path.startswith(PURE_FOLDERS):
            item.add_marker(pytest.mark.pure)
        if path.startswith(BROWSER_FOLDER):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stored instances go to a temporary folder (shared with the test Celery worker).

    Passwords use a fast hasher here: the default's deliberate slowness is for attackers.
    Managers sign in without a second factor here (``force_login`` has none to give); the
    tests of ``tests/vbqweb/accounts/`` turn ``VBQ_MFA_REQUIRED`` back on and check that every
    page holds a manager without one at the enrolment page.
    """
    root = tmp_path_factory.mktemp("media")
    override = override_settings(
        MEDIA_ROOT=str(root),
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        VBQ_MFA_REQUIRED=False,
    )
    override.enable()
    yield root
    override.disable()


@pytest.fixture(scope="session", autouse=True)
def upload_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Uploads wait in a temporary folder, shared with the test Celery worker (environment)."""
    root = tmp_path_factory.mktemp("uploads")
    override = override_settings(VBQ_UPLOAD_ROOT=root)
    override.enable()
    previous = os.environ.get("VBQ_UPLOAD_ROOT")
    os.environ["VBQ_UPLOAD_ROOT"] = str(root)  # the integration worker inherits it
    yield root
    override.disable()
    if previous is None:
        os.environ.pop("VBQ_UPLOAD_ROOT", None)
    else:
        os.environ["VBQ_UPLOAD_ROOT"] = previous


@dataclass
class World:
    """Two studies, each with a manager and readers, plus an outsider and a site admin.

    The healthchecks personas, grown to what a reader study needs: ``reader`` and
    ``other_reader`` share study A and must stay blind to each other; ``reader_b`` reads
    study B only; ``manager_b`` manages B and must see nothing of A; ``adjudicator``
    adjudicates A (issue 14) and must see nothing of it but its adjudication.
    """

    study_a: object
    study_b: object
    manager: object
    reader: object
    other_reader: object
    manager_b: object
    reader_b: object
    adjudicator: object
    outsider: object
    admin: object


@pytest.fixture
def world(db: None) -> World:
    study_a = factories.StudyFactory(name="Study A")
    study_b = factories.StudyFactory(name="Study B")
    people = {
        "manager": (study_a, Role.MANAGER),
        "reader": (study_a, Role.READER),
        "other_reader": (study_a, Role.READER),
        "manager_b": (study_b, Role.MANAGER),
        "reader_b": (study_b, Role.READER),
        "adjudicator": (study_a, Role.ADJUDICATOR),
    }
    users = {}
    for username, (study, role) in people.items():
        users[username] = factories.UserFactory(username=username)
        factories.AssignmentFactory(study=study, user=users[username], role=role)
    return World(
        study_a=study_a,
        study_b=study_b,
        outsider=factories.UserFactory(username="outsider"),
        admin=factories.UserFactory(username="admin", is_superuser=True, is_staff=True),
        **users,
    )
