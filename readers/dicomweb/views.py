"""DICOMweb for the viewer: QIDO-RS search and WADO-RS retrieval, scoped to the user.

The viewer (Cornerstone3D's ``wadors`` loader) reads the case's reading series through these
endpoints, never from storage URLs (nor presigned object-store URLs: ``docs/storage.md``):
every request goes through ``readers.access``, so a reader reaches the selected series of the
cases of the studies they read and nothing else (a study's managers and site admins too,
read-only), and a UID outside that scope is a 404 whatever it is. An object store that cannot
be reached is a 503 with ``Retry-After``, not a 500.

Caching. A de-identified instance never changes (a new de-identification makes new UIDs), so
its bytes, frames and header are sent with a strong ETag derived from the stored file's SHA-256
and ``Cache-Control: private, max-age=31536000, immutable``: scrolling back through a series,
or reopening a case, costs no request at all, and a revalidation that does happen is a 304
decided before the file is opened. ``private`` keeps shared caches out; ``Vary: Cookie`` keeps
one user's cached answer from being served to another who logs in on the same browser. Search
results and the series metadata can change (an instance quarantined, a series re-selected), so
they are revalidated on every use (``no-cache``), with an ETag over what they list.

The wire formats are in ``readers.dicomweb.io`` (pure, tested without a server).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
)
from django.urls import reverse
from django.views.decorators.http import require_GET

from readers.access import (
    image_case_for_user,
    image_instance_for_user,
    image_series_for_user,
    instances_for_user,
    series_for_user,
)
from readers.dicomweb import io
from studies.models import Instance, Series
from vbqweb.audit.services import record_image_retrieval
from vbqweb.storage import storage_unavailable

DICOM_JSON = "application/dicom+json"
IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"
# Bump when a representation changes, so that browsers do not keep an old one forever.
FORMAT_VERSION = "1"


# --- helpers -----------------------------------------------------------------------------------


def _etag(*parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in (FORMAT_VERSION, *parts)).encode())
    return f'"{digest.hexdigest()[:32]}"'


def _instance_key(instance: Instance) -> str:
    return instance.sha256 or f"{instance.pk}:{instance.size}:{instance.file.name}"


def _matches(request: HttpRequest, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in tags or "*" in tags


def _cached(
    request: HttpRequest, etag: str, cache_control: str, build: Callable[[], HttpResponse]
) -> HttpResponse:
    """304 when the client holds ``etag``; otherwise the built response. Both carry the
    validators and caching headers, as RFC 9110 asks of a 304."""
    response = HttpResponseNotModified() if _matches(request, etag) else _built(build)
    response["Vary"] = "Accept, Cookie"
    if response.status_code in (200, 304):
        response["ETag"] = etag
        response["Cache-Control"] = cache_control
    else:
        response["Cache-Control"] = "private, no-store"
    return response


def _built(build: Callable[[], HttpResponse]) -> HttpResponse:
    """``build()``, or a 503 the viewer may retry when the object store cannot be reached now
    (an outage is not a broken image, and a 500 would say it is)."""
    try:
        return build()
    except Exception as error:
        if not storage_unavailable(error):
            raise
        response = HttpResponse(
            "The image store cannot be reached at the moment: try again shortly.",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = "5"
        return response


def _json(data: Any) -> HttpResponse:
    return HttpResponse(json.dumps(data, separators=(",", ":")), content_type=DICOM_JSON)


def _not_acceptable(error: Exception) -> HttpResponse:
    return HttpResponse(str(error), status=406, content_type="text/plain; charset=utf-8")


def _query(request: HttpRequest, keyword: str, tag: str) -> str | None:
    return request.GET.get(keyword) or request.GET.get(tag)


def _page(request: HttpRequest, items: list[Any]) -> list[Any]:
    """QIDO ``offset`` and ``limit`` (ignored when not numbers)."""
    try:
        offset = max(0, int(request.GET.get("offset", 0)))
    except ValueError:
        offset = 0
    try:
        limit = max(0, int(request.GET["limit"]))
    except (KeyError, ValueError):
        return items[offset:]
    return items[offset : offset + limit]


def _attr(vr: str, value: object) -> dict[str, Any]:
    if value in (None, ""):
        return {"vr": vr}
    return {"vr": vr, "Value": [value]}


def _root(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("dicomweb:studies")).removesuffix("/studies")


def _series_url(request: HttpRequest, series: Series) -> str:
    case = series.case
    return f"{_root(request)}/studies/{case.study_instance_uid}/series/{series.series_instance_uid}"


# --- QIDO-RS -----------------------------------------------------------------------------------


@require_GET
def search_studies(request: HttpRequest) -> HttpResponse:
    """QIDO-RS: the DICOM studies (cases) whose reading series the user may see."""
    instances = instances_for_user(request.user)
    if uid := _query(request, "StudyInstanceUID", "0020000D"):
        instances = instances.filter(series__case__study_instance_uid=uid)
    cases: dict[int, dict[str, Any]] = {}
    for row in instances.values(
        "series__case_id", "series__case__study_instance_uid", "series__modality"
    ).order_by("series__case_id"):
        entry = cases.setdefault(
            row["series__case_id"],
            {"uid": row["series__case__study_instance_uid"], "n": 0, "modality": set()},
        )
        entry["n"] += 1
        entry["modality"].add(row["series__modality"])
    root = _root(request)
    body = [
        {
            "00080061": {"vr": "CS", "Value": sorted(entry["modality"])},
            "00081190": _attr("UR", f"{root}/studies/{entry['uid']}"),
            "0020000D": _attr("UI", entry["uid"]),
            "00201206": _attr("IS", 1),
            "00201208": _attr("IS", entry["n"]),
        }
        for entry in cases.values()
    ]
    response = _json(_page(request, body))
    response["Cache-Control"] = REVALIDATE
    return response


@require_GET
def search_series(request: HttpRequest, study_uid: str) -> HttpResponse:
    """QIDO-RS: the series of one study the user may see (the case's reading series)."""
    case = image_case_for_user(request.user, study_uid)
    series_list = series_for_user(request.user).filter(case=case).order_by("series_instance_uid")
    if uid := _query(request, "SeriesInstanceUID", "0020000E"):
        series_list = series_list.filter(series_instance_uid=uid)
    body = [_series_json(request, series) for series in series_list.select_related("case")]
    response = _json(_page(request, body))
    response["Cache-Control"] = REVALIDATE
    return response


def _series_json(request: HttpRequest, series: Series) -> dict[str, Any]:
    n = instances_for_user(request.user).filter(series=series).count()
    return {
        "00080060": _attr("CS", series.modality),
        "0008103E": _attr("LO", series.description),
        "00081190": _attr("UR", _series_url(request, series)),
        "0020000D": _attr("UI", series.case.study_instance_uid),
        "0020000E": _attr("UI", series.series_instance_uid),
        "00201209": _attr("IS", n),
    }


@require_GET
def search_instances(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    """QIDO-RS: the instances of the case's reading series, in instance number order."""
    series = image_series_for_user(request.user, study_uid, series_uid)
    instances = instances_for_user(request.user).filter(series=series)
    if uid := _query(request, "SOPInstanceUID", "00080018"):
        instances = instances.filter(sop_instance_uid=uid)
    body = [
        {
            "00080016": _attr("UI", instance.sop_class_uid),
            "00080018": _attr("UI", instance.sop_instance_uid),
            "00081190": _attr("UR", f"{_series_url(request, series)}/instances/"
                              f"{instance.sop_instance_uid}"),
            "0020000D": _attr("UI", study_uid),
            "0020000E": _attr("UI", series_uid),
            "00200013": _attr("IS", instance.instance_number),
            "00280010": _attr("US", instance.rows),
            "00280011": _attr("US", instance.columns),
        }
        for instance in instances.order_by("instance_number", "sop_instance_uid")
    ]  # fmt: skip
    response = _json(_page(request, body))
    response["Cache-Control"] = REVALIDATE
    return response


# --- WADO-RS -----------------------------------------------------------------------------------


@require_GET
def series_metadata(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    """WADO-RS: the DICOM JSON header of every instance of the series (the viewer's first
    request: geometry, rescale and windowing for the whole stack in one round trip)."""
    series = image_series_for_user(request.user, study_uid, series_uid)
    record_image_retrieval(request=request, study_uid=study_uid)  # once per session and case
    instances = list(
        instances_for_user(request.user)
        .filter(series=series)
        .order_by("instance_number", "sop_instance_uid")
    )
    base = _series_url(request, series)
    etag = _etag("series", base, *(_instance_key(i) for i in instances))

    def build() -> HttpResponse:
        return _json([_instance_metadata(base, instance) for instance in instances])

    return _cached(request, etag, REVALIDATE, build)


def _instance_metadata(series_url: str, instance: Instance) -> dict[str, Any]:
    with instance.file.open("rb") as fh:
        ds = io.read_header(fh)
    frames = f"{series_url}/instances/{instance.sop_instance_uid}/frames/1"
    return io.instance_json(ds, pixel_data_uri=frames)


@require_GET
def instance_metadata(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str
) -> HttpResponse:
    """WADO-RS: one instance's DICOM JSON header."""
    instance = image_instance_for_user(request.user, study_uid, series_uid, sop_uid)
    record_image_retrieval(request=request, study_uid=study_uid)
    base = f"{_root(request)}/studies/{study_uid}/series/{series_uid}"
    etag = _etag("metadata", base, _instance_key(instance))
    return _cached(request, etag, IMMUTABLE, lambda: _json([_instance_metadata(base, instance)]))


@require_GET
def instance(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponse:
    """WADO-RS: the instance as stored (``application/dicom``, or one multipart part)."""
    found = image_instance_for_user(request.user, study_uid, series_uid, sop_uid)
    record_image_retrieval(request=request, study_uid=study_uid)
    accept = request.headers.get("Accept", "")
    # The answer depends only on the stored file and the Accept header: a revalidation is
    # decided before the file is opened.
    etag = _etag("instance", accept, _instance_key(found))

    def build() -> HttpResponse:
        ranges = io.parse_accept(accept)
        stored_syntax = io.ORIGINAL
        if any(
            m.media_type == "multipart/related" or "transfer-syntax" in m.params for m in ranges
        ):
            # Only then is the header read: a plain application/dicom request streams the file.
            with found.file.open("rb") as fh:
                stored_syntax = io.transfer_syntax_of(io.read_header(fh))
        try:
            multipart = io.instance_wants_multipart(ranges, stored_syntax=stored_syntax)
        except io.NotAcceptable as error:
            return _not_acceptable(error)
        if not multipart:
            response = FileResponse(found.file.open("rb"), content_type="application/dicom")
            response["Content-Disposition"] = f'inline; filename="{found.sop_instance_uid}.dcm"'
            return response
        boundary = io.new_boundary()
        with found.file.open("rb") as fh:
            data = fh.read()
        body = io.multipart_body(
            [(f"application/dicom; transfer-syntax={stored_syntax}", data)], boundary
        )
        return HttpResponse(
            body, content_type=io.multipart_content_type("application/dicom", boundary)
        )

    return _cached(request, etag, IMMUTABLE, build)


@require_GET
def frames(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str, frame_list: str
) -> HttpResponse:
    """WADO-RS: pixel data frames, stored or decoded (see ``readers.dicomweb.io.frames``)."""
    found = image_instance_for_user(request.user, study_uid, series_uid, sop_uid)
    record_image_retrieval(request=request, study_uid=study_uid)
    try:
        numbers = io.parse_frame_list(frame_list)
    except io.FrameError as error:
        raise Http404(str(error)) from None
    accept = request.headers.get("Accept", "")
    etag = _etag("frames", frame_list, accept, _instance_key(found))

    def build() -> HttpResponse:
        with found.file.open("rb") as fh:
            ds = io.read_full(fh)
        try:
            representation = io.frame_representation(
                io.parse_accept(accept),
                stored_syntax=io.transfer_syntax_of(ds),
                n_frames=len(numbers),
            )
            data, syntax = io.frames(ds, numbers, syntax=representation.syntax)
        except io.NotAcceptable as error:
            return _not_acceptable(error)
        except io.FrameError as error:
            raise Http404(str(error)) from None
        part_type = f"application/octet-stream; transfer-syntax={syntax}"
        if not representation.multipart:
            return HttpResponse(data[0], content_type=part_type)
        boundary = io.new_boundary()
        body = io.multipart_body(((part_type, frame) for frame in data), boundary)
        return HttpResponse(
            body, content_type=io.multipart_content_type("application/octet-stream", boundary)
        )

    return _cached(request, etag, IMMUTABLE, build)
