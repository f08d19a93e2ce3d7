"""QIDO-RS queries (PS3.18 8.3.4, 10.6; matching as PS3.4 C.2.2.2 says): pure, no Django.

A search is a list of DICOM JSON objects, one per study, series or instance, built by the view
from the stored headers; this module decides which of them match the query, what each result
holds, and which page of them is sent.

- **Keys** are keywords (``PatientName``) or tags (``00100010``), as PS3.18 8.3.4.1 allows;
  ``includefield`` takes either, comma separated or repeated, or ``all``; ``limit`` and
  ``offset`` page the results; ``fuzzymatching`` is accepted and ignored (no fuzzy matching is
  offered, which the standard allows). A key that is no attribute, a sequence path, or a bad
  number is a ``QueryError`` (400).
- **Matching**: an empty value matches everything (universal matching) and asks for the
  attribute; a UID key may list UIDs separated by ``\\`` or ``,`` (list of UID matching); ``*``
  and ``?`` are wildcards for text VRs other than dates, times and UIDs; ``DA``, ``TM`` and
  ``DT`` keys may be ranges ``a-b``, ``a-`` or ``-b``; person names match without regard to
  case (PS3.4 allows it), other values exactly. A multi-valued attribute matches when one of
  its values does (``ModalitiesInStudy``). An attribute the object does not have matches only
  the universal key.
- **Results** hold the level's default attributes (PS3.18 Tables 10.6.3-3 to -5), the matched
  keys, and what ``includefield`` names (``all``: every attribute available at the level).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

STUDY: Final = "study"
SERIES: Final = "series"
INSTANCE: Final = "instance"

# PS3.18 Table 10.6.3-3 (study), 10.6.3-4 (series), 10.6.3-5 (instance): returned by default.
DEFAULT_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    STUDY: (
        "00080020", "00080030", "00080050", "00080056", "00080061", "00080090", "00081190",
        "00080201", "00100010", "00100020", "00100030", "00100040", "00200010", "0020000D",
        "00201206", "00201208", "00081030",
    ),
    SERIES: (
        "00080060", "0008103E", "00200011", "0020000E", "00201209", "00400244", "00400245",
        "00400275", "00081190", "00080201", "00080056",
    ),
    INSTANCE: (
        "00080016", "00080018", "00080056", "00080201", "00081190", "00200013", "00280010",
        "00280011", "00280100", "00280008",
    ),
}  # fmt: skip

# The attributes that belong to each level (for includefield=all and for which level answers a
# key): patient and study modules for studies, series modules for series; an instance has all.
STUDY_GROUP_TAGS: Final = frozenset(
    {
        "00080020", "00080030", "00080050", "00080056", "00080061", "00080062", "00080090",
        "00081030", "00081190", "00080201", "00100010", "00100020", "00100021", "00100030",
        "00100040", "00101010", "00101020", "00101030", "00200010", "0020000D", "00201206",
        "00201208", "00321060", "00080005",
    }
)  # fmt: skip
SERIES_GROUP_TAGS: Final = frozenset(
    {
        "00080021", "00080031", "00080060", "0008103E", "00180015", "00185100", "00200011",
        "0020000E", "00201209", "00400244", "00400245", "00400275", "00080070", "00081090",
        "00200052",
    }
)  # fmt: skip
CONTROL: Final = frozenset({"limit", "offset", "includefield", "fuzzymatching"})
_TEXT_WILDCARD_VRS: Final = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_RANGE_VRS: Final = frozenset({"DA", "TM", "DT"})


class QueryError(ValueError):
    """A query the search cannot answer as asked (a 400, with this message)."""


@dataclass
class Query:
    """What a QIDO-RS request asks: keys to match (tag -> value), fields, page."""

    keys: dict[str, str] = field(default_factory=dict)
    include: set[str] = field(default_factory=set)
    include_all: bool = False
    limit: int | None = None
    offset: int = 0
    fuzzy: bool = False


def tag_of(name: str) -> str:
    """``"PatientName"`` or ``"00100010"`` -> ``"00100010"``; QueryError otherwise."""
    text = name.strip()
    if re.fullmatch(r"[0-9A-Fa-f]{8}", text):
        return text.upper()
    if "." in text:
        raise QueryError(f"{text}: sequence matching is not supported")
    tag = tag_for_keyword(text)
    if tag is None:
        raise QueryError(f"{text} is not a DICOM attribute keyword or tag")
    return f"{tag:08X}"


def vr_of(tag: str) -> str:
    try:
        return str(dictionary_VR(int(tag, 16)))
    except KeyError:
        return "UN"


def parse(params: Iterable[tuple[str, str]]) -> Query:
    """The query of a request's parameters (``(name, value)`` pairs, repeats allowed)."""
    query = Query()
    for name, value in params:
        lowered = name.lower()
        if lowered in ("limit", "offset"):
            try:
                number = int(value)
            except ValueError:
                raise QueryError(f"{name}={value!r} is not a whole number") from None
            if number < 0:
                raise QueryError(f"{name} cannot be negative")
            if lowered == "limit":
                query.limit = number
            else:
                query.offset = number
        elif lowered == "includefield":
            for item in value.split(","):
                if not item.strip():
                    continue
                if item.strip().lower() == "all":
                    query.include_all = True
                else:
                    query.include.add(tag_of(item))
        elif lowered == "fuzzymatching":
            if value.lower() not in ("true", "false"):
                raise QueryError("fuzzymatching is true or false")
            query.fuzzy = value.lower() == "true"
        else:
            query.keys[tag_of(name)] = value
    return query


def _values(element: Mapping[str, Any] | None) -> list[Any]:
    if not element:
        return []
    values = element.get("Value") or []
    out: list[Any] = []
    for value in values:
        if isinstance(value, dict):  # PN: {"Alphabetic": ...}
            out.append(value.get("Alphabetic", ""))
        else:
            out.append(value)
    return out


def _date_range(key: str, value: str) -> bool:
    low, _, high = key.partition("-")
    digits = re.sub(r"[^0-9]", "", value)
    low_d, high_d = re.sub(r"[^0-9]", "", low), re.sub(r"[^0-9]", "", high)
    if low_d and digits[: len(low_d)] < low_d:
        return False
    return not (high_d and digits[: len(high_d)] > high_d)


def value_matches(tag: str, key: str, value: Any) -> bool:
    """One stored value against one key (not empty), by the attribute's VR."""
    vr = vr_of(tag)
    text = str(value)
    if vr == "UI":
        return text in {uid.strip() for uid in re.split(r"[\\,]", key) if uid.strip()}
    if vr in _RANGE_VRS and "-" in key:
        return _date_range(key, text)
    if vr in ("IS", "US", "SS", "UL", "SL", "DS", "FL", "FD"):
        try:
            return float(text) == float(key)
        except ValueError:
            return False
    if vr == "PN":
        text, key = text.lower(), key.lower()
    if vr in _TEXT_WILDCARD_VRS and ("*" in key or "?" in key):
        pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in key)
        return re.fullmatch(pattern, text, flags=re.DOTALL) is not None
    return text == key


def matches(obj: Mapping[str, Any], keys: Mapping[str, str]) -> bool:
    """Does the DICOM JSON object ``obj`` match every key?"""
    for tag, key in keys.items():
        if key == "":
            continue  # universal matching
        values = _values(obj.get(tag))
        if not any(value_matches(tag, key, v) for v in values):
            return False
    return True


def level_of(tag: str) -> str:
    if tag in STUDY_GROUP_TAGS:
        return STUDY
    if tag in SERIES_GROUP_TAGS:
        return SERIES
    return INSTANCE


def result(
    obj: Mapping[str, Any], level: str, query: Query, *, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """What one result holds: the level's defaults (and those of ``extra`` levels: a search
    for series without a study in its path also returns the study's attributes, PS3.18
    10.6.3.3), the keys and the included fields."""
    if query.include_all:
        if level == INSTANCE:
            wanted: set[str] = set(obj)
        else:
            allowed = {STUDY} if level == STUDY else {STUDY, SERIES}
            wanted = {t for t in obj if level_of(t) in allowed}
    else:
        wanted = set()
    wanted |= set(DEFAULT_FIELDS[level]) | set(query.keys) | query.include
    for other in extra:
        wanted |= set(DEFAULT_FIELDS[other]) - {"00081190"}
    if level != STUDY:  # a series or instance search also names its study (and series)
        wanted |= {"0020000D"} | ({"0020000E"} if level == INSTANCE else set())
    out: dict[str, Any] = {}
    for tag in sorted(wanted):
        if tag in obj:
            out[tag] = obj[tag]
        elif tag in query.keys or tag in query.include:
            out[tag] = {"vr": vr_of(tag)}  # asked for, not present: an empty attribute
    return out


def page(items: Sequence[Any], query: Query) -> list[Any]:
    end = None if query.limit is None else query.offset + query.limit
    return list(items[query.offset : end])


def keyword(tag: str) -> str:
    return str(keyword_for_tag(int(tag, 16)) or tag)
