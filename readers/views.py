"""Reading pages, and the study page (it shows readings, so it lives on this side of the
``readers → studies`` dependency). Thin: fetch through ``access``, call a service, render.

A reader's own reading opens in the viewer (``static/src/viewer``, ``docs/viewer.md``): its page
carries one JSON payload with this reading alone, the viewer autosaves the ROI set to
``rois.json``, submits through ``submit.json`` and polls ``score.json`` while the Celery worker
computes the score (``waiting_for_worker`` while no worker has picked it up yet). Managers
(read-only) see the ROI set as JSON with the score. A form post of ``rois`` to the page itself
is kept for scripts and clients without JavaScript.

Both ways of saving read the set through the site's JSON loader (``vbqweb.jsonbody``: size,
nesting, duplicate keys) and hold it to the web's limits (``WEB_ROI_LIMITS``: items, polygon
points, note length, geometry near the image), which the command line does not apply.
"""

from __future__ import annotations

import hashlib
import json
import time
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from readers import services
from readers.access import reading_for_user, reading_for_writer
from readers.adjudication.selectors import review_context
from readers.measurement.rois import WEB_ROI_LIMITS, RoiError, check_roi_limits, parse_roi_set
from readers.models import Reading
from readers.selectors import (
    next_case_to_read,
    reader_worklist,
    reading_position,
    reading_revisions,
    reading_score_waiting,
    study_overview,
    study_reading_time,
)
from studies.access import case_for_reader, study_for_user
from studies.models import Role, ScoreVisibility
from studies.selectors import series_image_size
from studies.vocabulary import CSF, DEFAULT_CSF_LEVEL, LEVELS, REASON_NAMES, REASONS, SHAPES
from vbqweb import notify
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record
from vbqweb.jsonbody import JsonBodyError, loads_untrusted, request_json


@require_GET
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Managers see every case, reader and reading; readers see their own worklist only."""
    study, role = study_for_user(request.user, pk)
    context: dict[str, object] = {"study": study, "role": role}
    if role == Role.ADJUDICATOR:  # nothing of the study but its adjudication (issue 14)
        return redirect("adjudication:worklist", pk=study.pk)
    if role == Role.MANAGER:
        context |= study_overview(study=study) | review_context(study)
        # Planned, not opened: every case by every reader in every session (issue 13 item 9).
        context["n_planned"] = len(context["rows"]) * len(context["readers"]) * study.sessions
        context["reading_time"] = study_reading_time(study=study)  # issue 13 item 6
        return render(request, "studies/study_manager.html", context)
    context |= {
        "worklist": reader_worklist(reader=request.user, study=study),
    }
    return render(request, "studies/study_reader.html", context)


@require_POST
def reading_open(request: HttpRequest, case_pk: int, session: int) -> HttpResponse:
    case = case_for_reader(request.user, case_pk)
    try:
        reading = services.reading_open(reader=request.user, case=case, session=session)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("study", pk=case.study_id)
    return redirect("readers:detail", public_id=reading.public_id)


@require_http_methods(["GET", "POST"])
def reading_detail(request: HttpRequest, public_id: UUID) -> HttpResponse:
    reading, writable = reading_for_user(request.user, public_id)
    rois_text = json.dumps(reading.rois, indent=2) if reading.rois else ""
    status = 200
    if request.method == "POST":
        reading = reading_for_writer(request.user, public_id)
        rois_text = request.POST.get("rois", "")
        try:
            data = loads_untrusted(rois_text, max_bytes=WEB_ROI_LIMITS.max_bytes)
            _check_web_limits(reading, data)
            services.reading_save_rois(reading=reading, data=data)
        except (ValueError, ValidationError) as exc:
            error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            messages.error(request, f"Not saved: {error}")
            status = 400
        else:
            messages.success(request, "ROIs saved; the score is being computed.")
            return redirect("readers:detail", public_id=reading.public_id)
    series = reading.case.reading_series
    is_own = reading.reader_id == request.user.pk
    score_shown = score_visible(reading, is_own=is_own)
    if not is_own and request.method == "GET":  # a manager (or site admin) looks at a reading
        record(Action.READING_VIEWED, request=request, obj=reading)
    return render(
        request,
        "readers/reading_detail.html",
        {
            "reading": reading,
            "writable": writable,
            "is_own": is_own,
            "rois_text": rois_text,
            "series": series,
            "instances": series.instances.readable() if series else [],
            "result": reading.current_result() if score_shown else None,
            "score_hidden": None if score_shown else score_hidden_words(reading),
            "score_waiting": reading_score_waiting(reading=reading),
            # An adjudicator's own measurement (issue 14) is no case of a reader's worklist.
            "position": reading_position(reading=reading)
            if is_own and not hasattr(reading, "adjudication_consensus")
            else None,
            "just_submitted": request.session.pop(JUST_SUBMITTED, None) if is_own else None,
            "revisions": reading_revisions(reading=reading) if not is_own else [],
            "viewer": viewer_payload(request, reading, writable) if is_own and series else None,
            "exclusion_reasons": list(REASON_NAMES.items()),
            "csf_levels": _csf_levels(),
            "csf_level": _csf_level_of(reading),
        },
        status=status,
    )


def _csf_level_of(reading: Reading) -> str:
    """The level of the reading's CSF ROI (the read-only page shows it as text, not a menu)."""
    rois = reading.rois.get("rois", []) if isinstance(reading.rois, dict) else []
    csf = next((r for r in rois if isinstance(r, dict) and r.get("label") == CSF), None)
    level = csf.get("level") if csf else None
    return level if isinstance(level, str) else DEFAULT_CSF_LEVEL


def _csf_levels() -> list[str]:
    """The CSF levels the viewer's list offers: the default, then the levels next to it."""
    i = LEVELS.index(DEFAULT_CSF_LEVEL)
    return [DEFAULT_CSF_LEVEL, *LEVELS[max(i - 1, 0) : i], *LEVELS[i + 1 : i + 2]]


def viewer_payload(request: HttpRequest, reading: Reading, writable: bool) -> dict[str, object]:
    """Everything the viewer starts from, as one JSON document in the page.

    Blinding: it holds this reading and nothing else: no other reader's ROIs or scores, and
    nothing of the reader's earlier sessions (``reading_for_user`` refuses those readings, and
    the payload never looks beyond the one it is given).

    ``vocabulary`` carries the words of ``studies.vocabulary`` (levels, CSF label, exclusion
    reasons, shapes, default CSF level), so that the viewer defines none of them itself.
    """
    series = reading.case.reading_series
    assert series is not None
    return {
        "reading": {
            "id": str(reading.public_id),  # never the sequential pk (issue 12)
            "session": reading.session,
            "status": reading.status,
            "writable": writable,
            "locked": reading.is_locked,
            "roi_version": reading.roi_version,
            "rois": reading.rois,
        },
        "csrf_token": get_token(request),
        # The reading time so far: the viewer's counts continue from it (issue 13 item 6).
        "timing": {
            "active_seconds": reading.active_seconds,
            "level_seconds": reading.level_seconds,
        },
        "case": {"label": reading.case.label},
        "study": {"sessions": reading.case.study.sessions},
        "dicomweb": {
            "root": request.build_absolute_uri(reverse("dicomweb:studies")).removesuffix(
                "/studies"
            ),
            "study_instance_uid": reading.case.study_instance_uid,
            "series_instance_uid": series.series_instance_uid,
        },
        "urls": {
            "save": reverse("readers:rois", kwargs={"public_id": reading.public_id}),
            "submit": reverse("readers:submit_json", kwargs={"public_id": reading.public_id}),
            "score": reverse("readers:score", kwargs={"public_id": reading.public_id}),
            "timing": reverse("readers:timing", kwargs={"public_id": reading.public_id}),
            "study": reverse("study", kwargs={"pk": reading.case.study_id}),
            "next": reverse("readers:next", kwargs={"public_id": reading.public_id}),
            "worker": static("dist/decodeImageFrameWorker.js"),
            "wasm": request.build_absolute_uri(settings.STATIC_URL + "dist/wasm/"),
        },
        "vocabulary": {
            "levels": list(LEVELS),
            "csf": CSF,
            "reasons": list(REASONS),
            "shapes": list(SHAPES),
            "default_csf_level": DEFAULT_CSF_LEVEL,
        },
    }


@require_POST
def reading_rois(request: HttpRequest, public_id: UUID) -> JsonResponse:
    """The viewer's autosave: a ``vbq.rois/1`` JSON body replaces the reading's ROI set.

    Refusals change nothing and say why: 400 for JSON that is not a valid ROI set of this case
    (unknown keys, NaN, an instance of another series...), 403 for a reading that can no longer
    change, 404 for a reading that is not the user's, 409 for an edit made on an older version
    than the reading's (``X-VBQ-Base-Version``: another window or tab saved since; the answer
    carries the current ``roi_version`` and ``rois``). Without that header the last save wins.
    """
    try:
        reading = reading_for_writer(request.user, public_id)
    except PermissionDenied as exc:
        return _refused(request, public_id, exc)
    timing = None
    try:
        data = request_json(request, max_bytes=WEB_ROI_LIMITS.max_bytes)
        _check_web_limits(reading, data)
        timing = _timing_header(request)
        base = _base_version_header(request)
        reading = services.reading_save_rois(reading=reading, data=data, base_version=base)
        if timing is not None:
            services.reading_record_time(reading=reading, timing=timing)
    except services.RoiVersionConflict as conflict:
        if timing is not None:  # the time was spent all the same
            services.reading_record_time(reading=reading, timing=timing)
        error = "Not saved: this reading was changed in another window or tab."
        body = {"error": error, "roi_version": conflict.roi_version, "rois": conflict.rois}
        return JsonResponse(body, status=409)
    except (ValueError, ValidationError) as exc:
        error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return JsonResponse({"error": error}, status=400)
    return JsonResponse({"status": "saved", "roi_version": reading.roi_version})


TIMING_HEADER = "X-VBQ-Timing"
"""The viewer's reading time rides on each autosave in this header (JSON), so that the ROI
set's body stays the spec's ``vbq.rois/1`` document."""


def _timing_header(request: HttpRequest) -> object | None:
    raw = request.headers.get(TIMING_HEADER)
    return None if raw is None else loads_untrusted(raw, max_bytes=2048)


BASE_VERSION_HEADER = "X-VBQ-Base-Version"
"""The ROI version the viewer's edit was made on (the one it loaded or the server last
acknowledged), for the save's optimistic concurrency (``services.reading_save_rois``)."""


def _base_version_header(request: HttpRequest) -> int | None:
    raw = request.headers.get(BASE_VERSION_HEADER)
    if raw is None:
        return None
    if not raw.strip().isdigit() or len(raw.strip()) > 12:
        raise ValueError(f"{BASE_VERSION_HEADER} must be a version number.")
    return int(raw)


@require_POST
def reading_timing(request: HttpRequest, public_id: UUID) -> JsonResponse:
    """The viewer's reading time on its own (``{"active_seconds": s, "level_seconds": {...}}``),
    sent every minute of activity and when the page is hidden or left, so that time spent
    without an edit is kept too. The server keeps the totals monotonic and bounded
    (``services.reading_record_time``); 403 once the reading is locked."""
    try:
        reading = reading_for_writer(request.user, public_id)
    except PermissionDenied as exc:
        return _refused(request, public_id, exc)
    try:
        reading = services.reading_record_time(reading=reading, timing=request_json(request))
    except (ValueError, ValidationError) as exc:
        error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return JsonResponse({"error": error}, status=400)
    return JsonResponse(
        {"active_seconds": reading.active_seconds, "level_seconds": reading.level_seconds}
    )


def _refused(request: HttpRequest, public_id: UUID, exc: PermissionDenied) -> JsonResponse:
    """A 403 that says what happened and what to do: a page left open on a draft that has
    since been submitted (in another tab, or before Back / Forward) can only be reloaded;
    ``reload`` tells the viewer to offer the button (issue 13 item 2)."""
    error = str(exc) or "This reading cannot be changed."
    try:
        reading, _ = reading_for_user(request.user, public_id)
    except PermissionDenied:  # an earlier session's reading, hidden now: its own words
        return JsonResponse({"error": error, "reload": True}, status=403)
    if reading.reader_id == request.user.pk and reading.is_locked:
        error = "Already submitted — reload to see the reading as it is now."
    return JsonResponse({"error": error, "reload": True}, status=403)


def _check_web_limits(reading: Reading, data: object) -> None:
    """Refuse (``RoiError``) a posted set beyond ``WEB_ROI_LIMITS`` or far off its images.

    A set that does not parse is left to ``services.reading_save_rois``, which refuses it with
    the parser's message, as before these limits.
    """
    try:
        roi_set = parse_roi_set(data)
    except RoiError:
        return
    series = reading.case.reading_series
    size = series_image_size(series=series) if series is not None else None
    rows, columns = size if size is not None else (None, None)
    check_roi_limits(roi_set, rows=rows, columns=columns)


@require_POST
def reading_submit_json(request: HttpRequest, public_id: UUID) -> JsonResponse:
    """The viewer's Submit: lock a complete reading (400 naming what is missing).

    A JSON body (read by the site's loader) may be empty or ``{}``, or carry ``confirm`` (the
    quality warnings' codes the reader confirmed) and ``timing`` (the reading time); a form
    post may carry ``confirm`` fields only. Anything else is a 400. Unconfirmed quality
    warnings (``readers.measurement.quality``) answer 409 with ``warnings`` (code, message,
    labels) and store nothing; the viewer asks the reader and submits again confirming them.
    """
    try:
        reading = reading_for_writer(request.user, public_id)
        if request.content_type == "application/json":
            parameters = request_json(request, allow_empty=True, empty={})
        else:
            parameters = {**request.POST, **request.FILES}
            if "confirm" in parameters:
                parameters["confirm"] = request.POST.getlist("confirm")
        if not isinstance(parameters, dict) or set(parameters) - {"confirm", "timing"}:
            raise JsonBodyError("the submit takes only confirm and timing: send {} or nothing")
        confirm = parameters.get("confirm", [])
        if not isinstance(confirm, list) or not all(isinstance(c, str) for c in confirm):
            raise JsonBodyError("confirm must be a list of warning codes")
        reading = services.reading_submit(
            reading=reading, confirmed=confirm, timing=parameters.get("timing")
        )
    except PermissionDenied as exc:
        return _refused(request, public_id, exc)
    except JsonBodyError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except services.QualityWarnings as exc:
        return JsonResponse(
            {
                "error": "Check these before submitting.",
                "warnings": [w.to_json() for w in exc.report.warnings],
            },
            status=409,
        )
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    return JsonResponse({"status": reading.status, "roi_version": reading.roi_version})


@require_POST
def reading_submit(request: HttpRequest, public_id: UUID) -> HttpResponse:
    reading = reading_for_writer(request.user, public_id)
    try:
        services.reading_submit(reading=reading, confirmed=request.POST.getlist("confirm"))
    except services.QualityWarnings as exc:
        for warning in exc.report.warnings:
            messages.warning(request, f"{warning.message} (confirm={warning.code})")
        messages.error(request, "Not submitted: post again with each confirm=<code> to confirm.")
    except ValidationError as exc:
        messages.error(request, "Not submitted: " + " ".join(exc.messages))
    else:
        messages.success(request, "Reading submitted.")
    return redirect("readers:detail", public_id=reading.public_id)


@never_cache
@require_GET
def reading_score(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """The current score for polling: pending until the worker has stored a result.

    Conditional: the answer carries an ``ETag`` (a hash of its body), and a poll that sends it
    back in ``If-None-Match`` while nothing changed gets a 304 without a body. Polling is a
    large share of a reading session's requests (a poll or two after every autosave), and
    most polls find nothing new. The viewer sends the tag itself: the answer stays
    ``no-store`` (a score must not stay on a shared workstation's disk), so the browser's own
    cache never revalidates it.
    """
    reading, _ = reading_for_user(request.user, public_id)
    is_own = reading.reader_id == request.user.pk
    payload = _score_answer(reading, is_own=is_own, wait=request.GET.get("wait") == "1")
    body = json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"))
    etag = f'"{hashlib.blake2b(body.encode(), digest_size=12).hexdigest()}"'
    if _etags(request.headers.get("If-None-Match", "")) & {etag, "*"}:
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    return response


def _score_answer(reading: Reading, *, is_own: bool, wait: bool) -> dict[str, object]:
    """The score's payload; with ``wait`` (``?wait=1``), a pending score is waited for on the
    server, up to ``VBQ_SCORE_WAIT_SECONDS``, until the worker announces a result.

    Why: polling on a schedule shows a score on the schedule's next tick (the viewer's first
    poll waited half a second whatever the worker did), and each tick is a request. Waiting
    here shows it when it is stored, with one request. The wait holds a web thread but no
    database transaction, and at most ``VBQ_SCORE_WAITERS`` threads of a process wait at once:
    beyond that (or without Redis) the answer is immediate and the viewer polls as before.
    """

    def answer() -> dict[str, object]:
        if score_visible(reading, is_own=is_own):
            return score_payload(reading)
        return hidden_score_payload(reading)

    payload = answer()
    if not wait or payload["status"] != "pending":
        return payload  # most polls: nothing to wait for, no subscription
    with notify.waiting_on(notify.score_topic(reading.pk)) as waiter:
        end = time.monotonic() + settings.VBQ_SCORE_WAIT_SECONDS
        # Read again once subscribed: a score stored in between is not waited for.
        reading.refresh_from_db(fields=["roi_version", "rois", "status"])
        payload = answer()
        while payload["status"] == "pending" and waiter.wait(end - time.monotonic()):
            reading.refresh_from_db(fields=["roi_version", "rois", "status"])
            payload = answer()
    return payload


def _etags(header: str) -> set[str]:
    """The tags of an ``If-None-Match`` header (weak ones compared as strong: a score's body
    is the whole of its identity)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def score_payload(reading: Reading) -> dict[str, object]:
    """``status`` is ``empty``, ``pending`` or the result's; while pending,
    ``waiting_for_worker`` says that no worker has picked the scoring up yet."""
    result = reading.current_result()
    if not reading.rois:
        return {"status": "empty", "roi_version": reading.roi_version}
    if result is None:
        return {
            "status": "pending",
            "roi_version": reading.roi_version,
            "waiting_for_worker": reading_score_waiting(reading=reading),
        }
    return {
        "status": result.status,
        "roi_version": result.roi_version,
        "vbq": result.vbq,
        "message": result.message,
        "computed_at": result.computed_at.isoformat(),
        "detail": result.detail,
    }


JUST_SUBMITTED = "vbq.just_submitted"
"""The session key of "Case 3 submitted" for the next reading's page (``reading_next``)."""


def score_visible(reading: Reading, *, is_own: bool) -> bool:
    """Whether the reading's VBQ may be shown to whoever looks: its managers always; its own
    reader as the study's ``score_visibility`` says (a score shown while drafting lets a reader
    nudge ROIs across a threshold, so the default waits for the submission)."""
    if not is_own:
        return True
    visibility = reading.case.study.score_visibility
    if visibility == ScoreVisibility.LIVE:
        return True
    return visibility == ScoreVisibility.AFTER_SUBMIT and reading.is_locked


def score_hidden_words(reading: Reading) -> str:
    """Why the reader does not see the score (the page and ``score.json`` say the same)."""
    if reading.case.study.score_visibility == ScoreVisibility.HIDDEN:
        return "This study does not show scores to readers."
    return "The score shows once you submit."


def hidden_score_payload(reading: Reading) -> dict[str, object]:
    """``score.json`` for a reader who may not see the score: no figure, no per-level detail,
    nothing that changes with the ROIs but the version (the viewer's polling ends on it)."""
    if not reading.rois:
        return {"status": "empty", "roi_version": reading.roi_version}
    return {
        "status": "hidden",
        "roi_version": reading.roi_version,
        "message": score_hidden_words(reading),
    }


@require_POST
def reading_next(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Save and next: from a reading, open the next case of its session that its reader has
    not submitted (in the reader's order, wrapping round), or go back to the study's page with
    "session complete". Its own reader only: a manager, who sees the reading, gets a 403;
    anyone else the 404 of an absent reading (``reading_for_user``)."""
    reading, _ = reading_for_user(request.user, public_id)
    if reading.reader_id != request.user.pk:
        raise PermissionDenied("Only the reading's reader goes on to their next case.")
    if hasattr(reading, "adjudication_consensus"):  # an adjudicator's measurement: back to
        return redirect("adjudication:worklist", pk=reading.case.study_id)  # the worklist
    case = next_case_to_read(reading=reading)
    if case is None:
        messages.success(
            request,
            f"{reading.case.label} submitted. Session {reading.session} is complete: "
            "every case is submitted.",
        )
        return redirect("study", pk=reading.case.study_id)
    try:
        following = services.reading_open(reader=request.user, case=case, session=reading.session)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("study", pk=reading.case.study_id)
    if reading.is_locked:
        # Said in the next reading's panel (a banner above the viewer would push it off the
        # screen), with the score when the study shows it once submitted.
        result = reading.current_result() if score_visible(reading, is_own=True) else None
        request.session[JUST_SUBMITTED] = {
            "label": reading.case.label,
            "vbq": result.vbq if result is not None else None,
        }
    return redirect("readers:detail", public_id=following.public_id)
