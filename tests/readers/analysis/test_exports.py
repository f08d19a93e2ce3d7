"""CSV downloads are safe to open in a spreadsheet (issue 12): a cell that a spreadsheet would
run as a formula gets a leading ``'``; numbers stay numbers.

The attack comes through the data, not the site: a DICOM header of an uploaded case (the
Manufacturer is kept by the de-identification, spec section 4) reaches the manager's download.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pydicom
import pytest
from django.urls import reverse

from readers import services
from readers.analysis.exports import MEASUREMENT_COLUMNS, to_csv
from readers.measurement.rois import remap_uids
from studies.phantom.writer import write_phantom
from studies.uploads.config import deid_uid
from studies.uploads.ingest import case_set_ingest_paths

FORMULA = '=HYPERLINK("http://x","y")'


def test_a_dicom_manufacturer_formula_reaches_measurements_csv_as_text(
    client, world, tmp_path: Path
) -> None:
    [folder] = write_phantom(tmp_path / "p", cases=1, seed=8)
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.Manufacturer = FORMULA
        ds.save_as(path)
    upload = case_set_ingest_paths(
        study=world.study_a, paths=sorted(folder.glob("*.dcm")), name="phantom"
    )
    assert upload.status == "done", upload.message
    case = world.study_a.cases.get()
    assert case.reading_series.manufacturer == FORMULA  # kept by the de-identification
    truth = json.loads((folder / "truth.json").read_text())
    reading = services.reading_open(reader=world.reader, case=case, session=1)
    reading = services.reading_save_rois(reading=reading, data=remap_uids(truth["rois"], deid_uid))
    services.reading_compute_vbq(reading_pk=reading.pk, roi_version=reading.roi_version)
    services.reading_submit(reading=reading)

    client.force_login(world.manager)
    url = reverse("analytics:measurements_csv", kwargs={"pk": world.study_a.pk})
    rows = list(csv.DictReader(io.StringIO(client.get(url).content.decode())))
    assert len(rows) == 5
    assert {row["manufacturer"] for row in rows} == {"'" + FORMULA}
    assert float(rows[0]["vbq"]) > 0  # numbers are written as numbers


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1+1", "'+1+1"),
        ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\n=1", "'\n=1"),
        ("＝1+1", "'＝1+1"),  # full-width equals sign
        ("Siemens", "Siemens"),
        ("a=b", "a=b"),
        ("", ""),
        (-2.5, "-2.5"),  # a number stays a number
        (-3, "-3"),
        ("-2.5", "-2.5"),  # so does a string that is only a number
        ("+1e-3", "+1e-3"),
        ("-", "'-"),
        (True, "True"),
        (None, ""),
    ],
)
def test_cells_that_start_a_formula_are_text(value: object, written: str) -> None:
    text = to_csv([{"model": value}], ["model"])
    [row] = list(csv.DictReader(io.StringIO(text, newline="")))
    assert row["model"] == written


def test_the_header_is_unchanged_by_the_guard() -> None:
    assert to_csv([], MEASUREMENT_COLUMNS) == ",".join(MEASUREMENT_COLUMNS) + "\r\n"


def test_a_line_break_inside_a_cell_stays_inside_it() -> None:
    text = to_csv([{"model": "a\rb", "manufacturer": "c\nd"}], ["model", "manufacturer"])
    assert list(csv.DictReader(io.StringIO(text, newline=""))) == [
        {"model": "a\rb", "manufacturer": "c\nd"}
    ]
