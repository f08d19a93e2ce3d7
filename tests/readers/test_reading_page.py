"""The viewer page's payload (blinding) and its JSON endpoints (autosave, submit): bad input by
hand gets a clear 4xx and changes nothing."""

from __future__ import annotations

import copy
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from readers import services
from readers.measurement.quality import CODES
from readers.models import Reading
from studies.models import Case, Instance
from studies.phantom.writer import write_phantom
from studies.vocabulary import CSF, DEFAULT_CSF_LEVEL, LEVELS, REASONS, SHAPES
from tests.helpers.factories import case_set_import_trusted_files
from tests.helpers.paths import REPO

# The Node tests' copy of the page's vocabulary (static/src/viewer/*.test.js).
VOCABULARY_FIXTURE = REPO / "static/src/viewer/fixtures/vocabulary.json"


@pytest.fixture
def phantom(world, tmp_path: Path):
    dirs = write_phantom(tmp_path / "p", cases=2, seed=8)
    case_set_import_trusted_files(
        study=world.study_a,
        name="phantom",
        cases=[(f"Case {i}", list(d.glob("*.dcm"))) for i, d in enumerate(dirs, 1)],
    )
    truths = [json.loads((d / "truth.json").read_text()) for d in dirs]
    return list(Case.objects.filter(study=world.study_a).order_by("label")), truths


def _payload(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="viewer-config" type="application/json">') + 51
    return json.loads(html[start : html.index("</script>", start)])


def _state(reading: Reading) -> tuple:
    reading.refresh_from_db()
    return (reading.rois, reading.roi_version, reading.status)


def _post(client, reading: Reading, body: str | bytes):
    return client.post(
        reverse("readers:rois", kwargs={"public_id": reading.public_id}),
        body,
        content_type="application/json",
    )


# --- the page and its payload --------------------------------------------------------------


def test_the_reader_gets_the_viewer_with_their_own_reading_only(client, world, phantom) -> None:
    (case, _), (truth, _) = phantom
    mine = services.reading_open(reader=world.reader, case=case, session=1)
    theirs = services.reading_open(reader=world.other_reader, case=case, session=1)
    other_rois = copy.deepcopy(truth["rois"])
    other_rois["rois"][0]["center"] = [111.125, 99.875]
    services.reading_save_rois(reading=theirs, data=other_rois)
    client.force_login(world.reader)
    response = client.get(reverse("readers:detail", kwargs={"public_id": mine.public_id}))
    payload = _payload(response)
    assert payload["reading"] == {
        "id": str(mine.public_id),
        "session": 1,
        "status": "draft",
        "writable": True,
        "locked": False,
        "roi_version": 0,
        "rois": None,
    }
    assert payload["dicomweb"]["series_instance_uid"] == case.reading_series.series_instance_uid
    assert payload["urls"]["wasm"].endswith("/static/dist/wasm/")
    html = response.content.decode()
    assert "111.125" not in html
    assert "other_reader" not in html
    assert f"/readings/{theirs.public_id}/" not in html
    assert "dist/viewer.js" in html


def test_session_2_shows_nothing_of_session_1(client, world, phantom) -> None:
    """The payload of a session-2 reading carries none of the reader's session-1 ROIs."""
    study = world.study_a
    cases, truths = phantom
    for case, truth in zip(cases, truths, strict=True):
        first = services.reading_open(reader=world.reader, case=case, session=1)
        data = copy.deepcopy(truth["rois"])
        data["rois"][0]["center"] = [123.4567, 88.125]
        services.reading_save_rois(reading=first, data=data)
        services.reading_submit(reading=first, confirmed=CODES)  # L1 moved: confirm its warnings
    Reading.objects.filter(reader=world.reader).update(
        submitted_at=timezone.now() - timedelta(days=study.washout_days + 1)
    )
    second = services.reading_open(reader=world.reader, case=cases[0], session=2)
    client.force_login(world.reader)
    response = client.get(reverse("readers:detail", kwargs={"public_id": second.public_id}))
    assert response.status_code == 200
    assert _payload(response)["reading"]["rois"] is None
    assert "123.4567" not in response.content.decode()
    first = Reading.objects.get(reader=world.reader, case=cases[0], session=1)
    assert (
        client.get(reverse("readers:detail", kwargs={"public_id": first.public_id})).status_code
        == 403
    )


def test_a_manager_gets_the_read_only_json_view_not_the_viewer(client, world, phantom) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    services.reading_save_rois(reading=reading, data=truth["rois"])
    client.force_login(world.manager)
    html = client.get(
        reverse("readers:detail", kwargs={"public_id": reading.public_id})
    ).content.decode()
    assert "viewer-config" not in html
    assert truth["rois"]["series_instance_uid"] in html


def test_the_viewer_takes_its_vocabulary_from_the_page(client, world, phantom) -> None:
    """Levels, CSF label and exclusion reasons are defined once, in ``studies.vocabulary``: the
    payload carries them, the dialog's reasons and the CSF list are drawn from them, and the
    Node tests' copy (``static/src/viewer/fixtures/vocabulary.json``) is the payload's."""
    (case, _), _ = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    client.force_login(world.reader)
    response = client.get(reverse("readers:detail", kwargs={"public_id": reading.public_id}))
    vocabulary = _payload(response)["vocabulary"]
    assert vocabulary == {
        "levels": list(LEVELS),
        "csf": CSF,
        "reasons": list(REASONS),
        "shapes": list(SHAPES),
        "default_csf_level": DEFAULT_CSF_LEVEL,
    }
    assert vocabulary == json.loads(VOCABULARY_FIXTURE.read_text())
    html = response.content.decode()
    dialog = html[html.index('<select id="exclude-reason">') :]
    dialog = dialog[: dialog.index("</select>")]
    assert re.findall(r'<option value="([^"]+)">', dialog) == list(REASONS)
    assert re.findall(r'<option value="[^"]+">([^<]+)</option>', dialog) == [
        "Fracture",
        "Hemangioma",
        "Instrumentation or cement",
        "Severe Modic change",
        "Other",
    ]
    csf = html[html.index('<select id="csf-level">') :]
    csf = csf[: csf.index("</select>")]
    assert re.findall(r'<option value="([^"]+)">', csf) == ["L3", "L2", "L4", "other"]
    assert '<option value="L3">L3 (default)</option>' in csf


# --- autosave and submit --------------------------------------------------------------------


def test_autosave_stores_the_set_and_submit_locks_it(client, world, phantom) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    client.force_login(world.reader)
    response = _post(client, reading, json.dumps(truth["rois"]))
    assert response.status_code == 200
    assert response.json() == {"status": "saved", "roi_version": 1}
    reading.refresh_from_db()
    assert reading.rois == truth["rois"]
    submit = client.post(reverse("readers:submit_json", kwargs={"public_id": reading.public_id}))
    assert submit.json() == {"status": "submitted", "roi_version": 1}
    assert _state(reading)[2] == "submitted"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(colour="red"), "unknown key 'colour'"),
        (lambda d: d["rois"][0].update(frobnicate=1), "unknown key 'frobnicate'"),
        (lambda d: d["rois"][0].update(center=[float("nan"), 3.0]), "NaN is not a number"),
        (lambda d: d["rois"][0].update(radii=[float("inf"), 3.0]), "Infinity is not a number"),
        (lambda d: d["rois"][0].update(sop_instance_uid="2.25.999"), "2.25.999"),
        (lambda d: d.update(series_instance_uid="2.25.1"), "series"),
        (lambda d: d["rois"][0].update(radii=[0, 3.0]), "radii must be positive"),
        (lambda d: d["rois"].append({"label": "L5"}), "label must be one of"),
    ],
    ids=["unknown key", "unknown roi key", "NaN", "Infinity", "wrong instance", "wrong series",
         "zero radius", "unknown label"],
)  # fmt: skip
def test_bad_roi_sets_by_hand_are_400_and_change_nothing(
    client, world, phantom, mutate, message
) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    services.reading_save_rois(reading=reading, data=truth["rois"])
    before = _state(reading)
    data = copy.deepcopy(truth["rois"])
    mutate(data)
    client.force_login(world.reader)
    response = _post(client, reading, json.dumps(data))  # json.dumps writes NaN and Infinity
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert _state(reading) == before


def test_rois_of_another_case_are_400(client, world, phantom) -> None:
    (case, _), (_, other_truth) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    before = _state(reading)
    client.force_login(world.reader)
    response = _post(client, reading, json.dumps(other_truth["rois"]))
    assert response.status_code == 400
    assert _state(reading) == before


def test_rois_on_a_quarantined_instance_are_400_and_it_is_not_listed(
    client, world, phantom
) -> None:
    """A quarantined instance (possible burned-in text) is not the reader's to see, so an ROI
    posted on it by hand is refused like one on an unknown instance."""
    (case, _), (truth, _) = phantom
    l1 = next(r for r in truth["rois"]["rois"] if r["label"] == "L1")
    Instance.objects.filter(sop_instance_uid=l1["sop_instance_uid"]).update(quarantined=True)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    before = _state(reading)
    client.force_login(world.reader)
    response = _post(client, reading, json.dumps(truth["rois"]))
    assert response.status_code == 400
    assert l1["sop_instance_uid"] in response.json()["error"]
    assert _state(reading) == before
    page = client.get(
        reverse("readers:detail", kwargs={"public_id": reading.public_id})
    ).content.decode()
    assert l1["sop_instance_uid"] not in page


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"[1, 2]", b'"text"'])
def test_what_is_not_a_json_roi_set_is_400(client, world, phantom, body) -> None:
    (case, _), _ = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    client.force_login(world.reader)
    response = _post(client, reading, body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert _state(reading) == (None, 0, "draft")


def test_another_readers_reading_is_404_and_unchanged(client, world, phantom) -> None:
    (case, _), (truth, _) = phantom
    theirs = services.reading_open(reader=world.other_reader, case=case, session=1)
    before = _state(theirs)
    client.force_login(world.reader)
    assert _post(client, theirs, json.dumps(truth["rois"])).status_code == 404
    submit = client.post(reverse("readers:submit_json", kwargs={"public_id": theirs.public_id}))
    assert submit.status_code == 404
    assert _state(theirs) == before


def test_a_locked_reading_is_403_and_unchanged(client, world, phantom) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    services.reading_save_rois(reading=reading, data=truth["rois"])
    services.reading_submit(reading=reading)
    before = _state(reading)
    data = copy.deepcopy(truth["rois"])
    data["rois"][0]["center"] = [100.0, 100.0]
    client.force_login(world.reader)
    response = _post(client, reading, json.dumps(data))
    assert response.status_code == 403
    assert response.json()["error"].startswith("Already submitted — reload")
    submit = client.post(reverse("readers:submit_json", kwargs={"public_id": reading.public_id}))
    assert submit.status_code == 403
    assert _state(reading) == before


def test_an_incomplete_reading_cannot_be_submitted(client, world, phantom) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    data = copy.deepcopy(truth["rois"])
    data["rois"] = [r for r in data["rois"] if r["label"] != "L2"]
    client.force_login(world.reader)
    assert _post(client, reading, json.dumps(data)).status_code == 200
    response = client.post(reverse("readers:submit_json", kwargs={"public_id": reading.public_id}))
    assert response.status_code == 400
    assert "L2" in response.json()["error"]
    assert _state(reading)[2] == "draft"


def test_managers_cannot_write_through_the_json_endpoints(client, world, phantom) -> None:
    (case, _), (truth, _) = phantom
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    client.force_login(world.manager)
    assert _post(client, reading, json.dumps(truth["rois"])).status_code == 403
    assert _state(reading) == (None, 0, "draft")
