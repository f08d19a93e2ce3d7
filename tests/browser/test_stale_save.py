"""A reading open in two tabs (real browser, live server, real Redis and Celery worker): tab A
saves, then tab B, still on the version it loaded, edits. B's autosave is refused (409, its base
version is stale): B says the reading changed in another window, offers Reload and keeps its set
aside; the server keeps A's ROIs. Reloading B shows A's set."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from readers import services
from readers.measurement.rois import parse_roi_set
from studies.models import Case
from studies.phantom.writer import write_phantom
from studies.uploads.ingest import case_set_ingest_paths
from tests.helpers.browser import login_fast, open_viewer, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CONFLICT = "This reading was changed in another window or tab — reload to see the latest."
ASIDE = "localStorage.getItem(Object.keys(localStorage).find((k) => k.startsWith('vbq.conflict')))"


def _case(world, tmp_path: Path) -> Case:
    folder = write_phantom(tmp_path / "phantom", cases=1, seed=44)[0]
    upload = case_set_ingest_paths(
        study=world.study_a, paths=sorted(folder.glob("*.dcm")), name="two tabs"
    )
    assert upload.status == "done", upload.message
    return Case.objects.get(case_set__study=world.study_a)


def _draw(page, key: str) -> None:
    """Select a level and place an ROI at the centre of the view: an edit."""
    page.keyboard.press(key)
    page.keyboard.press("p")


def _leave(page) -> None:
    """Leave the page before the context closes (its "Leave site?" prompt would hang it)."""
    with contextlib.suppress(PlaywrightTimeoutError):
        page.goto("about:blank", timeout=10_000)


def test_a_stale_tab_cannot_overwrite_a_newer_save(
    celery_worker, page, live_server, world, tmp_path
) -> None:
    reading = services.reading_open(reader=world.reader, case=_case(world, tmp_path), session=1)
    login_fast(page, live_server, world.reader)
    tab_b = page.context.new_page()
    tab_b.errors = []  # type: ignore[attr-defined]
    tab_b.on("console", lambda m: m.type == "error" and tab_b.errors.append(m.text))  # type: ignore[attr-defined]
    tab_b.set_default_timeout(20_000)
    for tab in (page, tab_b):
        tab.on("dialog", lambda dialog: dialog.accept())  # "Leave site?": yes
        open_viewer(tab, reading.public_id)
        assert tab.evaluate("vbqViewer.version()") == 0

    _draw(page, "1")  # tab A saves version 1
    page.evaluate("vbqViewer.flush()")
    wait_until(page, "vbqViewer.saveState() === 'saved' && vbqViewer.version() === 1")
    saved_by_a = page.evaluate("vbqViewer.roiJson()")

    _draw(tab_b, "2")  # tab B, on version 0, edits: its autosave is refused
    wait_until(tab_b, "vbqViewer.saveState() === 'conflict'")
    assert CONFLICT in tab_b.inner_text("#save-state")
    assert tab_b.is_visible("#reload-button")
    assert tab_b.evaluate("vbqViewer.version()") == 0
    aside = json.loads(tab_b.evaluate(ASIDE))
    assert [r["label"] for r in json.loads(aside["body"])["rois"]] == ["L2"]
    assert aside["server_version"] == 1
    tab_b.wait_for_timeout(1500)  # longer than the autosave delay and the first retry: nothing

    reading.refresh_from_db()
    assert reading.roi_version == 1
    assert reading.rois == parse_roi_set(saved_by_a).to_json()

    tab_b.click("#reload-button")  # the latest: A's set
    wait_until(tab_b, "document.body.dataset.viewerReady === '1'")
    assert tab_b.evaluate("vbqViewer.version()") == 1
    assert tab_b.evaluate("vbqViewer.roiJson()") == saved_by_a
    # Chromium logs the refused fetch (409) as a console error; nothing else went wrong.
    assert [e for e in tab_b.errors if "409 (Conflict)" not in e] == []
    assert page.errors == []
    _leave(tab_b)
    _leave(page)
