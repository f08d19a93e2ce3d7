"""``manage.py agreement``: spec §3's command-line contract.

Two cases run the real command line in a subprocess (exit status, exactly one stderr line,
nothing on stdout); the rest use ``call_command``, which is faster.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from studies.stats.estimators import ICC_FORMS
from tests.helpers.cli import assert_one_line_error, run_manage

# Bland & Altman (1986): the PEFR pairs behind the spec example's Bland-Altman numbers.
WRIGHT = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
MINI_WRIGHT = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]


def pefr_csv(tmp_path: Path, *, second_session: bool = True) -> Path:
    lines = ["case,reader,session,vbq"]
    for session in (1, 2) if second_session else (1,):
        for i, (a, b) in enumerate(zip(WRIGHT, MINI_WRIGHT, strict=True)):
            shift = 5 * (i % 3) if session == 2 else 0
            lines += [f"s{i + 1},A,{session},{a + shift}", f"s{i + 1},B,{session},{b}"]
    path = tmp_path / "pefr.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write(tmp_path: Path, text: str, name: str = "readings.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def agreement(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("agreement", *args, stdout=out)
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


# --- the real command line -------------------------------------------------------------------


def test_cli_prints_the_spec_json(tmp_path: Path) -> None:
    done = run_manage("agreement", str(pefr_csv(tmp_path)), "--threshold", "screening=450")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert {"cases", "readers", "sessions", "inter_reader", "intra_reader"} <= set(result)
    assert (result["cases"], result["readers"], result["sessions"]) == (17, ["A", "B"], [1, 2])
    inter = result["inter_reader"]
    assert inter["session"] == 1
    assert set(inter["icc"]) == set(ICC_FORMS)
    assert all({"value", "ci95"} <= set(form) for form in inter["icc"].values())
    (pair,) = inter["pairs"]
    assert pair["readers"] == ["A", "B"]
    assert pair["n"] == 17
    ba = pair["bland_altman"]
    assert (round(ba["bias"], 1), round(ba["sd"], 1)) == (-2.1, 38.8)
    assert [round(v, 1) for v in ba["loa"]] == [-78.1, 73.9]
    assert round(pair["ccc"]["value"], 2) == 0.94
    assert [round(v, 2) for v in pair["ccc"]["ci95"]] == [0.85, 0.98]
    kappa = inter["kappa"]["screening"]
    assert {"fleiss", "pairs"} <= set(kappa)
    assert kappa["pairs"][0]["readers"] == ["A", "B"]
    assert "cohen" in kappa["pairs"][0]
    intra = result["intra_reader"]
    assert set(intra) == {"A", "B"}
    assert {"ICC3", "ICC2"} <= set(intra["A"]["icc"])
    assert intra["A"]["sessions"] == [1, 2]
    assert intra["A"]["n"] == 17
    assert intra["B"]["bland_altman"]["bias"] == 0.0  # B read identically twice
    assert intra["A"]["bland_altman"]["bias"] < 0  # session 1 − session 2, A read higher later


def test_cli_bad_csv_gives_one_line_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "case,reader,session,vbq\nc1,A,1,3.0\nc1,B,1,3.1\nc1,A,1,2.9\n")
    line = assert_one_line_error(run_manage("agreement", str(path)), 1)
    assert str(path) in line
    assert "line 4" in line
    assert "duplicate" in line
    assert "line 2" in line


# --- call_command ----------------------------------------------------------------------------

GOOD = "case,reader,session,vbq\nc1,A,1,3.0\nc1,B,1,3.1\nc2,A,1,2.5\nc2,B,1,2.7\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty file"),
        ("case,reader,session\nc1,A,1\nc1,B,1\n", "missing column vbq"),
        ("case,reader,vbq,session,L5\n", "unknown column 'L5'"),
        ("case,reader,session,vbq,vbq\n", "column 'vbq' appears twice"),
        ("case,reader,session,vbq\n", "no readings"),
        ("case,reader,session,vbq\nc1,A,1,3.0\nc1,B,1,abc\n", "line 3: vbq 'abc' is not a number"),
        ("case,reader,session,vbq\nc1,A,1,3.0\nc1,B,1,inf\n", "line 3: vbq 'inf' is not a finite"),
        (
            "case,reader,session,vbq,L1\nc1,A,1,3.0,x\nc1,B,1,3,1\n",
            "line 2: L1 'x' is not a number",
        ),
        ("case,reader,session,vbq\nc1,A,0,3.0\nc1,B,1,3.1\n", "line 2: session '0' is not a pos"),
        ("case,reader,session,vbq\nc1,A,1.5,3.0\nc1,B,1,3\n", "line 2: session '1.5' is not a pos"),
        ("case,reader,session,vbq\nc1,A,one,3.0\nc1,B,1,3\n", "line 2: session 'one' is not a pos"),
        ("case,reader,session,vbq\nc1,A,1,3.0\nc1,A,1,3.1\n", "line 3: duplicate reading"),
        ("case,reader,session,vbq\nc1,A,1,3.0\nc2,A,1,3.1\n", "only one reader ('A')"),
        ("case,reader,session,vbq\nc1,A,1,3.0,9\nc1,B,1,3.1\n", "line 2: expected 4 fields"),
        ("case,reader,session,vbq\n,A,1,3.0\nc1,B,1,3.1\n", "line 2: empty case"),
    ],
)
def test_bad_csv_is_one_line_naming_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text, name="bad-readings.csv")
    out = io.StringIO()
    with pytest.raises(CommandError) as error:
        call_command("agreement", str(path), stdout=out)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        ("screening", "expected NAME=VALUE"),
        ("=2.95", "expected NAME=VALUE"),
        ("screening=low", "'low' is not a number"),
        ("screening=nan", "not a finite number"),
    ],
)
def test_bad_threshold_is_one_line_naming_the_file(
    tmp_path: Path, threshold: str, expected: str
) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(CommandError) as error:
        call_command("agreement", str(path), "--threshold", threshold, stdout=io.StringIO())
    assert str(error.value).startswith(f"{path}: bad --threshold")
    assert expected in str(error.value)


def test_repeated_threshold_name_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(CommandError, match="given twice"):
        call_command("agreement", str(path), "--threshold", "a=1", "--threshold", "a=2")


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    for path, expected in [
        (tmp_path / "missing.csv", "No such file"),
        (tmp_path, "cannot read"),
    ]:
        with pytest.raises(CommandError) as error:
            call_command("agreement", str(path), stdout=io.StringIO())
        assert str(error.value).startswith(f"{path}: ")
        assert expected in str(error.value)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("case,reader,session,vbq\ncé,A,1,3\n".encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("agreement", str(latin1), stdout=io.StringIO())


def test_levels_empty_cells_and_missing_scores(tmp_path: Path) -> None:
    """Empty L cells are exclusions; an empty vbq is a score not computed, dropped and counted."""
    text = (
        "\ufeffCase, Reader ,session,VBQ,L1,L2,L3,L4,CSF\n"  # BOM and loose header spelling
        "c1,A,1,3.0,450,440,430,,150\n"
        "c1,B,1,3.1,455,445,,,148\n"
        "c2,A,1,2.5,400,390,380,370,155\n"
        "c2,B,1,2.6,405,395,385,375,152\n"
        "c3,A,1,2.8,420,410,400,390,150\n"
        "c3,B,1,,,,,,\n"  # B could not score c3
        "\n"
        ",,,,,,,,\n"  # spreadsheet padding
        "c4,A,1,3.3,500,480,470,460,145\n"
        "c4,B,1,3.2,498,478,468,458,146\n"
    )
    result = agreement(str(write(tmp_path, text)), "--threshold", "screening=2.95")
    assert result["cases"] == 4
    assert result["readings"] == 8
    assert result["readings_without_vbq"] == 1
    inter = result["inter_reader"]
    assert inter["n"] == 3
    assert inter["vbq_by_reader"] == {"A": 4, "B": 3}
    assert inter["levels"]["L1"]["n"] == 3
    assert inter["levels"]["L3"]["n"] == 2
    assert inter["levels"]["L4"]["n"] == 2
    assert inter["exclusions"]["L4"]["excluded"] == {"A": 1, "B": 2}
    assert inter["exclusions"]["L3"]["pairs"][0]["second_only"] == 2
    assert inter["kappa"]["screening"]["n"] == 3


def test_json_has_no_nan_for_degenerate_data(tmp_path: Path) -> None:
    path = write(tmp_path, "case,reader,session,vbq\nc1,A,1,3.0\nc1,B,1,3.0\n")
    out = io.StringIO()
    call_command("agreement", str(path), "--threshold", "t=2.9", stdout=out)
    assert "NaN" not in out.getvalue()
    result = json.loads(out.getvalue())
    assert result["inter_reader"]["icc"]["ICC1"]["value"] is None
    assert result["inter_reader"]["pairs"][0]["n"] == 1


@pytest.mark.parametrize("args", [("--no-such-option",), ()], ids=["unknown option", "no CSV"])
def test_cli_argument_errors_are_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    """Spec section 3: bad input gives one line on stderr, not argparse's usage block."""
    if args:
        csv = tmp_path / "m.csv"
        csv.write_text("case,reader,session,vbq\n")
        args = (str(csv), *args)
    line = assert_one_line_error(run_manage("agreement", *args), 2)
    assert line.startswith("agreement: error:")
