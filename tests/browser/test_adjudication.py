"""Adjudication and the manager's review viewer in a real browser (issue 14 item 5, issue 13
item 7), against a live server, a real Redis and a real Celery worker that scores the readings.

Two readers read one phantom case; the second draws a little off and leaves L4 out, so their
VBQs differ, and the study's screening threshold lies between them: they disagree. The case
reaches the adjudicator, who sees both readings' ROIs as "Reader A" and "Reader B" and accepts
one; the consensus appears in the managers' download. The manager's review viewer draws every
reader's ROIs, one colour per reader, on the slice of the ROIs.
``VBQ_REVIEW_SCREENSHOT=docs/review-viewer.png`` (and
``VBQ_ADJUDICATION_SCREENSHOT=docs/adjudication.png``) write the screenshots of the manager's
review viewer (and of the adjudicator's case page).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from django.urls import reverse

from readers import services
from readers.adjudication.selectors import PALETTE
from readers.models import Consensus
from studies.models import Threshold
from tests.helpers.browser import login_fast, wait_until
from tests.helpers.readings import phantom_case, wait_scored

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _disagreeing_readings(world, tmp_path: Path):
    """Study A with adjudication at its screening threshold, one phantom case, and two
    submitted, scored readings on either side of the threshold."""
    study = world.study_a
    case, _, truth = phantom_case(study, tmp_path, seed=14, label="Case 014")
    rois = truth["rois"]
    # The second reader: every ROI a few pixels lower and to the right, smaller, and L4 excluded.
    partial = dict(rois) | {
        "rois": [
            r
            | {
                "center": [r["center"][0] + 4, r["center"][1] + 3],
                "radii": [v * 0.8 for v in r["radii"]],
            }
            for r in rois["rois"]
            if r["label"] != "L4"
        ]
        + [{"label": "L4", "excluded": True, "reason": "fracture"}]
    }
    scores = []
    readings = []
    for reader, data in ((world.reader, rois), (world.other_reader, partial)):
        reading = services.reading_open(reader=reader, case=case, session=1)
        reading = services.reading_save_rois(reading=reading, data=data)
        services.reading_submit(reading=reading)
        scores.append(wait_scored(reading, timeout=60).vbq)
        readings.append(reading)
    low, high = sorted(scores)
    assert high - low > 1e-6, "the two readings must differ for the test to mean anything"
    screening = Threshold.objects.create(study=study, name="screening", value=(low + high) / 2)
    study.adjudication = True
    study.adjudication_threshold = screening
    study.adjudication_use_sdc = False
    study.save()
    return case, readings, scores, truth


def _svg_strokes(page) -> list[str]:
    return page.evaluate(
        "[...document.querySelectorAll('#review-rois polygon')].map(p => p.getAttribute('stroke'))"
    )


def _screenshot(page, target: Path) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(target, optimize=True)


def _ready(page) -> None:
    wait_until(
        page, "document.body.dataset.viewerReady === '1' || document.body.dataset.viewerError"
    )
    assert not page.evaluate("document.body.dataset.viewerError"), page.errors


def test_disagreeing_readers_reach_the_adjudicator_who_accepts_one_reading(
    celery_worker, page, live_server, world, tmp_path
) -> None:
    case, readings, scores, _ = _disagreeing_readings(world, tmp_path)
    study = world.study_a
    login_fast(page, live_server, world.adjudicator)
    page.goto(reverse("study", kwargs={"pk": study.pk}))  # the study page sends them here
    assert page.url.endswith(reverse("adjudication:worklist", kwargs={"pk": study.pk}))
    row = page.locator("#adjudication-worklist tr[data-case='Case 014']")
    assert "categories differ at screening" in row.inner_text()
    row.get_by_role("link", name="Adjudicate").click()
    _ready(page)
    # Both readings' ROIs are drawn, one colour each; no name, no id of a reader in the page.
    wait_until(page, "document.querySelectorAll('#review-rois polygon').length >= 2")
    assert set(_svg_strokes(page)) == set(PALETTE[:2])
    html = page.content()
    for secret in ("other_reader", str(readings[0].public_id), str(readings[1].public_id)):
        assert secret not in html
    labels = page.locator("#adjudication-readings tr[data-label]")
    assert [labels.nth(i).get_attribute("data-label") for i in range(2)] == ["Reader A", "Reader B"]
    if target := os.environ.get("VBQ_ADJUDICATION_SCREENSHOT"):
        _screenshot(page, Path(target))
    page.click("button[data-accept='Reader B']")
    page.wait_for_url(f"**{reverse('adjudication:worklist', kwargs={'pk': study.pk})}")
    assert "accepted Reader B's reading" in page.inner_text("#adjudication-worklist")
    assert page.errors == []

    consensus = Consensus.objects.get(case=case, session=1)
    assert consensus.vbq in scores
    assert consensus.decided_by == world.adjudicator
    # The consensus in the managers' download.
    login_fast(page, live_server, world.manager)
    response = page.request.get(reverse("analytics:measurements_csv", kwargs={"pk": study.pk}))
    assert response.status == 200
    rows = list(csv.DictReader(io.StringIO(response.text())))
    assert {r["reader"] for r in rows} == {"reader", "other_reader"}
    assert {float(r["consensus_vbq"]) for r in rows} == {consensus.vbq}
    assert {r["consensus_source"] for r in rows} == {"accepted Reader B's reading"}


def test_the_managers_review_viewer_draws_every_readers_rois(
    celery_worker, page, live_server, world, tmp_path
) -> None:
    _, readings, _, truth = _disagreeing_readings(world, tmp_path)
    study = world.study_a
    page.set_viewport_size({"width": 1440, "height": 900})
    login_fast(page, live_server, world.manager)
    page.goto(reverse("study", kwargs={"pk": study.pk}))
    page.click(
        f"a[href='{reverse('adjudication:review', args=[study.pk, readings[0].public_id])}']"
    )
    _ready(page)
    wait_until(page, "document.querySelectorAll('#review-rois polygon').length >= 2")
    strokes = _svg_strokes(page)
    # Opens on the slice of the ROIs; each reader's ROIs of that slice in the reader's colour.
    sops = {r["sop_instance_uid"] for r in truth["rois"]["rois"] if not r.get("excluded")}
    index = page.evaluate("vbqReview.currentIndex()")
    assert page.evaluate("vbqReview.opening") == index
    assert set(strokes) == set(PALETTE[:2]), strokes
    # by username: other_reader (four ROIs, L4 excluded) first, then reader (five)
    assert (strokes.count(PALETTE[0]), strokes.count(PALETTE[1])) == (4, 5)
    assert page.evaluate("vbqReview.sop()") in sops
    # The ROIs lie on the image: every polygon's centre inside the viewport.
    inside = page.evaluate(
        """() => {
          const box = document.getElementById('viewport').getBoundingClientRect();
          return [...document.querySelectorAll('#review-rois polygon')].every(p => {
            const r = p.getBoundingClientRect();
            const x = r.left + r.width / 2, y = r.top + r.height / 2;
            return r.width > 2 && x > box.left && x < box.right && y > box.top && y < box.bottom;
          });
        }"""
    )
    assert inside
    # The canvas is painted under the ROIs (the image is there, not a black box).
    legend = page.inner_text("#review-legend")
    assert "reader" in legend
    assert "other_reader" in legend
    if target := os.environ.get("VBQ_REVIEW_SCREENSHOT"):
        _screenshot(page, Path(target))
    # Step to the other reader: the same case, the other reading in focus.
    page.click("#previous-reader")  # other_reader comes before reader
    _ready(page)
    assert str(readings[1].public_id) in page.url
    assert page.errors == []
