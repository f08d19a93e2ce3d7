"""One reading as a DICOM Structured Report: TID 1500 Measurement Report via highdicom (issue 6).

A reader's ROIs and the numbers measured in them leave the site as a DICOM SR, so that a PACS,
a viewer (OHIF, 3D Slicer, dcmqi) or another study can reproduce the measurement and see the ROIs
on the images, without this project's JSON. Pure-ish: highdicom and pydicom, no Django; the
caller gives de-identified instance headers, the parsed ROI set and the
:func:`readers.measurement.measure.measure_vbq` result.

Document. **Comprehensive 3D SR** (``1.2.840.10008.5.1.4.1.1.88.34``), the SOP class highdicom
and dcmqi use for TID 1500; its content is a TID 1500 *Measurement Report*
(``(126000, DCM, "Imaging Measurement Report")``), procedure ``(25056-3, LN, "MRI unspecified
body region")``, person observer = the reader's pseudonym (never their name), in the images'
study, with the referenced instances in the Current Requested Procedure Evidence Sequence and the
Image Library. The SR is ``PARTIAL``/``UNVERIFIED``/``PRELIMINARY``: a research measurement, not
a signed clinical report.

Measurement groups, in order L1, L2, L3, L4, CSF, VBQ:

- **A measured level or the CSF** → one TID 1410 *Planar ROI* group (TID 1411 *Volumetric ROI*
  when the label has several ROIs, e.g. on adjacent slices: their pixels are pooled, so the
  statistics belong to the set of regions, not to one of them). Tracking identifier ``"L2"``
  (``"CSF at L3"``), finding type ``(14016003, SCT, "Bone Marrow")`` or ``(65216001, SCT,
  "Cerebrospinal Fluid")``, finding site the vertebra (``(14293000, SCT, "L2 vertebra")``; the
  CSF's level, or its intervertebral-disc level for ``L3-L4``), and TID 300 measurements:
  ``(110804, DCM, "T1 Weighted MR Signal Intensity")`` with derivation ``(373098007, SCT,
  "Mean")``, the same with ``(373099004, SCT, "Median")`` and with ``(386136009, SCT, "Standard
  Deviation")`` (population sd, as measured), unit ``[arb'U]`` (UCUM arbitrary unit, CID 7181:
  MR signal has no physical unit), and ``(42798000, SCT, "Area")`` in ``mm2``.
- **An excluded level** → a TID 1501 group without a region (there is none), tracking identifier
  ``"L4 excluded"``, the same finding type and site, and a qualitative evaluation
  ``(EXCLREASON, 99VBQ, "Reason for exclusion from measurement")`` = the reason, plus the
  reader's optional note as a TEXT ``(121106, DCM, "Comment")``.
- **The score** → a TID 1501 group ``"VBQ"``, finding site ``(122496007, SCT, "Lumbar spine")``,
  algorithm identification (``vbq-reader-studies measure_vbq``, the measurement algorithm
  version, and the parameters ``roi_statistic``, ``level_aggregate``, ``min_levels``), and two
  measurements: ``(VBQ, 99VBQ, "Vertebral bone quality score")`` in ``{ratio}`` (UCUM, CID
  7181; the score is SI / SI, dimensionless) and ``(VBQNUM, 99VBQ, "Aggregate vertebral signal
  intensity L1-L4")`` in ``[arb'U]`` with derivation = the level aggregate (Median or Mean).
  When the score was not computed (too few levels) the group holds a qualitative evaluation
  ``VBQ`` = ``(NOTCOMPUTED, 99VBQ, "Not computed: too few measured levels")`` instead.

Why private codes: neither SNOMED CT, LOINC nor DCM has a concept for the VBQ score, its
numerator, or this project's exclusion vocabulary (fracture, hemangioma, instrumentation, modic,
other; spec §2), and a wrong standard code is worse than an honest local one. They use the local
coding scheme designator ``99VBQ`` (the ``99`` prefix is DICOM's convention for private schemes,
PS3.16 section 8), declared in the Coding Scheme Identification Sequence.

Coordinates. Our ROI coordinates put the *centre* of the first pixel at (0, 0) (spec §2); 2-D
SCOORD (PS3.3 C.18.6.1.2) puts the top-left *corner* of the first pixel at (0, 0) and the first
centre at (0.5, 0.5). Every point therefore gets **+0.5 in both x (column) and y (row)**. An
ellipse is an SCOORD ``ELLIPSE``: four points, the major axis endpoints then the minor axis
endpoints (a circle: first axis first). Rectangles and polygons are closed ``POLYLINE``\\ s (the
first point repeated at the end). The membership rule (a pixel belongs when its centre is inside
or on the boundary) is the same geometric statement in both systems.

UIDs. Series, SOP instance and tracking UIDs are ``2.25`` UUID-derived UIDs (name-based UUID v5
of ``uid_root_seed`` and what they name), so the same reading exported twice gives the same
UIDs, and the seed (e.g. ``"<site secret>/reading/<pk>/<version>"``) leaks nothing. The SR's
Content Date/Time default to now; pass ``content_datetime`` for a reproducible file.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import highdicom as hd
import numpy as np
from highdicom.sr.value_types import TextContentItem
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from readers.measurement.measure import ALGORITHM_VERSION
from readers.measurement.rois import Ellipse, Polygon, Rectangle, Roi, RoiSet, Shape
from studies.vocabulary import CSF, LEVELS

LOCAL_SCHEME: Final = "99VBQ"
"""Private coding scheme for the concepts no standard terminology has (see the module doc)."""

VBQ_SCORE: Final = Code("VBQ", LOCAL_SCHEME, "Vertebral bone quality score")
VBQ_NUMERATOR: Final = Code("VBQNUM", LOCAL_SCHEME, "Aggregate vertebral signal intensity L1-L4")
EXCLUSION_REASON: Final = Code("EXCLREASON", LOCAL_SCHEME, "Reason for exclusion from measurement")
NOT_COMPUTED: Final = Code("NOTCOMPUTED", LOCAL_SCHEME, "Not computed: too few measured levels")
REASON_CODES: Final = {
    "fracture": Code("FRACTURE", LOCAL_SCHEME, "Vertebral fracture"),
    "hemangioma": Code("HEMANGIOMA", LOCAL_SCHEME, "Hemangioma"),
    "instrumentation": Code("INSTRUMENTATION", LOCAL_SCHEME, "Instrumentation or cement"),
    "modic": Code("MODIC", LOCAL_SCHEME, "Severe Modic change"),
    "other": Code("OTHER", LOCAL_SCHEME, "Other reason"),
}

SIGNAL_INTENSITY: Final = codes.DCM.T1WeightedMRSignalIntensity  # (110804, DCM)
MEAN: Final = codes.SCT.Mean  # (373098007, SCT)
MEDIAN: Final = codes.SCT.Median  # (373099004, SCT)
STANDARD_DEVIATION: Final = codes.SCT.StandardDeviation  # (386136009, SCT)
AREA: Final = codes.SCT.Area  # (42798000, SCT)
ARBITRARY_UNIT: Final = codes.UCUM.ArbitraryUnit  # [arb'U]
RATIO: Final = codes.UCUM.Ratio  # {ratio}
SQUARE_MILLIMETER: Final = codes.UCUM.SquareMillimeter  # mm2
BONE_MARROW: Final = codes.SCT.BoneMarrow  # (14016003, SCT)
CEREBROSPINAL_FLUID: Final = codes.SCT.CerebrospinalFluid  # (65216001, SCT)
LUMBAR_SPINE: Final = codes.SCT.LumbarSpine  # (122496007, SCT)
ANATOMICAL_STRUCTURE: Final = codes.SCT.AnatomicalStructure
BODY_SUBSTANCE: Final = codes.SCT.BodySubstance
PROCEDURE: Final = codes.LN.MRIUnspecifiedBodyRegion  # (25056-3, LN)

PIXEL_CENTRE_TO_SCOORD: Final = 0.5
"""Added to our (centre-origin) coordinates to get SCOORD's (corner-origin) ones."""

MANUFACTURER: Final = "vbq-reader-studies"


class SrError(ValueError):
    """The reading cannot be written as an SR (inconsistent ROIs and measurement, ...)."""


def _uid(seed: str, what: str) -> str:
    """A ``2.25`` UID from a name-based (v5) UUID: deterministic, and the seed stays hidden."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'{seed}/{what}').int}"


def _vertebra_code(level: str) -> Code | None:
    """SNOMED CT code of a vertebra (``L3``) or disc level (``L3-L4``), when pydicom has one."""
    if "-" in level:
        upper, lower = level.split("-", 1)
        name = f"LevelOf{upper}{lower}IntervertebralDisc"
    else:
        name = f"{level}Vertebra"
    try:
        code = getattr(codes.SCT, name)
    except AttributeError:
        return None
    return code if isinstance(code, Code) else None


def _finding_sites(level: str | None) -> list[hd.sr.FindingSite] | None:
    code = _vertebra_code(level) if level else None
    return [hd.sr.FindingSite(anatomic_location=code)] if code is not None else None


def scoord_points(shape: Shape) -> tuple[str, np.ndarray[Any, np.dtype[np.float32]]]:
    """``(graphic_type, points)`` of a shape in SCOORD image coordinates (corner origin).

    Ellipse: the major axis endpoints, then the minor axis endpoints (PS3.3 C.18.6.1.2);
    rectangle and polygon: a closed POLYLINE. All points are shifted by +0.5 px.
    """
    if isinstance(shape, Ellipse):
        cx, cy = shape.center
        rx, ry = shape.radii
        theta = np.radians(shape.angle_deg)
        first = np.array([np.cos(theta), np.sin(theta)])
        second = np.array([-np.sin(theta), np.cos(theta)])
        axes = [(first, rx), (second, ry)]
        if ry > rx:
            axes.reverse()
        centre = np.array([cx, cy])
        points = [
            centre + sign * radius * direction for direction, radius in axes for sign in (-1, 1)
        ]
        graphic_type = "ELLIPSE"
        data = np.array(points, dtype=np.float64)
    else:
        if isinstance(shape, Rectangle):
            x0, y0, x1, y1 = shape.bounds
            vertices = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        else:
            assert isinstance(shape, Polygon)
            vertices = list(shape.points)
            if len(vertices) > 1 and vertices[0] == vertices[-1]:
                vertices.pop()
        vertices.append(vertices[0])
        graphic_type = "POLYLINE"
        data = np.array(vertices, dtype=np.float64)
    return graphic_type, (data + PIXEL_CENTRE_TO_SCOORD).astype(np.float32)


def _region(roi: Roi, images: Mapping[str, Dataset]) -> hd.sr.ImageRegion:
    graphic_type, data = scoord_points(roi.shape)
    return hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues(graphic_type),
        graphic_data=data,
        source_image=hd.sr.SourceImageForRegion.from_source_image(images[roi.sop_instance_uid]),
    )


def _roi_measurements(stats: Mapping[str, Any]) -> list[hd.sr.Measurement]:
    def si(value: Any, derivation: Code) -> hd.sr.Measurement:
        return hd.sr.Measurement(
            name=SIGNAL_INTENSITY,
            value=float(value),
            unit=ARBITRARY_UNIT,
            derivation=derivation,
        )

    return [
        si(stats["mean"], MEAN),
        si(stats["median"], MEDIAN),
        si(stats["sd"], STANDARD_DEVIATION),
        hd.sr.Measurement(name=AREA, value=float(stats["area_mm2"]), unit=SQUARE_MILLIMETER),
    ]


def _tracking(seed: str, identifier: str) -> hd.sr.TrackingIdentifier:
    return hd.sr.TrackingIdentifier(uid=_uid(seed, f"tracking/{identifier}"), identifier=identifier)


def _roi_group(
    *,
    seed: str,
    identifier: str,
    rois: Sequence[Roi],
    images: Mapping[str, Dataset],
    stats: Mapping[str, Any],
    finding_type: Code,
    category: Code,
    site: str | None,
) -> (
    hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
    | hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
):
    common: dict[str, Any] = {
        "tracking_identifier": _tracking(seed, identifier),
        "finding_type": finding_type,
        "finding_category": category,
        "finding_sites": _finding_sites(site),
        "measurements": _roi_measurements(stats),
    }
    regions = [_region(roi, images) for roi in rois]
    if len(regions) == 1:
        return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            referenced_region=regions[0], **common
        )
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        referenced_regions=regions, **common
    )


def _exclusion_group(
    seed: str, level: str, reason: str, note: str | None
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    code = REASON_CODES.get(reason)
    if code is None:
        raise SrError(f"{level}: unknown exclusion reason {reason!r}")
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking(seed, f"{level} excluded"),
        finding_type=BONE_MARROW,
        finding_category=ANATOMICAL_STRUCTURE,
        finding_sites=_finding_sites(level),
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(EXCLUSION_REASON, code)],
    )
    if note:
        group[0].ContentSequence.append(
            TextContentItem(
                name=codes.DCM.Comment,
                value=note[:1024],
                relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
            )
        )
    return group


def _score_group(
    seed: str, measurement: Mapping[str, Any]
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    method = measurement["method"]
    algorithm = hd.sr.AlgorithmIdentification(
        name=f"{MANUFACTURER} measure_vbq",
        version=ALGORITHM_VERSION,
        parameters=[
            f"roi_statistic={method['roi_statistic']}",
            f"level_aggregate={method['level_aggregate']}",
            f"min_levels={method['min_levels']}",
        ],
    )
    aggregate = MEDIAN if method["level_aggregate"] == "median" else MEAN
    measurements: list[hd.sr.Measurement] = []
    evaluations: list[hd.sr.QualitativeEvaluation] = []
    if measurement.get("vbq") is None:
        evaluations.append(hd.sr.QualitativeEvaluation(VBQ_SCORE, NOT_COMPUTED))
    else:
        measurements = [
            hd.sr.Measurement(
                name=VBQ_SCORE,
                value=float(measurement["vbq"]),
                unit=RATIO,
                algorithm_id=algorithm,
            ),
            hd.sr.Measurement(
                name=VBQ_NUMERATOR,
                value=float(measurement["numerator"]),
                unit=ARBITRARY_UNIT,
                derivation=aggregate,
                algorithm_id=algorithm,
            ),
        ]
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking(seed, "VBQ"),
        finding_sites=[hd.sr.FindingSite(anatomic_location=LUMBAR_SPINE)],
        algorithm_id=algorithm,
        measurements=measurements or None,
        qualitative_evaluations=evaluations or None,
    )


def _person_name(observer: str) -> str:
    """The pseudonym as a DICOM PN family name: ``"Reader 2"`` → ``"Reader 2^"``."""
    cleaned = " ".join(observer.replace("^", " ").replace("\\", " ").replace("=", " ").split())
    if not cleaned:
        raise SrError("observer must be a non-empty pseudonym")
    return f"{cleaned[:63]}^"


def _coding_scheme_item() -> Dataset:
    item = Dataset()
    item.CodingSchemeDesignator = LOCAL_SCHEME
    item.CodingSchemeName = "VBQ reader studies local codes"
    item.CodingSchemeResponsibleOrganization = MANUFACTURER
    return item


def reading_sr(
    *,
    source_images: list[Dataset],
    roi_set: RoiSet,
    measurement: dict[str, Any],
    observer: str,
    series_number: int,
    instance_number: int,
    uid_root_seed: str,
    content_datetime: datetime | None = None,
) -> Dataset:
    """A TID 1500 Comprehensive 3D SR of one reading (see the module doc for the codes).

    ``source_images``: the (de-identified) headers of at least the instances the ROIs are drawn
    on; only those are referenced. ``measurement``:
    :func:`readers.measurement.measure.measure_vbq`'s result for ``roi_set``. ``observer``:
    the reader's pseudonym (``"Reader 2"``). Raises :class:`SrError` when the ROI set and the
    measurement disagree or an instance is missing.
    """
    images = {str(ds.SOPInstanceUID): ds for ds in source_images}
    by_label: dict[str, list[Roi]] = {}
    for roi in roi_set.rois:
        if roi.sop_instance_uid not in images:
            raise SrError(
                f"{roi.label}: instance {roi.sop_instance_uid} is not among the source images"
            )
        by_label.setdefault(roi.label, []).append(roi)
    if CSF not in by_label:
        raise SrError("the ROI set has no CSF ROI")
    notes = {exclusion.label: exclusion.note for exclusion in roi_set.exclusions}

    seed = uid_root_seed
    groups: list[Any] = []
    levels = measurement["levels"]
    for level in LEVELS:
        stats = levels.get(level)
        if stats is None:
            raise SrError(f"{level}: missing from the measurement")
        if stats.get("excluded"):
            if level in by_label:
                raise SrError(f"{level}: excluded in the measurement but has ROIs")
            groups.append(_exclusion_group(seed, level, str(stats["reason"]), notes.get(level)))
            continue
        if level not in by_label:
            raise SrError(f"{level}: measured but the ROI set has no ROI for it")
        groups.append(
            _roi_group(
                seed=seed,
                identifier=level,
                rois=by_label[level],
                images=images,
                stats=stats,
                finding_type=BONE_MARROW,
                category=ANATOMICAL_STRUCTURE,
                site=level,
            )
        )
    csf_level = roi_set.csf_level or measurement["csf"].get("level")
    groups.append(
        _roi_group(
            seed=seed,
            identifier=f"CSF at {csf_level}",
            rois=by_label[CSF],
            images=images,
            stats=measurement["csf"],
            finding_type=CEREBROSPINAL_FLUID,
            category=BODY_SUBSTANCE,
            site=csf_level,
        )
    )
    groups.append(_score_group(seed, measurement))

    referenced = list(dict.fromkeys(roi.sop_instance_uid for roi in roi_set.rois))
    evidence = [images[uid] for uid in referenced]
    observer_context = hd.sr.ObservationContext(
        observer_person_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=_person_name(observer)
            ),
        )
    )
    report = hd.sr.MeasurementReport(
        observation_context=observer_context,
        procedure_reported=PROCEDURE,
        imaging_measurements=groups,
        referenced_images=evidence,
    )
    extra: dict[str, Any] = {}
    if content_datetime is not None:
        extra["content_date"] = content_datetime.date()
        extra["content_time"] = content_datetime.time()
    with warnings.catch_warnings():
        # The site's images carry a pseudonym as Patient's Name ("VBQ-" + hex,
        # studies.ingest.deid_identity), one PN component by design; highdicom, copying it from
        # the evidence, warns that such a name is "unlikely" to be intended. It is intended:
        # nothing else is silenced.
        warnings.filterwarnings(
            "ignore", message=r'The string "VBQ-[0-9A-F]+" is unlikely to represent'
        )
        sr = hd.sr.Comprehensive3DSR(
            evidence=evidence,
            content=report,
            series_instance_uid=_uid(seed, "series"),
            series_number=series_number,
            sop_instance_uid=_uid(seed, "instance"),
            instance_number=instance_number,
            manufacturer=MANUFACTURER,
            series_description="VBQ reading",
            **extra,
        )
    sr.CodingSchemeIdentificationSequence = [_coding_scheme_item()]
    return sr
