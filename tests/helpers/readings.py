"""A phantom case ready to read, phantom readings submitted, and the waits on the worker that
the real-process tests share."""

from __future__ import annotations

import json
from pathlib import Path

from django.urls import reverse

from readers.models import Reading, VbqResult
from studies.models import Case, Study
from studies.phantom.writer import write_phantom
from tests.helpers.factories import case_set_import_trusted_files
from tests.helpers.workers import wait_until


def phantom_case(study: Study, folder: Path, *, seed: int, label: str = "Case 001"):
    """One phantom case imported into ``study``: (case, its folder, the phantom's truth)."""
    case_dir = write_phantom(folder / f"phantom-{seed}", cases=1, seed=seed)[0]
    truth = json.loads((case_dir / "truth.json").read_text())
    case_set = case_set_import_trusted_files(
        study=study, name=f"phantom {seed}", cases=[(label, list(case_dir.glob("*.dcm")))]
    )
    return Case.objects.get(case_set=case_set), case_dir, truth


def submit_phantom_readings(
    client, study: Study, readers: list, folder: Path, *, cases: int, seed: int
) -> None:
    """``cases`` phantom cases imported into ``study``, each read (the phantom's own ROIs,
    through the pages a reader posts to) and submitted by every one of ``readers``."""
    dirs = write_phantom(folder / "p", cases=cases, seed=seed)
    case_set_import_trusted_files(
        study=study,
        name="p",
        cases=[(f"Case {i}", list(d.glob("*.dcm"))) for i, d in enumerate(dirs, 1)],
    )
    truths = {
        f"Case {i}": json.loads((d / "truth.json").read_text()) for i, d in enumerate(dirs, 1)
    }
    for reader in readers:
        client.force_login(reader)
        for case in Case.objects.filter(study=study):
            open_url = reverse("readers:open", kwargs={"case_pk": case.pk, "session": 1})
            detail = client.post(open_url).url
            client.post(detail, {"rois": json.dumps(truths[case.label]["rois"])})
            client.post(detail.rstrip("/") + "/submit/")


def wait_scored(reading: Reading, *, timeout: float) -> VbqResult:
    """The result of the reading's current ROI version, once the worker has stored it."""
    reading.refresh_from_db()
    return wait_until(
        lambda: VbqResult.objects.filter(reading=reading, roi_version=reading.roi_version).first(),
        timeout=timeout,
        what=f"the score of {reading} at version {reading.roi_version}",
    )
