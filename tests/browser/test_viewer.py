"""The reader's viewer in a real browser, against a live server, a real Redis and Celery worker.

What a reader does, with the mouse and with the keyboard alone; a draft that survives a reload;
and the agreement the spec demands between the browser's preview statistics and the server's:
the same pixel count and the same median for every tool, on an axis-aligned phantom and on one
whose orientation is flipped and oblique (with non-square pixels), and on real compressed and
real scanner images.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.conf import settings

from readers import services
from readers.measurement.dicomio import load_images, read_slice
from readers.measurement.measure import measure_vbq, roi_mask
from readers.measurement.rois import parse_roi_set, remap_uids
from readers.models import Reading
from studies.models import Case
from studies.phantom.writer import write_phantom
from studies.uploads.config import deid_uid
from studies.uploads.ingest import case_set_ingest_paths
from studies.uploads.series import case_choose_series
from tests.helpers import factories
from tests.helpers.browser import login, login_fast, open_viewer, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SHARED_DATA = Path(settings.BASE_DIR).parent / "shared" / "data"


# --- set-up -------------------------------------------------------------------------------------


def _import_case(study, folder: Path, manager=None) -> Case:
    """Ingest a folder's DICOM files as a manager's upload would (de-identified, new UIDs).

    A case whose series is not eligible for VBQ (a real brain series, a single JPEG 2000
    image) gets it chosen by the manager's override, as the issue describes."""
    upload = case_set_ingest_paths(study=study, paths=sorted(folder.glob("*.dcm")), name="test")
    assert upload.status == "done", upload.message
    case = Case.objects.get(pk=upload.items.exclude(case=None).values("case").first()["case"])
    if case.reading_series is None:
        assert manager is not None, "the series is not eligible: say who overrides"
        case_choose_series(
            case=case, series=case.series.get(), reason="test: real images", by=manager
        )
    return case


def _phantom(tmp_path: Path, seed: int) -> tuple[Path, dict]:
    """A phantom case and its truth, the ROIs remapped to the UIDs the ingest gives them."""
    case_dir = write_phantom(tmp_path / f"phantom-{seed}", cases=1, seed=seed)[0]
    truth = json.loads((case_dir / "truth.json").read_text())
    truth["rois"] = remap_uids(truth["rois"], deid_uid)
    return case_dir, truth


def _reading_in_viewer(page, live_server, world, tmp_path: Path, seed: int) -> tuple:
    """A phantom case ingested into study A, the reader's reading of it open in the viewer;
    returns the reading and the truth ROIs by label (remapped to the stored UIDs)."""
    case_dir, truth = _phantom(tmp_path, seed=seed)
    case = _import_case(world.study_a, case_dir)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    login_fast(page, live_server, world.reader)
    open_viewer(page, reading.public_id)
    return reading, {r["label"]: r for r in truth["rois"]["rois"]}


def _rotation(ax_deg: float, az_deg: float) -> np.ndarray:
    a, b = math.radians(ax_deg), math.radians(az_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    rz = np.array([[math.cos(b), -math.sin(b), 0], [math.sin(b), math.cos(b), 0], [0, 0, 1]])
    return rz @ rx


def _flip_and_tilt(case_dir: Path) -> None:
    """Rewrite a phantom's headers: rows flipped left-right (the row direction reversed), the
    plane tilted 20° in-plane and 10° out of the sagittal plane, and non-square pixels (0.9 mm
    between rows, 1.2 mm between columns). Pixels stay where they are, so the truth ROIs (image
    coordinates) still lie on the vertebrae; only the image <-> world mapping changes."""
    m = _rotation(20, 10)
    row = m @ np.array([0.0, -1.0, 0.0])
    col = m @ np.array([0.0, 0.0, -1.0])
    for path in sorted(case_dir.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row, *col)]
        ds.PixelSpacing = ["0.9", "1.2"]
        ds.save_as(path, enforce_file_format=True)


# --- page helpers ------------------------------------------------------------------------------


def _xy(page, x: float, y: float) -> list[float]:
    return page.evaluate("([x, y]) => vbqViewer.imageToPage(x, y)", [x, y])


def _drag(page, points: list[list[float]], steps: int = 6) -> None:
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point, steps=steps)
    page.mouse.up()


def draw(page, tool: str, roi: dict, scale: float = 1.0) -> None:
    """Draw a truth ellipse's region with ``tool`` by mouse: an ellipse (centre, then drag to the
    semi-axes), a rectangle inside it, or a freehand loop around it."""
    page.click(f"[data-tool={tool}]")
    (cx, cy), (rx, ry) = roi["center"], roi["radii"]
    rx, ry = rx * scale, ry * scale
    if tool == "ellipse":
        _drag(page, [_xy(page, cx, cy), _xy(page, cx + rx, cy + ry)])
    elif tool == "rectangle":
        _drag(
            page, [_xy(page, cx - 0.7 * rx, cy - 0.7 * ry), _xy(page, cx + 0.7 * rx, cy + 0.7 * ry)]
        )
    else:
        loop = [
            _xy(page, cx + 0.8 * rx * math.cos(t), cy + 0.8 * ry * math.sin(t))
            for t in np.linspace(0, 2 * math.pi, 19)
        ]
        _drag(page, loop, steps=2)


def go_to(page, sop_uid: str) -> None:
    page.evaluate("(sop) => vbqViewer.goTo(vbqViewer.indexOf(sop))", sop_uid)
    wait_until(page, "(sop) => vbqViewer.sopAt(vbqViewer.currentIndex()) === sop", arg=sop_uid)


def wait_saved_and_scored(page) -> dict:
    """Wait for the autosave and then for the server's score of the saved version."""
    try:
        wait_until(page, "vbqViewer.saveState() === 'saved'")
        wait_until(
            page,
            "(() => { const s = vbqViewer.score(); "
            "return s && s.roi_version === vbqViewer.version(); })()",
            timeout=60_000,
        )
    except Exception as error:
        state = page.evaluate(
            "({save: document.querySelector('#save-state').textContent, "
            "version: vbqViewer.version(), score: vbqViewer.score()})"
        )
        raise AssertionError(f"not saved and scored: {state}; console: {page.errors}") from error
    return page.evaluate("vbqViewer.score()")


def assert_preview_matches_server(page, score: dict) -> None:
    """The browser's preview statistics and the server's: same count, same median."""
    preview = page.evaluate("vbqViewer.preview()")
    detail = score["detail"]
    measured = {k: v for k, v in detail["levels"].items() if not v.get("excluded")}
    measured["CSF"] = detail["csf"]
    assert set(preview) == set(measured)
    for label, server in measured.items():
        mine = preview[label]
        assert "error" not in mine, (label, mine)
        assert mine["n_pixels"] == server["n_pixels"], label
        assert mine["median"] == server["median"], label
        assert mine["mean"] == pytest.approx(server["mean"], rel=1e-12), label
    assert page.locator(".level-stats .error").count() == 0
    assert page.locator(".level-stats .agree").count() == len(measured)


def _screenshot(page, target: Path) -> None:
    """docs/viewer.png: ``VBQ_VIEWER_SCREENSHOT=docs/viewer.png`` on this test writes it (a
    256-colour PNG, to stay small)."""
    from PIL import Image

    box = page.locator("#viewport").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] - 60)  # no hover highlight
    page.mouse.move(box["x"] + 30, box["y"] + box["height"] - 50)
    page.keyboard.press("c")
    page.wait_for_timeout(300)
    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(target, optimize=True)


def expected_score(reading: Reading) -> dict:
    """``measure_vbq`` on the reading's saved ROI JSON and the stored (de-identified) files."""
    reading.refresh_from_db()
    files = [i.file.path for i in reading.case.reading_series.instances.all()]
    return measure_vbq(
        parse_roi_set(reading.rois),
        load_images(files),
        **reading.case.study.measurement_settings(),
    )


# --- the acceptance runs ------------------------------------------------------------------------


def test_reader_draws_excludes_submits_and_sees_the_server_vbq(
    celery_worker, page, live_server, world, tmp_path
):
    case_dir, truth = _phantom(tmp_path, seed=31)
    case = _import_case(world.study_a, case_dir)
    rois = {r["label"]: r for r in truth["rois"]["rois"]}

    login(page, "reader", factories.PASSWORD)
    page.goto(f"/studies/{world.study_a.pk}/")
    page.click("button:text-is('Start')")
    wait_until(page, "document.body.dataset.viewerReady === '1'")
    reading = Reading.objects.get(reader=world.reader, case=case)
    go_to(page, rois["L1"]["sop_instance_uid"])

    draw(page, "ellipse", rois["L1"], 0.9)
    draw(page, "rectangle", rois["L2"])
    draw(page, "freehand", rois["L3"])
    assert page.locator("#current-level").inner_text() == "Now: L4"
    page.click("#exclude-button")
    page.select_option("#exclude-reason", "fracture")
    page.fill("#exclude-note", "wedge")
    page.click("#exclude-confirm")
    draw(page, "ellipse", rois["CSF"], 0.8)
    doc = page.evaluate("vbqViewer.roiJson()")
    assert [r["label"] for r in doc["rois"]] == ["L1", "L2", "L3", "CSF", "L4"]
    assert [r.get("shape") for r in doc["rois"]] == [
        "ellipse", "rectangle", "polygon", "ellipse", None
    ]  # fmt: skip
    assert doc["rois"][3]["level"] == "L3"
    assert doc["rois"][4] == {
        "label": "L4",
        "excluded": True,
        "reason": "fracture",
        "note": "wedge",
    }

    draft_score = wait_saved_and_scored(page)
    assert_preview_matches_server(page, draft_score)

    page.click("#submit-button")
    page.click("#submit-confirm")
    # Save and next: the session's only case is done, so the worklist says so; Back shows the
    # reading as it is now, submitted, with the server's score.
    page.wait_for_url(f"**/studies/{world.study_a.pk}/")
    page.go_back()
    wait_until(page, "document.body.dataset.viewerReady === '1'")
    page.wait_for_selector("#reading-status.submitted")
    page.wait_for_selector("#server-vbq")
    reading.refresh_from_db()
    assert reading.is_locked
    assert reading.rois == doc
    shown = float(page.inner_text("#server-vbq"))
    expected = expected_score(reading)
    assert shown == pytest.approx(expected["vbq"], abs=5e-4)
    assert page.evaluate("vbqViewer.score()")["detail"] == expected
    assert page.errors == []


def test_keyboard_only_run(celery_worker, page, live_server, world, tmp_path):
    case_dir, truth = _phantom(tmp_path, seed=32)
    case = _import_case(world.study_a, case_dir)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    targets = {r["label"]: r for r in truth["rois"]["rois"]}
    login_fast(page, live_server, world.reader)
    open_viewer(page, reading.public_id)
    index = page.evaluate("(sop) => vbqViewer.indexOf(sop)", targets["L1"]["sop_instance_uid"])
    page.keyboard.press("m")  # the midsagittal slice, then step to the truth's slice
    for _ in range(abs(index - page.evaluate("vbqViewer.currentIndex()"))):
        step = "ArrowDown" if index > page.evaluate("vbqViewer.currentIndex()") else "ArrowUp"
        page.keyboard.press(step)
    assert page.evaluate("vbqViewer.currentIndex()") == index

    for key, label in (("1", "L1"), ("2", "L2"), ("4", "L4"), ("c", "CSF")):
        page.keyboard.press(key)
        page.keyboard.press("p")
        if label == "L2":
            page.keyboard.press("b")  # a rectangle, from the keyboard too
            page.keyboard.press("p")
            page.keyboard.press("o")
        placed = next(
            r for r in page.evaluate("vbqViewer.roiJson()")["rois"] if r["label"] == label
        )
        centre = placed.get("center") or np.mean(placed["corners"], axis=0).tolist()
        dx = round(targets[label]["center"][0] - centre[0])
        dy = round(targets[label]["center"][1] - centre[1])
        for delta, (neg, pos) in (
            (dx, ("ArrowLeft", "ArrowRight")),
            (dy, ("ArrowUp", "ArrowDown")),
        ):
            key_name = pos if delta > 0 else neg
            for _ in range(abs(delta) // 5):
                page.keyboard.press(f"Shift+Control+{key_name}")
            for _ in range(abs(delta) % 5):
                page.keyboard.press(f"Shift+{key_name}")
        if label == "CSF":
            page.keyboard.press("[")  # the default CSF ellipse is a little large for the sac
    page.keyboard.press("3")
    page.keyboard.press("e")
    page.keyboard.press("ArrowDown")  # fracture -> hemangioma
    page.keyboard.press("Enter")
    doc = page.evaluate("vbqViewer.roiJson()")
    assert {r["label"] for r in doc["rois"]} == {"L1", "L2", "L3", "L4", "CSF"}
    assert next(r for r in doc["rois"] if r["label"] == "L3")["reason"] == "hemangioma"
    assert next(r for r in doc["rois"] if r["label"] == "L2")["shape"] == "rectangle"

    # The closed dialog hands the keyboard back to the image at once (no focus left behind).
    assert page.evaluate("document.activeElement.id") == "viewport"
    page.keyboard.press("Enter")  # opens the confirmation, focused on Submit
    page.wait_for_selector("#submit-dialog[open]")
    assert page.evaluate("document.activeElement.id") == "submit-confirm"
    page.keyboard.press("Enter")
    try:
        page.wait_for_url(f"**/studies/{world.study_a.pk}/")  # save and next: session complete
    except Exception as error:
        status = page.evaluate(
            "[document.querySelector('#viewer-status').textContent, "
            "document.querySelector('#save-state').textContent, "
            "document.querySelector('#submit-dialog').open, document.activeElement.outerHTML]"
        )
        raise AssertionError(f"not submitted: {status}; console: {page.errors}") from error
    page.go_back()
    wait_until(page, "document.body.dataset.viewerReady === '1'")
    page.wait_for_selector("#reading-status.submitted")
    page.wait_for_selector("#server-vbq", timeout=60_000)
    score = page.evaluate("vbqViewer.score()")
    assert score["detail"] == expected_score(reading)
    assert_preview_matches_server(page, score)
    assert page.errors == []


def test_a_score_that_cannot_be_computed_says_why(
    celery_worker, page, live_server, world, tmp_path
):
    """The study needs 3 measured levels; the reader measures 2 and excludes 2: the server's
    answer (no VBQ, and why) reaches the panel, not a number and not an endless "computing"."""
    world.study_a.min_levels = 3
    world.study_a.save()
    _, rois = _reading_in_viewer(page, live_server, world, tmp_path, seed=37)
    go_to(page, rois["L1"]["sop_instance_uid"])
    draw(page, "ellipse", rois["L1"], 0.9)
    for level in ("L2", "L3"):
        page.keyboard.press(level[1])
        page.keyboard.press("e")
        page.keyboard.press("Enter")  # the first reason on the list
    page.keyboard.press("4")
    draw(page, "ellipse", rois["L4"], 0.9)
    draw(page, "ellipse", rois["CSF"], 0.8)
    score = wait_saved_and_scored(page)
    assert score["status"] == "not_computed", score
    assert page.get_attribute("#score-body", "data-status") == "not_computed"
    shown = page.inner_text("#score-body")
    assert shown.startswith("Not computed:")
    assert score["message"] in shown
    assert "3" in score["message"]  # the study's minimum is named
    assert page.locator("#server-vbq").count() == 0
    assert page.errors == []


def test_a_draft_resumes_after_reload(celery_worker, page, live_server, world, tmp_path):
    reading, rois = _reading_in_viewer(page, live_server, world, tmp_path, seed=33)
    go_to(page, rois["L1"]["sop_instance_uid"])
    draw(page, "ellipse", rois["L1"], 0.9)
    draw(page, "freehand", rois["L2"])
    page.keyboard.press("c")
    draw(page, "ellipse", rois["CSF"], 0.8)
    page.select_option("#csf-level", "L4")  # the level is stored with the CSF ROI
    wait_until(page, "vbqViewer.saveState() === 'saved'")
    before = page.evaluate("vbqViewer.roiJson()")
    preview = page.evaluate("vbqViewer.preview()")

    page.reload()
    wait_until(page, "document.body.dataset.viewerReady === '1'")
    assert page.evaluate("vbqViewer.roiJson()") == before
    wait_until(page, "Object.values(vbqViewer.preview()).every((p) => p.n_pixels)")
    after = page.evaluate("vbqViewer.preview()")
    assert {k: (v["n_pixels"], v["median"]) for k, v in after.items()} == {
        k: (v["n_pixels"], v["median"]) for k, v in preview.items()
    }
    assert page.locator("#current-level").inner_text() == "Now: L3"
    assert page.input_value("#csf-level") == "L4"
    # The drawings are back on the image (Cornerstone computes its own statistics for them).
    go_to(page, rois["L1"]["sop_instance_uid"])
    wait_until(page, "['L1', 'L2', 'CSF'].every((label) => vbqViewer.cornerstoneStats(label))")
    reading.refresh_from_db()
    assert reading.rois == before
    assert page.errors == []


@pytest.mark.parametrize("orientation", ["axis-aligned", "flipped-oblique"])
def test_preview_equals_server_for_every_tool(
    celery_worker, page, live_server, world, tmp_path, orientation
):
    case_dir, truth = _phantom(tmp_path, seed=34 if orientation == "axis-aligned" else 35)
    if orientation == "flipped-oblique":
        _flip_and_tilt(case_dir)
    case = _import_case(world.study_a, case_dir)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    rois = {r["label"]: r for r in truth["rois"]["rois"]}
    login_fast(page, live_server, world.reader)
    open_viewer(page, reading.public_id)
    go_to(page, rois["L1"]["sop_instance_uid"])
    draw(page, "ellipse", rois["L1"], 0.9)
    draw(page, "rectangle", rois["L2"])
    draw(page, "freehand", rois["L3"])
    draw(page, "rectangle", rois["L4"], 0.8)
    draw(page, "freehand", rois["CSF"], 0.9)
    score = wait_saved_and_scored(page)
    assert score["status"] == "ok", (score, page.evaluate("vbqViewer.roiJson()"))
    assert_preview_matches_server(page, score)
    assert score["detail"] == expected_score(reading)
    if orientation == "axis-aligned" and (target := os.environ.get("VBQ_VIEWER_SCREENSHOT")):
        _screenshot(page, Path(target))
    # Cornerstone's own EllipticalROI statistics count the same pixels (spec §2), even on the
    # flipped, oblique, non-square image: the drawing and the measurement are one region.
    wait_until(page, "vbqViewer.cornerstoneStats('L1')?.count > 0")
    cornerstone = page.evaluate("vbqViewer.cornerstoneStats('L1')")
    assert cornerstone["count"] == score["detail"]["levels"]["L1"]["n_pixels"]
    assert cornerstone["median"] == score["detail"]["levels"]["L1"]["median"]
    assert page.errors == []


# --- real images --------------------------------------------------------------------------------


def _shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared public test data): nothing to open")
    return path


def test_opens_a_jpeg_2000_mr_and_measures_its_decoded_pixels(
    celery_worker, page, live_server, world, tmp_path
):
    """A real, oblique, rescaled (slope 3.77) MR in lossy JPEG 2000: Cornerstone decodes it in
    the browser (wasm), and one drawn ROI's preview equals the server-side measurement."""
    source = _shared("compressed/JPEG2000__MR2_J2KI.dcm")
    folder = tmp_path / "j2k"
    folder.mkdir()
    (folder / "IM0001.dcm").write_bytes(source.read_bytes())
    case = _import_case(world.study_a, folder, world.manager)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    login_fast(page, live_server, world.reader)
    open_viewer(page, reading.public_id)
    assert page.evaluate("vbqViewer.sopAt(0)") == deid_uid(pydicom.dcmread(source).SOPInstanceUID)
    roi = {"center": [512.0, 400.0], "radii": [60.0, 40.0]}
    draw(page, "ellipse", roi)
    wait_until(page, "vbqViewer.preview().L1?.n_pixels > 0")
    preview = page.evaluate("vbqViewer.preview()")["L1"]
    drawn = page.evaluate("vbqViewer.roiJson()")["rois"][0]
    stored = case.reading_series.instances.get()
    stored_syntax = pydicom.dcmread(stored.file.path, stop_before_pixels=True).file_meta
    assert stored_syntax.TransferSyntaxUID == pydicom.dcmread(source).file_meta.TransferSyntaxUID
    image = read_slice(stored.file.path)
    shape = (
        parse_roi_set(
            {
                "schema": "vbq.rois/1",
                "series_instance_uid": image.series_instance_uid,
                "rois": [drawn],
            }
        )
        .rois[0]
        .shape
    )
    values = roi_mask(shape, image.geometry.rows, image.geometry.columns).values(image.pixels)
    assert preview["n_pixels"] == values.size
    assert preview["median"] == float(np.median(values))
    assert page.evaluate("vbqViewer.cornerstoneStats('L1')")["count"] == values.size
    assert page.errors == []


def test_opens_the_real_scanner_series_at_the_middle_and_scrolls(
    page, live_server, world, tmp_path
):
    folder = _shared("real-mr-sagittal-t1-brain")
    case = _import_case(world.study_a, folder, world.manager)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    login_fast(page, live_server, world.reader)
    open_viewer(page, reading.public_id)
    n = case.reading_series.instances.count()
    assert n == 196
    assert page.evaluate("vbqViewer.currentIndex()") == (n - 1) // 2
    assert page.inner_text("#slice-indicator").startswith(f"Slice {(n - 1) // 2 + 1} / {n}")
    box = page.locator("#viewport").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 300)
    wait_until(page, f"vbqViewer.currentIndex() > {(n - 1) // 2}")
    page.keyboard.press("Home")
    wait_until(page, "vbqViewer.currentIndex() === 0")
    wait_until(
        page, "document.querySelector('#slice-indicator').textContent.startsWith('Slice 1 /')"
    )
    assert page.errors == []
