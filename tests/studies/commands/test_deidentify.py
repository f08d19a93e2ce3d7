"""``manage.py deidentify SRC DST`` (spec section 3): PHI corpus, zips, real series, bad input."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from studies.ingest.eligibility import classify_series
from tests.helpers.cli import REPO, assert_one_line_error, run_manage
from tests.helpers.phi import NEEDLES, assert_clean, phi_dataset

DATA = REPO / ".." / "shared" / "data"
PHI_DIR = "Zebulonix Quixotica PID-8675309"


def run(src: Path, dst: Path) -> dict[str, Any]:
    out = io.StringIO()
    call_command("deidentify", str(src), str(dst), stdout=out)
    text = out.getvalue()
    assert_clean(text.encode(), "the JSON output")
    return json.loads(text)  # type: ignore[no-any-return]


def output_files(dst: Path) -> list[Path]:
    return sorted(p for p in dst.rglob("*") if p.is_file())


def write_corpus(root: Path) -> dict[int, bytes]:
    """Two patients, three series, files and folders named after the patient."""
    pixels: dict[int, bytes] = {}
    folder = root / PHI_DIR / "ACC-55501 Mercy Vertebral Hospital"
    folder.mkdir(parents=True)
    for series in (1, 2):
        for index in (1, 2, 3):
            ds = phi_dataset(index=index, series=series)
            ds.InstanceNumber = 10 * series + index
            pixels[ds.InstanceNumber] = ds.PixelData
            ds.save_as(
                folder / f"Zebulonix^Quixotica_{series}_{index}.dcm", enforce_file_format=True
            )
    other = root / "Otherperson Olga"
    other.mkdir()
    for index in (1, 2):
        ds = phi_dataset(
            index=index, series=3, patient="Otherperson^Olga", patient_id="PID-2", study=2
        )
        ds.InstanceNumber = 30 + index
        pixels[ds.InstanceNumber] = ds.PixelData
        ds.save_as(other / f"{index}.dcm", enforce_file_format=True)
    (root / "notes.txt").write_text("not dicom")
    return pixels


def check_output(dst: Path, pixels: dict[int, bytes]) -> None:
    files = output_files(dst)
    assert files
    for path in files:
        relative = path.relative_to(dst).as_posix()
        assert_clean(relative.encode(), f"the output name {relative}")
        data = path.read_bytes()
        assert_clean(data, relative)
        assert data[:128] == b"\x00" * 128
        ds = pydicom.dcmread(path)  # no force
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert relative.endswith(
            f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
        )
        assert ds.PatientIdentityRemoved == "YES"
        codes = {c.CodeValue for c in ds.DeidentificationMethodCodeSequence}
        assert codes == {"113100", "113107", "113108", "113105"}
        assert ds.PixelData == pixels[int(ds.InstanceNumber)]
        assert ds.PatientAge == "076Y"
        assert ds.PatientSex == "F"


def test_phi_corpus_folder(tmp_path: Path) -> None:
    src = tmp_path / "src"
    pixels = write_corpus(src)
    dst = tmp_path / "out"
    report = run(src, dst)
    assert report["instances"] == 8
    assert report["series"] == 3
    assert report["rejected"] == [
        {"name": "notes.txt", "reason": "not a DICOM file (no 'DICM' marker at byte 128)"}
    ]
    assert "quarantined" not in report
    check_output(dst, pixels)
    studies = {p.relative_to(dst).parts[0] for p in output_files(dst)}
    assert len(studies) == 2
    by_patient: dict[str, set[str]] = {}
    for path in output_files(dst):
        ds = pydicom.dcmread(path)
        by_patient.setdefault(str(ds.PatientID), set()).add(ds.StudyDate)
    assert len(by_patient) == 2
    assert all(len(dates) == 1 for dates in by_patient.values())
    assert "20230501" not in {d for dates in by_patient.values() for d in dates}
    assert not list(tmp_path.glob(".out.partial-*"))


def test_phi_corpus_zip_with_comment(tmp_path: Path) -> None:
    src = tmp_path / "src"
    pixels = write_corpus(src)
    archive = tmp_path / "Zebulonix upload.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.comment = b"ZIPCOMMENT for Zebulonix Quixotica PID-8675309"
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(src).as_posix())
    dst = tmp_path / "out"
    report = run(archive, dst)
    assert report["instances"] == 8
    check_output(dst, pixels)
    for path in output_files(dst):
        assert b"ZIPCOMMENT" not in path.read_bytes()


def test_output_is_deterministic(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_corpus(src)
    run(src, tmp_path / "a")
    run(src, tmp_path / "b")
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in output_files(tmp_path / "a")}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in output_files(tmp_path / "b")}
    assert a == b


def test_secret_comes_from_settings(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_corpus(src)
    run(src, tmp_path / "a")
    with override_settings(VBQ_DEID_SECRET="another-site-secret"):
        run(src, tmp_path / "b")
    names_a = {p.name for p in output_files(tmp_path / "a")}
    names_b = {p.name for p in output_files(tmp_path / "b")}
    assert names_a.isdisjoint(names_b)


def test_quarantine_and_duplicates(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    burned = phi_dataset(index=1)
    burned.BurnedInAnnotation = "YES"
    burned.save_as(src / "burned.dcm", enforce_file_format=True)
    phi_dataset(index=2).save_as(src / "a.dcm", enforce_file_format=True)
    phi_dataset(index=2).save_as(src / "b-copy.dcm", enforce_file_format=True)
    dst = tmp_path / "out"
    report = run(src, dst)
    assert report["instances"] == 2
    assert report["rejected"] == [
        {
            "name": "b-copy.dcm",
            "reason": "same SOP Instance UID as a file already written (duplicate)",
        }
    ]
    [item] = report["quarantined"]
    assert item["name"] == "burned.dcm"
    assert "Burned In Annotation" in item["reason"]
    assert item["path"].startswith("quarantine/")
    assert (dst / item["path"]).is_file()


@pytest.mark.parametrize("problem", ["missing", "dst_not_empty", "dst_is_file", "dst_in_src"])
def test_bad_arguments(tmp_path: Path, problem: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    phi_dataset().save_as(src / "a.dcm", enforce_file_format=True)
    dst = tmp_path / "out"
    if problem == "missing":
        src = tmp_path / "nothing-here"
    elif problem == "dst_not_empty":
        dst.mkdir()
        (dst / "keep.txt").write_text("mine")
    elif problem == "dst_is_file":
        dst.write_text("a file")
    else:
        dst = src / "out"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(CommandError):
        call_command("deidentify", str(src), str(dst), stdout=io.StringIO())
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_refused_upload_leaves_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w"):
        pass
    dst = tmp_path / "out"
    with pytest.raises(CommandError, match="empty"):
        call_command("deidentify", str(empty), str(dst), stdout=io.StringIO())
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.zip"]


def test_zip_bomb_member_rejected(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("bomb.dcm", "w", force_zip64=True) as member:
            for _ in range(200):
                member.write(zeros)
        buffer = io.BytesIO()
        phi_dataset().save_as(buffer, enforce_file_format=True)
        zf.writestr("ok.dcm", buffer.getvalue())
    report = run(archive, tmp_path / "out")
    assert report["instances"] == 1
    [rejected] = report["rejected"]
    assert rejected["name"] == "bomb.dcm"
    assert "ratio" in rejected["reason"]


def test_one_line_error_and_exit_status(tmp_path: Path) -> None:
    completed = run_manage("deidentify", str(tmp_path / "missing"), str(tmp_path / "o"))
    assert "missing" in assert_one_line_error(completed, 1)


def _data(folder: str) -> Path:
    path = DATA / folder
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path} (see ../shared/data/README.md)")
    return path


def test_real_series_deidentified_and_judged_ineligible(tmp_path: Path) -> None:
    src = _data("real-mr-sagittal-t1-brain")
    dst = tmp_path / "out"
    report = run(src, dst)
    assert report["instances"] == 196
    assert report["series"] == 1
    assert [r["name"] for r in report["rejected"]] == ["LICENSE"]
    files = output_files(dst)
    assert len(files) == 196
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    for path in files[::40]:
        data = path.read_bytes()
        assert b"FRUIT" not in data.upper()
        assert data[:128] == b"\x00" * 128
    eligibility = classify_series(headers)
    assert not eligibility.eligible
    assert "TR 6.96 ms is far below the T1 spin-echo range 300–1000 ms" in eligibility.reasons
    assert any("gradient echo" in r for r in eligibility.reasons)
    assert eligibility.manufacturer == "GE MEDICAL SYSTEMS"
    assert eligibility.field_strength_t == 3.0


def test_hostile_folder_all_rejected(tmp_path: Path) -> None:
    src = _data("hostile")
    report = run(src, tmp_path / "out")
    assert report["instances"] == 0
    names = {r["name"] for r in report["rejected"]}
    assert {p.name for p in src.iterdir() if p.is_file()} <= names
    assert all(r["reason"] for r in report["rejected"])


def test_enhanced_and_compressed_folders(tmp_path: Path) -> None:
    enhanced = run(_data("enhanced-mr"), tmp_path / "enhanced")
    assert enhanced["instances"] == 3
    for path in output_files(tmp_path / "enhanced"):
        data = path.read_bytes()
        for secret in (b"Trinity", b"AWP175689", b"Luci"):
            assert secret not in data
    compressed = run(_data("compressed"), tmp_path / "compressed")
    assert compressed["instances"] >= 4
    reasons = {r["name"]: r["reason"] for r in compressed["rejected"]}
    assert "1.2.840.10008.1.2.4.51" in reasons["1.2.840.10008.1.2.4.51.dcm"]
    for path in output_files(tmp_path / "compressed"):
        ds = pydicom.dcmread(path)
        assert ds.pixel_array.size > 0


def test_needles_are_distinct() -> None:
    assert len(set(NEEDLES)) == len(NEEDLES)


def test_deidentified_phantom_measures_the_same(tmp_path: Path) -> None:
    """The profile keeps what the measurement needs (geometry, Modality LUT, pixels)."""
    from django.conf import settings

    from studies.ingest.deid_identity import new_uid
    from studies.phantom.writer import write_phantom

    [case] = write_phantom(tmp_path / "phantom", cases=1, seed=11)
    truth = json.loads((case / "truth.json").read_text())
    run(case, tmp_path / "out")
    secret = (getattr(settings, "VBQ_DEID_SECRET", None) or settings.SECRET_KEY).encode()

    def remap(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: remap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [remap(v) for v in value]
        if isinstance(value, str) and value.startswith("2.25."):
            return new_uid(value, secret)
        return value

    rois = tmp_path / "rois.json"
    rois.write_text(json.dumps(remap(truth["rois"])))
    before, after = io.StringIO(), io.StringIO()
    (tmp_path / "original.json").write_text(json.dumps(truth["rois"]))
    call_command("measure_vbq", str(case), rois=str(tmp_path / "original.json"), stdout=before)
    call_command("measure_vbq", str(tmp_path / "out"), rois=str(rois), stdout=after)
    assert json.loads(after.getvalue())["vbq"] == json.loads(before.getvalue())["vbq"]
