"""Study design pages: create and edit a study, its people and its reference standard.

Personas from ``tests.conftest.World``: ``manager`` manages study A (with ``reader`` and
``other_reader``); ``manager_b`` and ``reader_b`` belong to study B; ``outsider`` has no role;
``admin`` is a site admin.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from readers.models import Reading
from studies import services
from studies.models import Assignment, ReferenceStandard, Role, Study
from studies.signals import analysis_inputs_changed, measurement_settings_changed
from tests.helpers import factories
from tests.helpers.roles import MANAGERS_ONLY

ROLES = ["anonymous", "reader", "other_reader", "reader_b", "manager", "manager_b", "outsider"]
ROLES += ["admin"]

STUDY_FIELDS: dict[str, Any] = {
    "name": "Lumbar VBQ 2026",
    "description": "Three readers, two sessions.",
    "roi_statistic": "median",
    "level_aggregate": "median",
    "min_levels": "3",
    "sessions": "2",
    "washout_days": "28",
    "randomise_order": "on",
}


def design_data(
    thresholds: list[tuple[str, object]] | None = None,
    *,
    initial: int = 0,
    delete: tuple[int, ...] = (),
    **fields: Any,
) -> dict[str, Any]:
    """POST data of the study form: its fields plus the thresholds formset."""
    rows = thresholds or []
    data = STUDY_FIELDS | fields
    data |= {
        "thresholds-TOTAL_FORMS": str(len(rows)),
        "thresholds-INITIAL_FORMS": str(initial),
        "thresholds-MIN_NUM_FORMS": "0",
        "thresholds-MAX_NUM_FORMS": "20",
    }
    for i, (name, value) in enumerate(rows):
        data[f"thresholds-{i}-name"] = name
        data[f"thresholds-{i}-value"] = str(value)
        if i in delete:
            data[f"thresholds-{i}-DELETE"] = "on"
    return {key: value for key, value in data.items() if value is not None}


def settings_of(study: Study) -> dict[str, Any]:
    """The form fields of a stored study (booleans as checkboxes post them)."""
    data: dict[str, Any] = {
        name: str(getattr(study, name))
        for name in ("name", "description", "roi_statistic", "level_aggregate")
    }
    data |= {
        "min_levels": str(study.min_levels),
        "sessions": str(study.sessions),
        "washout_days": str(study.washout_days),
        "randomise_order": "on" if study.randomise_order else None,
        "allow_edit_after_submit": "on" if study.allow_edit_after_submit else None,
    }
    return data


def thresholds_of(study: Study) -> dict[str, float]:
    return dict(study.thresholds.values_list("name", "value"))


def login(client, world, role: str):
    if role != "anonymous":
        client.force_login(getattr(world, role))
    return client


@pytest.fixture
def sent() -> Iterator[list[dict[str, Any]]]:
    """What the design signals sent during the test."""
    calls: list[dict[str, Any]] = []

    def receiver(signal, sender, **kwargs):
        calls.append({"signal": signal, "sender": sender, **kwargs})

    measurement_settings_changed.connect(receiver)
    analysis_inputs_changed.connect(receiver)
    yield calls
    measurement_settings_changed.disconnect(receiver)
    analysis_inputs_changed.disconnect(receiver)


def rescorings(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in calls if c["signal"] is measurement_settings_changed]


# --- who reaches what (the POSTs; the GETs are in test_url_access.TABLE too) ---------------


def _invalid(expected: dict[str, int]) -> dict[str, int]:
    """An empty POST: the same people get through, and then the form says no (400)."""
    return {role: 400 if status == 200 else status for role, status in expected.items()}


CREATORS = {"anonymous": 302} | dict.fromkeys(ROLES[1:-1], 403) | {"admin": 200}
ACCESS = [
    ("get", "studies:create", "none", CREATORS),
    ("post", "studies:create", "none", _invalid(CREATORS)),
    ("get", "studies:edit", "study", MANAGERS_ONLY),
    ("post", "studies:edit", "study", _invalid(MANAGERS_ONLY)),
    ("get", "studies:people", "study", MANAGERS_ONLY),
    ("post", "studies:people", "study", _invalid(MANAGERS_ONLY)),
    ("get", "studies:reference", "study", MANAGERS_ONLY),
    ("post", "studies:reference", "study", _invalid(MANAGERS_ONLY)),
    # A role in the study is an object of it: its readers get 404, as for one that does not exist.
    (
        "post",
        "studies:people_remove",
        "assignment",
        MANAGERS_ONLY | {"reader": 404, "other_reader": 404, "manager": 302, "admin": 302},
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "name", "kwargs", "expected"), ACCESS)
def test_who_reaches_the_design_pages(client, world, role, method, name, kwargs, expected):
    kwargs = {
        "none": {},
        "study": {"pk": world.study_a.pk},
        "assignment": {"pk": world.study_a.assignments.get(user=world.reader).pk},
    }[kwargs]
    response = getattr(login(client, world, role), method)(reverse(name, kwargs=kwargs))
    assert response.status_code == expected[role], (method, name, role)


def test_removing_needs_a_post(client, world):
    assignment = world.study_a.assignments.get(user=world.reader)
    response = login(client, world, "manager").get(
        reverse("studies:people_remove", kwargs={"pk": assignment.pk})
    )
    assert response.status_code == 405
    assert Assignment.objects.filter(pk=assignment.pk).exists()


def test_a_missing_assignment_is_404(client, world):
    url = reverse("studies:people_remove", kwargs={"pk": 999_999})
    assert login(client, world, "admin").post(url).status_code == 404


def test_study_b_cannot_remove_people_of_study_a(client, world):
    assignment = world.study_a.assignments.get(user=world.reader)
    url = reverse("studies:people_remove", kwargs={"pk": assignment.pk})
    assert login(client, world, "manager_b").post(url).status_code == 404
    assert Assignment.objects.filter(pk=assignment.pk).exists()


# --- create ----------------------------------------------------------------------------------


@pytest.fixture
def creator(world):
    """A user with the ``studies.add_study`` permission (as the demo manager gets) and no study."""
    user = factories.UserFactory(username="creator")
    user.user_permissions.add(Permission.objects.get(codename="add_study"))
    return user


def test_the_create_form_offers_the_literature_thresholds(client, creator):
    client.force_login(creator)
    response = client.get(reverse("studies:create"))
    assert response.status_code == 200
    formset = response.context["thresholds"]
    assert [(f.initial["name"], f.initial["value"]) for f in formset.initial_forms] == [
        ("screening", 2.95),
        ("osteoporosis", 3.0),
        ("fracture", 3.05),
    ]
    assert 'value="2.95"' in response.content.decode()


def test_a_permitted_user_creates_a_study_and_manages_it(client, creator):
    client.force_login(creator)
    data = design_data(
        [("screening", 2.95), ("osteoporosis", 3.0), ("fracture", 3.05), ("", "")],
        initial=3,
        delete=(1,),
        min_levels="2",
        roi_statistic="mean",
        allow_edit_after_submit="on",
    )
    response = client.post(reverse("studies:create"), data)
    study = Study.objects.get(name="Lumbar VBQ 2026")
    assert response.status_code == 302
    assert response.url == reverse("study", kwargs={"pk": study.pk})
    assert study.created_by == creator
    assert study.assignments.get().user == creator
    assert study.assignments.get().role == Role.MANAGER
    assert (study.min_levels, study.roi_statistic, study.level_aggregate) == (2, "mean", "median")
    assert (study.sessions, study.washout_days) == (2, 28)
    assert study.allow_edit_after_submit is True
    assert study.randomise_order is True
    assert thresholds_of(study) == {"screening": 2.95, "fracture": 3.05}
    assert client.get(response.url).status_code == 200


def test_an_admin_creates_a_study_with_edited_thresholds(client, world):
    client.force_login(world.admin)
    data = design_data([("screening", 3.06), ("own-cut-off", 2.5)], initial=0)
    assert client.post(reverse("studies:create"), data).status_code == 302
    study = Study.objects.get(name="Lumbar VBQ 2026")
    assert thresholds_of(study) == {"screening": 3.06, "own-cut-off": 2.5}
    assert study.assignments.get().user == world.admin


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (design_data([("a", 3), ("a", 3.1)]), "Two thresholds are named"),
        (design_data([("not a slug", 3)]), "Enter a valid"),
        (design_data([("neg", -1)]), "greater than or equal to 0"),
        (design_data([("x", "abc")]), "Enter a number"),
        (design_data(min_levels="5"), "less than or equal to 4"),
        (design_data(sessions="0"), "greater than or equal to 1"),
        (design_data(sessions="11"), "less than or equal to 10"),
        (design_data(name=""), "This field is required"),
        (design_data(name="Study A"), "already exists"),
        (design_data(roi_statistic="mode"), "Select a valid choice"),
    ],
)
def test_an_invalid_design_creates_nothing(client, world, data, message):
    client.force_login(world.admin)
    before = Study.objects.count()
    response = client.post(reverse("studies:create"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Study.objects.count() == before


# --- edit ------------------------------------------------------------------------------------


@pytest.fixture
def study_a(world):
    services.thresholds_replace(study=world.study_a, thresholds={"screening": 2.95, "fr": 3.05})
    return world.study_a


def test_the_edit_form_shows_the_study(client, world, study_a):
    response = login(client, world, "manager").get(
        reverse("studies:edit", kwargs={"pk": study_a.pk})
    )
    assert response.status_code == 200
    assert response.context["form"].initial["name"] == "Study A"
    initial = [f.initial for f in response.context["thresholds"].initial_forms]
    assert initial == [{"name": "screening", "value": 2.95}, {"name": "fr", "value": 3.05}]
    assert reverse("study", kwargs={"pk": study_a.pk}) in response.content.decode()


def test_edit_adds_changes_and_deletes_thresholds(client, world, study_a, sent):
    data = design_data(
        [("screening", 3.0), ("fr", 3.05), ("osteoporosis", 3.1)],
        initial=2,
        delete=(1,),
        **settings_of(study_a),
    )
    response = login(client, world, "manager").post(
        reverse("studies:edit", kwargs={"pk": study_a.pk}), data
    )
    assert response.status_code == 302
    assert thresholds_of(study_a) == {"screening": 3.0, "osteoporosis": 3.1}
    assert rescorings(sent) == []
    assert [c["what"] for c in sent] == ["thresholds"]


def test_changing_a_measurement_setting_sends_the_rescoring_signal(client, world, study_a, sent):
    data = design_data(
        [("screening", 2.95), ("fr", 3.05)],
        initial=2,
        **settings_of(study_a) | {"level_aggregate": "mean", "min_levels": "4"},
    )
    response = login(client, world, "admin").post(
        reverse("studies:edit", kwargs={"pk": study_a.pk}), data, follow=True
    )
    study_a.refresh_from_db()
    assert (study_a.level_aggregate, study_a.min_levels) == ("mean", 4)
    [call] = rescorings(sent)
    assert call["sender"] is Study
    assert call["study"].pk == study_a.pk
    assert call["study"].level_aggregate == "mean"
    assert call["changed"] == frozenset({"level_aggregate", "min_levels"})
    assert "rescored" in response.content.decode()


def test_changing_only_the_description_sends_nothing(client, world, study_a, sent):
    data = design_data(
        [("screening", 2.95), ("fr", 3.05)],
        initial=2,
        **settings_of(study_a) | {"description": "New words.", "sessions": "3"},
    )
    response = login(client, world, "manager").post(
        reverse("studies:edit", kwargs={"pk": study_a.pk}), data
    )
    assert response.status_code == 302
    study_a.refresh_from_db()
    assert (study_a.description, study_a.sessions) == ("New words.", 3)
    assert sent == []


def test_an_invalid_edit_changes_nothing(client, world, study_a, sent):
    data = design_data(
        [("screening", 2.0), ("screening", 3.05)],
        initial=2,
        **settings_of(study_a) | {"roi_statistic": "mean"},
    )
    response = login(client, world, "manager").post(
        reverse("studies:edit", kwargs={"pk": study_a.pk}), data
    )
    assert response.status_code == 400
    study_a.refresh_from_db()
    assert study_a.roi_statistic == "median"
    assert thresholds_of(study_a) == {"screening": 2.95, "fr": 3.05}
    assert sent == []
    assert "<h1>Edit study design</h1>" in response.content.decode()


def test_renaming_to_another_studys_name_is_refused(client, world, study_a):
    data = design_data(initial=0, **settings_of(study_a) | {"name": "Study B"})
    response = login(client, world, "manager").post(
        reverse("studies:edit", kwargs={"pk": study_a.pk}), data
    )
    assert response.status_code == 400
    assert "already exists" in response.content.decode()


def test_sessions_cannot_drop_below_what_readers_have_read(client, world, study_a):
    study_a.sessions = 3
    study_a.save()
    case = factories.CaseFactory(study=study_a)
    factories.ReadingFactory(reader=world.reader, case=case, session=2)
    data = design_data(initial=0, **settings_of(study_a) | {"sessions": "1"})
    response = login(client, world, "manager").post(
        reverse("studies:edit", kwargs={"pk": study_a.pk}), data
    )
    assert response.status_code == 400
    assert "Readers have readings in session 2" in response.content.decode()
    study_a.refresh_from_db()
    assert study_a.sessions == 3
    with pytest.raises(ValidationError, match="at least 2 sessions"):
        services.study_update(study=study_a, sessions=1)
    study_a.refresh_from_db()
    assert study_a.sessions == 3
    # Down to the highest session read is allowed.
    data["sessions"] = "2"
    response = client.post(reverse("studies:edit", kwargs={"pk": study_a.pk}), data)
    assert response.status_code == 302
    study_a.refresh_from_db()
    assert study_a.sessions == 2


def test_study_update_compares_with_the_stored_row(world, sent):
    """The caller's instance may already hold the new values (a bound ModelForm's does)."""
    study = world.study_a
    study.min_levels = 2
    changed = services.study_update(study=study, min_levels=2, description="d")
    assert changed == {"min_levels", "description"}
    assert Study.objects.get(pk=study.pk).min_levels == 2
    assert len(rescorings(sent)) == 1
    assert services.study_update(study=study, min_levels=2) == frozenset()
    with pytest.raises(ValueError, match="created_by"):
        services.study_update(study=study, created_by=None)


# --- people ----------------------------------------------------------------------------------


def people_url(world) -> str:
    return reverse("studies:people", kwargs={"pk": world.study_a.pk})


def remove_url(assignment: Assignment) -> str:
    return reverse("studies:people_remove", kwargs={"pk": assignment.pk})


def test_people_lists_managers_and_readers(client, world):
    response = login(client, world, "manager").get(people_url(world))
    page = response.content.decode()
    for name in ("manager", "reader", "other_reader"):
        assert f"<td>{name}" in page
    assert "reader_b" not in page
    assert "last manager" in page


def test_a_manager_adds_a_reader_and_a_manager(client, world):
    login(client, world, "manager")
    response = client.post(people_url(world), {"username": "outsider", "role": "reader"})
    assert response.status_code == 302
    assert world.study_a.assignments.get(user=world.outsider).role == Role.READER
    colleague = factories.UserFactory(username="colleague")
    client.post(people_url(world), {"username": " colleague ", "role": "manager"})
    assert world.study_a.assignments.get(user=colleague).role == Role.MANAGER


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "nobody", "role": "reader"}, "There is no active user named &#x27;nobody"),
        ({"username": "reader", "role": "manager"}, "reader is already reader of this study"),
        ({"username": "manager", "role": "reader"}, "manager is already study manager"),
        ({"username": "outsider", "role": "boss"}, "Select a valid choice"),
        ({"username": "", "role": "reader"}, "This field is required"),
    ],
)
def test_adding_people_is_validated(client, world, data, message):
    before = list(world.study_a.assignments.values_list("user__username", "role"))
    response = login(client, world, "manager").post(people_url(world), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert list(world.study_a.assignments.values_list("user__username", "role")) == before


def test_an_inactive_user_cannot_be_added(client, world):
    world.outsider.is_active = False
    world.outsider.save()
    response = login(client, world, "manager").post(
        people_url(world), {"username": "outsider", "role": "reader"}
    )
    assert response.status_code == 400


def test_removing_a_reader_keeps_their_readings(client, world):
    case = factories.CaseFactory(study=world.study_a)
    reading = factories.ReadingFactory(reader=world.reader, case=case)
    assignment = world.study_a.assignments.get(user=world.reader)
    response = login(client, world, "manager").post(remove_url(assignment), follow=True)
    assert response.redirect_chain[-1][0] == people_url(world)
    assert "their readings are kept" in response.content.decode()
    assert not Assignment.objects.filter(pk=assignment.pk).exists()
    assert Reading.objects.filter(pk=reading.pk).exists()
    client.force_login(world.reader)
    assert client.get(reverse("study", kwargs={"pk": world.study_a.pk})).status_code == 404


def test_the_last_manager_cannot_remove_themselves(client, world):
    assignment = world.study_a.assignments.get(user=world.manager)
    response = login(client, world, "manager").post(remove_url(assignment), follow=True)
    assert response.status_code == 200
    assert "last manager: add another manager first" in response.content.decode()
    assert Assignment.objects.filter(pk=assignment.pk, role=Role.MANAGER).exists()


def test_not_even_an_admin_leaves_a_study_without_a_manager(client, world):
    assignment = world.study_a.assignments.get(user=world.manager)
    login(client, world, "admin").post(remove_url(assignment))
    assert Assignment.objects.filter(pk=assignment.pk).exists()


def test_a_manager_with_a_colleague_may_leave(client, world):
    services.assignment_add(study=world.study_a, user=world.outsider, role=Role.MANAGER)
    assignment = world.study_a.assignments.get(user=world.manager)
    response = login(client, world, "manager").post(remove_url(assignment))
    assert response.url == reverse("home")
    assert not Assignment.objects.filter(pk=assignment.pk).exists()
    assert client.get(people_url(world)).status_code == 404


# --- reference standard ----------------------------------------------------------------------


@pytest.fixture
def cases(world):
    return [factories.CaseFactory(study=world.study_a, label=f"Case 00{i}") for i in (1, 2, 3)]


def upload(client, world, text: str | bytes, role: str = "manager"):
    content = text.encode() if isinstance(text, str) else text
    return login(client, world, role).post(
        reverse("studies:reference", kwargs={"pk": world.study_a.pk}),
        {"file": SimpleUploadedFile("reference.csv", content, content_type="text/csv")},
        follow=True,
    )


def references(world) -> dict[str, tuple[object, object, object]]:
    return {
        ref.case.label: (ref.dxa_t_score, ref.qct_bmd, ref.fragility_fracture)
        for ref in ReferenceStandard.objects.filter(case__study=world.study_a)
    }


GOOD = "case,dxa_t_score,qct_bmd,fragility_fracture\nCase 001,-2.7,72.5,yes\nCase 002,-0.4,,no\n"


def test_a_good_file_is_stored(client, world, cases, sent):
    response = upload(client, world, GOOD)
    assert references(world) == {"Case 001": (-2.7, 72.5, True), "Case 002": (-0.4, None, False)}
    page = response.content.decode()
    assert "Reference values stored for 2 cases; the other 1 keep their values." in page
    assert "2 of 3 cases have reference values" in page
    assert [c["what"] for c in sent] == ["reference_standard"]


def test_a_second_file_updates_only_its_cases_and_columns(client, world, cases):
    upload(client, world, GOOD)
    upload(client, world, "case,fragility_fracture\nCase 002,yes\nCase 003,\n")
    assert references(world) == {
        "Case 001": (-2.7, 72.5, True),
        "Case 002": (-0.4, None, True),
        "Case 003": (None, None, None),
    }


def test_the_page_shows_the_current_values(client, world, cases):
    upload(client, world, GOOD)
    response = login(client, world, "manager").get(
        reverse("studies:reference", kwargs={"pk": world.study_a.pk})
    )
    page = response.content.decode()
    assert "<td>-2.7</td>" in page
    assert "<td>72.5</td>" in page
    assert "Case 003" in page
    assert reverse("study", kwargs={"pk": world.study_a.pk}) in page


BAD = [
    ("case,dxa_t_score\nCase 001,-1\nCase 009,-2\n", "Line 3: there is no case &#x27;Case 009"),
    ("case,dxa_t_score\nCase 001,-1\nCase 001,-2\n", "Line 3: case &#x27;Case 001&#x27; is"),
    ("case,dxa_t_score\nCase 001,-1\nCase 002,low\n", "Line 3: dxa_t_score &#x27;low&#x27; is"),
    ("dxa_t_score,qct_bmd\n-1,100\n", "Line 1: there is no &#x27;case&#x27; column"),
    # (another column is a case attribute, issue 14; these two come from the DICOM headers)
    ("case,manufacturer\nCase 001,GE\n", "Line 1: the column &#x27;manufacturer&#x27;"),
    ("case,fragility_fracture\nCase 001,yes\nCase 002,maybe\n", "Line 3: fragility_fracture"),
    ("", "The submitted file is empty"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_file_stores_nothing_and_names_the_line(client, world, cases, text, message, sent):
    response = upload(client, world, text)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was stored." in page
    assert message in page
    assert references(world) == {}
    assert sent == []


def test_a_bad_file_leaves_earlier_values_alone(client, world, cases):
    upload(client, world, GOOD)
    upload(client, world, "case,dxa_t_score\nCase 001,1\nCase 002,x\n")
    assert references(world)["Case 001"] == (-2.7, 72.5, True)


def test_a_file_that_is_not_utf8_is_refused(client, world, cases):
    response = upload(client, world, "case,dxa_t_score\nCase 001,-1 é\n".encode("latin-1"))
    assert response.status_code == 400
    assert "not UTF-8" in response.content.decode()
    assert references(world) == {}


def test_another_studys_case_labels_are_unknown(client, world, cases):
    factories.CaseFactory(study=world.study_b, label="Case 777")
    response = upload(client, world, "case,dxa_t_score\nCase 777,-1\n")
    assert response.status_code == 400
    assert ReferenceStandard.objects.count() == 0


def test_the_quality_check_limits_are_study_settings(client, creator):
    """Issue 13: the smallest bone ROI and the plausible VBQ range, on the design form; left
    out, they keep their defaults; a range upside down is refused."""
    client.force_login(creator)
    data = design_data(min_bone_roi_area_mm2="80", plausible_vbq_min="1.5", plausible_vbq_max="5")
    assert client.post(reverse("studies:create"), data).status_code == 302
    study = Study.objects.get(name="Lumbar VBQ 2026")
    limits = (study.min_bone_roi_area_mm2, study.plausible_vbq_min, study.plausible_vbq_max)
    assert limits == (80.0, 1.5, 5.0)
    page = client.get(reverse("studies:edit", kwargs={"pk": study.pk})).content.decode()
    assert 'name="min_bone_roi_area_mm2"' in page
    data = design_data(name="Other", plausible_vbq_min="4", plausible_vbq_max="3")
    response = client.post(reverse("studies:create"), data)
    assert "upper end above" in response.content.decode()
    assert not Study.objects.filter(name="Other").exists()
    client.post(reverse("studies:create"), design_data(name="Defaults"))
    defaults = Study.objects.get(name="Defaults")
    assert (defaults.min_bone_roi_area_mm2, defaults.plausible_vbq_max) == (50.0, 6.0)
