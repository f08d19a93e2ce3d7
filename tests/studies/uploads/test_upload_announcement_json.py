"""The upload announcement reads its JSON through the site's one loader (``vbqweb.jsonbody``):
deep nesting, duplicate keys and oversized bodies are a 400 with the reason, never a 500."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from studies.models import Upload


@pytest.fixture
def announce(client, world):
    client.force_login(world.manager)
    url = reverse("studies:upload_create", kwargs={"pk": world.study_a.pk})
    return lambda body: client.post(url, data=body, content_type="application/json")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 4096 + b"]" * 4096, "nested 4096 levels deep"),
        (b'{"name": "a", "files": 1, "bytes": 10, "files": 2}', "duplicate key 'files'"),
        (b'{"name": "' + b"a" * 20_000 + b'", "files": 1, "bytes": 10}', "at most 16384"),
        (b'{"name": "a", "files": NaN, "bytes": 10}', "NaN is not a number"),
        (b'{"name": "a", "files": ' + b"1" * 5000 + b', "bytes": 10}', "invalid JSON"),
        (b"", "empty"),
    ],
    ids=["deep", "duplicate key", "too big", "NaN", "5000 digits", "empty"],
)
def test_bad_announcements_are_400_with_the_reason(announce, body, message) -> None:
    response = announce(body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Upload.objects.exists()


def test_a_good_announcement_is_201(announce) -> None:
    response = announce(json.dumps({"name": "Batch", "files": 2, "bytes": 2000}))
    assert response.status_code == 201, response.json()
