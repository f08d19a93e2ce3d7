"""WADO-RS rendered resources and thumbnails (PS3.18 8.3.5, 10.4.1.1.3), scoped to the user.

Rendered: ``.../instances/{i}/rendered`` (frame 1; every frame, multipart, when the Accept
header asks for ``multipart/related``), ``.../frames/{list}/rendered`` (one image per frame:
one frame is one image, more are multipart), and ``.../series/{r}/rendered`` and
``/studies/{s}/rendered`` (multipart, one image per instance; a single-image Accept gets the
representative instance, the same one the thumbnail shows). Thumbnails: the same at every level
with a 128-pixel viewport unless ``viewport`` says otherwise, of the representative instance (the
middle of the series by instance number: a sagittal spine series is planned around the midline).
The pixels are rendered by ``readers.dicomweb.render`` (pure); query parameters ``window``,
``viewport``, ``quality``; ``annotation`` and ``charset`` are accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from readers.access import (
    image_case_for_user,
    image_series_for_user,
    instances_for_user,
)
from readers.dicomweb import io, render
from readers.dicomweb.views import (
    IMMUTABLE,
    ORDER,
    REVALIDATE,
    _etag,
    _instance_key,
    cached,
    instance_retrieved,
    plain,
)
from studies.models import Instance
from vbqweb.audit.services import record_image_retrieval


def _options(request: HttpRequest, *, thumbnail: bool) -> dict[str, object]:
    viewport = render.parse_viewport(request.GET.get("viewport"))
    return {
        "window": render.parse_window(request.GET.get("window")),
        "viewport": render.thumbnail_viewport(viewport) if thumbnail else viewport,
        "quality": render.parse_quality(request.GET.get("quality")),
    }


def _images(
    request: HttpRequest,
    items: Sequence[tuple[Instance, Sequence[int]]],
    *,
    thumbnail: bool,
    cache_control: str,
    single_only: bool = False,
) -> HttpResponse:
    """Render ``(instance, frame numbers)`` pairs: one image, or multipart when several are
    asked for and the Accept header allows it."""
    accept = request.headers.get("Accept", "")
    ranges = [(m.media_type, m.params) for m in io.parse_accept(accept)]
    chosen = render.rendered_media_type(ranges)
    if chosen is None:
        return plain("rendered images are image/jpeg, image/png or image/gif", 406)
    media, multipart = chosen
    try:
        options = _options(request, thumbnail=thumbnail)
    except render.RenderError as error:
        return plain(str(error), 400)
    pairs = [(i, n) for i, numbers in items for n in numbers]
    if single_only or not multipart:
        pairs = pairs[len(pairs) // 2 : len(pairs) // 2 + 1] if len(items) > 1 else pairs[:1]
    etag = _etag(
        "rendered", thumbnail, accept, request.GET.urlencode(),
        *(f"{_instance_key(i)}#{n}" for i, n in pairs),
    )  # fmt: skip

    def build() -> HttpResponse:
        images = []
        for item, number in pairs:
            with item.file.open("rb") as fh:
                ds = io.read_full(fh)
            try:
                images.append(render.render(ds, number, media_type=media, **options))  # type: ignore[arg-type]
            except render.RenderError as error:
                return plain(str(error), 404 if "does not exist" in str(error) else 406)
        if len(images) == 1 and not (multipart and not single_only):
            return HttpResponse(images[0], content_type=media)
        boundary = io.new_boundary()
        body = io.multipart_body(((media, image) for image in images), boundary)
        return HttpResponse(body, content_type=io.multipart_content_type(media, boundary))

    return cached(request, etag, cache_control, build)


def _frames_of(instance: Instance) -> list[int]:
    with instance.file.open("rb") as fh:
        return list(range(1, io.number_of_frames(io.read_header(fh)) + 1))


def _ordered(instances: object) -> list[Instance]:
    return list(instances.select_related("series__case").order_by(*ORDER))  # type: ignore[attr-defined]


def _middle(instances: list[Instance]) -> list[Instance]:
    return instances[len(instances) // 2 : len(instances) // 2 + 1]


# --- rendered ----------------------------------------------------------------------------------


@require_GET
def study_rendered(request: HttpRequest, study_uid: str) -> HttpResponse:
    case = image_case_for_user(request.user, study_uid)
    record_image_retrieval(request=request, study_uid=study_uid)
    instances = _ordered(instances_for_user(request.user).filter(series__case=case))
    items = [(i, [1]) for i in instances]
    return _images(request, items, thumbnail=False, cache_control=REVALIDATE)


@require_GET
def series_rendered(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    found = image_series_for_user(request.user, study_uid, series_uid)
    record_image_retrieval(request=request, study_uid=study_uid)
    instances = _ordered(instances_for_user(request.user).filter(series=found))
    items = [(i, [1]) for i in instances]
    return _images(request, items, thumbnail=False, cache_control=REVALIDATE)


@require_GET
def instance_rendered(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str
) -> HttpResponse:
    found = instance_retrieved(request, study_uid, series_uid, sop_uid)
    media = render.rendered_media_type(
        [(m.media_type, m.params) for m in io.parse_accept(request.headers.get("Accept"))]
    )
    numbers = _frames_of(found) if media is not None and media[1] else [1]
    return _images(request, [(found, numbers)], thumbnail=False, cache_control=IMMUTABLE)


@require_GET
def frames_rendered(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str, frame_list: str
) -> HttpResponse:
    found = instance_retrieved(request, study_uid, series_uid, sop_uid)
    try:
        numbers = io.parse_frame_list(frame_list)
    except io.FrameError as error:
        return plain(str(error), 400)
    return _images(request, [(found, numbers)], thumbnail=False, cache_control=IMMUTABLE)


# --- thumbnails --------------------------------------------------------------------------------


@require_GET
def study_thumbnail(request: HttpRequest, study_uid: str) -> HttpResponse:
    case = image_case_for_user(request.user, study_uid)
    record_image_retrieval(request=request, study_uid=study_uid)
    instances = _ordered(instances_for_user(request.user).filter(series__case=case))
    first_series = [i for i in instances if i.series_id == instances[0].series_id]
    return _images(
        request, [(i, [1]) for i in _middle(first_series)], thumbnail=True,
        cache_control=REVALIDATE, single_only=True,
    )  # fmt: skip


@require_GET
def series_thumbnail(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    found = image_series_for_user(request.user, study_uid, series_uid)
    record_image_retrieval(request=request, study_uid=study_uid)
    instances = _ordered(instances_for_user(request.user).filter(series=found))
    return _images(
        request, [(i, [1]) for i in _middle(instances)], thumbnail=True,
        cache_control=REVALIDATE, single_only=True,
    )  # fmt: skip


@require_GET
def instance_thumbnail(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str
) -> HttpResponse:
    found = instance_retrieved(request, study_uid, series_uid, sop_uid)
    return _images(
        request, [(found, [1])], thumbnail=True, cache_control=IMMUTABLE, single_only=True
    )


@require_GET
def frames_thumbnail(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str, frame_list: str
) -> HttpResponse:
    found = instance_retrieved(request, study_uid, series_uid, sop_uid)
    try:
        numbers = io.parse_frame_list(frame_list)
    except io.FrameError as error:
        return plain(str(error), 400)
    return _images(
        request, [(found, numbers[:1])], thumbnail=True, cache_control=IMMUTABLE, single_only=True
    )
