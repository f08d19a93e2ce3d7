"""What identifies a patient, and what replaces it: keyed derivations and identifier checks.

The de-identification (:mod:`studies.ingest.deid_engine`) asks this module four kinds of
question, each answered from the dataset as read, before anything is cleaned:

* keyed derivations, each an HMAC-SHA256 under the site secret with its own purpose label: the
  ``2.25.`` UID that replaces a UID (:func:`new_uid`), the per-patient date shift
  (:func:`date_shift_days`) and the pseudonym ``VBQ-`` + 10 hex digits (:func:`pseudonym`), the
  last two derived from the patient's identity (:func:`patient_identity`), so that a patient's
  studies stay together and nothing can be re-derived without the secret;
* identifiers: every kept LO/SH value is checked against the identifiers read from the dataset
  before cleaning (name components, IDs, accession number, birth date, institution, station,
  serial number, physicians) and removed when it contains one;
* descriptors: Series Description and Protocol Name are kept only when they hold nothing shaped
  like a person name, a date or an ID (:func:`descriptor_is_clean`);
* burned-in annotation: pixel data is never touched; burned-in annotation is not cleaned but
  *detected* (declared, or a secondary/screen capture) and reported as a quarantine reason
  (:func:`burned_in_reason`).

These are the profile's judgements of *content*, apart from the table of actions and from the
walk that applies them, so that each can be read and tested on its own (ingest also calls
:func:`new_uid` to find stored instances again).

Pure module: pydicom and the standard library only (no Django), ``mypy --strict`` clean.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from studies.ingest.values import _SC_SOP_CLASSES, _peek, _text

__all__ = [
    "burned_in_reason",
    "date_shift_days",
    "descriptor_is_clean",
    "new_uid",
    "patient_identity",
    "pseudonym",
]

_SCREEN_WORDS: Final = ("SCREEN", "CAPTURE", "SNAPSHOT", "REPORT", "ANNOTAT")


# --- keyed derivations -------------------------------------------------------------------------


def _mac(secret: bytes, purpose: bytes, text: str) -> bytes:
    """HMAC-SHA256 of ``text`` under the site secret, with a purpose label for domain separation."""
    return hmac.new(secret, purpose + b"\x00" + text.encode("utf-8"), hashlib.sha256).digest()


def new_uid(original: str, secret: bytes) -> str:
    """The ``2.25.`` UID that replaces ``original``: the same input always maps to the same UID.

    The integer is the first 128 bits of an HMAC-SHA256 of the original UID under the site
    secret, so without the secret nothing links the new UID to the old one, and a 128-bit integer
    has at most 39 decimal digits: ``2.25.`` + 39 = 44 characters, within the 64 that UI allows.
    """
    value = int.from_bytes(_mac(secret, b"uid", original.strip().rstrip("\x00"))[:16], "big")
    return f"2.25.{value}"


def date_shift_days(patient_identity: str, secret: bytes, *, lo: int = 365, hi: int = 3652) -> int:
    """Days added to every date of this patient: negative, in ``[-hi, -lo]``, fixed per patient.

    Derived from the site secret and the patient's identity (see :func:`patient_identity`), so
    all of a patient's studies move together (intervals between them survive) while the shift
    itself cannot be recovered without the secret. Always into the past, so no date lands in
    the future.
    """
    if not 0 < lo <= hi:
        raise ValueError(f"need 0 < lo <= hi, got lo={lo}, hi={hi}")
    value = int.from_bytes(_mac(secret, b"date-shift", patient_identity)[:8], "big")
    return -(lo + value % (hi - lo + 1))


def pseudonym(patient_identity: str, secret: bytes) -> str:
    """``VBQ-`` + 10 upper-case hex digits: the de-identified Patient's Name and Patient ID."""
    return "VBQ-" + _mac(secret, b"patient", patient_identity)[:5].hex().upper()


def _norm_name(value: Any) -> str:
    """A person name for identity comparison: upper case, no empty trailing components."""
    groups = []
    for group in _text(value).upper().split("="):
        parts = [" ".join(p.split()) for p in group.split("^")]
        while parts and not parts[-1]:
            parts.pop()
        groups.append("^".join(parts))
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups)


def patient_identity(ds: Dataset) -> str:
    """The original identity of the patient, the input of the pseudonym and the date shift.

    Issuer of Patient ID, Patient ID, Patient's Name (normalised) and Birth Date together: a
    Patient ID shared by people with different names or birth dates (ID collisions across
    sites happen, see ``deid-cases/PatientIdsCollision_*``) yields different patients. With no
    patient attribute at all, each study stands for its own patient.
    """
    issuer = _text(_peek(ds, "IssuerOfPatientID")).upper()
    pid = _text(_peek(ds, "PatientID")).upper()
    name = _norm_name(_peek(ds, "PatientName"))
    birth = _text(_peek(ds, "PatientBirthDate"))
    if not (pid or name or birth):
        return "study\x1f" + _text(_peek(ds, "StudyInstanceUID"))
    return "\x1f".join(("patient", issuer, pid, name, birth))


# --- identifiers and descriptor checks ----------------------------------------------------------

_TOKEN: Final = re.compile(r"[^\W_]+", re.UNICODE)
_NAME_SHAPES: Final = (
    re.compile(r"\^"),
    re.compile(r"\b(?:dr|mr|mrs|ms|miss|prof|herr|frau)\b\.?\s*[a-z]", re.IGNORECASE),
    re.compile(r"\b[A-Z][a-z]+,\s*[A-Z][a-z]+\b"),
)
_MONTHS: Final = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE_SHAPES: Final = (
    re.compile(
        r"(?<!\d)(?:1[89]|20)\d\d[-./ ]?(?:0[1-9]|1[0-2])[-./ ]?(?:0[1-9]|[12]\d|3[01])(?!\d)"
    ),
    re.compile(r"(?<!\d)\d{1,2}[-./]\d{1,2}[-./](?:\d{4}|\d{2})(?!\d)"),
    re.compile(r"(?<!\d)\d{4}[-./]\d{1,2}[-./]\d{1,2}(?!\d)"),
    re.compile(rf"(?<![a-z0-9])\d{{1,2}}[-./ ]*{_MONTHS}[-./ ,]*(?:\d{{4}}|\d{{2}})(?!\d)", re.I),
    re.compile(rf"(?<![a-z]){_MONTHS}[-./ ]*\d{{1,2}}(?:st|nd|rd|th)?,?[-./ ]+\d{{4}}(?!\d)", re.I),
)
_ID_SHAPES: Final = (
    re.compile(r"\d{5,}"),
    re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"),
    re.compile(r"#\s*\d{3,}"),
)

# Person names and identifiers read before cleaning, for the identifier check.
_PERSON_TAGS: Final = (
    0x00080090,  # Referring Physician's Name
    0x0008009C,  # Consulting Physician's Name
    0x00081048,  # Physician(s) of Record
    0x00081050,  # Performing Physician's Name
    0x00081060,  # Name of Physician(s) Reading Study
    0x00081070,  # Operators' Name
    0x00101001,  # Other Patient Names
    0x00101005,  # Patient's Birth Name
    0x00101060,  # Patient's Mother's Birth Name
    0x00102297,  # Responsible Person
    0x00321032,  # Requesting Physician
)
_ID_TAGS: Final = (
    0x00080050,  # Accession Number
    0x00080080,  # Institution Name
    0x00080081,  # Institution Address
    0x00081010,  # Station Name
    0x00081040,  # Institutional Department Name
    0x00100021,  # Issuer of Patient ID
    0x00101000,  # Other Patient IDs
    0x00101040,  # Patient's Address
    0x00102154,  # Patient's Telephone Numbers
    0x00181000,  # Device Serial Number
    0x00200010,  # Study ID
    0x00400242,  # Performed Station Name
)


@dataclass(frozen=True)
class _Identifiers:
    """What must not survive in kept text: name tokens and identifier substrings (upper case)."""

    tokens: frozenset[str]
    substrings: tuple[str, ...]

    def found_in(self, text: str) -> bool:
        upper = text.upper()
        if any(s in upper for s in self.substrings):
            return True
        return any(t in self.tokens for t in _TOKEN.findall(upper))


def _name_tokens(value: Any, min_len: int) -> set[str]:
    tokens: set[str] = set()
    for group in _text(value).upper().split("="):
        # Family, given and middle names; prefixes and suffixes (DR, JR) identify nobody.
        for part in group.split("^")[:3]:
            tokens.update(t for t in _TOKEN.findall(part) if len(t) >= min_len)
    return tokens


def _birth_date_forms(value: str) -> list[str]:
    if not re.fullmatch(r"\d{8}", value):
        return [value] if len(value) >= 6 else []
    y, m, d = value[:4], value[4:6], value[6:]
    return [value, f"{y}-{m}-{d}", f"{d}.{m}.{y}", f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{y}/{m}/{d}"]


def _identifiers(ds: Dataset) -> _Identifiers:
    """Collect the patient's (and staff's, site's) identifiers from the dataset before cleaning."""
    tokens = _name_tokens(_peek(ds, "PatientName"), 2)
    for tag in _PERSON_TAGS:
        if tag in ds:
            tokens |= _name_tokens(_peek(ds, tag), 3)
    substrings: set[str] = set()
    name = _text(_peek(ds, "PatientName")).upper().strip("^= ")
    if len(name) >= 3:
        substrings.add(name)
    values: list[str] = [_text(_peek(ds, "PatientID"))]
    for tag in _ID_TAGS:
        if tag in ds:
            value = _peek(ds, tag)
            if not isinstance(value, DicomSequence):
                values.extend(_text(value).split("\\"))
    other = _peek(ds, "OtherPatientIDsSequence")
    if other is not None and isinstance(other, DicomSequence):
        values.extend(_text(item.get("PatientID")) for item in other)
    for value in values:
        value = value.upper().strip()
        if len(value) >= 3:
            substrings.add(value)
        # Addresses and long names: their comma/caret separated parts identify too.
        for part in re.split(r"[,^;\n\r]+", value):
            part = part.strip()
            if len(part) >= 4 and part != value:
                substrings.add(part)
    substrings.update(_birth_date_forms(_text(_peek(ds, "PatientBirthDate"))))
    return _Identifiers(frozenset(tokens), tuple(sorted(s for s in substrings if s)))


def descriptor_is_clean(text: str, identifiers: Iterable[str] = ()) -> bool:
    """True when a Series Description or Protocol Name may be kept (narrow Clean Descriptors).

    It must contain none of ``identifiers`` (case-insensitive, as substrings) and nothing shaped
    like a person name (``^`` separators, titles, "Last, First"), a date (``20240131``,
    ``31.01.2024``, ``Jan 31, 2024`` ...) or an ID (five or more digits in a row, ``123-45-6789``,
    ``#1234``). Scanner series names ("SAG T1 TSE", "t1_tse_sag_p2_320") pass.
    """
    upper = text.upper()
    if any(ident and ident.upper() in upper for ident in identifiers):
        return False
    return not any(p.search(text) for p in (*_NAME_SHAPES, *_DATE_SHAPES, *_ID_SHAPES))


def burned_in_reason(ds: Dataset) -> str | None:
    """Why the pixels may show identifying text (quarantine), or None.

    Declared (Burned In Annotation = YES), or suspected: a Secondary Capture SOP class, a
    Conversion Type (the SC Equipment module: workstation, scanned document ...), or an Image
    Type naming a screen capture, snapshot or report page (Siemens "CSA REPORT", GE
    "SCREEN SAVE").
    """
    if _text(_peek(ds, "BurnedInAnnotation")).upper() == "YES":
        return "Burned In Annotation is YES: the pixels may show identifying text"
    sop_class = _text(_peek(ds, "SOPClassUID"))
    if sop_class in _SC_SOP_CLASSES:
        return "a Secondary Capture image (screen or scanned capture) may show identifying text"
    if _text(_peek(ds, "ConversionType")):
        return "a converted image (Conversion Type is set) may show identifying text"
    image_type = _text(_peek(ds, "ImageType")).upper()
    if any(word in image_type for word in _SCREEN_WORDS):
        return "the Image Type names a screen capture or report, which may show identifying text"
    return None
