"""factory_boy factories for test data."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import factory
import pydicom
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction

from readers.models import Reading
from studies.models import Assignment, Case, CaseSet, Instance, Role, ScoreVisibility, Series, Study

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    name = factory.Sequence(lambda n: f"Study {n}")
    # The tests written before the setting (issue 13) read a draft's score as the reader; the
    # model's default (after submit) is what a new study gets, and the visibility tests set
    # each value themselves.
    score_visibility = ScoreVisibility.LIVE


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    study = factory.SubFactory(StudyFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.READER


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    study = factory.SubFactory(StudyFactory)
    label = factory.Sequence(lambda n: f"Case {n:03d}")
    study_instance_uid = factory.Sequence(lambda n: f"2.25.{1000 + n}")


class SeriesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Series

    case = factory.SubFactory(CaseFactory)
    series_instance_uid = factory.Sequence(lambda n: f"2.25.{2000 + n}")
    description = "SAG T1"
    selected = True


class InstanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Instance

    series = factory.SubFactory(SeriesFactory)
    sop_instance_uid = factory.Sequence(lambda n: f"2.25.{3000 + n}")
    sop_class_uid = "1.2.840.10008.5.1.4.1.1.4"
    rows = 256
    columns = 256
    file = factory.LazyAttribute(lambda o: ContentFile(b"not read in this test", name="x.dcm"))


class ReadingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reading

    reader = factory.SubFactory(UserFactory)
    case = factory.SubFactory(CaseFactory)
    session = 1


@transaction.atomic
def case_set_import_trusted_files(
    *, study: Study, name: str, cases: Iterable[tuple[str, Iterable[Path]]]
) -> CaseSet:
    """Import already de-identified DICOM files as cases, one series per case.

    For tests only, and fast: the files (the project's own phantom) are trusted and kept as they
    are, UIDs included. The site itself has no such path: everything it stores comes through the
    de-identifying ingest (``studies.uploads.ingest``), as the demo does.
    Importing the same files twice is a no-op for the instances that exist already.
    """
    case_set = CaseSet.objects.create(study=study, name=name)
    for label, paths in cases:
        case: Case | None = None
        series: Series | None = None
        for path in sorted(paths):
            data = path.read_bytes()
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            if case is None:
                case, _ = Case.objects.get_or_create(
                    study=study,
                    study_instance_uid=str(ds.StudyInstanceUID),
                    defaults={"label": label, "case_set": case_set},
                )
            if series is None:
                series, _ = Series.objects.get_or_create(
                    series_instance_uid=str(ds.SeriesInstanceUID),
                    defaults={
                        "case": case,
                        "modality": str(ds.get("Modality", "MR")),
                        "description": str(ds.get("SeriesDescription", "")),
                        "manufacturer": str(ds.get("Manufacturer", "")),
                        "model_name": str(ds.get("ManufacturerModelName", "")),
                        "field_strength_t": _float_or_none(ds.get("MagneticFieldStrength")),
                        "repetition_time_ms": _float_or_none(ds.get("RepetitionTime")),
                        "echo_time_ms": _float_or_none(ds.get("EchoTime")),
                        "selected": True,
                    },
                )
            if Instance.objects.filter(sop_instance_uid=str(ds.SOPInstanceUID)).exists():
                continue
            instance = Instance(
                series=series,
                sop_instance_uid=str(ds.SOPInstanceUID),
                sop_class_uid=str(ds.SOPClassUID),
                instance_number=_int_or_none(ds.get("InstanceNumber")),
                rows=int(ds.Rows),
                columns=int(ds.Columns),
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            instance.file.save(f"{ds.SOPInstanceUID}.dcm", ContentFile(data), save=False)
            instance.save()
    return case_set


def _float_or_none(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
