"""The fast path (``readers.dicomweb.fastpath``): a repeated request of a granted session costs
no query at all, and the grant never outlives what it was granted for."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from readers.dicomweb import fastpath
from studies.models import Case, Instance
from studies.phantom.writer import write_phantom
from tests.helpers.factories import case_set_import_trusted_files

CORNERSTONE_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"


@pytest.fixture
def urls(world, tmp_path):
    fastpath.MEMORY.clear()
    (folder,) = write_phantom(tmp_path / "p", cases=1, seed=9)
    case_set_import_trusted_files(
        study=world.study_a, name="a", cases=[("Case A", sorted(folder.glob("*.dcm")))]
    )
    case = Case.objects.get(study=world.study_a)
    series = case.reading_series
    sop = series.instances.order_by("instance_number").first().sop_instance_uid
    uids = {
        "study_uid": case.study_instance_uid,
        "series_uid": series.series_instance_uid,
        "sop_uid": sop,
    }
    yield {
        "frame": reverse("dicomweb:frames", kwargs=uids | {"frame_list": "1"}),
        "instance": reverse("dicomweb:instance", kwargs=uids),
        "sop": sop,
    }
    fastpath.MEMORY.clear()


def test_a_repeated_request_costs_no_query(client, world, urls, django_assert_num_queries) -> None:
    client.force_login(world.reader)
    first = client.get(urls["frame"], HTTP_ACCEPT=CORNERSTONE_ACCEPT)
    assert first.status_code == 200
    with django_assert_num_queries(0):
        again = client.get(urls["frame"], HTTP_ACCEPT=CORNERSTONE_ACCEPT)
    assert again.status_code == 200
    assert again.content == first.content
    for header in ("Content-Type", "ETag", "Cache-Control", "Vary"):
        assert again[header] == first[header], header
    # Another Accept is another body: the full path, once.
    other = client.get(urls["instance"], HTTP_ACCEPT="application/dicom")
    assert other.status_code == 200
    with django_assert_num_queries(0):
        assert client.get(urls["instance"], HTTP_ACCEPT="application/dicom").content == (
            other.content
        )


def test_another_session_gets_no_free_ride(client, world, urls) -> None:
    client.force_login(world.reader)
    assert client.get(urls["frame"], HTTP_ACCEPT=CORNERSTONE_ACCEPT).status_code == 200
    client.force_login(world.reader_b)  # a new session: no grant, the full check says 404
    assert client.get(urls["frame"], HTTP_ACCEPT=CORNERSTONE_ACCEPT).status_code == 404
    client.logout()
    assert client.get(urls["frame"], HTTP_ACCEPT=CORNERSTONE_ACCEPT).status_code == 401


def test_a_logout_ends_the_grant_at_once(client, world, urls) -> None:
    client.force_login(world.reader)
    assert client.get(urls["frame"], HTTP_ACCEPT=CORNERSTONE_ACCEPT).status_code == 200
    cookie = client.cookies["sessionid"].value
    client.post(reverse("logout"))
    client.cookies["sessionid"] = cookie  # the old cookie, replayed
    assert client.get(urls["frame"], HTTP_ACCEPT=CORNERSTONE_ACCEPT).status_code == 401


def test_a_quarantine_takes_effect_when_the_grant_ends(client, world, urls, monkeypatch) -> None:
    client.force_login(world.reader)
    assert client.get(urls["frame"], HTTP_ACCEPT=CORNERSTONE_ACCEPT).status_code == 200
    Instance.objects.filter(sop_instance_uid=urls["sop"]).update(quarantined=True)
    later = time.monotonic() + fastpath.GRANT_SECONDS + 1
    monkeypatch.setattr(fastpath.time, "monotonic", lambda: later)
    assert client.get(urls["frame"], HTTP_ACCEPT=CORNERSTONE_ACCEPT).status_code == 404


def test_a_conditional_request_takes_the_full_path(client, world, urls) -> None:
    client.force_login(world.reader)
    first = client.get(urls["frame"], HTTP_ACCEPT=CORNERSTONE_ACCEPT)
    again = client.get(
        urls["frame"], HTTP_ACCEPT=CORNERSTONE_ACCEPT, HTTP_IF_NONE_MATCH=first["ETag"]
    )
    assert again.status_code == 304


def test_a_frame_is_decoded_once_per_process_for_every_reader(
    client, world, urls, monkeypatch
) -> None:
    from readers.dicomweb import io as dicomweb_io

    reads = []
    real = dicomweb_io.read_full
    monkeypatch.setattr(dicomweb_io, "read_full", lambda fh: reads.append(1) or real(fh))
    accept = "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    client.force_login(world.reader)
    first = client.get(urls["frame"], HTTP_ACCEPT=accept)
    client.force_login(world.other_reader)  # another session: the full check, the same bytes
    second = client.get(urls["frame"], HTTP_ACCEPT=accept)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert len(reads) == 1
    client.force_login(world.reader_b)  # ... but never for someone who may not see them
    assert client.get(urls["frame"], HTTP_ACCEPT=accept).status_code == 404
