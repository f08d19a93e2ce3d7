"""A new study's checklist in a real browser (issue 13 item 10): create a study with several
thresholds typed at once, follow the checklist to the people page, pick a reader, and watch
the steps tick as the study gets readers and cases.

``VBQ_CHECKLIST_SCREENSHOT=docs/manager-checklist.png`` writes the screenshot of the checklist
(1440 × 900) for ``docs/``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission

from studies.models import Role, Study
from tests.helpers import factories
from tests.helpers.browser import login_fast

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _steps(page) -> dict[str, str]:
    return page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#checklist [data-step]')]"
        ".map(li => [li.dataset.step, li.dataset.done]))"
    )


def _screenshot(page, target: Path) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(target, optimize=True)


def test_a_manager_follows_the_checklist_of_a_new_study(page, live_server, db) -> None:
    creator = factories.UserFactory(username="dr_jones")
    creator.user_permissions.add(Permission.objects.get(codename="add_study"))
    earlier = factories.StudyFactory(name="Pilot 2025")
    factories.AssignmentFactory(study=earlier, user=creator, role=Role.MANAGER)
    carol = factories.UserFactory(username="carol", first_name="Carol", last_name="Diaz")
    factories.AssignmentFactory(study=earlier, user=carol, role=Role.READER)
    page.set_viewport_size({"width": 1440, "height": 900})
    login_fast(page, live_server, creator)

    page.goto("/studies/new/")
    page.fill("input[name=name]", "Lumbar VBQ 2026")
    page.fill("input[name=thresholds-several]", "2.9, high 3.2")
    page.get_by_role("button", name="Create study").click()
    page.wait_for_selector("#checklist")
    study = Study.objects.get(name="Lumbar VBQ 2026")
    assert dict(study.thresholds.values_list("name", "value")) == {
        "screening": 2.95,
        "osteoporosis": 3.0,
        "fracture": 3.05,
        "vbq-2-9": 2.9,
        "high": 3.2,
    }
    assert _steps(page) == {
        "settings": "true",
        "readers": "false",
        "cases": "false",
        "open": "false",
    }

    page.locator("#checklist [data-step=readers] a").click()
    page.get_by_label("carol (Carol Diaz)").check()
    page.get_by_role("button", name="Add", exact=True).click()
    assert "carol is now reader of this study." in page.inner_text(".messages")
    page.get_by_role("link", name=f"← {study.name}").click()
    page.wait_for_selector("#checklist")
    assert _steps(page)["readers"] == "true"
    assert "1 reader; agreement between readers needs two" in page.inner_text("#checklist")
    if target := os.environ.get("VBQ_CHECKLIST_SCREENSHOT"):
        factories.CaseFactory(study=study)  # uploaded, no series to read yet: the screenshot
        page.reload()
        _screenshot(page, Path(target))

    factories.SeriesFactory(case=factories.CaseFactory(study=study))
    page.reload()
    assert set(_steps(page).values()) == {"true"}
    assert page.locator("#checklist h2").inner_text() == "Ready for reading"
    assert page.errors == []
