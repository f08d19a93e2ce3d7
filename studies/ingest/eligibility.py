"""Series eligibility: whether a series can be read for VBQ, and why, rule by rule.

:func:`classify_series` judges one series from its instances' headers (original or
de-identified; classic one-frame-per-file or enhanced multi-frame): sagittal, T1-weighted by TR
and TE within the study's ranges, spin echo, no contrast, enough slices. It reports every failed
and every passed rule, because a manager must see *why* a series was set aside, and the
acquisition facts (field strength, vendor, model), because VBQ differs markedly between 1.5 T and
3 T and between vendors and the study records them per case.

Apart from reading (:mod:`studies.ingest.untrusted`) because it judges a whole series, not one
file, and needs no pixel data; it runs on de-identified headers too, which is why the
de-identification keeps the contrast agent as a flag and clean series descriptions.

Pure module: pydicom and the standard library; no Django; ``mypy --strict`` clean.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from pydicom.dataset import Dataset

from studies.ingest.values import _NO_AGENT, _int_attribute, _plain

__all__ = ["Eligibility", "classify_series"]


@dataclass
class Eligibility:
    """Whether a series can be read for VBQ, and why: every failed and every passed rule.

    ``reasons`` lists the failed rules (empty when eligible), ``passed`` the rules met, ``notes``
    what does not decide eligibility but matters to the manager (3D acquisition, no field
    strength). The acquisition facts are what the study records per case: VBQ differs markedly
    between 1.5 T and 3 T and between vendors.
    """

    eligible: bool
    reasons: list[str]
    passed: list[str]
    notes: list[str]
    orientation: str
    tr_ms: float | None
    te_ms: float | None
    field_strength_t: float | None
    manufacturer: str | None
    model: str | None
    modality: str | None
    n_slices: int
    scanning_sequence: str | None
    acquisition_type: str | None
    contrast: bool | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for storage and the manager's page."""
        return asdict(self)


_CONTRAST_WORDS: Final = frozenset(
    {
        "POST",
        "GAD",
        "GADO",
        "GADOLINIUM",
        "GD",
        "CE",
        "KM",
        "MDC",
        "CONTRAST",
        "POSTCONTRAST",
        "POSTGAD",
        "ENHANCED",
        "CM",
    }
)
_NEGATIONS: Final = frozenset({"NON", "NO", "WITHOUT", "WO", "PRE", "NATIVE", "NATIV", "PLAIN"})


def _first_item(ds: Dataset, *path: str) -> Dataset | None:
    current: Dataset | None = ds
    for keyword in path:
        if current is None:
            return None
        value = current.get(keyword)
        if not value:
            return None
        current = value[0]
    return current


def _frame_value(ds: Dataset, macro: str, keyword: str) -> Any:
    """A value from the top level, the shared functional groups, or the first frame's groups."""
    if keyword in ds and ds.get(keyword) not in (None, ""):
        return ds.get(keyword)
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        item = _first_item(ds, group, macro)
        if item is not None and item.get(keyword) not in (None, ""):
            return item.get(keyword)
    return None


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _multi(value: Any) -> str:
    """A possibly multi-valued string attribute as ``A\\B``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    try:
        return "\\".join(str(v).strip() for v in value)
    except TypeError:
        return str(value).strip()


def _tr_ms(ds: Dataset) -> float | None:
    return _float(_frame_value(ds, "MRTimingAndRelatedParametersSequence", "RepetitionTime"))


def _te_ms(ds: Dataset) -> float | None:
    echo = _float(ds.get("EchoTime"))
    if echo is not None:
        return echo
    return _float(_frame_value(ds, "MREchoSequence", "EffectiveEchoTime"))


def _fmt(value: float) -> str:
    return f"{round(value, 2):g}"


def _most_common(values: list[str]) -> str | None:
    values = [v for v in values if v]
    return Counter(values).most_common(1)[0][0] if values else None


def _normal(iop: Any) -> tuple[float, float, float] | None:
    try:
        r = [float(v) for v in iop[:3]]
        c = [float(v) for v in iop[3:6]]
    except (TypeError, ValueError, IndexError):
        return None
    if len(r) != 3 or len(c) != 3:
        return None
    n = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    length = math.sqrt(sum(v * v for v in n))
    if not math.isfinite(length) or length < 1e-6:
        return None
    return (n[0] / length, n[1] / length, n[2] / length)


def _positions(ds: Dataset) -> list[tuple[float, float, float]]:
    found: list[tuple[float, float, float]] = []
    ipp = ds.get("ImagePositionPatient")
    frames = ds.get("PerFrameFunctionalGroupsSequence")
    if ipp is None and frames:
        for frame in frames:
            item = _first_item(frame, "PlanePositionSequence")
            if item is not None and item.get("ImagePositionPatient") is not None:
                ipp_frame = item.ImagePositionPatient
                try:
                    found.append((float(ipp_frame[0]), float(ipp_frame[1]), float(ipp_frame[2])))
                except (TypeError, ValueError, IndexError):
                    continue
        return found
    if ipp is not None:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            found.append((float(ipp[0]), float(ipp[1]), float(ipp[2])))
    return found


def _contrast_word(text: str) -> str | None:
    """The word in a description that says contrast was given, unless it is negated."""
    upper = text.upper()
    for marker in ("+C", "C+", "+GD", "+KM"):
        if marker in upper.replace(" ", ""):
            return marker
    tokens = [t for t in "".join(ch if ch.isalnum() else " " for ch in upper).split() if t]
    for i, token in enumerate(tokens):
        word = token
        if word in _CONTRAST_WORDS or word.startswith("GADO"):
            before = tokens[max(0, i - 2) : i]
            if any(b in _NEGATIONS for b in before):
                continue
            return word.lower()
    return None


def classify_series(
    headers: Sequence[Dataset],
    *,
    tr_range_ms: tuple[float, float] = (300.0, 1000.0),
    te_range_ms: tuple[float, float] = (5.0, 30.0),
    min_slices: int = 5,
    max_obliquity_deg: float = 30.0,
    require_spin_echo: bool = True,
) -> Eligibility:
    """Judge one series (its instances' headers, original or de-identified) for VBQ.

    Rules: MR modality; sagittal slices (slice normal within ``max_obliquity_deg`` of the
    patient's left-right axis); T1 weighting by TR and TE within the study's ranges; a spin-echo
    sequence when ``require_spin_echo`` (a 3D gradient echo such as an MP-RAGE/SPGR is T1-weighted
    by its inversion pulse, but its marrow signal is not the one VBQ was calibrated on); no
    contrast agent (Contrast/Bolus Agent, the enhanced contrast sequences, or words such as
    "+C", "post", "gad" in Series Description or Protocol Name; the de-identification keeps the
    agent as a flag and these descriptions when clean); at least ``min_slices`` slices. Works on
    classic (one frame per file) and enhanced multi-frame headers.
    """
    lo_tr, hi_tr = tr_range_ms
    lo_te, hi_te = te_range_ms
    reasons: list[str] = []
    passed: list[str] = []
    notes: list[str] = []

    modality = _most_common([_plain(h.get("Modality")).upper() for h in headers])
    tr = _median([v for h in headers if (v := _tr_ms(h)) is not None])
    te = _median([v for h in headers if (v := _te_ms(h)) is not None])
    field_t = _median(
        [v for h in headers if (v := _float(h.get("MagneticFieldStrength"))) is not None]
    )
    manufacturer = _most_common([_plain(h.get("Manufacturer")) for h in headers])
    model = _most_common([_plain(h.get("ManufacturerModelName")) for h in headers])
    scanning = _most_common([_multi(h.get("ScanningSequence")).upper() for h in headers])
    echo_pulse = _most_common([_plain(h.get("EchoPulseSequence")).upper() for h in headers])
    acquisition = _most_common([_plain(h.get("MRAcquisitionType")).upper() for h in headers])

    # Orientation: the most common normal among the instances (or frames).
    normals = []
    for h in headers:
        iop = _frame_value(h, "PlaneOrientationSequence", "ImageOrientationPatient")
        n = _normal(iop) if iop is not None else None
        if n is not None:
            normals.append(tuple(round(v, 3) for v in n))
    orientation = "unknown"
    normal = Counter(normals).most_common(1)[0][0] if normals else None
    if normal is not None:
        axis = max(range(3), key=lambda i: abs(normal[i]))
        angle = math.degrees(math.acos(min(1.0, abs(normal[axis]))))
        orientation = (
            ("sagittal", "coronal", "axial")[axis] if angle <= max_obliquity_deg else "oblique"
        )
        off_x = math.degrees(math.acos(min(1.0, abs(normal[0]))))
        if orientation == "sagittal":
            passed.append(f"sagittal slices (normal {off_x:.0f}° from left-right)")
        else:
            reasons.append(f"{orientation} slices: VBQ needs a sagittal series")
    else:
        reasons.append("no image orientation recorded: cannot tell a sagittal series")

    # Slices: distinct positions along the normal, else instances/frames.
    positions = [p for h in headers for p in _positions(h)]
    if normal is not None and positions:
        n_slices = len(
            {round(sum(a * b for a, b in zip(p, normal, strict=True)), 2) for p in positions}
        )
    else:
        n_slices = sum(_int_attribute(h, "NumberOfFrames", 1) or 1 for h in headers)

    if modality == "MR":
        passed.append("modality MR")
    else:
        reasons.append(f"modality {modality or 'not recorded'}: VBQ is measured on MR images")

    for label, value, lo, hi, unit_range in (
        ("TR", tr, lo_tr, hi_tr, "T1 spin-echo range"),
        ("TE", te, lo_te, hi_te, "T1 spin-echo range"),
    ):
        span = f"{_fmt(lo)}–{_fmt(hi)} ms"
        if value is None:
            reasons.append(f"{label} not recorded: T1 weighting cannot be judged")
        elif value < lo:
            how = "far below" if value < lo / 2 else "below"
            reasons.append(f"{label} {_fmt(value)} ms is {how} the {unit_range} {span}")
        elif value > hi:
            how = "far above" if value > hi * 2 else "above"
            reasons.append(f"{label} {_fmt(value)} ms is {how} the {unit_range} {span}")
        else:
            passed.append(f"{label} {_fmt(value)} ms is within the {unit_range} {span}")

    gradient_only = False
    if echo_pulse:
        gradient_only = echo_pulse == "GRADIENT"
        kind = {
            "SPIN": "spin echo",
            "GRADIENT": "gradient echo",
            "BOTH": "hybrid spin/gradient echo",
        }
        sequence_label = kind.get(echo_pulse, echo_pulse.lower())
    elif scanning:
        codes = set(scanning.upper().split("\\"))
        gradient_only = "SE" not in codes and bool(codes & {"GR", "EP"})
        sequence_label = (
            "spin echo" if "SE" in codes else "gradient echo" if gradient_only else scanning
        )
    else:
        sequence_label = ""
    dimension = f"{acquisition} " if acquisition in ("2D", "3D") else ""
    source = f"Echo Pulse Sequence {echo_pulse}" if echo_pulse else f"Scanning Sequence {scanning}"
    if not sequence_label:
        notes.append("sequence type not recorded (Scanning Sequence)")
    elif gradient_only and require_spin_echo:
        reasons.append(
            f"{dimension}{sequence_label} ({source}): VBQ is defined on T1 spin-echo images"
        )
    else:
        passed.append(f"{dimension}{sequence_label}")
    if acquisition == "3D" and not gradient_only:
        notes.append("3D acquisition: a 2D spin echo is preferred")

    contrast: bool | None = False
    why: str | None = None
    for h in headers:
        agent = _plain(h.get("ContrastBolusAgent")).upper()
        if agent not in _NO_AGENT:
            why = "contrast agent recorded (Contrast/Bolus Agent)"
        elif h.get("ContrastBolusAgentSequence"):
            why = "contrast agent recorded (Contrast/Bolus Agent Sequence)"
        else:
            for frame_group in (
                "SharedFunctionalGroupsSequence",
                "PerFrameFunctionalGroupsSequence",
            ):
                usage = _first_item(h, frame_group, "ContrastBolusUsageSequence")
                if (
                    usage is not None
                    and _plain(usage.get("ContrastBolusAgentAdministered")).upper() == "YES"
                ):
                    why = "contrast agent administered (Contrast/Bolus Usage)"
            for keyword, label in (
                ("SeriesDescription", "series description"),
                ("ProtocolName", "protocol name"),
            ):
                word = _contrast_word(_plain(h.get(keyword)))
                if word is not None:
                    why = f"{label} mentions contrast ({word!r})"
        if why is not None:
            break
    if why is not None:
        contrast = True
        reasons.append(why + ": VBQ needs a non-contrast series")
    else:
        passed.append("no contrast agent recorded")

    if n_slices >= min_slices:
        passed.append(f"{n_slices} slices (at least {min_slices})")
    else:
        reasons.append(f"{n_slices} slice(s): at least {min_slices} needed")

    if field_t is None:
        notes.append("field strength not recorded")

    return Eligibility(
        eligible=not reasons,
        reasons=reasons,
        passed=passed,
        notes=notes,
        orientation=orientation,
        tr_ms=tr,
        te_ms=te,
        field_strength_t=field_t,
        manufacturer=manufacturer,
        model=model,
        modality=modality,
        n_slices=n_slices,
        scanning_sequence=scanning or echo_pulse,
        acquisition_type=acquisition,
        contrast=contrast,
    )
