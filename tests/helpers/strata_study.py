"""A study with scored readings and strata, built in the database in a second (issue 14).

26 cases × 3 readers, session 1: 20 cases at 1.5 T and 6 at 3 T (too few for a stratum's ICC),
GE and Siemens alternating, a ``site`` attribute on 24 of them; VBQ higher at 1.5 T than at 3 T,
as published. For the strata pages' tests and the docs screenshot: no images, no worker.
"""

from __future__ import annotations

import numpy as np

from readers.analysis import services as analytics
from readers.models import Reading, VbqResult
from studies.models import ReferenceStandard, Role, Study
from tests.helpers.factories import (
    AssignmentFactory,
    CaseFactory,
    ReadingFactory,
    SeriesFactory,
    StudyFactory,
)


def strata_study(*, name: str = "Strata study", seed: int = 11, **settings: object):
    """The study (analysed) and its manager."""
    study: Study = StudyFactory(name=name, **settings)
    study.thresholds.create(name="screening", value=2.95)
    manager = AssignmentFactory(study=study, role=Role.MANAGER).user
    readers = [
        AssignmentFactory(study=study, role=Role.READER, user__username=f"reader{i}").user
        for i in range(1, 4)
    ]
    rng = np.random.default_rng(seed)
    for index in range(26):
        case = CaseFactory(study=study, label=f"Case {index:03d}")
        tesla = 1.5 if index < 20 else 3.0
        SeriesFactory(
            case=case, field_strength_t=tesla, manufacturer="SIEMENS" if index % 2 else "GE"
        )
        if index < 24:
            ReferenceStandard.objects.create(
                case=case, attributes={"site": "Berlin" if index < 12 else "Basel"}
            )
        truth = rng.normal(2.8 if tesla == 1.5 else 2.2, 0.4)
        for reader in readers:
            reading = ReadingFactory(
                case=case, reader=reader, status=Reading.Status.SUBMITTED, roi_version=1
            )
            VbqResult.objects.create(
                reading=reading,
                roi_version=1,
                algorithm_version="test",
                status=VbqResult.Status.OK,
                vbq=float(truth + rng.normal(0, 0.1 if tesla == 1.5 else 0.2)),
            )
    analytics.analysis_compute(study_pk=study.pk)
    return study, manager
