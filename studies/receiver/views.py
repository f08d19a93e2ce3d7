"""STOW-RS (PS3.18 §10.5) for a study's managers: instances POSTed into the study the URL names.

``POST /studies/<study id>/dicomweb/studies`` with a ``multipart/related; type="application/dicom"``
body of Part 10 files: the same de-identifying ingest as a browser upload, one upload per
request (:class:`~studies.receiver.reception.Reception`). The answer is PS3.18's, as
``application/dicom+json``: **200** every instance taken, **202** some taken and some refused,
**409** none taken; ``ReferencedSOPSequence`` lists the taken ones (the UIDs the client sent:
the de-identified ones exist once the worker has run), ``FailedSOPSequence`` the refused ones
with their ``FailureReason`` (PS3.4 C-STORE statuses, :mod:`studies.receiver.verdict`). The
upload's report (per-file outcome after de-identification) is at the URL in the ``Location``
header (the uploads page lists it too).

**Why no CSRF token.** Scripts and DICOMweb clients (dicomweb-client, 3D Slicer) send a session
cookie, not Django's token. The body must be ``multipart/related``, which no HTML form can send
and which makes a browser ask first (CORS preflight, never allowed here) before sending it to
another origin; anything else is refused (415) before it is read. So the view is exempt from the
token, not from the check that matters.

**Size.** The body is streamed to a temporary file in 1 MB blocks (never held in memory), at most
the ingest's limit per upload (413 above it); a chunked body (no Content-Length: dicomweb-client
sends one above 1 MB) is read when the server says it ends (gunicorn's ``wsgi.input_terminated``).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import IO

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from pydicom.dataset import Dataset

from studies.access import study_for_manager
from studies.receiver.multipart import MultipartError, iter_parts
from studies.receiver.reception import Reception
from studies.receiver.verdict import CANNOT_UNDERSTAND, peek_uids
from studies.uploads.config import ingest_limits

DICOM_JSON = "application/dicom+json"
_BLOCK = 1 << 20


class _TooLarge(Exception):
    pass


def _problem(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _input(request: HttpRequest) -> IO[bytes] | None:
    """The body's stream: Django's (Content-Length), the server's own for a chunked body it
    terminates, else None (a chunked body the server cannot end: refused)."""
    if request.META.get("CONTENT_LENGTH"):
        return request  # type: ignore[return-value]
    if request.META.get("wsgi.input_terminated"):
        return request.META["wsgi.input"]  # type: ignore[no-any-return]
    if request.META.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        return None
    return request  # type: ignore[return-value]  # no body at all


@contextlib.contextmanager
def _spooled(stream: IO[bytes], cap: int) -> Iterator[IO[bytes]]:
    """The body in a temporary file (a real one: it is memory-mapped); :class:`_TooLarge`
    past ``cap`` bytes."""
    with tempfile.TemporaryFile(prefix="vbq-stow-") as body:
        total = 0
        while block := stream.read(_BLOCK):
            total += len(block)
            if total > cap:
                raise _TooLarge
            body.write(block)
        body.flush()
        yield body


def _item(sop_class: str, sop_instance: str, reason: int | None = None) -> Dataset:
    item = Dataset()
    if sop_class:
        item.ReferencedSOPClassUID = sop_class
    if sop_instance:
        item.ReferencedSOPInstanceUID = sop_instance
    if reason is not None:
        item.FailureReason = reason
    return item


def _answer(taken: list[Dataset], failed: list[Dataset], location: str | None) -> HttpResponse:
    ds = Dataset()
    if taken:
        ds.ReferencedSOPSequence = taken
    if failed:
        ds.FailedSOPSequence = failed
    status = 200 if taken and not failed else 202 if taken else 409
    response = JsonResponse(ds.to_json_dict(), status=status, content_type=DICOM_JSON)
    if location:
        response["Location"] = location
    return response


@csrf_exempt
@require_POST
def stow_instances(request: HttpRequest, pk: int) -> HttpResponse:
    """Store instances into study ``pk`` (its managers only: 404 when the study is not visible,
    403 for its readers)."""
    study = study_for_manager(request.user, pk)
    if request.content_type != "multipart/related":
        return _problem('STOW-RS takes multipart/related; type="application/dicom".', 415)
    kind = request.content_params.get("type", "application/dicom").strip('"').lower()
    if kind != "application/dicom":
        return _problem(f"Only application/dicom parts are stored here, not {kind}.", 415)
    boundary = request.content_params.get("boundary", "").strip('"')
    stream = _input(request)
    if stream is None:
        return _problem("A chunked body is not supported by this server: send its length.", 411)
    limits = ingest_limits()
    reception = Reception(
        study, via="STOW-RS", source=request.user.get_username(), created_by=request.user
    )
    taken: list[Dataset] = []
    failed: list[Dataset] = []
    try:
        with _spooled(stream, limits.max_total_bytes) as body:
            for part, view in iter_parts(body, boundary):
                if part.content_type not in ("", "application/dicom"):
                    failed.append(_item("", "", CANNOT_UNDERSTAND))
                    reception.refuse(f"a part of type {part.content_type}, not DICOM")
                    continue
                data = bytes(view[part.start : part.end])
                sop_class, sop_instance = peek_uids(data)
                refusal = reception.add(data, sop_class=sop_class)
                if refusal is None:
                    taken.append(_item(sop_class, sop_instance))
                else:
                    failed.append(_item(sop_class, sop_instance, refusal.status))
    except _TooLarge:
        return _problem(
            "The request is larger than the limit of one upload: send fewer instances.", 413
        )
    except MultipartError as error:
        reception.abandon("The STOW-RS request was malformed; nothing from it was kept.")
        return _problem(f"The body is not a multipart/related message: {error}.", 400)
    if not taken and not failed:
        return _problem("The request holds no instance.", 400)
    upload = reception.close()
    location = None
    if upload is not None:
        location = request.build_absolute_uri(
            reverse("studies:upload_report", kwargs={"public_id": upload.public_id})
        )
    return _answer(taken, failed, location)
