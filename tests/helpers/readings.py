"""A phantom case ready to read, and the waits on the worker that the real-process tests share."""

from __future__ import annotations

import json
from pathlib import Path

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


def wait_scored(reading: Reading, *, timeout: float) -> VbqResult:
    """The result of the reading's current ROI version, once the worker has stored it."""
    reading.refresh_from_db()
    return wait_until(
        lambda: VbqResult.objects.filter(reading=reading, roi_version=reading.roi_version).first(),
        timeout=timeout,
        what=f"the score of {reading} at version {reading.roi_version}",
    )
