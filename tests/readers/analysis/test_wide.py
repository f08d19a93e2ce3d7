"""Wide downloads (issue 13): one row per reading, VBQ by reader, and the same in an ``.xlsx``
read back with openpyxl (an independent reader) and compared with the CSV cell by cell."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pydicom
import pytest
from django.urls import reverse

from readers import services
from readers.analysis.wide import READING_COLUMNS, by_reader, reader_column
from readers.measurement.rois import remap_uids
from studies.models import Role
from studies.phantom.writer import write_phantom
from studies.uploads.config import deid_uid
from studies.uploads.ingest import case_set_ingest_paths
from tests.helpers import factories
from vbqweb.audit.models import AuditEvent

FORMULA = '=HYPERLINK("http://x","y")'


def _csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def _same(csv_cell: str, xlsx_cell: object) -> bool:
    if xlsx_cell is None:
        return csv_cell == ""
    if isinstance(xlsx_cell, int | float):
        return float(csv_cell) == pytest.approx(float(xlsx_cell), rel=1e-12)
    return csv_cell == xlsx_cell


@pytest.fixture
def read_study(client, world, tmp_path: Path):
    """Study A: one phantom case (its Manufacturer a formula) read by two readers, one of them
    named like a formula too."""
    [folder] = write_phantom(tmp_path / "p", cases=1, seed=8)
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.Manufacturer = FORMULA
        ds.save_as(path)
    case_set_ingest_paths(study=world.study_a, paths=sorted(folder.glob("*.dcm")), name="p")
    case = world.study_a.cases.get()
    truth = json.loads((folder / "truth.json").read_text())
    evil = factories.UserFactory(username="@evil")
    factories.AssignmentFactory(study=world.study_a, user=evil, role=Role.READER)
    for reader in (world.reader, evil):
        reading = services.reading_open(reader=reader, case=case, session=1)
        rois = remap_uids(truth["rois"], deid_uid)
        reading = services.reading_save_rois(reading=reading, data=rois)
        services.reading_compute_vbq(reading_pk=reading.pk, roi_version=reading.roi_version)
        services.reading_submit(reading=reading)
    client.force_login(world.manager)
    return world


def _get(client, study, name):
    return client.get(reverse(f"analytics:{name}", kwargs={"pk": study.pk}))


@pytest.mark.django_db
def test_one_row_per_reading_agrees_with_the_long_csv(client, read_study) -> None:
    study = read_study.study_a
    wide = _csv(_get(client, study, "readings_wide_csv"))
    long = _csv(_get(client, study, "measurements_csv"))
    assert list(wide[0]) == READING_COLUMNS
    assert len(wide) == 2
    assert len(long) == 10
    assert [r["reader"] for r in wide] == ["'@evil", "reader"]  # sorted, and made text
    for row in wide:
        mine = [r for r in long if r["reader"] == row["reader"]]
        assert row["vbq"] == mine[0]["vbq"]
        assert float(row["vbq"]) > 0
        for r in mine:
            assert row[f"{r['level']}_si"] == r["si"]
            assert row[f"{r['level']}_seconds"] == r["level_seconds"]
        assert row["n_levels"] == "4"
        assert row["L1_excluded"] == "0"
        assert row["manufacturer"] == "'" + FORMULA
        assert row["case"] == "Case 001"
        assert row["session"] == "1"


@pytest.mark.django_db
def test_vbq_by_reader_has_one_row_per_case_and_session_and_a_column_per_reader(
    client, read_study
) -> None:
    study = read_study.study_a
    wide = _csv(_get(client, study, "readings_wide_csv"))
    [row] = _csv(_get(client, study, "vbq_by_reader_csv"))
    assert list(row) == [
        "case", "session", "vbq__evil", "vbq_reader", "n_readers", "complete", "consensus_vbq",
    ]  # fmt: skip
    assert row["vbq__evil"] == wide[0]["vbq"]
    assert row["vbq_reader"] == wide[1]["vbq"]
    assert (row["n_readers"], row["complete"]) == ("2", "1")


@pytest.mark.django_db
def test_the_workbook_holds_what_the_csvs_hold_and_runs_nothing(client, read_study) -> None:
    study = read_study.study_a
    response = _get(client, study, "readings_xlsx")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["readings", "by reader", "columns"]
    for sheet, url in (("readings", "readings_wide_csv"), ("by reader", "vbq_by_reader_csv")):
        rows = list(book[sheet].iter_rows(values_only=True))
        expected = _csv(_get(client, study, url))
        assert list(rows[0]) == list(expected[0])
        assert len(rows) - 1 == len(expected)
        for got, want in zip(rows[1:], expected, strict=True):
            for cell, (column, text) in zip(got, want.items(), strict=True):
                assert _same(text, cell), (sheet, column, text, cell)
    cells = [c for row in book["readings"].iter_rows() for c in row]
    assert not [c for c in cells if c.data_type == "f"]  # no formula anywhere
    manufacturer = READING_COLUMNS.index("manufacturer")
    assert book["readings"].cell(2, manufacturer + 1).value == "'" + FORMULA
    assert isinstance(book["readings"].cell(2, READING_COLUMNS.index("vbq") + 1).value, float)
    downloaded = set(
        AuditEvent.objects.filter(action="export.downloaded").values_list("detail__file", flat=True)
    )
    for name in ("readings-wide.csv", "vbq-by-reader.csv", "readings.xlsx"):
        assert f"study-{study.pk}-{name}" in downloaded


def test_a_case_missing_a_reader_is_incomplete_and_reader_columns_are_spss_names() -> None:
    readings = [
        {"case": "Case 001", "reader": "a.b", "session": 1, "vbq": 2.5},
        {"case": "Case 001", "reader": "a-b", "session": 1, "vbq": 2.7},
        {"case": "Case 002", "reader": "a.b", "session": 1, "vbq": 3.1},
        {"case": "Case 001", "reader": "a.b", "session": 2, "vbq": None},
    ]
    columns, rows = by_reader(readings)
    assert columns[2:4] == ["vbq_a_b", "vbq_a_b_2"]
    assert [(r["case"], r["session"], r["n_readers"], r["complete"]) for r in rows] == [
        ("Case 001", 1, 2, 1),
        ("Case 001", 2, 0, 0),
        ("Case 002", 1, 1, 0),
    ]
    taken: set[str] = set()
    assert reader_column("=cmd|x", taken) == "vbq__cmd_x"
    assert reader_column("=CMD|x", taken) == "vbq__CMD_x_2"  # SPSS names ignore case
