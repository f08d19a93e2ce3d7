"""``manage.py make_phantom OUT --cases N --seed S``: the phantom writer's command line.

Most cases use ``call_command``; one runs the real command line in a subprocess for the exit
status and the single stderr line.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.helpers.cli import assert_one_line_error, run_manage


def run(out: Path, **options: Any) -> dict[str, Any]:
    buffer = io.StringIO()
    call_command("make_phantom", str(out), stdout=buffer, **options)
    result: dict[str, Any] = json.loads(buffer.getvalue())
    return result


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_it_writes_cases_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "new" / "phantom"
    summary = run(out, cases=2, seed=3)
    assert summary == {
        "cases": 2,
        "out": str(out),
        "case_dirs": [str(out / "case-001"), str(out / "case-002")],
        "wrong_series": [],
    }
    for case_dir in map(Path, summary["case_dirs"]):
        truth = json.loads((case_dir / "truth.json").read_text(encoding="utf-8"))
        assert truth["schema"] == "vbq.phantom/1"
        assert truth["seed"] == 3
        assert len(list(case_dir.glob("IM*.dcm"))) == truth["n_slices"]
    assert [p.name for p in tmp_path.joinpath("new").iterdir()] == ["phantom"]  # no leftovers


def test_it_accepts_an_empty_folder(tmp_path: Path) -> None:
    assert run(tmp_path, cases=1)["case_dirs"] == [str(tmp_path / "case-001")]


def test_it_replaces_its_own_earlier_output(tmp_path: Path) -> None:
    run(tmp_path, cases=3, seed=1)
    before = (tmp_path / "case-001" / "truth.json").read_text(encoding="utf-8")
    summary = run(tmp_path, cases=1, seed=2)
    assert summary["case_dirs"] == [str(tmp_path / "case-001")]
    assert [p.name for p in tmp_path.iterdir()] == ["case-001"]  # no stale case-002/003
    assert (tmp_path / "case-001" / "truth.json").read_text(encoding="utf-8") != before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"notes.txt": "mine"}, "not a previous phantom output ('notes.txt')"),
        ({"case-001/IM0001.dcm": "x", "case-001/photo.jpg": "x"}, "'photo.jpg'"),
        ({"case-001/truth.json": '{"schema": "other"}'}, "'truth.json'"),
    ],
)
def test_it_refuses_a_folder_it_did_not_write(
    tmp_path: Path, content: dict[str, str], message: str
) -> None:
    for name, text in content.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    before = listing(tmp_path)
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(tmp_path, cases=1)
    assert listing(tmp_path) == before
    assert not [p for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}")]


def test_it_refuses_a_file_as_out(tmp_path: Path) -> None:
    target = tmp_path / "file.dcm"
    target.write_bytes(b"x")
    with pytest.raises(CommandError, match="exists and is not a directory"):
        run(target)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cases": 0}, "--cases must be a positive integer, got 0"),
        ({"cases": -3}, "--cases must be a positive integer"),
        ({"seed": -1}, "--seed must be a non-negative integer, got -1"),
    ],
)
def test_it_rejects_bad_numbers(tmp_path: Path, options: dict[str, int], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_wrong_series_are_added_to_every_case(tmp_path: Path) -> None:
    buffer = io.StringIO()
    args = ["--wrong-series", "axial-t2", "--wrong-series", "post-contrast"]
    call_command("make_phantom", str(tmp_path), "--cases", "2", "--seed", "6", *args, stdout=buffer)
    summary = json.loads(buffer.getvalue())
    assert summary["wrong_series"] == ["axial-t2", "post-contrast"]
    for case_dir in map(Path, summary["case_dirs"]):
        truth = json.loads((case_dir / "truth.json").read_text(encoding="utf-8"))
        n = truth["n_slices"]
        assert len(list(case_dir.glob("IM0*.dcm"))) == n
        assert len(list(case_dir.glob("IM2*.dcm"))) == n
        assert len(list(case_dir.glob("IM3*.dcm"))) == n
    # Re-running over its own output (wrong series included) replaces it.
    assert run(tmp_path, cases=1, seed=6)["wrong_series"] == []
    assert not list(tmp_path.glob("case-001/IM[23]*.dcm"))


def test_a_bad_wrong_series_kind_is_one_error_line(tmp_path: Path) -> None:
    args = ("make_phantom", str(tmp_path / "out"), "--cases", "1", "--wrong-series", "sag-t2")
    line = assert_one_line_error(run_manage(*args), 2)
    assert line.startswith("make_phantom: error: argument --wrong-series: invalid choice")
    assert "'sag-t2'" in line
    assert not (tmp_path / "out").exists()
    with pytest.raises(CommandError, match="unknown wrong series 'dwi'"):
        run(tmp_path / "out", cases=1, wrong_series=["dwi"])
    assert not (tmp_path / "out").exists()


def test_the_command_line_prints_json_or_one_error_line(tmp_path: Path) -> None:
    out = tmp_path / "cli"

    ok = run_manage("make_phantom", str(out), "--cases", "1", "--seed", "4")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["case_dirs"] == [str(out / "case-001")]

    for args, status in ((["--cases", "0"], 1), (["--cases", "many"], 2)):
        bad = run_manage("make_phantom", str(tmp_path / "other"), *args)
        assert "--cases" in assert_one_line_error(bad, status)
    assert not (tmp_path / "other").exists()
