"""QIDO-RS (PS3.18 10.6): search for studies, series and instances at every level, scoped to
the user.

What a user may see is ``readers.access.instances_for_user``: the selected reading series of
the cases of their studies, quarantined instances left out. A study UID or series UID in the
path that is outside that scope is a 404, as for WADO-RS; a search without one answers with
what the user may see, and nothing else (an empty result for someone who reads nothing).

The attributes come from the stored headers (``views.header_json``, read once per process):
a study's from its first instance, a series' from its first instance, plus the computed ones
(number of series and instances, modalities in the study, retrieve URL, availability). Matching,
``includefield``, ``limit`` and ``offset`` are ``readers.dicomweb.query`` (pure). No match is a
204 with an empty body, as PS3.18 8.3.4.4.1 says (dicomweb-client reads it as an empty list).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from readers.access import image_case_for_user, image_series_for_user, instances_for_user
from readers.dicomweb import query as q
from readers.dicomweb.views import REVALIDATE, header_json, json_response, plain, root, wants_json
from studies.models import Instance

ORDER = ("series__case__study_instance_uid", "series__series_instance_uid", "instance_number",
         "sop_instance_uid")  # fmt: skip


def _uids(value: str | None) -> list[str] | None:
    """A UID key without wildcards, as a list (list of UID matching), for the database."""
    if value is None or value == "" or "*" in value or "?" in value:
        return None
    return [uid for uid in re.split(r"[\\,]", value) if uid.strip()]


def _scope(request: HttpRequest, query: q.Query) -> QuerySet[Instance]:
    """The instances the user may see, narrowed by the UID keys in the database."""
    instances = instances_for_user(request.user)
    for tag, field in (
        ("0020000D", "series__case__study_instance_uid__in"),
        ("0020000E", "series__series_instance_uid__in"),
        ("00080018", "sop_instance_uid__in"),
    ):
        if (uids := _uids(query.keys.get(tag))) is not None:
            instances = instances.filter(**{field: uids})
    return instances.select_related("series__case").order_by(*ORDER)


def _attr(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def _answer(request: HttpRequest, results: list[dict[str, Any]], query: q.Query) -> HttpResponse:
    page = q.page(results, query)
    response = json_response(page) if page else HttpResponse(status=204)
    response["Cache-Control"] = REVALIDATE
    response["Vary"] = "Accept, Cookie"
    if query.fuzzy:  # PS3.18 8.3.4.3: say that only literal matching was done
        response["Warning"] = (
            f"299 {request.get_host()}: The fuzzymatching parameter is not supported. "
            "Only literal matching has been performed."
        )
    return response


def _search(request: HttpRequest, level: str, instances: QuerySet[Instance]) -> HttpResponse:
    if not wants_json(request):
        return plain("search results are sent as application/dicom+json", 406)
    try:
        query = q.parse(_pairs(request))
    except q.QueryError as error:
        return plain(str(error), 400)
    rows = list(_scope(request, query).filter(pk__in=instances.values("pk")))
    base = root(request)
    by_study: dict[str, list[Instance]] = defaultdict(list)
    by_series: dict[str, list[Instance]] = defaultdict(list)
    for row in rows:
        by_study[row.series.case.study_instance_uid].append(row)
        by_series[row.series.series_instance_uid].append(row)
    study_attrs: dict[str, dict[str, Any]] = {}
    for study_uid, members in by_study.items():
        series_uids = {m.series.series_instance_uid for m in members}
        modalities = sorted({m.series.modality for m in members if m.series.modality})
        study_attrs[study_uid] = {
            "00080056": _attr("CS", "ONLINE"),
            "00080061": _attr("CS", *modalities),
            "00081190": _attr("UR", f"{base}/studies/{study_uid}"),
            "00201206": _attr("IS", len(series_uids)),
            "00201208": _attr("IS", len(members)),
        }
    results: list[dict[str, Any]] = []
    if level == q.STUDY:
        for study_uid, members in by_study.items():
            obj = header_json(members[0]) | study_attrs[study_uid]
            if q.matches(obj, query.keys):
                results.append(q.result(obj, q.STUDY, query, extra=()))
    elif level == q.SERIES:
        for series_uid, members in by_series.items():
            study_uid = members[0].series.case.study_instance_uid
            obj = header_json(members[0]) | study_attrs[study_uid] | {
                "00081190": _attr("UR", f"{base}/studies/{study_uid}/series/{series_uid}"),
                "00201209": _attr("IS", len(members)),
            }  # fmt: skip
            if q.matches(obj, query.keys):
                extra = () if "study_uid" in request.resolver_match.kwargs else (q.STUDY,)
                results.append(q.result(obj, q.SERIES, query, extra=extra))
    else:
        kwargs = request.resolver_match.kwargs
        extra = tuple(
            lvl
            for lvl, name in ((q.STUDY, "study_uid"), (q.SERIES, "series_uid"))
            if name not in kwargs
        )
        for row in rows:
            study_uid = row.series.case.study_instance_uid
            series_uid = row.series.series_instance_uid
            obj = header_json(row) | study_attrs[study_uid] | {
                "00081190": _attr("UR", f"{base}/studies/{study_uid}/series/{series_uid}"
                                        f"/instances/{row.sop_instance_uid}"),
                "00201209": _attr("IS", len(by_series[series_uid])),
            }  # fmt: skip
            obj.pop("7FE00010", None)
            if q.matches(obj, query.keys):
                results.append(q.result(obj, q.INSTANCE, query, extra=extra))
    return _answer(request, results, query)


def _pairs(request: HttpRequest) -> list[tuple[str, str]]:
    return [(name, value) for name, values in request.GET.lists() for value in values]


@require_GET
def search_studies(request: HttpRequest) -> HttpResponse:
    """QIDO-RS ``/studies``: the DICOM studies (cases) the user may see."""
    return _search(request, q.STUDY, instances_for_user(request.user))


@require_GET
def search_all_series(request: HttpRequest) -> HttpResponse:
    """QIDO-RS ``/series``: every series the user may see."""
    return _search(request, q.SERIES, instances_for_user(request.user))


@require_GET
def search_series(request: HttpRequest, study_uid: str) -> HttpResponse:
    """QIDO-RS ``/studies/{study}/series``."""
    case = image_case_for_user(request.user, study_uid)
    return _search(request, q.SERIES, instances_for_user(request.user).filter(series__case=case))


@require_GET
def search_all_instances(request: HttpRequest) -> HttpResponse:
    """QIDO-RS ``/instances``: every instance the user may see."""
    return _search(request, q.INSTANCE, instances_for_user(request.user))


@require_GET
def search_study_instances(request: HttpRequest, study_uid: str) -> HttpResponse:
    """QIDO-RS ``/studies/{study}/instances``."""
    case = image_case_for_user(request.user, study_uid)
    return _search(request, q.INSTANCE, instances_for_user(request.user).filter(series__case=case))


@require_GET
def search_instances(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    """QIDO-RS ``/studies/{study}/series/{series}/instances``, in instance number order."""
    series = image_series_for_user(request.user, study_uid, series_uid)
    return _search(request, q.INSTANCE, instances_for_user(request.user).filter(series=series))
