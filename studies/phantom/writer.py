"""Phantom cases written as folders of DICOM files (:func:`write_phantom`).

Why apart: this is the only part of the phantom that touches the file system, and it must never
delete what it did not write. Each case gets a folder ``case-NNN`` of ``IM####.dcm`` files, its
``truth.json`` and ``rois.json``; an output folder is replaced only when it holds nothing but
earlier phantom output (:func:`is_phantom_output`), and a whole run is generated aside first, so
a failure leaves it as it was.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from pydicom import dcmwrite

from studies.phantom.acquisition import derive_wrong_series, wrong_series_kinds
from studies.phantom.case import SCHEMA, make_case

# First file number (``IM2001.dcm`` ...) of each variant in a case folder: far above the 11-15
# slices of the sagittal T1, so the names never collide.
_WRONG_SERIES_FIRST_FILE: Final = {"axial-t2": 2001, "post-contrast": 3001}

_CASE_DIR = re.compile(r"^case-\d{3,}$")
_CASE_FILE = re.compile(r"^(IM\d{4}\.dcm|truth\.json|rois\.json)$")


def is_phantom_output(path: Path) -> bool:
    """True when ``path`` is a directory holding nothing but earlier phantom case folders.

    This is what makes it safe for :func:`write_phantom` to replace its contents: every entry is a
    ``case-NNN`` folder holding only ``IM####.dcm`` files and a ``truth.json`` of this schema. An
    empty directory is not phantom output (it needs no replacing) and returns False.
    """
    return path.is_dir() and _foreign_entry(path) is None and any(path.iterdir())


def write_phantom(
    out_dir: Path, *, cases: int, seed: int, wrong_series: Sequence[str] = ()
) -> list[Path]:
    """Write ``cases`` cases under ``out_dir`` and return the case folders, in order.

    Layout: ``out_dir/case-001/IM0001.dcm ...``, ``out_dir/case-001/truth.json`` and
    ``out_dir/case-001/rois.json`` (the suggested ROI set alone, for ``measure_vbq --rois``).

    ``wrong_series`` names variants of :data:`~studies.phantom.acquisition.WRONG_SERIES_KINDS` to
    add to every case as a further series (see
    :func:`~studies.phantom.case.wrong_series_datasets`; a kind named twice is written once):
    ``IM2001.dcm ...`` for ``"axial-t2"``, ``IM3001.dcm ...`` for ``"post-contrast"``. The truth
    and its ROIs still describe the sagittal T1 series alone (its ``n_slices`` counts only that
    series), so a reader of the folder picks the T1 files by their Series Instance UID.

    ``out_dir`` may be missing, empty, or a previous phantom output (see :func:`is_phantom_output`),
    whose case folders are then replaced so that no stale case survives. Anything else raises
    ``ValueError`` naming the offending entry: the writer never deletes what it did not write.
    Everything is generated into a sibling temporary folder first, so a failure leaves ``out_dir``
    as it was.
    """
    if cases < 1:
        raise ValueError(f"cases must be >= 1, got {cases}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    kinds = wrong_series_kinds(wrong_series)
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ValueError(f"{out_dir}: exists and is not a directory")
        foreign = _foreign_entry(out_dir)
        if foreign is not None:
            raise ValueError(
                f"{out_dir}: not empty and not a previous phantom output ({foreign.name!r})"
            )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        names: list[str] = []
        for index in range(1, cases + 1):
            case = make_case(seed, index)
            case_dir = staging / case.name
            case_dir.mkdir()
            for name, ds in zip(case.file_names, case.datasets, strict=True):
                dcmwrite(case_dir / name, ds, enforce_file_format=True)
            for kind in kinds:
                first = _WRONG_SERIES_FIRST_FILE[kind]
                for k, ds in enumerate(derive_wrong_series(seed, index, case.datasets, kind)):
                    dcmwrite(case_dir / f"IM{first + k:04d}.dcm", ds, enforce_file_format=True)
            (case_dir / "truth.json").write_text(
                json.dumps(case.truth, indent=2, sort_keys=False) + "\n", encoding="utf-8"
            )
            # The suggested ROIs alone, ready for ``manage.py measure_vbq --rois``.
            (case_dir / "rois.json").write_text(
                json.dumps(case.truth["rois"], indent=2) + "\n", encoding="utf-8"
            )
            names.append(case.name)
        if out_dir.exists():
            for old in sorted(out_dir.iterdir()):
                shutil.rmtree(old)
            for name in names:
                os.replace(staging / name, out_dir / name)
            staging.rmdir()
        else:
            os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out_dir / name for name in names]


def _foreign_entry(path: Path) -> Path | None:
    """The first entry of ``path`` that the phantom writer did not create, or None."""
    for entry in sorted(path.iterdir()):
        if not (entry.is_dir() and _CASE_DIR.match(entry.name)):
            return entry
        for item in sorted(entry.iterdir()):
            if not (item.is_file() and _CASE_FILE.match(item.name)):
                return item
        truth = entry / "truth.json"
        try:
            doc = json.loads(truth.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return truth
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            return truth
    return None
