"""The one way the site reads JSON from a request: bounded, strict, and never a 500.

Every JSON endpoint (the viewer's autosave and submit, the upload announcement) takes its body
from a browser that may be hostile or broken, so the same rules apply to all of them, and a
refusal is a 400 naming the reason instead of a crash:

- **size**: at most ``max_bytes`` (each endpoint says how much it needs), checked on the
  declared ``Content-Length`` before the body is read, and on the bytes read;
- **nesting**: at most ``max_depth`` levels of arrays and objects, counted before decoding.
  Python's decoder recurses once per level, so 4 KB of ``[[[[…`` would otherwise end in a
  ``RecursionError`` (an uncaught 500), not a ``ValueError``;
- **strict JSON**: UTF-8 only; a duplicate key in an object is refused (decoders disagree on
  which value wins, so a body could mean one thing to a proxy or a log and another here);
  ``NaN`` and ``Infinity``, which Python's decoder accepts but JSON does not, are refused; a
  number too long for Python's integer conversion limit is refused too.

Why here: the same loader serves ``readers`` and ``studies`` (which may not import
``readers``); ``vbqweb`` is the shared layer both import.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from django.http import HttpRequest

MAX_DEPTH: Final = 16
"""Levels of arrays and objects a body may nest. The deepest document the site reads, an ROI set
(object → rois → ROI → points → point), needs 5."""

SMALL_BODY_BYTES: Final = 16 * 1024
"""The default size limit: commands and announcements (submit, a new upload) are a few hundred
bytes; the ROI save sets its own (``readers.measurement.rois.WEB_ROI_LIMITS``)."""

# A JSON string (escapes included); brackets inside one do not nest anything. The pattern has a
# single way to match each character, so it runs in linear time on any input.
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET: Final = re.compile(r"[\[\]{}]")


class JsonBodyError(ValueError):
    """The body is not JSON the site accepts; the message says why (shown to the user)."""


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (0 for a scalar), without decoding.

    Brackets inside strings are ignored. On malformed text (an unterminated string) the count
    may come out too high, which only refuses text that the decoder would refuse anyway.
    """
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match[0] in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JsonBodyError(f"duplicate key {key!r} in a JSON object")
        result[key] = value
    return result


def _refuse_constant(name: str) -> None:
    raise JsonBodyError(f"{name} is not a number")


def loads_untrusted(
    raw: bytes | str, *, max_bytes: int = SMALL_BODY_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """Decode untrusted JSON text (``str``, or UTF-8 ``bytes``) under the rules above.

    Raises :class:`JsonBodyError` saying why the text is refused.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise JsonBodyError(f"the body is {len(data)} bytes; at most {max_bytes} are accepted")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonBodyError(f"not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not text.strip():
        raise JsonBodyError("the body is empty; a JSON document was expected")
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JsonBodyError(f"JSON nested {depth} levels deep; at most {max_depth} are accepted")
    try:
        return json.loads(
            text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant
        )
    except json.JSONDecodeError as error:
        raise JsonBodyError(
            f"invalid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except JsonBodyError:
        raise
    except ValueError as error:  # e.g. an integer past sys.get_int_max_str_digits()
        raise JsonBodyError(f"invalid JSON: {error}") from None


def request_json(
    request: HttpRequest,
    *,
    max_bytes: int = SMALL_BODY_BYTES,
    max_depth: int = MAX_DEPTH,
    empty: Any = None,
    allow_empty: bool = False,
) -> Any:
    """The request's body decoded by :func:`loads_untrusted`.

    The declared ``Content-Length`` is checked first, so an oversized body is refused without
    being read. With ``allow_empty`` an empty body is ``empty`` (for commands whose body is
    optional, such as the viewer's submit).
    """
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise JsonBodyError("bad Content-Length") from None
    if declared > max_bytes:
        raise JsonBodyError(f"the body is {declared} bytes; at most {max_bytes} are accepted")
    body = request.body
    if allow_empty and not body.strip():
        return empty
    return loads_untrusted(body, max_bytes=max_bytes, max_depth=max_depth)
