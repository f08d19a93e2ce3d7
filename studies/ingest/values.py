"""Attribute values read without decoding them in place, and the vocabularies ingest shares.

The lowest module of the package (it imports nothing from it): the reader
(:mod:`studies.ingest.untrusted`), series eligibility (:mod:`studies.ingest.eligibility`) and the
de-identification (``deid_*``) inspect the same untrusted datasets and must do it the same way.
``_peek`` exists because ``Dataset.get`` stores the decoded element back into the dataset, and a
decoded element is re-encoded on writing: peeking leaves a raw element raw, so what is only
*checked* is written back byte for byte, and fast.

Two text helpers stay apart on purpose, because they differ: ``_text`` (the de-identification's)
joins a multi-valued attribute with a backslash and strips whitespace only; ``_plain`` (the
reader's and eligibility's) takes ``str()`` of the value and also strips trailing NUL padding.
Merging them would change what the profile keeps or what eligibility reads.

Package-private: every name starts with an underscore and is imported only by the modules of
``studies.ingest``. Pure module: pydicom and the standard library; no Django; ``mypy --strict``
clean.
"""

from __future__ import annotations

from typing import Any, Final

from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

#: Secondary Capture Image Storage SOP classes: the reader accepts them for modality MR only, and
#: the de-identification quarantines them (a screen capture may show burned-in text).
_SC_SOP_CLASSES: Final = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
        "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
        "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
        "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
        "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
    }
)
#: Contrast/Bolus Agent values meaning "no agent" (the profile's flag, eligibility's rule).
_NO_AGENT: Final = frozenset(
    {"", "NONE", "NO", "N", "NIL", "NULL", "0", "-", "N/A", "NA", "WITHOUT", "NO CONTRAST"}
)


def _peek(ds: Dataset, keyword: str | int) -> Any:
    """An attribute's value without decoding it in place.

    ``ds.get`` stores the decoded element back into the dataset, and a decoded element is
    re-encoded on writing; peeking leaves a raw element raw, so attributes that are only read or
    checked (Image Type, Burned In Annotation ...) are written back byte for byte, and fast.
    """
    elem = ds.get_item(keyword)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        elem = convert_raw_data_element(elem, ds=ds)
    return elem.value


def _decoded(ds: Dataset, raw: Any) -> Any:
    """The value of an element as read by ``Dataset.items()``, decoded without storing it."""
    if isinstance(raw, RawDataElement):
        return convert_raw_data_element(raw, ds=ds).value
    return raw.value


def _text(value: Any) -> str:
    """The de-identification's text of a value: multi-values joined with ``\\``, stripped."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, MultiValue)):
        return "\\".join(_text(v) for v in value)
    return str(value).strip()


def _plain(value: Any) -> str:
    """The reader's and eligibility's text of a value: ``str()`` of it, stripped of NUL padding."""
    return "" if value is None else str(value).strip().rstrip("\x00")


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _int_attribute(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    value = _peek(ds, keyword)
    if value is None or value == "":
        return default
    return _as_int(value)
