"""The per-reading DICOM SR (TID 1500) written by :mod:`readers.measurement.sr`.

A phantom case is measured for real (``measure_vbq`` on the decoded instances), written as SR,
serialised, re-read without ``force`` and parsed back by highdicom; the tests then check what a
PACS or viewer would rely on: SOP class, references, groups, values, codes and coordinates.
"""

from __future__ import annotations

import copy
import io
from datetime import datetime
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from readers.measurement.dicomio import SliceImage, read_slice
from readers.measurement.measure import measure_vbq
from readers.measurement.rois import RoiSet, parse_roi_set
from readers.measurement.sr import (
    EXCLUSION_REASON,
    LOCAL_SCHEME,
    NOT_COMPUTED,
    REASON_CODES,
    VBQ_SCORE,
    SrError,
    reading_sr,
    scoord_points,
)
from studies.phantom.case import PhantomCase, make_case

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
WHEN = datetime(2024, 5, 6, 7, 8, 9)


@pytest.fixture(scope="module")
def case() -> PhantomCase:
    return make_case(11, 1)


@pytest.fixture(scope="module")
def images(case: PhantomCase) -> dict[str, SliceImage]:
    """Every instance decoded the way the site does it: written, then read from bytes."""
    result = {}
    for ds in case.datasets:
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        buffer.seek(0)
        image = read_slice(buffer, name="phantom")
        result[image.sop_instance_uid] = image
    return result


def _write_and_read(sr: Dataset) -> tuple[Dataset, Any]:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, sr, enforce_file_format=True)
    data = buffer.getvalue()
    reread = pydicom.dcmread(io.BytesIO(data))  # no force: a valid Part 10 file
    parsed = hd.sr.srread(io.BytesIO(data))
    return reread, parsed


def _sr(case: PhantomCase, roi_set: RoiSet, measurement: dict[str, Any], **kw: Any) -> Dataset:
    options: dict[str, Any] = {
        "source_images": case.datasets,
        "roi_set": roi_set,
        "measurement": measurement,
        "observer": "Reader 2",
        "series_number": 901,
        "instance_number": 1,
        "uid_root_seed": "test-secret/reading/1/v1",
        "content_datetime": WHEN,
    }
    options.update(kw)
    return reading_sr(**options)


def _code(item: Any) -> tuple[str, str]:
    return (str(item.value), str(item.scheme_designator))


def test_truth_reading_round_trips(case: PhantomCase, images: dict[str, SliceImage]) -> None:
    roi_set = parse_roi_set(case.truth["rois"])
    measurement = measure_vbq(roi_set, images)
    ds, doc = _write_and_read(_sr(case, roi_set, measurement))

    assert ds.SOPClassUID == COMPREHENSIVE_3D_SR
    assert isinstance(doc, hd.sr.Comprehensive3DSR)
    assert ds.Modality == "SR"
    assert ds.StudyInstanceUID == case.datasets[0].StudyInstanceUID
    assert ds.SeriesInstanceUID != case.datasets[0].SeriesInstanceUID
    assert ds.SeriesNumber == 901
    assert ds.ContentDate == "20240506"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"

    # Only the referenced instance is evidence (the ROIs are on the midsagittal slice).
    mid = case.truth["midsagittal_sop_instance_uid"]
    evidence = doc.get_evidence()
    assert [uid for _, _, uid, _ in evidence] == [mid]
    assert all(cls == case.datasets[0].SOPClassUID for *_, cls in evidence)

    planar = doc.content.get_planar_roi_measurement_groups()
    other = doc.content.get_image_measurement_groups()
    assert len(planar) == 5  # L1-L4 and CSF
    assert len(other) == 1  # the score
    assert [str(g.tracking_identifier) for g in planar] == ["L1", "L2", "L3", "L4", "CSF at L3"]

    by_label = {"L1": 0, "L2": 1, "L3": 2, "L4": 3}
    for label, index in by_label.items():
        group = planar[index]
        assert group.roi is not None
        (selected,) = group.roi.ContentSequence  # SELECTED FROM the source image
        assert selected.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == mid
        values = {
            _code(m.derivation)[0] if m.derivation else m.name.meaning: m.value
            for m in group.get_measurements()
        }
        stats = measurement["levels"][label]
        assert values["373099004"] == stats["median"]  # the derivation the spec asks for
        assert values["373098007"] == stats["mean"]
        assert values["386136009"] == stats["sd"]
        assert values["Area"] == stats["area_mm2"]
        sites = group.finding_sites
        assert sites[0].value.meaning == f"{label} vertebra"
        assert _code(group.finding_type) == ("14016003", "SCT")
    csf = planar[4]
    assert _code(csf.finding_type) == ("65216001", "SCT")
    csf_median = [m.value for m in csf.get_measurements() if m.derivation is not None]
    assert measurement["csf"]["median"] in csf_median

    (score,) = other
    named = {m.name.value: m for m in score.get_measurements()}
    assert named[VBQ_SCORE.value].value == pytest.approx(measurement["vbq"], rel=0, abs=0)
    assert named[VBQ_SCORE.value].unit.value == "{ratio}"
    assert named["VBQNUM"].value == measurement["numerator"]
    assert _code(named["VBQNUM"].derivation) == ("373099004", "SCT")

    # The observer is the pseudonym, and the local scheme is declared.
    names = [str(item.PersonName) for item in ds.ContentSequence if item.ValueType == "PNAME"]
    assert names == ["Reader 2^"]
    assert ds.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == LOCAL_SCHEME


def test_ellipse_scoord_is_shifted_half_a_pixel(
    case: PhantomCase, images: dict[str, SliceImage]
) -> None:
    roi_set = parse_roi_set(case.truth["rois"])
    _, doc = _write_and_read(_sr(case, roi_set, measure_vbq(roi_set, images)))
    planar = doc.content.get_planar_roi_measurement_groups()
    for group, roi in zip(planar, roi_set.rois, strict=True):
        assert group.roi.graphic_type == hd.sr.GraphicTypeValues.ELLIPSE
        data = np.asarray(group.roi.value, dtype=np.float64)
        assert data.shape == (4, 2)
        cx, cy = roi.shape.center
        # Midpoint of each axis = our centre + 0.5 in both x (column) and y (row).
        np.testing.assert_allclose(data[:2].mean(axis=0), [cx + 0.5, cy + 0.5], atol=1e-4)
        np.testing.assert_allclose(data[2:].mean(axis=0), [cx + 0.5, cy + 0.5], atol=1e-4)
        major = np.linalg.norm(data[1] - data[0]) / 2
        minor = np.linalg.norm(data[3] - data[2]) / 2
        assert major == pytest.approx(max(roi.shape.radii), abs=1e-4)
        assert minor == pytest.approx(min(roi.shape.radii), abs=1e-4)
        # The axes are perpendicular.
        assert np.dot(data[1] - data[0], data[3] - data[2]) == pytest.approx(0, abs=1e-3)


def test_scoord_points_for_each_shape() -> None:
    from readers.measurement.rois import Ellipse, Polygon, Rectangle

    kind, points = scoord_points(Ellipse((10.0, 20.0), (2.0, 5.0), 0.0))
    assert kind == "ELLIPSE"
    # ry > rx: the major axis (vertical, along y) comes first.
    np.testing.assert_allclose(points, [[10.5, 15.5], [10.5, 25.5], [8.5, 20.5], [12.5, 20.5]])
    kind, points = scoord_points(Rectangle(((4.0, 8.0), (1.0, 2.0))))
    assert kind == "POLYLINE"
    np.testing.assert_allclose(points, [[1.5, 2.5], [4.5, 2.5], [4.5, 8.5], [1.5, 8.5], [1.5, 2.5]])
    kind, points = scoord_points(Polygon(((0.0, 0.0), (4.0, 0.0), (0.0, 3.0))))
    assert kind == "POLYLINE"
    np.testing.assert_allclose(points, [[0.5, 0.5], [4.5, 0.5], [0.5, 3.5], [0.5, 0.5]])


def _mixed_set(case: PhantomCase) -> RoiSet:
    """L2 a rectangle, L3 a polygon, L4 excluded with a note, CSF on two adjacent slices."""
    doc = copy.deepcopy(case.truth["rois"])
    rois = {r["label"]: r for r in doc["rois"]}
    l2 = rois["L2"]
    (cx, cy), (rx, ry) = l2["center"], l2["radii"]
    rois["L2"] = {
        "label": "L2",
        "sop_instance_uid": l2["sop_instance_uid"],
        "shape": "rectangle",
        "corners": [[cx - rx / 2, cy - ry / 2], [cx + rx / 2, cy + ry / 2]],
    }
    l3 = rois["L3"]
    (cx, cy), (rx, ry) = l3["center"], l3["radii"]
    rois["L3"] = {
        "label": "L3",
        "sop_instance_uid": l3["sop_instance_uid"],
        "shape": "polygon",
        "points": [[cx - rx / 2, cy], [cx, cy - ry / 2], [cx + rx / 2, cy], [cx, cy + ry / 2]],
    }
    rois["L4"] = {"label": "L4", "excluded": True, "reason": "fracture", "note": "wedge"}
    neighbour = str(case.datasets[case.midsagittal_index + 1].SOPInstanceUID)
    second_csf = dict(rois["CSF"], sop_instance_uid=neighbour)
    doc["rois"] = [rois["L1"], rois["L2"], rois["L3"], rois["CSF"], second_csf, rois["L4"]]
    return parse_roi_set(doc)


def test_shapes_exclusion_and_several_slices(
    case: PhantomCase, images: dict[str, SliceImage]
) -> None:
    roi_set = _mixed_set(case)
    measurement = measure_vbq(roi_set, images, min_levels=3)
    assert measurement["vbq"] is not None
    _, doc = _write_and_read(_sr(case, roi_set, measurement))

    planar = doc.content.get_planar_roi_measurement_groups()
    volumetric = doc.content.get_volumetric_roi_measurement_groups()
    other = doc.content.get_image_measurement_groups()
    assert [str(g.tracking_identifier) for g in planar] == ["L1", "L2", "L3"]
    assert [str(g.tracking_identifier) for g in volumetric] == ["CSF at L3"]
    assert [str(g.tracking_identifier) for g in other] == ["L4 excluded", "VBQ"]

    rect = planar[1].roi
    assert rect.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
    data = np.asarray(rect.value, dtype=np.float64)
    assert data.shape == (5, 2)
    np.testing.assert_allclose(data[0], data[-1])
    x0, y0, _, _ = roi_set.rois[1].shape.bounds
    np.testing.assert_allclose(data[0], [x0 + 0.5, y0 + 0.5], atol=1e-4)
    poly = np.asarray(planar[2].roi.value, dtype=np.float64)
    assert poly.shape == (5, 2)
    np.testing.assert_allclose(poly[:4], np.asarray(roi_set.rois[2].shape.points) + 0.5, atol=1e-4)

    regions = volumetric[0].roi
    assert len(regions) == 2
    csf_median = [m.value for m in volumetric[0].get_measurements() if m.derivation is not None]
    assert measurement["csf"]["median"] in csf_median

    excluded = other[0]
    (evaluation,) = excluded.get_qualitative_evaluations(name=EXCLUSION_REASON)
    assert _code(evaluation.name) == (EXCLUSION_REASON.value, LOCAL_SCHEME)
    assert _code(evaluation.value) == (REASON_CODES["fracture"].value, LOCAL_SCHEME)
    assert excluded.finding_sites[0].value.meaning == "L4 vertebra"
    comments = [
        item.TextValue
        for item in excluded[0].ContentSequence
        if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeValue == "121106"
    ]
    assert comments == ["wedge"]

    # Both CSF instances are evidence and in the image library.
    evidence = {uid for _, _, uid, _ in doc.get_evidence()}
    assert evidence == roi_set.referenced_uids
    assert len(evidence) == 2


def test_score_not_computed(case: PhantomCase, images: dict[str, SliceImage]) -> None:
    roi_set = _mixed_set(case)
    measurement = measure_vbq(roi_set, images, min_levels=4)
    assert measurement["vbq"] is None
    _, doc = _write_and_read(_sr(case, roi_set, measurement))
    score = doc.content.get_image_measurement_groups()[-1]
    assert score.get_measurements() == []
    (evaluation,) = score.get_qualitative_evaluations(name=VBQ_SCORE)
    assert _code(evaluation.name) == (VBQ_SCORE.value, LOCAL_SCHEME)
    assert _code(evaluation.value) == (NOT_COMPUTED.value, LOCAL_SCHEME)


def test_uids_are_deterministic_and_seeded(
    case: PhantomCase, images: dict[str, SliceImage]
) -> None:
    roi_set = parse_roi_set(case.truth["rois"])
    measurement = measure_vbq(roi_set, images)
    first = _sr(case, roi_set, measurement)
    again = _sr(case, roi_set, measurement)
    other = _sr(case, roi_set, measurement, uid_root_seed="another reading")
    assert first.SOPInstanceUID == again.SOPInstanceUID
    assert first.SeriesInstanceUID == again.SeriesInstanceUID
    assert first.SOPInstanceUID != other.SOPInstanceUID
    for uid in (first.SOPInstanceUID, first.SeriesInstanceUID):
        assert uid.startswith("2.25.")
        assert len(uid) <= 64
        assert "test-secret" not in uid
    assert pydicom.uid.UID(first.SOPInstanceUID).is_valid


def test_inconsistent_inputs_are_refused(case: PhantomCase, images: dict[str, SliceImage]) -> None:
    roi_set = parse_roi_set(case.truth["rois"])
    measurement = measure_vbq(roi_set, images)
    mid = case.datasets[case.midsagittal_index]
    others = [ds for ds in case.datasets if ds is not mid]
    with pytest.raises(SrError, match="not among the source images"):
        _sr(case, roi_set, measurement, source_images=others)
    broken = copy.deepcopy(measurement)
    broken["levels"]["L2"] = {"excluded": True, "reason": "fracture"}
    with pytest.raises(SrError, match="L2: excluded in the measurement but has ROIs"):
        _sr(case, roi_set, broken)
    with pytest.raises(SrError, match="observer"):
        _sr(case, roi_set, measurement, observer=" ^ ")
