"""DICOMweb (``readers.dicomweb.views``): who reaches which images, what is sent, and how it is
cached."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.urls import reverse

from readers.dicomweb.io import EXPLICIT_LE
from studies.models import Case, Instance
from studies.phantom.writer import write_phantom
from tests.helpers import factories
from tests.helpers.dicomfactory import mr_dataset
from tests.helpers.factories import case_set_import_trusted_files

J2K = Path(settings.BASE_DIR).parent / "shared/data/compressed/JPEG2000Lossless__MR2_J2KR.dcm"
CORNERSTONE_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"


@pytest.fixture
def phantom(world, tmp_path):
    """Study A: one phantom case (its reading series selected) plus a second, unselected series
    in the same case. Study B: a phantom case of its own."""
    dirs = write_phantom(tmp_path / "p", cases=2, seed=3)
    case_set_import_trusted_files(
        study=world.study_a, name="a", cases=[("Case A", list(dirs[0].glob("*.dcm")))]
    )
    case_set_import_trusted_files(
        study=world.study_b, name="b", cases=[("Case B", list(dirs[1].glob("*.dcm")))]
    )
    case_a = Case.objects.get(study=world.study_a)
    hidden = factories.SeriesFactory(case=case_a, selected=False)
    buffer = io.BytesIO()
    mr_dataset(np.arange(16).reshape(4, 4)).save_as(buffer, enforce_file_format=True)
    hidden_instance = factories.InstanceFactory(
        series=hidden, file=ContentFile(buffer.getvalue(), name="h.dcm"), rows=4, columns=4
    )
    return {
        "a": case_a,
        "b": Case.objects.get(study=world.study_b),
        "hidden": hidden,
        "hidden_instance": hidden_instance,
        "dir_a": dirs[0],
    }


def _uids(case: Case) -> dict[str, str]:
    series = case.reading_series
    instance = series.instances.order_by("instance_number").first()
    return {
        "study_uid": case.study_instance_uid,
        "series_uid": series.series_instance_uid,
        "sop_uid": instance.sop_instance_uid,
    }


def _urls(uids: dict[str, str]) -> list[str]:
    study = {"study_uid": uids["study_uid"]}
    series = {k: uids[k] for k in ("study_uid", "series_uid")}
    return [
        reverse("dicomweb:series", kwargs=study),
        reverse("dicomweb:instances", kwargs=series),
        reverse("dicomweb:series_metadata", kwargs=series),
        reverse("dicomweb:instance", kwargs=uids),
        reverse("dicomweb:instance_metadata", kwargs=uids),
        reverse("dicomweb:frames", kwargs=uids | {"frame_list": "1"}),
    ]


def _parts(response) -> list[tuple[str, bytes]]:
    """Split a multipart/related body the way Cornerstone's extractMultipart does."""
    content_type = response["Content-Type"]
    assert content_type.startswith("multipart/related")
    boundary = content_type.split("boundary=")[1].strip()
    body = response.content
    parts = []
    for chunk in body.split(f"--{boundary}".encode())[1:-1]:
        head, _, data = chunk.partition(b"\r\n\r\n")
        part_type = head.decode().strip().removeprefix("Content-Type:").strip()
        assert data.endswith(b"\r\n")
        parts.append((part_type, data[:-2]))
    assert body.endswith(f"--{boundary}--\r\n".encode())
    return parts


# --- scope ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["reader", "other_reader", "manager", "admin"])
def test_the_studys_people_reach_its_reading_series(client, world, phantom, role) -> None:
    client.force_login(getattr(world, role))
    for url in _urls(_uids(phantom["a"])):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("role", ["reader_b", "manager_b", "outsider"])
def test_a_reader_of_another_study_guessing_uids_gets_404_everywhere(
    client, world, phantom, role
) -> None:
    client.force_login(getattr(world, role))
    for url in _urls(_uids(phantom["a"])):
        assert client.get(url).status_code == 404, url
    # ... and the search does not list the other study.
    listed = client.get(reverse("dicomweb:studies"))
    assert listed.status_code in (200, 204)  # 204: nothing matches (PS3.18 8.3.4.4.1)
    assert phantom["a"].study_instance_uid not in listed.content.decode()


def test_uids_of_two_cases_cannot_be_mixed(client, world, phantom) -> None:
    """Study A's study UID with study B's series (or instance) UIDs is not a way in."""
    client.force_login(world.reader)
    a, b = _uids(phantom["a"]), _uids(phantom["b"])
    mixed = {"study_uid": a["study_uid"], "series_uid": b["series_uid"], "sop_uid": b["sop_uid"]}
    for url in _urls(mixed)[1:]:
        assert client.get(url).status_code == 404, url
    mixed = {"study_uid": a["study_uid"], "series_uid": a["series_uid"], "sop_uid": b["sop_uid"]}
    for url in _urls(mixed)[3:]:
        assert client.get(url).status_code == 404, url


@pytest.mark.parametrize("role", ["reader", "manager", "admin"])
def test_a_series_not_selected_for_reading_is_not_served(client, world, phantom, role) -> None:
    client.force_login(getattr(world, role))
    uids = _uids(phantom["a"]) | {
        "series_uid": phantom["hidden"].series_instance_uid,
        "sop_uid": phantom["hidden_instance"].sop_instance_uid,
    }
    for url in _urls(uids)[1:]:
        assert client.get(url).status_code == 404, url
    listed = client.get(reverse("dicomweb:series", kwargs={"study_uid": uids["study_uid"]}))
    assert phantom["hidden"].series_instance_uid not in listed.content.decode()


def test_a_quarantined_instance_is_never_served(client, world, phantom) -> None:
    uids = _uids(phantom["a"])
    Instance.objects.filter(sop_instance_uid=uids["sop_uid"]).update(quarantined=True)
    for role in ("reader", "manager", "admin"):
        client.force_login(getattr(world, role))
        for url in _urls(uids)[3:]:
            assert client.get(url).status_code == 404, (role, url)
        series = {k: uids[k] for k in ("study_uid", "series_uid")}
        for name in ("dicomweb:instances", "dicomweb:series_metadata"):
            body = client.get(reverse(name, kwargs=series)).content.decode()
            assert uids["sop_uid"] not in body, (role, name)


def test_search_lists_what_the_user_may_see(client, world, phantom) -> None:
    client.force_login(world.reader)
    studies = client.get(reverse("dicomweb:studies")).json()
    assert [s["0020000D"]["Value"][0] for s in studies] == [phantom["a"].study_instance_uid]
    n = phantom["a"].reading_series.instances.count()
    assert studies[0]["00201208"]["Value"] == [n]
    series = {k: v for k, v in _uids(phantom["a"]).items() if k != "sop_uid"}
    instances = client.get(reverse("dicomweb:instances", kwargs=series)).json()
    assert [i["00200013"]["Value"][0] for i in instances] == list(range(1, n + 1))
    assert instances[0]["00081190"]["Value"][0].startswith("http://testserver/dicomweb/studies/")
    limited = client.get(reverse("dicomweb:instances", kwargs=series), {"limit": 2, "offset": 1})
    assert [i["00200013"]["Value"][0] for i in limited.json()] == [2, 3]
    one = client.get(
        reverse("dicomweb:instances", kwargs=series),
        {"SOPInstanceUID": instances[4]["00080018"]["Value"][0]},
    ).json()
    assert len(one) == 1
    fuzzy = client.get(reverse("dicomweb:studies"), {"fuzzymatching": "true"})
    assert fuzzy["Warning"].startswith("299 ")
    assert client.get(reverse("dicomweb:studies"), {"NoSuchKey": "1"}).status_code == 400
    xml = 'multipart/related; type="application/dicom+xml"'
    assert client.get(reverse("dicomweb:studies"), HTTP_ACCEPT=xml).status_code == 406
    nothing = client.get(reverse("dicomweb:studies"), {"StudyInstanceUID": "1.2.3"})
    assert nothing.status_code == 204
    assert nothing.content == b""


# --- representations -----------------------------------------------------------------------------


def test_metadata_is_dicom_json_with_pixels_by_reference(client, world, phantom) -> None:
    client.force_login(world.reader)
    uids = _uids(phantom["a"])
    series = {k: uids[k] for k in ("study_uid", "series_uid")}
    response = client.get(reverse("dicomweb:series_metadata", kwargs=series))
    assert response["Content-Type"] == "application/dicom+json"
    assert response["Cache-Control"] == "private, no-cache"
    headers = response.json()
    assert len(headers) == phantom["a"].reading_series.instances.count()
    first = headers[0]
    assert first["00080018"]["Value"] == [uids["sop_uid"]]
    assert first["00280010"]["Value"] == [phantom["a"].reading_series.instances.first().rows]
    assert "Value" not in first["7FE00010"]
    assert first["7FE00010"]["BulkDataURI"].endswith(f"/instances/{uids['sop_uid']}/frames/1")
    assert first["00083002"]["Value"] == [EXPLICIT_LE]
    one = client.get(reverse("dicomweb:instance_metadata", kwargs=uids)).json()
    assert one == [first]


def test_an_instance_is_its_stored_bytes(client, world, phantom) -> None:
    client.force_login(world.reader)
    uids = _uids(phantom["a"])
    stored = Instance.objects.get(sop_instance_uid=uids["sop_uid"]).file.read()
    url = reverse("dicomweb:instance", kwargs=uids)
    plain = client.get(url, HTTP_ACCEPT="application/dicom")
    assert plain["Content-Type"] == "application/dicom"
    assert plain.content == stored
    multipart = client.get(url, HTTP_ACCEPT='multipart/related; type="application/dicom"')
    ((part_type, data),) = _parts(multipart)
    assert part_type == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
    assert data == stored
    assert client.get(url, HTTP_ACCEPT="image/png").status_code == 406
    transcode = (
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.90'
    )
    ((part_type, data),) = _parts(client.get(url, HTTP_ACCEPT=transcode))
    assert part_type == "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.90"
    lossless = pydicom.dcmread(io.BytesIO(data))
    assert lossless.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    assert np.array_equal(lossless.pixel_array, pydicom.dcmread(io.BytesIO(stored)).pixel_array)
    lossy = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    assert client.get(url, HTTP_ACCEPT=lossy).status_code == 406  # never a lossy copy


def test_frames_as_cornerstone_asks_and_decoded(client, world, phantom) -> None:
    client.force_login(world.reader)
    uids = _uids(phantom["a"])
    ds = pydicom.dcmread(Instance.objects.get(sop_instance_uid=uids["sop_uid"]).file.path)
    url = reverse("dicomweb:frames", kwargs=uids | {"frame_list": "1"})
    ((part_type, data),) = _parts(client.get(url, HTTP_ACCEPT=CORNERSTONE_ACCEPT))
    assert part_type == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    assert data == ds.PixelData
    single = client.get(url, HTTP_ACCEPT=f"application/octet-stream; transfer-syntax={EXPLICIT_LE}")
    assert single["Content-Type"] == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    assert single.content == ds.pixel_array.astype("<u2").tobytes()
    assert client.get(url).status_code == 200  # */* : multipart, Explicit VR Little Endian
    missing = reverse("dicomweb:frames", kwargs=uids | {"frame_list": "2"})
    assert client.get(missing, HTTP_ACCEPT=CORNERSTONE_ACCEPT).status_code == 404
    assert client.get(url, HTTP_ACCEPT="image/jpeg").status_code == 406


def test_a_jpeg_2000_frame_is_sent_compressed_or_decoded(client, world, tmp_path) -> None:
    if not J2K.exists():
        pytest.skip(f"{J2K} is not here (the shared public test data)")
    folder = tmp_path / "j2k"
    folder.mkdir()
    shutil.copy(J2K, folder / "IM1.dcm")
    case_set_import_trusted_files(
        study=world.study_a, name="j", cases=[("J2K", [folder / "IM1.dcm"])]
    )
    case = Case.objects.get(study=world.study_a, label="J2K")
    client.force_login(world.reader)
    url = reverse("dicomweb:frames", kwargs=_uids(case) | {"frame_list": "1"})
    ((part_type, data),) = _parts(client.get(url, HTTP_ACCEPT=CORNERSTONE_ACCEPT))
    assert part_type == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.90"
    assert data[:4] == b"\xff\x4f\xff\x51"  # a JPEG 2000 codestream: decoded in the browser
    decoded = client.get(
        url, HTTP_ACCEPT=f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
    )
    ds = pydicom.dcmread(J2K)
    assert decoded.content == ds.pixel_array.astype("<u2").tobytes()


# --- caching ----------------------------------------------------------------------------------


def test_instances_and_frames_are_immutable_and_revalidate_to_304(client, world, phantom) -> None:
    client.force_login(world.reader)
    uids = _uids(phantom["a"])
    for name, kwargs, accept in (
        ("dicomweb:frames", uids | {"frame_list": "1"}, CORNERSTONE_ACCEPT),
        ("dicomweb:instance", uids, "application/dicom"),
        ("dicomweb:instance_metadata", uids, "application/dicom+json"),
    ):
        url = reverse(name, kwargs=kwargs)
        first = client.get(url, HTTP_ACCEPT=accept)
        assert first.status_code == 200
        assert first["Cache-Control"] == "private, max-age=31536000, immutable"
        assert "Cookie" in first["Vary"]
        etag = first["ETag"]
        again = client.get(url, HTTP_ACCEPT=accept, HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304, name
        assert again.content == b""
        assert again["ETag"] == etag
        assert client.get(url, HTTP_ACCEPT=accept, HTTP_IF_NONE_MATCH='"other"').status_code == 200
    series = {k: uids[k] for k in ("study_uid", "series_uid")}
    url = reverse("dicomweb:series_metadata", kwargs=series)
    etag = client.get(url)["ETag"]
    assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_a_revalidation_from_another_study_is_still_404(client, world, phantom) -> None:
    """A 304 is decided after access: an ETag copied from someone else reveals nothing."""
    client.force_login(world.reader)
    url = reverse("dicomweb:frames", kwargs=_uids(phantom["a"]) | {"frame_list": "1"})
    etag = client.get(url, HTTP_ACCEPT=CORNERSTONE_ACCEPT)["ETag"]
    client.force_login(world.reader_b)
    response = client.get(url, HTTP_ACCEPT=CORNERSTONE_ACCEPT, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 404
