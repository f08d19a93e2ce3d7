"""A reader's day in a real browser (issue 13 items 1, 2, 4, 5): Submit goes on to the next case
("case 2 of 2"); Back and Forward after it show each reading as it is now, never a stale draft;
a save the server refuses offers a reload; the server's score shows as the study's setting
says; a read-only reading opens on the slice of its ROIs with no editing control; the whole
series is prefetched; the overlay names the series and the patient's directions; "P" places
the current level's ROI at the pointer.

Against a live server, a real Redis and Celery worker, and Debian's Chromium (conftest.py).
``VBQ_READERFLOW_SCREENSHOT=docs/reader-after-submit.png`` writes the screenshot of the reader
after a submit (docs/viewer.md).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from readers import services
from readers.models import Reading
from readers.sessions import case_order
from studies.models import ScoreVisibility
from tests.helpers.browser import login_fast, open_viewer, wait_until
from tests.helpers.readings import phantom_case, wait_scored

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

VIEWPORT_1440 = {"width": 1440, "height": 900}


def _ready(page) -> None:
    try:
        wait_until(
            page,
            "document.body.dataset.viewerReady === '1' || document.body.dataset.viewerError",
            timeout=40_000,
        )
    except TimeoutError as error:
        status = page.evaluate("document.querySelector('#viewer-status')?.textContent")
        raise AssertionError(f"the viewer is not ready at {page.url}: {status}") from error
    assert not page.evaluate("document.body.dataset.viewerError"), page.errors


def _two_drafts(world, tmp_path: Path) -> list[tuple[Reading, dict]]:
    """Two phantom cases with the reader's complete drafts (the phantom's truth ROIs), in the
    reader's order of session 1."""
    made = {}
    for seed, label in ((41, "Case A"), (42, "Case B")):
        case, _, truth = phantom_case(world.study_a, tmp_path, seed=seed, label=label)
        reading = services.reading_open(reader=world.reader, case=case, session=1)
        made[case.pk] = (services.reading_save_rois(reading=reading, data=truth["rois"]), truth)
    return [made[c.pk] for c in case_order(reader=world.reader, study=world.study_a, session=1)]


def _is_read_only(page) -> bool:
    """No editing control is visible: tools, exclude / remove / submit, the CSF-level menu."""
    return page.evaluate(
        """[...document.querySelectorAll('.tool-group, .panel-actions, #csf-level-edit')]
             .every((el) => el.offsetParent === null)
           && document.querySelector('#csf-level-text').offsetParent !== null"""
    )


def _screenshot(page, target: Path) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(target, optimize=True)


def test_submit_goes_to_the_next_case_and_back_forward_show_the_current_state(
    celery_worker, browser, live_server, world, tmp_path
):
    world.study_a.score_visibility = ScoreVisibility.AFTER_SUBMIT  # the default of a study
    world.study_a.save()
    (first, first_truth), (second, _) = _two_drafts(world, tmp_path)
    vbq = wait_scored(first, timeout=60).vbq
    context = browser.new_context(viewport=VIEWPORT_1440, base_url=live_server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(20_000)
    login_fast(page, live_server, world.reader)

    # The home page: how many to read, and the next case one click away.
    page.goto("/")
    assert "2 to read" in page.inner_text("#to-read")
    page.click("#to-read button:text-is('Next case')")
    _ready(page)
    assert f"/readings/{first.public_id}/" in page.url
    assert page.inner_text("#case-position") == "case 1 of 2 · 2 to read"
    # A draft with ROIs opens on the slice of its first ROI (L1), not the midsagittal one.
    l1 = first_truth["rois"]["rois"][0]
    assert l1["label"] == "L1"
    assert page.evaluate("vbqViewer.sopAt(vbqViewer.currentIndex())") == l1["sop_instance_uid"]
    # Orientation markers and the series over the image; the whole series is prefetched.
    markers = page.evaluate(
        "['top', 'bottom', 'left', 'right'].map((e) => "
        "document.getElementById(`orient-${e}`).textContent)"
    )
    assert all(markers), markers
    assert {markers[0], markers[1]} == {"H", "F"}  # a sagittal spine: head and feet
    assert page.inner_text("#series-indicator")
    wait_until(page, "vbqViewer.cached() === vbqViewer.imageCount()", timeout=30_000)

    # Submit: the next case opens, and says where it stands.
    wait_until(page, "!document.querySelector('#submit-button').disabled")
    page.click("#submit-button")
    page.click("#submit-confirm")
    page.wait_for_url(f"**/readings/{second.public_id}/")
    _ready(page)
    assert page.inner_text("#case-position") == "case 2 of 2 · 1 to read"
    # The case just submitted, with its score now that it may show.
    assert page.inner_text("#just-submitted") == f"✓ {first.case.label} submitted · VBQ {vbq:.3f}"
    first.refresh_from_db()
    assert first.is_locked
    wait_until(page, "document.querySelector('#score-body').dataset.status === 'hidden'")
    wait_until(page, "vbqViewer.saveState() === 'saved'")
    if target := os.environ.get("VBQ_READERFLOW_SCREENSHOT"):
        _screenshot(page, Path(target))

    # Back: the first reading as it is now (submitted, read-only), never the draft it was.
    page.go_back()
    page.wait_for_url(f"**/readings/{first.public_id}/")
    _ready(page)
    assert page.inner_text("#reading-status") == "Submitted"
    assert _is_read_only(page)
    assert page.evaluate("vbqViewer.sopAt(vbqViewer.currentIndex())") == l1["sop_instance_uid"]
    page.keyboard.press("p")  # no editing key does anything
    assert page.evaluate("vbqViewer.roiJson()") == first.rois
    # Forward: the second reading, still an editable draft.
    page.go_forward()
    page.wait_for_url(f"**/readings/{second.public_id}/")
    _ready(page)
    assert page.inner_text("#reading-status") == "Draft"
    assert not _is_read_only(page)

    # The last case: Submit leads back to the worklist, with the session complete.
    wait_until(page, "!document.querySelector('#submit-button').disabled")
    page.click("#submit-button")
    page.click("#submit-confirm")
    page.wait_for_url(f"**/studies/{world.study_a.pk}/")
    assert "Session 1 is complete" in page.inner_text(".messages")
    assert errors == []
    context.close()


def test_a_save_refused_after_a_submit_elsewhere_offers_a_reload(
    celery_worker, page, live_server, world, tmp_path
):
    (reading, _), _ = _two_drafts(world, tmp_path)
    login_fast(page, live_server, world.reader)
    open_viewer(page, reading.public_id)
    services.reading_submit(reading=reading)  # in another tab, say
    page.keyboard.press("c")
    page.keyboard.press("]")  # grow the CSF ROI: an edit, saved soon
    wait_until(page, "vbqViewer.saveState() === 'error'")
    assert "Already submitted — reload" in page.inner_text("#save-state")
    assert _is_read_only(page)
    page.click("#reload-button")
    _ready(page)
    assert page.inner_text("#reading-status") == "Submitted"
    assert _is_read_only(page)
    reading.refresh_from_db()
    assert page.evaluate("vbqViewer.roiJson()") == reading.rois


@pytest.mark.parametrize("visibility", ScoreVisibility.values)
def test_the_score_shows_as_the_study_says(
    celery_worker, page, live_server, world, tmp_path, visibility
):
    world.study_a.score_visibility = visibility
    world.study_a.save()
    (reading, _), _ = _two_drafts(world, tmp_path)
    wait_scored(reading, timeout=60)
    login_fast(page, live_server, world.reader)
    open_viewer(page, reading.public_id)
    wait_until(page, "document.querySelector('#score-body').dataset.status")
    shown = page.inner_text("#score-body")
    if visibility == ScoreVisibility.LIVE:
        wait_until(page, "document.querySelector('#server-vbq')")
    else:
        assert page.get_attribute("#score-body", "data-status") == "hidden"
        assert page.locator("#server-vbq").count() == 0
        assert "submit" in shown if visibility == ScoreVisibility.AFTER_SUBMIT else "not" in shown
    # After the submit, Back shows the submitted reading: with its score unless hidden.
    page.click("#submit-button")
    page.click("#submit-confirm")
    page.wait_for_url(lambda url: str(reading.public_id) not in url)
    page.go_back()
    _ready(page)
    wait_until(page, "document.querySelector('#score-body').dataset.status !== 'pending'")
    status = page.get_attribute("#score-body", "data-status")
    assert status == ("hidden" if visibility == ScoreVisibility.HIDDEN else "ok")


def test_a_draft_without_all_levels_says_complete_all_levels(
    celery_worker, page, live_server, world, tmp_path
):
    world.study_a.score_visibility = ScoreVisibility.LIVE
    world.study_a.save()
    case, _, truth = phantom_case(world.study_a, tmp_path, seed=43)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    partial = {**truth["rois"], "rois": truth["rois"]["rois"][:2]}  # L1 and L2 only
    reading = services.reading_save_rois(reading=reading, data=partial)
    wait_scored(reading, timeout=60)
    login_fast(page, live_server, world.reader)
    open_viewer(page, reading.public_id)
    wait_until(page, "document.querySelector('#score-body').dataset.status !== 'pending'")
    shown = page.inner_text("#score-body")
    assert shown.startswith("Complete all levels for a score (to do: L3, L4, CSF)"), shown
    assert page.locator("#score-body .error").count() == 0


def test_p_places_the_current_levels_roi_at_the_pointer(
    celery_worker, page, live_server, world, tmp_path
):
    case, _, truth = phantom_case(world.study_a, tmp_path, seed=44)
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    login_fast(page, live_server, world.reader)
    open_viewer(page, reading.public_id)
    target = truth["rois"]["rois"][0]  # L1
    page.evaluate("(sop) => vbqViewer.goTo(vbqViewer.indexOf(sop))", target["sop_instance_uid"])
    wait_until(
        page,
        "(sop) => vbqViewer.sopAt(vbqViewer.currentIndex()) === sop",
        arg=target["sop_instance_uid"],
    )
    x, y = page.evaluate("([x, y]) => vbqViewer.imageToPage(x, y)", target["center"])
    page.mouse.move(x, y)
    page.keyboard.press("p")
    placed = next(r for r in page.evaluate("vbqViewer.roiJson()")["rois"] if r["label"] == "L1")
    assert placed["center"] == pytest.approx(target["center"], abs=1.0)
    # Away from the image, P places at the centre of the view as before.
    page.mouse.move(5, 5)
    page.keyboard.press("2")
    page.keyboard.press("p")
    centre = next(r for r in page.evaluate("vbqViewer.roiJson()")["rois"] if r["label"] == "L2")
    assert centre["center"] != pytest.approx(target["center"], abs=5.0)
    assert page.errors == []
