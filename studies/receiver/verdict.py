"""Is one received file an instance the site reads? A DICOM status and a reason for the sender.

A PACS (C-STORE) or a script (STOW-RS) learns at once, per instance, whether it was taken: the
same checks the ingest runs on an uploaded file
(:func:`studies.ingest.untrusted.read_untrusted_bytes`: only MR images, nothing truncated or
malformed, no pixel header that claims too much), so what is refused here is never staged,
and what is taken is what the ingest would read. The status codes are PS3.4's C-STORE ones
(Table B.2-1), which STOW-RS reuses as ``FailureReason`` (PS3.18 Table 10.5.3-2): the
sender's operator sees them in its own log.

Pure module: pydicom and ``studies.ingest``; no Django.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Final

from pydicom import dcmread
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.uid import UID

from studies.ingest.sources import DEFAULT_LIMITS, IngestLimits
from studies.ingest.untrusted import quiet_pydicom, read_untrusted_bytes
from studies.ingest.values import _SC_SOP_CLASSES

SUCCESS: Final = 0x0000
SOP_CLASS_NOT_SUPPORTED: Final = 0x0122
"""Refused: SOP Class not supported (not an MR image)."""
OUT_OF_RESOURCES: Final = 0xA700
"""Refused: out of resources (too large; the file store is unreachable: try again later)."""
CANNOT_UNDERSTAND: Final = 0xC000
"""Error: cannot understand (truncated, malformed, a colour MR image, ...)."""

MR_SOP_CLASSES: Final = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
        "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image Storage
        "1.2.840.10008.5.1.4.1.1.4.4",  # Legacy Converted Enhanced MR Image Storage
    }
)
READ_SOP_CLASSES: Final = MR_SOP_CLASSES | _SC_SOP_CLASSES
"""What the ingest reads: MR images, and secondary captures of modality MR (quarantined)."""
_COMMENT: Final = 64
"""Error Comment (0000,0902) is an LO: at most 64 characters."""


@dataclass(frozen=True)
class Refusal:
    """Why an instance was not taken: ``status`` for the sender's protocol, ``reason`` for
    people (the same words as the upload report's)."""

    status: int
    reason: str

    @property
    def comment(self) -> str:
        """The reason as a C-STORE Error Comment (64 characters at most)."""
        text = " ".join(self.reason.split())
        return text if len(text) <= _COMMENT else text[: _COMMENT - 3] + "..."


def judge(
    data: bytes, *, sop_class: str = "", limits: IngestLimits = DEFAULT_LIMITS
) -> Refusal | None:
    """None when the site reads this Part 10 file, else the refusal.

    ``sop_class`` is the class the sender announced (the C-STORE's Affected SOP Class UID); a
    class the ingest never reads is refused before the bytes are parsed.
    """
    if sop_class and sop_class not in READ_SOP_CLASSES:
        return Refusal(
            SOP_CLASS_NOT_SUPPORTED,
            f"SOP class {sop_class} is not an MR image: VBQ is measured on MR images only",
        )
    if len(data) > limits.max_file_bytes:
        return Refusal(OUT_OF_RESOURCES, "the instance is larger than the limit of one file")
    result = read_untrusted_bytes(data, limits)
    if result.dataset is not None:
        return None
    reason = result.reason or "unreadable"
    status = SOP_CLASS_NOT_SUPPORTED if "MR images only" in reason else CANNOT_UNDERSTAND
    return Refusal(status, reason)


def peek_uids(data: bytes) -> tuple[str, str]:
    """(SOP Class UID, SOP Instance UID) of a Part 10 file as far as they can be read, else
    empty strings: for a STOW-RS answer that names even a refused instance when it can.

    Only the two elements are read, never pixel data; a deflated data set is not inflated
    (its bound is :func:`judge`'s business).
    """
    if len(data) < 132 or data[128:132] != b"DICM":
        return "", ""
    try:
        with quiet_pydicom():
            stream = io.BytesIO(data)
            read_preamble(stream, False)
            syntax = UID(str(_read_file_meta_info(stream).get("TransferSyntaxUID", "")))
            if not syntax.is_transfer_syntax or syntax.is_deflated:
                return "", ""
            ds = dcmread(
                io.BytesIO(data),
                stop_before_pixels=True,
                specific_tags=["SOPClassUID", "SOPInstanceUID"],
            )
            values = [str(ds.get(keyword, "")) for keyword in ("SOPClassUID", "SOPInstanceUID")]
    except Exception:  # hostile or truncated: the answer names no UID
        return "", ""
    sop_class, sop_instance = (v if len(v) <= 64 and UID(v).is_valid else "" for v in values)
    return sop_class, sop_instance
