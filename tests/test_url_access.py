"""Every URL of the site × every role → the expected status.

The table must list every named URL (``test_every_url_is_in_the_table`` fails otherwise), so a
new view cannot ship without deciding who may reach it. 404 means "not visible" (its existence
is not revealed); 403 means "visible but not yours to change"; 302 from an anonymous request
means "log in first" (401 with JSON for a script's call: a ``.json`` URL or DICOMweb).
"""

from __future__ import annotations

import io
import uuid

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from studies.models import CaseSetAttach
from studies.uploads.transfer import upload_create
from tests.helpers import factories
from tests.helpers.dicomfactory import mr_dataset
from tests.helpers.roles import LOGIN, MANAGERS_ONLY, SIGNED_OUT, SITE_ADMINS_ONLY

ROLES = [
    "anonymous",
    "reader",
    "other_reader",
    "reader_b",
    "manager",
    "manager_b",
    "outsider",
    "adjudicator",  # of study A (issue 14): its adjudication pages and images, nothing else
    "admin",  # last: ROLES[1:-1] is every signed-in persona but the site admin
]

# url name → (method, kwargs builder name, {role: status})
TABLE: dict[str, tuple[str, str, dict[str, int]]] = {
    "home": ("get", "none", {"anonymous": LOGIN} | dict.fromkeys(ROLES[1:], 200)),
    "healthz": ("get", "none", dict.fromkeys(ROLES, 200)),
    "login": ("get", "none", {"anonymous": 200} | dict.fromkeys(ROLES[1:], 302)),
    "logout": ("post", "none", dict.fromkeys(ROLES, 302)),
    "study": (
        "get",
        "study",
        {
            "anonymous": LOGIN,
            "reader": 200,
            "other_reader": 200,
            "reader_b": 404,
            "manager": 200,
            "manager_b": 404,
            "outsider": 404,
            "adjudicator": 302,
            "admin": 200,
        },
    ),
    "readers:open": (
        "post",
        "case_session",
        {
            "anonymous": LOGIN,
            "reader": 302,
            "other_reader": 302,
            "reader_b": 404,
            "manager": 404,
            "manager_b": 404,
            "outsider": 404,
            "adjudicator": 404,
            "admin": 404,
        },
    ),
    "readers:detail": (
        "get",
        "reading",
        {
            "anonymous": LOGIN,
            "reader": 200,
            "other_reader": 404,
            "reader_b": 404,
            "manager": 200,
            "manager_b": 404,
            "outsider": 404,
            "adjudicator": 404,
            "admin": 200,
        },
    ),
    "readers:submit": (
        "post",
        "reading",
        {
            "anonymous": LOGIN,
            "reader": 302,
            "other_reader": 404,
            "reader_b": 404,
            "manager": 403,
            "manager_b": 404,
            "outsider": 404,
            "adjudicator": 404,
            "admin": 403,
        },
    ),
    "readers:score": (
        "get",
        "reading",
        {
            "anonymous": SIGNED_OUT,
            "reader": 200,
            "other_reader": 404,
            "reader_b": 404,
            "manager": 200,
            "manager_b": 404,
            "outsider": 404,
            "adjudicator": 404,
            "admin": 200,
        },
    ),
    # Study design (studies.views): creating needs studies.add_study (none of the personas
    # but the admin has it); the rest is for the study's managers (readers 403, others 404).
    "studies:create": (
        "get",
        "none",
        {"anonymous": LOGIN} | dict.fromkeys(ROLES[1:-1], 403) | {"admin": 200},
    ),
    "studies:edit": (
        "get",
        "study",
        MANAGERS_ONLY,
    ),
    "studies:people": (
        "get",
        "study",
        MANAGERS_ONLY,
    ),
    "studies:people_remove": (
        "post",
        "assignment",
        {
            "anonymous": LOGIN,
            "reader": 404,
            "other_reader": 404,
            "reader_b": 404,
            "manager": 302,
            "manager_b": 404,
            "outsider": 404,
            "adjudicator": 404,
            "admin": 302,
        },
    ),
    "studies:reference": (
        "get",
        "study",
        MANAGERS_ONLY,
    ),
}


def _managers_only(ok: int, anonymous: int = LOGIN, readers: int = 403) -> dict[str, int]:
    """The study's managers and site admins; its readers 403 on the study's own pages (404 on an
    object of the study: ``readers=404``, see ``UNIFORM``); everyone else 404."""
    return {
        "anonymous": anonymous,
        "reader": readers,
        "other_reader": readers,
        "reader_b": 404,
        "manager": ok,
        "manager_b": 404,
        "outsider": 404,
        "adjudicator": readers,  # like the study's readers: they know the study, not its objects
        "admin": ok,
    }


TABLE |= {
    "analytics:agreement": ("get", "study", _managers_only(200)),
    "analytics:recompute": ("post", "study", _managers_only(302)),
    "analytics:status": ("get", "study", _managers_only(200, SIGNED_OUT)),
    "analytics:measurements_csv": ("get", "study", _managers_only(200)),
    "analytics:measurements_json": ("get", "study", _managers_only(200, SIGNED_OUT)),
    "analytics:readings_wide_csv": ("get", "study", _managers_only(200)),
    "analytics:vbq_by_reader_csv": ("get", "study", _managers_only(200)),
    "analytics:readings_xlsx": ("get", "study", _managers_only(200)),
    "analytics:statistics_csv": ("get", "study", _managers_only(200)),
    "analytics:statistics_json": ("get", "study", _managers_only(200, SIGNED_OUT)),
    "analytics:study_srs": ("get", "study", _managers_only(200)),
    # The table's reading has no score yet: 409 (no SR) for those who may see it.
    "analytics:reading_sr": ("get", "study_reading", _managers_only(409)),
    # No analysis computed yet: managers are sent back to the agreement page.
    "analytics:report_html": ("get", "study", _managers_only(302)),
    "analytics:report_pdf": ("get", "study", _managers_only(302)),
}


def _object_of_study(ok: int, anonymous: int = LOGIN) -> dict[str, int]:
    """An object of a study for its managers: a 404 for its readers too (see ``UNIFORM``)."""
    return _managers_only(ok, anonymous, readers=404)


# Case-set upload and ingest (studies.uploads.views): the study's managers and site admins.
TABLE |= {
    "studies:uploads": ("get", "study", _managers_only(200)),
    "studies:upload_create": ("post", "study", _managers_only(400)),  # empty body: not JSON
    "studies:upload_report": ("get", "upload", _object_of_study(200)),
    "studies:upload_status": ("get", "upload", _object_of_study(200, SIGNED_OUT)),
    "studies:upload_chunk": ("post", "upload", _object_of_study(400)),  # no X-Upload-Pieces
    "studies:upload_finish": ("post", "upload", _object_of_study(409)),  # 0 of 1 file arrived
    "studies:upload_cancel": ("post", "upload", _object_of_study(302)),
    "studies:cases": ("get", "study", _managers_only(200)),
    "studies:case_series": ("get", "case", _object_of_study(200)),
    # Reuse a case set of another study (studies.casesets_views): the page lists the sets.
    "studies:case_set_attach": ("get", "study", _managers_only(200)),
    "studies:case_set_attach_progress": ("get", "attach", _object_of_study(200)),
    "studies:case_set_attach_status": ("get", "attach", _object_of_study(200, SIGNED_OUT)),
    # STOW-RS into the study (studies.receiver.views): an empty POST is not multipart/related.
    "studies:stow": ("post", "study", _managers_only(415)),
}

# The viewer's JSON endpoints: the reading's own reader may write (an empty body is not an ROI
# set, and a reading without ROIs cannot be submitted: 400), its managers see it but may not
# change it (403), nobody else learns it exists (404).
_WRITE_JSON = {
    "anonymous": SIGNED_OUT,
    "reader": 400,
    "other_reader": 404,
    "reader_b": 404,
    "manager": 403,
    "manager_b": 404,
    "outsider": 404,
    "adjudicator": 404,
    "admin": 403,
}
TABLE |= {
    "readers:rois": ("post", "reading", _WRITE_JSON),
    "readers:submit_json": ("post", "reading", _WRITE_JSON),
    "readers:timing": ("post", "reading", _WRITE_JSON),
    # Save and next: the reading's reader goes on (302); its managers see it, may not (403).
    "readers:next": ("post", "reading", _WRITE_JSON | {"anonymous": LOGIN, "reader": 302}),
}

# DICOMweb: a study's images are for its readers and managers (and site admins); a UID of any
# other study is a 404 for everyone else, as if it did not exist. Search without a study in the
# path answers everyone who is logged in, with what they may see (an empty list for outsiders).
_IMAGES = {
    "anonymous": SIGNED_OUT,
    "reader": 200,
    "other_reader": 200,
    "reader_b": 404,
    "manager": 200,
    "manager_b": 404,
    "outsider": 404,
    "adjudicator": 200,  # the adjudicator looks at the readers' ROIs on the images
    "admin": 200,
}
# A search with nothing to list is a 204 with no body (PS3.18 8.3.4.4.1): only study A has images.
_SEARCH = _IMAGES | {"reader_b": 204, "manager_b": 204, "outsider": 204}
TABLE |= {
    "dicomweb:studies": ("get", "none", _SEARCH),
    "dicomweb:all_series": ("get", "none", _SEARCH),
    "dicomweb:all_instances": ("get", "none", _SEARCH),
    "dicomweb:study_instances": ("get", "dicom_study", _IMAGES),
    "dicomweb:study": ("get", "dicom_study", _IMAGES),
    "dicomweb:study_metadata": ("get", "dicom_study", _IMAGES),
    "dicomweb:study_rendered": ("get", "dicom_study", _IMAGES),
    "dicomweb:study_thumbnail": ("get", "dicom_study", _IMAGES),
    "dicomweb:series_retrieve": ("get", "dicom_series", _IMAGES),
    "dicomweb:series_rendered": ("get", "dicom_series", _IMAGES),
    "dicomweb:series_thumbnail": ("get", "dicom_series", _IMAGES),
    "dicomweb:instance_rendered": ("get", "dicom_instance", _IMAGES),
    "dicomweb:instance_thumbnail": ("get", "dicom_instance", _IMAGES),
    "dicomweb:frames_rendered": ("get", "dicom_frames", _IMAGES),
    "dicomweb:frames_thumbnail": ("get", "dicom_frames", _IMAGES),
    "dicomweb:series": ("get", "dicom_study", _IMAGES),
    "dicomweb:instances": ("get", "dicom_series", _IMAGES),
    "dicomweb:series_metadata": ("get", "dicom_series", _IMAGES),
    "dicomweb:instance": ("get", "dicom_instance", _IMAGES),
    "dicomweb:instance_metadata": ("get", "dicom_instance", _IMAGES),
    "dicomweb:frames": ("get", "dicom_frames", _IMAGES),
}

# Accounts (vbqweb/accounts/; spec §7): Django's password pages under /accounts/ (the reset
# pages are for everyone, signed in or not; a bad link is a 200 page that says so), the
# account's security page and TOTP enrolment for everyone signed in (VBQ_MFA_REQUIRED is off in
# the table; tests/vbqweb/accounts/test_mfa.py turns it on), the code page sends a user with no
# device on (302), and inviting a reader is for the study's managers.
_SIGNED_IN = {"anonymous": LOGIN} | dict.fromkeys(ROLES[1:], 200)
TABLE |= {
    "password_change": ("get", "none", _SIGNED_IN),
    "password_change_done": ("get", "none", _SIGNED_IN),
    "password_reset": ("get", "none", dict.fromkeys(ROLES, 200)),
    "password_reset_done": ("get", "none", dict.fromkeys(ROLES, 200)),
    "password_reset_confirm": ("get", "reset_link", dict.fromkeys(ROLES, 200)),
    "password_reset_complete": ("get", "none", dict.fromkeys(ROLES, 200)),
    "accounts:security": ("get", "none", _SIGNED_IN),
    "accounts:mfa_setup": ("get", "none", _SIGNED_IN),
    "accounts:mfa_verify": ("get", "none", {"anonymous": LOGIN} | dict.fromkeys(ROLES[1:], 302)),
    "accounts:mfa_remove": ("post", "none", {"anonymous": LOGIN} | dict.fromkeys(ROLES[1:], 302)),
    "accounts:invite": ("get", "study", MANAGERS_ONLY),
    "accounts:invite_accept": ("get", "reset_link", dict.fromkeys(ROLES, 200)),
}

# The audit log (vbqweb.audit): a study's events for its managers and site admins (its readers
# 403, everyone else 404), every event for site admins only.
TABLE |= {
    "audit:study": ("get", "study", MANAGERS_ONLY),
    "audit:study_csv": ("get", "study", MANAGERS_ONLY),
    "audit:site": ("get", "none", SITE_ADMINS_ONLY),
    "audit:site_csv": ("get", "none", SITE_ADMINS_ONLY),
}

# Adjudication and the managers' review viewer (readers/adjudication; issues 13 and 14): the
# worklist for the study's adjudicator and managers; a case, the decision and a new measurement
# only for a case on the worklist (the table's case is not: 404 for those who may see the
# worklist; its readers 403, as on the study's other pages); the review viewer of a reading
# for the study's managers (its adjudicator and readers 403).
_NOT_ON_WORKLIST = _managers_only(404) | {"adjudicator": 404}
TABLE |= {
    "adjudication:worklist": ("get", "study", _managers_only(200) | {"adjudicator": 200}),
    "adjudication:case": ("get", "study_case_session", _NOT_ON_WORKLIST),
    "adjudication:accept": ("post", "study_case_session", _NOT_ON_WORKLIST),
    "adjudication:measure": ("post", "study_case_session", _NOT_ON_WORKLIST),
    "adjudication:review": ("get", "study_reading", _managers_only(200)),
}

# Posting ROIs to a reading (the same URL as readers:detail, other method).
POST_ROIS = {
    "anonymous": LOGIN,
    "reader": 400,  # visible and writable: the empty body is rejected as invalid JSON
    "other_reader": 404,
    "reader_b": 404,
    "manager": 403,
    "manager_b": 404,
    "outsider": 404,
    "adjudicator": 404,
    "admin": 403,
}


def _url_names(resolver: URLResolver, prefix: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue  # Django's own admin: staff only, tested in test_admin_is_for_staff
            ns = f"{prefix}{pattern.namespace}:" if pattern.namespace else prefix
            names |= _url_names(pattern, ns)
        elif isinstance(pattern, URLPattern) and pattern.name:
            names.add(prefix + pattern.name)
    return names


def test_every_url_is_in_the_table() -> None:
    assert _url_names(get_resolver()) == set(TABLE)


@pytest.fixture
def objects(world):
    case = factories.CaseFactory(study=world.study_a)
    series = factories.SeriesFactory(case=case)
    buffer = io.BytesIO()
    mr_dataset(np.arange(16).reshape(4, 4)).save_as(buffer, enforce_file_format=True)
    instance = factories.InstanceFactory(
        series=series, file=ContentFile(buffer.getvalue(), name="x.dcm"), rows=4, columns=4
    )
    reading = factories.ReadingFactory(reader=world.reader, case=case)
    uids = {"study_uid": case.study_instance_uid, "series_uid": series.series_instance_uid}
    upload = upload_create(
        study=world.study_a, created_by=world.manager, name="u", files=1, total_bytes=10
    )
    attach = CaseSetAttach.objects.create(study=world.study_a, name="s", created_by=world.manager)
    return {
        "dicom_study": {"study_uid": case.study_instance_uid},
        "dicom_series": uids,
        "dicom_instance": uids | {"sop_uid": instance.sop_instance_uid},
        "dicom_frames": uids | {"sop_uid": instance.sop_instance_uid, "frame_list": "1"},
        "none": {},
        "study": {"pk": world.study_a.pk},
        "upload": {"public_id": upload.public_id},  # URLs carry public ids, never pks
        "attach": {"public_id": attach.public_id},
        "case": {"pk": case.pk},
        "case_session": {"case_pk": case.pk, "session": 1},
        "reading": {"public_id": reading.public_id},
        "assignment": {"pk": world.study_a.assignments.get(user=world.reader).pk},
        "study_reading": {"pk": world.study_a.pk, "reading_public_id": reading.public_id},
        "study_case_session": {"pk": world.study_a.pk, "case_pk": case.pk, "session": 1},
        "reset_link": {"uidb64": "MQ", "token": "c0ffee-not-a-token"},
    }


def _client_for(client, world, role):
    if role != "anonymous":
        client.force_login(getattr(world, role))
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(TABLE))
def test_url_role_table(client, world, objects, name, role) -> None:
    method, kwargs_name, expected = TABLE[name]
    url = reverse(name, kwargs=objects[kwargs_name])
    response = getattr(_client_for(client, world, role), method)(url)
    assert response.status_code == expected[role], (name, role)
    if role == "anonymous" and expected[role] == LOGIN and name != "logout":
        assert response.url.startswith(reverse("login"))
    if role == "anonymous" and expected[role] == SIGNED_OUT:
        assert response.json()["location"] == reverse("login")


@pytest.mark.parametrize("role", ROLES)
def test_posting_rois_role_table(client, world, objects, role) -> None:
    url = reverse("readers:detail", kwargs=objects["reading"])
    response = _client_for(client, world, role).post(url, {"rois": ""})
    assert response.status_code == POST_ROIS[role], role


@pytest.mark.parametrize(
    ("role", "status"), [("anonymous", 302), ("reader", 302), ("manager", 302), ("admin", 200)]
)
def test_admin_is_for_staff(client, world, role, status) -> None:
    response = _client_for(client, world, role).get(reverse("admin:index"))
    assert response.status_code == status


# A manager-only object of a study (an upload, a case, a role in the study) answers its readers
# exactly as an id that does not exist: same status, same body. A 403 for one and a 404 for the
# other would tell a reader which ids exist (issue 12, "existence oracle").
UNIFORM = {
    "studies:people_remove": ("post", "assignment"),
    "studies:upload_report": ("get", "upload"),
    "studies:upload_status": ("get", "upload"),
    "studies:upload_chunk": ("post", "upload"),
    "studies:upload_finish": ("post", "upload"),
    "studies:upload_cancel": ("post", "upload"),
    "studies:case_series": ("get", "case"),
    "studies:case_set_attach_progress": ("get", "attach"),
    "studies:case_set_attach_status": ("get", "attach"),
}


@pytest.mark.parametrize("role", ["reader", "other_reader", "reader_b", "outsider", "adjudicator"])
@pytest.mark.parametrize("name", sorted(UNIFORM))
def test_manager_only_object_answers_readers_as_if_absent(
    client, world, objects, name, role
) -> None:
    method, kwargs_name = UNIFORM[name]
    call = getattr(_client_for(client, world, role), method)
    exists = call(reverse(name, kwargs=objects[kwargs_name]))
    present = objects[kwargs_name]
    missing = (
        {"public_id": uuid.uuid4()} if "public_id" in present else {"pk": present["pk"] + 100_000}
    )
    absent = call(reverse(name, kwargs=missing))
    assert (exists.status_code, exists.content) == (absent.status_code, absent.content)
    assert exists.status_code == 404
