"""Adjudication (issue 14) and the manager's outlier flags (issue 13 item 7), on the database.

The worklist is computed from the current results: a case appears once every reader of the
session has a submitted, scored reading and the readers disagree under the study's rule.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from readers.adjudication.selectors import (
    adjudication_cases,
    reader_letters,
    study_outliers,
)
from readers.analysis.exports import measurement_rows
from readers.analysis.services import study_records
from readers.models import Consensus, Reading, StudyAnalysis, VbqResult
from studies.models import Threshold
from tests.helpers import factories
from vbqweb.audit.models import AuditEvent


def _submitted(reader, case, vbq: float, session: int = 1) -> Reading:
    reading = factories.ReadingFactory(
        reader=reader,
        case=case,
        session=session,
        rois={"schema": "vbq.rois/1", "series_instance_uid": "2.25.1", "rois": []},
        roi_version=1,
        status=Reading.Status.SUBMITTED,
    )
    VbqResult.objects.create(
        reading=reading, roi_version=1, algorithm_version="1", status="ok", vbq=vbq
    )
    return reading


@pytest.fixture
def adjudicated(world):
    study = world.study_a
    screening = Threshold.objects.create(study=study, name="screening", value=3.0)
    study.adjudication = True
    study.adjudication_threshold = screening
    study.adjudication_use_sdc = False
    study.save()
    case = factories.CaseFactory(study=study, label="Case 042")
    factories.SeriesFactory(case=case)
    return study, case


def test_a_case_reaches_the_worklist_only_when_every_reader_submitted_and_they_disagree(
    world, adjudicated
) -> None:
    study, case = adjudicated
    _submitted(world.reader, case, 2.9)
    assert adjudication_cases(study) == []  # one reader of two
    _submitted(world.other_reader, case, 3.1)
    [item] = adjudication_cases(study)
    assert item.case == case
    assert item.session == 1
    assert item.reasons == ["categories differ at screening (VBQ ≥ 3)"]
    study.adjudication = False
    study.save()
    assert adjudication_cases(study) == []


def test_agreeing_readers_need_no_adjudication_unless_their_range_exceeds_the_sdc(
    world, adjudicated
) -> None:
    study, case = adjudicated
    _submitted(world.reader, case, 3.2)
    _submitted(world.other_reader, case, 3.6)
    assert adjudication_cases(study) == []
    study.adjudication_use_sdc = True
    study.save()
    assert adjudication_cases(study) == []  # no analysis stored yet: no SDC
    StudyAnalysis.objects.create(
        study=study,
        analysis={"inter_reader_by_session": [{"session": 1, "sdc": {"agreement": 0.3}}]},
    )
    [item] = adjudication_cases(study)
    assert item.reasons == ["VBQ range 0.400 exceeds the SDC 0.300"]


def test_letters_are_stable_per_case_and_name_no_one(world, adjudicated) -> None:
    _, case = adjudicated
    other = factories.CaseFactory(study=world.study_a)
    users = [world.reader.pk, world.other_reader.pk]
    assert reader_letters(case, users) == reader_letters(case, list(reversed(users)))
    assert sorted(reader_letters(case, users).values()) == ["Reader A", "Reader B"]
    assert reader_letters(other, users).keys() == set(users)


def test_the_adjudicator_accepts_a_reading_and_the_consensus_is_stored_audited_exported(
    client, world, adjudicated
) -> None:
    study, case = adjudicated
    mine = _submitted(world.reader, case, 2.9)
    theirs = _submitted(world.other_reader, case, 3.1)
    client.force_login(world.adjudicator)
    worklist = client.get(reverse("adjudication:worklist", kwargs={"pk": study.pk}))
    assert "Case 042" in worklist.content.decode()
    url = reverse("adjudication:case", kwargs={"pk": study.pk, "case_pk": case.pk, "session": 1})
    page = client.get(url).content.decode()
    assert "Reader A" in page
    assert "Reader B" in page
    for secret in ("other_reader", str(mine.public_id), str(theirs.public_id), "/readings/"):
        assert secret not in page
    [item] = adjudication_cases(study)
    label = item.labels[item.readings[0].pk]
    accepted_vbq = item.vbq[item.readings[0].pk]
    response = client.post(
        reverse("adjudication:accept", kwargs={"pk": study.pk, "case_pk": case.pk, "session": 1}),
        {"label": label},
    )
    assert response.status_code == 302
    consensus = Consensus.objects.get(case=case, session=1)
    assert consensus.vbq == accepted_vbq
    assert consensus.provenance == f"accepted {label}'s reading"
    assert consensus.decided_by == world.adjudicator
    assert AuditEvent.objects.filter(action="consensus.recorded", study_id=study.pk).exists()
    rows = list(measurement_rows(study=study))
    assert {r["consensus_vbq"] for r in rows} == {accepted_vbq}
    # Managers see it on the study page; readers never do.
    client.force_login(world.manager)
    body = client.get(reverse("study", kwargs={"pk": study.pk})).content.decode()
    assert f"accepted {label}" in body
    client.force_login(world.reader)
    body = client.get(reverse("study", kwargs={"pk": study.pk})).content.decode()
    assert "consensus" not in body.lower()


def test_a_new_measurement_is_the_adjudicators_and_stays_out_of_the_agreement(
    client, world, adjudicated
) -> None:
    study, case = adjudicated
    _submitted(world.reader, case, 2.9)
    _submitted(world.other_reader, case, 3.1)
    client.force_login(world.adjudicator)
    response = client.post(
        reverse("adjudication:measure", kwargs={"pk": study.pk, "case_pk": case.pk, "session": 1})
    )
    reading = Reading.objects.get(reader=world.adjudicator)
    assert response.url == reverse("readers:detail", kwargs={"public_id": reading.public_id})
    assert client.get(response.url).status_code == 200  # the normal viewer, writable
    # "Next case" is a reader's: the adjudicator goes back to the worklist, no reading is opened.
    following = client.post(reverse("readers:next", kwargs={"public_id": reading.public_id}))
    assert following.url == reverse("adjudication:worklist", kwargs={"pk": study.pk})
    assert Reading.objects.filter(reader=world.adjudicator).count() == 1
    Reading.objects.filter(pk=reading.pk).update(
        status=Reading.Status.SUBMITTED, roi_version=1, rois={"rois": []}
    )
    VbqResult.objects.create(
        reading=reading, roi_version=1, algorithm_version="1", status="ok", vbq=3.0
    )
    records, _ = study_records(study=study)
    assert {r["reader"] for r in records} == {"reader", "other_reader"}
    assert Consensus.objects.get(case=case).current_vbq() == 3.0
    assert all(r["reader"] != "adjudicator" for r in measurement_rows(study=study))


def test_outliers_are_flagged_against_the_stored_limits_of_agreement(
    client, world, adjudicated
) -> None:
    study, case = adjudicated
    third = factories.UserFactory(username="third")
    factories.AssignmentFactory(study=study, user=third)
    a = _submitted(world.reader, case, 3.0)
    _submitted(world.other_reader, case, 3.05)
    far = _submitted(third, case, 3.5)
    assert study_outliers(study) == {}  # no analysis yet: nothing flagged
    StudyAnalysis.objects.create(
        study=study,
        analysis={"inter_reader_by_session": [{"session": 1, "sdc": {"agreement": 0.3}}]},
    )
    flags = study_outliers(study)
    assert set(flags) == {far.pk}
    assert a.pk not in flags
    client.force_login(world.manager)
    page = client.get(reverse("study", kwargs={"pk": study.pk})).content.decode()
    assert page.count('class="outlier"') == 1
    assert f'data-outlier="{far.public_id}"' in page
    assert "(±0.300 in session 1)" in page


def test_the_design_form_offers_this_studys_thresholds_and_needs_a_rule(world) -> None:
    from django.forms import model_to_dict

    from studies.forms import StudyForm

    study = world.study_a
    mine = Threshold.objects.create(study=study, name="screening", value=3.0)
    Threshold.objects.create(study=world.study_b, name="elsewhere", value=2.0)
    form = StudyForm(instance=study)
    assert list(form.fields["adjudication_threshold"].queryset) == [mine]
    assert list(StudyForm().fields["adjudication_threshold"].queryset) == []
    # What the page posts: the study's current design (whatever fields it has), adjudication on.
    current = model_to_dict(study, fields=StudyForm.Meta.fields)
    data = {k: v for k, v in current.items() if v not in (None, False)} | {"adjudication": "on"}
    data.pop("adjudication_use_sdc")  # neither a threshold nor the SDC rule
    form = StudyForm(data, instance=study)
    assert not form.is_valid()
    assert "needs a rule" in str(form.errors["adjudication_threshold"])
    form = StudyForm(data | {"adjudication_threshold": mine.pk}, instance=study)
    assert form.is_valid(), form.errors


def test_the_adjudicator_finds_the_worklist_from_home(client, world) -> None:
    client.force_login(world.adjudicator)
    body = client.get(reverse("home")).content.decode()
    assert reverse("adjudication:worklist", kwargs={"pk": world.study_a.pk}) in body
    assert reverse("study", kwargs={"pk": world.study_a.pk}) + '"' not in body


def test_the_adjudication_settings_are_design_fields(world) -> None:
    from studies.services import study_update

    study = world.study_a
    screening = Threshold.objects.create(study=study, name="screening", value=3.0)
    changed = study_update(
        study=study, adjudication=True, adjudication_threshold=screening, adjudication_use_sdc=False
    )
    assert changed == {"adjudication", "adjudication_threshold", "adjudication_use_sdc"}
    study.refresh_from_db()
    assert (study.adjudication, study.adjudication_threshold, study.adjudication_use_sdc) == (
        True,
        screening,
        False,
    )
