"""The parts of a ``multipart/related`` body (RFC 2387), as STOW-RS sends instances.

Django parses ``multipart/form-data`` only, and its parser holds fields in memory; a STOW-RS
request is a ``multipart/related`` body of whole DICOM files, often hundreds of megabytes. The
body is first spooled to a temporary file (by the view, with a size cap), then this module walks
it through a memory map: each part's headers and the file offsets of its content, one part's
bytes read at a time.

Pure module: the standard library only.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Final

_MAX_HEADER_BYTES: Final = 16 << 10


class MultipartError(ValueError):
    """The body is not the multipart/related message its Content-Type announces."""


@dataclass(frozen=True)
class Part:
    """One body part: its headers (lower-case names) and where its content lies in the file."""

    headers: dict[str, str] = field(default_factory=dict)
    start: int = 0
    end: int = 0

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case; empty when the part names none."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise MultipartError("a part's header line has no colon")
        headers[name.strip().lower()] = value.strip()
    return headers


def iter_parts(body: IO[bytes], boundary: str) -> Iterator[tuple[Part, mmap.mmap]]:
    """Each part of ``body`` (a real file) with the map to read its content from
    (``view[part.start:part.end]``). Raises :class:`MultipartError` on a malformed body; the
    parts before the problem have been yielded."""
    if not boundary or len(boundary) > 70:
        raise MultipartError("the Content-Type's boundary is missing or longer than 70 characters")
    body.seek(0, 2)
    if body.tell() == 0:
        return
    delimiter = b"--" + boundary.encode("latin-1")
    with mmap.mmap(body.fileno(), 0, access=mmap.ACCESS_READ) as view:
        position = view.find(delimiter)
        if position < 0 or (position > 0 and view[position - 2 : position] != b"\r\n"):
            raise MultipartError("the body does not start with its boundary")
        separator = b"\r\n" + delimiter
        while True:
            position += len(delimiter)
            if view[position : position + 2] == b"--":
                return  # the close delimiter
            line_end = view.find(b"\r\n", position)
            if line_end < 0:
                raise MultipartError("the body ends after a boundary")
            if view[line_end + 2 : line_end + 4] == b"\r\n":
                header_end = line_end  # a part without headers
            else:
                header_end = view.find(b"\r\n\r\n", line_end + 2, line_end + _MAX_HEADER_BYTES)
                if header_end < 0:
                    raise MultipartError("a part's headers do not end")
            headers = _headers(view[line_end + 2 : header_end]) if header_end > line_end else {}
            start = header_end + 4
            end = view.find(separator, start)
            if end < 0:
                raise MultipartError("the body ends inside a part (no closing boundary)")
            yield Part(headers, start, end), view
            position = end + 2
