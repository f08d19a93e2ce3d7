"""DICOMweb WADO-RS retrieval (PS3.18 10.4), scoped to the user; the helpers of every view here.

The viewer (Cornerstone3D's ``wadors`` loader) and any standard client (dicomweb-client, OHIF,
3D Slicer) read images through these endpoints, never from storage URLs (nor presigned
object-store URLs: ``docs/storage.md``): every request goes through ``readers.access``, so a
user reaches the selected series of the cases of the studies they read or manage and nothing
else, and a UID outside that scope is a 404 whatever it is. An object store that cannot be
reached is a 503 with ``Retry-After``, not a 500. Search is in ``qido``, rendered images and
thumbnails in ``pictures``, the cheap path for repeated requests in ``fastpath``
(``docs/dicomweb.md``).

Caching. A de-identified instance never changes (a new de-identification makes new UIDs), so
its bytes, frames and header are sent with a strong ETag derived from the stored file's SHA-256
and ``Cache-Control: private, max-age=31536000, immutable``: scrolling back through a series,
or reopening a case, costs no request at all, and a revalidation that does happen is a 304
decided before the file is opened. ``private`` keeps shared caches out; ``Vary: Cookie`` keeps
one user's cached answer from being served to another who logs in on the same browser. Search
results and the series and study metadata can change (an instance quarantined, a series
re-selected), so they are revalidated on every use (``no-cache``), with an ETag over what they
list.

The wire formats are in ``readers.dicomweb.io`` (pure, tested without a server).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.urls import reverse
from django.views.decorators.http import require_GET

from readers.access import (
    image_case_for_user,
    image_instance_for_user,
    image_series_for_user,
    instances_for_user,
)
from readers.dicomweb import io
from readers.dicomweb.fastpath import cacheable, grant_series, replay
from studies.models import Instance
from vbqweb.audit.services import record_image_retrieval
from vbqweb.storage import storage_unavailable

DICOM_JSON = "application/dicom+json"
IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"
# Bump when a representation changes, so that browsers do not keep an old one forever.
FORMAT_VERSION = "2"
SMALL = 16 * 1024 * 1024
"""An instance up to this size is read into one body (cacheable); a bigger one is streamed."""
ORDER = ("series__series_instance_uid", "instance_number", "sop_instance_uid")


# --- helpers -----------------------------------------------------------------------------------


def _etag(*parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in (FORMAT_VERSION, *parts)).encode())
    return f'"{digest.hexdigest()[:32]}"'


def _instance_key(instance: Instance) -> str:
    return instance.sha256 or f"{instance.pk}:{instance.size}:{instance.file.name}"


def instance_retrieved(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str
) -> Instance:
    """The instance a retrieval URL names, if the user may see it (404 otherwise), with the
    retrieval audited and the series offered to the fast path: what every instance-level
    retrieval (file, frames, rendered, thumbnail) does first."""
    found = image_instance_for_user(request.user, study_uid, series_uid, sop_uid)
    record_image_retrieval(request=request, study_uid=study_uid)
    offer_grant(request, found, study_uid, series_uid)
    return found


def offer_grant(request: HttpRequest, instance: Instance, study_uid: str, series_uid: str) -> None:
    """After the access check: let the fast path answer this session's next requests for the
    series (``readers.dicomweb.fastpath``), with the SOP UIDs it may read."""
    sops = instances_for_user(request.user).filter(series_id=instance.series_id)
    grant_series(
        request,
        study_uid=study_uid,
        series_uid=series_uid,
        sops=set(sops.values_list("sop_instance_uid", flat=True)),
    )
    cacheable(request)


def _matches(request: HttpRequest, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in tags or "*" in tags


def cached(
    request: HttpRequest, etag: str, cache_control: str, build: Callable[[], HttpResponse]
) -> HttpResponse:
    """304 when the client holds ``etag``; otherwise the built response. Both carry the
    validators and caching headers, as RFC 9110 asks of a 304."""
    if _matches(request, etag):
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = replay(request) or built(build)
    response["Vary"] = "Accept, Cookie"
    if response.status_code in (200, 304):
        response["ETag"] = etag
        response["Cache-Control"] = cache_control
    else:
        response["Cache-Control"] = "private, no-store"
    return response


def built(build: Callable[[], HttpResponse]) -> HttpResponse:
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


def json_response(data: Any) -> HttpResponse:
    return HttpResponse(json.dumps(data, separators=(",", ":")), content_type=DICOM_JSON)


def plain(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def root(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("dicomweb:studies")).removesuffix("/studies")


def series_url(request: HttpRequest, study_uid: str, series_uid: str) -> str:
    return f"{root(request)}/studies/{study_uid}/series/{series_uid}"


def wants_json(request: HttpRequest) -> bool:
    """DICOM JSON is what search and metadata send; XML (PS3.19) is not offered."""
    return any(
        media.media_type in ("application/dicom+json", "application/json", "*/*", "application/*")
        for media in io.parse_accept(request.headers.get("Accept"))
    )


# --- headers, read once per process ----------------------------------------------------------

_HEADERS: OrderedDict[str, tuple[dict[str, Any], int]] = OrderedDict()
_HEADERS_LOCK = threading.Lock()
_HEADERS_MAX = 20_000


def header_json(instance: Instance) -> dict[str, Any]:
    """The instance's DICOM JSON header without a BulkDataURI (cached: instances never change).

    The caller gets its own copy, so it may add or replace elements."""
    key = _instance_key(instance)
    with _HEADERS_LOCK:
        hit = _HEADERS.get(key)
        if hit is not None:
            _HEADERS.move_to_end(key)
    if hit is None:
        with instance.file.open("rb") as fh:
            ds = io.read_header(fh)
        hit = (io.instance_json(ds, pixel_data_uri=""), io.number_of_frames(ds))
        with _HEADERS_LOCK:
            _HEADERS[key] = hit
            while len(_HEADERS) > _HEADERS_MAX:
                _HEADERS.popitem(last=False)
    return copy.copy(hit[0]) | {"7FE00010": dict(hit[0]["7FE00010"])}


def instance_metadata_json(request: HttpRequest, instance: Instance) -> dict[str, Any]:
    """One instance's metadata, its pixel data by reference to its frames."""
    series = instance.series
    base = series_url(request, series.case.study_instance_uid, series.series_instance_uid)
    data = header_json(instance)
    n = int((data.get("00280008", {}).get("Value") or [1])[0] or 1)
    frames = ",".join(str(i) for i in range(1, n + 1))
    data["7FE00010"]["BulkDataURI"] = (
        f"{base}/instances/{instance.sop_instance_uid}/frames/{frames}"
    )
    return data


def _with_series(instances: QuerySet[Instance]) -> list[Instance]:
    return list(instances.select_related("series__case").order_by(*ORDER))


# --- WADO-RS: metadata -----------------------------------------------------------------------


def _metadata(request: HttpRequest, instances: list[Instance], tag: str) -> HttpResponse:
    if not wants_json(request):
        return plain("metadata is sent as application/dicom+json", 406)
    etag = _etag(tag, root(request), *(_instance_key(i) for i in instances))
    return cached(
        request,
        etag,
        REVALIDATE,
        lambda: json_response([instance_metadata_json(request, i) for i in instances]),
    )


@require_GET
def study_metadata(request: HttpRequest, study_uid: str) -> HttpResponse:
    """WADO-RS: the DICOM JSON header of every instance of the study the user may see."""
    case = image_case_for_user(request.user, study_uid)
    record_image_retrieval(request=request, study_uid=study_uid)
    instances = _with_series(instances_for_user(request.user).filter(series__case=case))
    return _metadata(request, instances, "study")


@require_GET
def series_metadata(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    """WADO-RS: the DICOM JSON header of every instance of the series (the viewer's first
    request: geometry, rescale and windowing for the whole stack in one round trip)."""
    series = image_series_for_user(request.user, study_uid, series_uid)
    record_image_retrieval(request=request, study_uid=study_uid)  # once per session and case
    instances = _with_series(instances_for_user(request.user).filter(series=series))
    return _metadata(request, instances, "series")


@require_GET
def instance_metadata(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str
) -> HttpResponse:
    """WADO-RS: one instance's DICOM JSON header."""
    found = instance_retrieved(request, study_uid, series_uid, sop_uid)
    if not wants_json(request):
        return plain("metadata is sent as application/dicom+json", 406)
    instances = _with_series(Instance.objects.filter(pk=found.pk))
    etag = _etag("metadata", root(request), _instance_key(found))
    return cached(
        request,
        etag,
        IMMUTABLE,
        lambda: json_response([instance_metadata_json(request, instances[0])]),
    )


# --- WADO-RS: instances ------------------------------------------------------------------------


def _read(instance: Instance) -> bytes:
    with instance.file.open("rb") as fh:
        return bytes(fh.read())


def _stored_syntax(instance: Instance) -> str:
    data = header_json(instance)
    return str((data.get("00083002", {}).get("Value") or [io.EXPLICIT_LE])[0])


def _instances_body(
    request: HttpRequest, instances: Iterable[Instance], *, single: Instance | None = None
) -> HttpResponse:
    """Instances as PS3.18 8.7.3 asks: multipart/related of application/dicom parts, each in
    the transfer syntax the Accept header asks (or the stored one for ``*``); one instance may
    also be a bare application/dicom body."""
    ranges = io.parse_accept(request.headers.get("Accept"))
    items = list(instances)
    parts: list[tuple[str, bytes]] = []
    multipart = True
    for item in items:
        stored = _stored_syntax(item)
        try:
            multipart, syntax = io.instance_representation(ranges, stored_syntax=stored)
            if single is None and not multipart:
                # A study or series is always a multipart body.
                multipart, syntax = True, io.EXPLICIT_LE if syntax == io.ORIGINAL else syntax
            if syntax == io.ORIGINAL or syntax == stored:
                if single is not None and not multipart and item.size > SMALL:
                    response = FileResponse(item.file.open("rb"), content_type="application/dicom")
                    response["Content-Disposition"] = (
                        f'inline; filename="{item.sop_instance_uid}.dcm"'
                    )
                    return response
                data, sent = _read(item), stored
            else:
                data, sent = io.transcode(_read(item), syntax), syntax
        except io.NotAcceptable as error:
            return plain(str(error), 406)
        parts.append((f"application/dicom; transfer-syntax={sent}", data))
    if single is not None and not multipart:
        response = HttpResponse(parts[0][1], content_type="application/dicom")
        response["Content-Disposition"] = f'inline; filename="{single.sop_instance_uid}.dcm"'
        return response
    boundary = io.new_boundary()
    return HttpResponse(
        io.multipart_body(parts, boundary),
        content_type=io.multipart_content_type("application/dicom", boundary),
    )


@require_GET
def study(request: HttpRequest, study_uid: str) -> HttpResponse:
    """WADO-RS: every instance of the study the user may see, multipart."""
    case = image_case_for_user(request.user, study_uid)
    record_image_retrieval(request=request, study_uid=study_uid)
    instances = _with_series(instances_for_user(request.user).filter(series__case=case))
    accept = request.headers.get("Accept", "")
    etag = _etag("study", accept, *(_instance_key(i) for i in instances))
    return cached(request, etag, REVALIDATE, lambda: _instances_body(request, instances))


@require_GET
def series(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    """WADO-RS: every instance of the series, multipart."""
    found = image_series_for_user(request.user, study_uid, series_uid)
    record_image_retrieval(request=request, study_uid=study_uid)
    instances = _with_series(instances_for_user(request.user).filter(series=found))
    accept = request.headers.get("Accept", "")
    etag = _etag("series-retrieve", accept, *(_instance_key(i) for i in instances))
    return cached(request, etag, REVALIDATE, lambda: _instances_body(request, instances))


@require_GET
def instance(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponse:
    """WADO-RS: the instance (``application/dicom``, or one multipart part)."""
    found = instance_retrieved(request, study_uid, series_uid, sop_uid)
    accept = request.headers.get("Accept", "")
    # The answer depends only on the stored file and the Accept header: a revalidation is
    # decided before the file is opened.
    etag = _etag("instance", accept, _instance_key(found))
    return cached(request, etag, IMMUTABLE, lambda: _instances_body(request, [found], single=found))


# --- WADO-RS: frames ---------------------------------------------------------------------------


@require_GET
def frames(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str, frame_list: str
) -> HttpResponse:
    """WADO-RS: pixel data frames, stored or decoded (see ``readers.dicomweb.io.frames``)."""
    found = instance_retrieved(request, study_uid, series_uid, sop_uid)
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
            return plain(str(error), 406)
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

    return cached(request, etag, IMMUTABLE, build)
