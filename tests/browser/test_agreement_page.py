"""The agreement page in Chromium (issue 14): the measurement-error and strata sections render
under the site's Content-Security-Policy (inline SVG plots, no inline style), and their
screenshot for docs (``VBQ_STRATA_SCREENSHOT=docs/agreement-strata.png``)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from readers.analysis.artifacts import files_build
from tests.helpers.browser import login_fast
from tests.helpers.strata_study import strata_study

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_measurement_error_and_strata_sections_render(page, live_server) -> None:
    study, manager = strata_study(name="Lumbar VBQ reliability 2026")
    files_build(study_pk=study.pk)  # as the worker does after the analysis (issue 13 item 8)
    login_fast(page, live_server, manager)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/studies/{study.pk}/agreement/")
    strata = page.locator("#strata")
    assert strata.is_visible()
    assert page.locator("#strata svg").count() == 3  # field strength, manufacturer, site
    assert "too few cases (n = 6) for a reliable estimate" in strata.inner_text()
    error = page.locator("h3", has_text="Measurement error").first
    assert error.is_visible()
    assert page.errors == []
    target = os.environ.get("VBQ_STRATA_SCREENSHOT")
    if target:
        _screenshot(page, Path(target))


BOXES = """() => {
  const page = (e) => { const r = e.getBoundingClientRect();
    return {x: r.left, y: r.top + window.scrollY, w: r.width, bottom: r.bottom + window.scrollY}; };
  const h = [...document.querySelectorAll("h3")]
    .find((e) => e.textContent.startsWith("Measurement error"));
  let end = h; for (let i = 0; i < 3; i++) end = end.nextElementSibling;  // sentence, table, note
  const card = h.closest("section"), strata = document.getElementById("strata");
  const second = strata.querySelectorAll("h3")[1];  // field strength in full, then stop
  const a = page(h), b = page(end), c = page(card), s = page(strata), t = page(second);
  return [{x: c.x, y: a.y - 12, width: c.w, height: b.bottom - a.y + 24},
          {x: s.x, y: s.y, width: s.w, height: t.y - s.y}];
}"""


def _screenshot(page, target: Path) -> None:
    """The measurement-error block and the strata card, one above the other, 256 colours."""
    from PIL import Image

    shots = [
        Image.open(io.BytesIO(page.screenshot(full_page=True, clip=clip))).convert("RGB")
        for clip in page.evaluate(BOXES)
    ]
    width = max(s.width for s in shots)
    image = Image.new("RGB", (width, sum(s.height for s in shots) + 12), "white")
    y = 0
    for shot in shots:
        image.paste(shot, (0, y))
        y += shot.height + 12
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(target, optimize=True)
