"""PS3.15 Table E.1-1 as data, and the action of this profile each row resolves to.

``E11_ROWS`` is Table E.1-1 of DICOM PS3.15 (Application Level Confidentiality Profile
Attributes), read from ``ps315_e11.json`` beside this module. That file is *generated* from a
machine-readable extraction of the standard's DocBook part 15 by
``scripts/deid_table_from_standard.py``, never typed by hand: its header names the edition
(``E11_EDITION``), the source file and its sha256. The edition is written into every
de-identified instance's De-identification Method (0012,0063), so an output says which table
cleaned it. A new edition is one command and a reviewed diff of rows; the test that puts every
row of the table into one dataset (``tests/studies/ingest/test_deid_table.py``) then fails for
any row whose attribute the profile would keep against the table.

Each row becomes ``(tag, attribute name, Basic Profile action, applied option columns)``, where
the last item lists only the columns of the options we apply (``PatChars`` = Retain Patient
Characteristics, ``ModDates`` = Retain Longitudinal Temporal Information with Modified Dates,
``CleanDesc`` = Clean Descriptors). Options we do *not* apply (Retain Device Identity, Retain
Institution Identity, Retain UIDs, Retain Safe Private, full dates, Clean Graphics/Structured
Content) leave their rows with the Basic action.

How a row becomes an action (``_resolve``):

* ``PatChars:K`` -> keep (age, sex, size, weight, and the other characteristics the option keeps),
  except free text and free URIs (Ethnic Groups, Sex Parameters for Clinical Use Category
  Reference), which spec §4 removes like every other free-text attribute.
* ``ModDates:C`` -> dates (DA) and the date part of date-times (DT) are shifted by a whole number
  of days, one shift per patient (HMAC of the site secret and the patient's identity); times (TM)
  and time-zone offsets are kept, which a whole-day shift leaves consistent.
* ``CleanDesc:C`` is applied *narrowly*: Series Description and Protocol Name are kept only when
  they hold none of the patient's identifiers and nothing shaped like a name, date or ID;
  Contrast/Bolus Agent (``Z/D``) is reduced to a flag (empty, or the dummy ``CONTRAST``) so that
  series eligibility can still tell contrast-enhanced series apart; every other row falls back to
  its Basic action.
* Multi-choice Basic actions: ``X/Z``, ``X/D``, ``X/Z/D`` -> X (remove), except Acquisition Context
  Sequence -> Z (Type 2 in Enhanced MR); ``Z/D`` -> Z; ``X/Z/U*`` (Referenced/Source Image
  Sequence) -> kept with every UID inside replaced, so references between de-identified instances
  still resolve. Patient's Name and Patient ID (``Z``, ``Z/D``) get the pseudonym ``VBQ-`` + 10 hex
  digits of an HMAC of the patient's identity, which is what groups a patient's studies into cases.
* The four rows with tag patterns (``E11_PATTERN_ROWS``): ``(GGGG,EEEE)`` odd groups -> all private
  attributes, private creators included, are removed; ``(50XX,XXXX)`` curves and
  ``(60XX,3000/4000)`` overlay data/comments -> removed, and with them the whole overlay group,
  since overlays are graphics that may carry annotations. ``_Cleaner.walk``
  (:mod:`studies.ingest.deid_engine`) applies them by group.

Stricter than Table E.1-1, for attributes the table does not list (the Basic Profile would keep
them; free text is where identifiers hide, and the spec removes "every other free-text
attribute"): person names (PN), free text (LT, ST, UT, UC), AE titles, URIs, attributes unknown
to pydicom's dictionary, and LO/SH attributes named ``...Description``/``...Comment(s)`` are
removed; every patient-module attribute (group 0010) not listed is removed; any other DA/DT is
shifted; every UID outside the DICOM root ``1.2.840.10008`` is replaced. A listed attribute whose
value cannot be read (VR UN: newer than pydicom's dictionary, in an implicit-VR file) is removed
unless the table removes it anyway. The sets those rules use are defined here;
``_Cleaner.default_action`` (:mod:`studies.ingest.deid_engine`) applies them.

Pure module: the standard library only (no Django), ``mypy --strict`` clean.
"""

from __future__ import annotations

import json
from enum import IntEnum
from pathlib import Path
from typing import Any, Final

__all__ = ["E11_EDITION", "E11_PATTERN_ROWS", "E11_ROWS", "E11_SOURCE"]

#: Row of PS3.15 Table E.1-1: (tag, attribute name, Basic Profile action, applied option columns).
E11Row = tuple[int, str, str, str]

_TABLE_FILE: Final = Path(__file__).with_name("ps315_e11.json")

#: The option columns of the generated table that this profile applies, as ``E11Row`` names them.
_APPLIED_OPTIONS: Final[dict[str, str]] = {
    "retain_patient_characteristics": "PatChars",
    "retain_longitudinal_modified_dates": "ModDates",
    "clean_descriptors": "CleanDesc",
}


def _load() -> tuple[dict[str, Any], tuple[E11Row, ...], tuple[tuple[str, str, str], ...]]:
    """Read the generated table: its header, its rows with a concrete tag, its pattern rows."""
    document: dict[str, Any] = json.loads(_TABLE_FILE.read_text(encoding="utf-8"))
    rows: list[E11Row] = []
    patterns: list[tuple[str, str, str]] = []
    for row in document["rows"]:
        text = row["tag"]
        digits = text[1:5] + text[6:10]
        if any(c not in "0123456789ABCDEF" for c in digits):
            patterns.append((text, row["name"], row["basic"]))
            continue
        options = " ".join(
            f"{short}:{row['options'][column]}"
            for column, short in _APPLIED_OPTIONS.items()
            if column in row["options"]
        )
        rows.append((int(digits, 16), row["name"], row["basic"], options))
    rows.sort()
    header = {k: v for k, v in document.items() if k != "rows"}
    return header, tuple(rows), tuple(patterns)


_HEADER, E11_ROWS, E11_PATTERN_ROWS = _load()
#: The edition of PS3.15 the table was generated from (e.g. ``2026d``).
E11_EDITION: Final[str] = str(_HEADER["edition"])
#: Where the generated table came from: file name, sha256, what it was derived from.
E11_SOURCE: Final[dict[str, str]] = dict(_HEADER["source"])


class _A(IntEnum):
    """What happens to one attribute."""

    KEEP = 0  # keep (sequences: clean every item); kept LO/SH are checked for identifiers
    REMOVE = 1  # X
    EMPTY = 2  # Z
    DUMMY = 3  # D
    UID = 4  # U: replace every UID value (sequences: clean every item)
    SHIFT = 5  # ModDates C: shift DA and the date of DT, keep TM
    DESCRIPTOR = 6  # narrow Clean Descriptors: keep only when clean
    PSEUDONYM = 7  # Patient's Name, Patient ID
    CONTRAST = 8  # Contrast/Bolus Agent reduced to a flag
    KEEP_PLAIN = 9  # kept and exempt from the identifier check (spec: kept as they are)


_PATIENT_NAME: Final = 0x00100010
_PATIENT_ID: Final = 0x00100020
_SERIES_DESCRIPTION: Final = 0x0008103E
_PROTOCOL_NAME: Final = 0x00181030
_CONTRAST_AGENT: Final = 0x00180010
_ACQUISITION_CONTEXT: Final = 0x00400555
_ETHNIC_GROUPS: Final = 0x00102162
_SEX_PARAMETERS_REFERENCE: Final = 0x00100047

# Decisions on rows whose Basic action leaves a choice, or that the narrow options single out.
_OVERRIDES: Final[dict[int, _A]] = {
    _PATIENT_NAME: _A.PSEUDONYM,  # Z: "a non-zero length dummy value" may replace it
    _PATIENT_ID: _A.PSEUDONYM,  # Z/D
    _SERIES_DESCRIPTION: _A.DESCRIPTOR,  # X, CleanDesc C
    _PROTOCOL_NAME: _A.DESCRIPTOR,  # X/D, CleanDesc C
    _CONTRAST_AGENT: _A.CONTRAST,  # Z/D, CleanDesc C
    _ACQUISITION_CONTEXT: _A.EMPTY,  # X/Z; Type 2 in the Enhanced MR IOD
    # Retain Patient Characteristics says K, but these are free text (UC) and a free URI (UR):
    # spec §4 keeps the characteristics bone quality depends on and removes "every other
    # free-text attribute", so the option is narrowed here; their coded sequences stay.
    _ETHNIC_GROUPS: _A.REMOVE,
    _SEX_PARAMETERS_REFERENCE: _A.REMOVE,
}

# Outside Table E.1-1 but kept untouched because the spec names them (VBQ depends on them), or
# because they are codes from a terminology rather than text about the patient.
_KEEP_PLAIN: Final = frozenset(
    {
        0x00080070,  # Manufacturer
        0x00081090,  # Manufacturer's Model Name
        0x00181020,  # Software Versions
        0x00080100,  # Code Value
        0x00080102,  # Coding Scheme Designator
        0x00080103,  # Coding Scheme Version
        0x00080104,  # Code Meaning
        0x00080119,  # Long Code Value
        0x00080120,  # URN Code Value
        0x00080005,  # Specific Character Set
    }
)

_FREE_TEXT_VRS: Final = frozenset({"LT", "ST", "UT", "UC"})
_REMOVED_VRS: Final = frozenset({"PN", "AE", "UR"}) | _FREE_TEXT_VRS
_CHECKED_VRS: Final = frozenset({"LO", "SH"})
_DESCRIPTIVE_SUFFIXES: Final = ("Description", "Comments", "Comment")
_DUMMIES: Final[dict[str, Any]] = {
    "AE": "ANONYMOUS",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "FD": 0.0,
    "FL": 0.0,
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "SL": 0,
    "SS": 0,
    "ST": "ANONYMIZED",
    "SV": 0,
    "TM": "000000",
    "UC": "ANONYMIZED",
    "UL": 0,
    "US": 0,
    "UT": "ANONYMIZED",
    "UV": 0,
}


def _resolve(row: E11Row) -> _A:
    """The action this profile takes for one row of Table E.1-1 (see the module docstring)."""
    tag, _name, basic, options = row
    if tag in _OVERRIDES:
        return _OVERRIDES[tag]
    columns = dict(item.split(":") for item in options.split())
    if columns.get("PatChars") == "K":
        return _A.KEEP
    if columns.get("ModDates") == "C":
        return _A.SHIFT
    first = basic.split("/")[0]
    if basic == "X/Z/U*":
        return _A.UID
    return {"X": _A.REMOVE, "Z": _A.EMPTY, "D": _A.DUMMY, "U": _A.UID}[first]


_TABLE: Final[dict[int, _A]] = {row[0]: _resolve(row) for row in E11_ROWS}
