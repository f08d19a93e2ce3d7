"""DICOM SR downloads: fetch what ``readers.measurement.sr.reading_sr`` needs from the database
and storage.

The observer is named by a pseudonym ("Reader 2", by the order of the study's reader
assignments), never by the account name, since the SR may leave the site.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from io import BytesIO

import pydicom
from pydicom.filewriter import dcmwrite

from readers.measurement.rois import parse_roi_set
from readers.measurement.sr import reading_sr
from readers.models import Reading, VbqResult
from studies.models import Instance, Role, Study


def reader_pseudonyms(*, study: Study) -> dict[int, str]:
    readers = study.assignments.filter(role=Role.READER).order_by("created_at", "pk")
    return {a.user_id: f"Reader {i}" for i, a in enumerate(readers, 1)}


def reading_sr_bytes(*, reading: Reading, observer: str | None = None) -> bytes:
    """The reading's TID 1500 SR as a DICOM file; only for a reading with a computed result."""
    result = reading.current_result()
    if reading.rois is None or result is None or result.status == VbqResult.Status.ERROR:
        raise ValueError("this reading has no computed measurement")
    roi_set = parse_roi_set(reading.rois)
    uids = {roi.sop_instance_uid for roi in roi_set.rois}
    headers = []
    for instance in Instance.objects.filter(sop_instance_uid__in=uids):
        with instance.file.open("rb") as fh:
            headers.append(pydicom.dcmread(fh, stop_before_pixels=True))
    if observer is None:
        observer = reader_pseudonyms(study=reading.case.study).get(reading.reader_id, "Reader")
    dataset = reading_sr(
        source_images=headers,
        roi_set=roi_set,
        measurement=result.detail,
        observer=observer,
        series_number=900 + reading.session,
        instance_number=reading.pk,
        uid_root_seed=f"vbq-sr:{reading.pk}:{reading.roi_version}:{result.algorithm_version}",
        content_datetime=reading.submitted_at or result.computed_at,
    )
    buffer = BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def study_sr_count(*, study: Study) -> int:
    """How many readings :func:`study_sr_members` looks at (the SR zip's progress total)."""
    return Reading.objects.filter(case__study=study, status=Reading.Status.SUBMITTED).count()


SrCache = Callable[[str, Callable[[], bytes]], bytes]
"""``cache(identity, build)``: the SR bytes kept under ``identity``, or ``build()`` kept there."""


def study_sr_members(*, study: Study, cache: SrCache | None = None) -> Iterator[tuple[str, bytes]]:
    """``(file name, SR bytes)`` for every submitted reading with a computed measurement.

    ``cache``: the worker's SR zip keeps each reading's SR under an identity that changes with
    anything it holds (reading, ROI version, result, pseudonym), so that a rebuild after a few
    new submissions writes only their SRs (highdicom costs ~0.3-1 s per SR)."""
    names = reader_pseudonyms(study=study)
    readings = (
        Reading.objects.filter(case__study=study, status=Reading.Status.SUBMITTED)
        .select_related("case")
        .prefetch_related("results")
    )
    for reading in readings.order_by("case__label", "reader_id", "session"):
        result = reading.current_result()
        if result is None or result.status == VbqResult.Status.ERROR:
            continue
        observer = names.get(reading.reader_id, "Reader")
        name = f"{reading.case.label}/{observer}/session-{reading.session}.dcm".replace(" ", "_")

        def build(reading: Reading = reading, observer: str = observer) -> bytes:
            return reading_sr_bytes(reading=reading, observer=observer)

        identity = f"{reading.pk}-v{reading.roi_version}-r{result.pk}-{observer}".replace(" ", "_")
        try:
            data = build() if cache is None else cache(identity, build)
        except ValueError:  # no ROI set to describe: one reading must not cost the whole zip
            continue
        yield name, data
