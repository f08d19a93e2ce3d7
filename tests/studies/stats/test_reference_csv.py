"""The reference-standard CSV parser: what it accepts, and a line-numbered error for the rest."""

from __future__ import annotations

import pytest

from studies.stats.reference_csv import ReferenceCsvError, ReferenceRow, parse_reference_csv

KNOWN = {"Case 001", "Case 002", "Case 003"}
HEADER = "case,dxa_t_score,qct_bmd,fragility_fracture\n"


def _errors(text: str) -> list[tuple[int, str]]:
    with pytest.raises(ReferenceCsvError) as info:
        parse_reference_csv(text, KNOWN)
    return info.value.errors


def test_it_parses_every_column() -> None:
    rows = parse_reference_csv(HEADER + "Case 001,-2.7,72.5,yes\nCase 002,0.4,130,no\n", KNOWN)
    assert rows == {
        "Case 001": ReferenceRow(
            line=2,
            columns=frozenset({"dxa_t_score", "qct_bmd", "fragility_fracture"}),
            dxa_t_score=-2.7,
            qct_bmd=72.5,
            fragility_fracture=True,
        ),
        "Case 002": ReferenceRow(
            line=3,
            columns=frozenset({"dxa_t_score", "qct_bmd", "fragility_fracture"}),
            dxa_t_score=0.4,
            qct_bmd=130.0,
            fragility_fracture=False,
        ),
    }


def test_empty_cells_are_unknown() -> None:
    rows = parse_reference_csv(HEADER + "Case 001,,,\n", KNOWN)
    assert rows["Case 001"].updates() == {
        "dxa_t_score": None,
        "qct_bmd": None,
        "fragility_fracture": None,
    }


def test_a_subset_of_columns_updates_only_those() -> None:
    rows = parse_reference_csv("fragility_fracture,case\nTRUE,Case 003\n", KNOWN)
    assert rows["Case 003"].updates() == {"fragility_fracture": True}


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("yes", True),
        ("Yes", True),
        ("true", True),
        ("1", True),
        ("no", False),
        ("FALSE", False),
        ("0", False),
        ("", None),
        (" no ", False),
    ],
)
def test_fracture_words(cell: str, value: bool | None) -> None:
    rows = parse_reference_csv(f"case,fragility_fracture\nCase 001,{cell}\n", KNOWN)
    assert rows["Case 001"].fragility_fracture is value


def test_spreadsheet_habits_are_accepted() -> None:
    """A byte-order mark, CRLF line ends, padded cells, capitalised headers, blank lines."""
    text = "\ufeffCase , DXA_T_Score\r\n\r\n Case 001 , -1.5 \r\n,\r\nCase 002,-3\r\n"
    rows = parse_reference_csv(text, KNOWN)
    assert {label: row.dxa_t_score for label, row in rows.items()} == {
        "Case 001": -1.5,
        "Case 002": -3.0,
    }
    assert rows["Case 002"].line == 5


def test_quoted_fields() -> None:
    rows = parse_reference_csv('case,qct_bmd\n"Case 001","88.5"\n', KNOWN)
    assert rows["Case 001"].qct_bmd == 88.5


def test_a_header_only_file_gives_no_rows() -> None:
    assert parse_reference_csv(HEADER, KNOWN) == {}


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "empty"),
        ("\n\n", 1, "empty"),
        ("dxa_t_score\n-1\n", 1, "no 'case' column"),
        ("case,dxa_t_score,manufacturer\nCase 001,1,GE\n", 1, "taken from the images"),
        ("case,site;protocol\nCase 001,A\n", 1, "comma-separated"),
        ("case," + ",".join(f"a{i}" for i in range(11)) + "\n", 1, "at most 10"),
        ("case,site\nCase 001," + "x" * 101 + "\n", 2, "longer than 100"),
        ("case;dxa_t_score\nCase 001;1\n", 1, "comma-separated"),
        ("case,qct_bmd,qct_bmd\nCase 001,1,2\n", 1, "appears twice"),
        ("case\nCase 001\n", 1, "no value column"),
        (HEADER + "Case 001,-1,100,no\nCase 009,-1,100,no\n", 3, "no case 'Case 009'"),
        (HEADER + "Case 001,-1,100,no\nCase 001,-2,90,no\n", 3, "already given on line 2"),
        (HEADER + "Case 001,abc,100,no\n", 2, "dxa_t_score 'abc' is not a number"),
        (HEADER + "Case 001,-1,1.0.0,no\n", 2, "qct_bmd '1.0.0' is not a number"),
        (HEADER + "Case 001,nan,100,no\n", 2, "not a finite number"),
        (HEADER + "Case 001,-1,inf,no\n", 2, "not a finite number"),
        (HEADER + "Case 001,-25,100,no\n", 2, "outside -10 to 10"),
        (HEADER + "Case 001,-1,-5,no\n", 2, "negative"),
        (HEADER + "Case 001,-1,100,maybe\n", 2, "fragility_fracture 'maybe'"),
        (HEADER + "Case 001,-1,100\n", 2, "expected 4 fields"),
        (HEADER + "Case 001,-1,100,no,extra\n", 2, "expected 4 fields"),
        (HEADER + ",-1,100,no\n", 2, "case label is empty"),
        (HEADER + "\nCase 001,-1,100,no\n\nCase 002,x,100,no\n", 5, "'x' is not a number"),
    ],
)
def test_bad_files_name_the_line(text: str, line: int, fragment: str) -> None:
    errors = _errors(text)
    assert any(at == line and fragment in message for at, message in errors), errors


def test_every_problem_is_reported_in_order() -> None:
    text = HEADER + "Case 001,x,100,no\nCase 002,-1,100,no\nCase 404,-1,y,no\n"
    errors = _errors(text)
    assert [line for line, _ in errors] == [2, 4, 4]
    error = ReferenceCsvError(errors)
    assert str(error).startswith("Line 2: dxa_t_score 'x' is not a number.")


def test_long_error_lists_are_cut_short() -> None:
    text = HEADER + "".join(f"Case 9{i:02d},-1,1,no\n" for i in range(30))
    error = ReferenceCsvError(_errors(text))
    assert len(error.errors) == 30
    assert len(error.messages()) == 21
    assert error.messages()[-1] == "… and 10 more problems."


def test_other_columns_are_case_attributes_merged_into_the_stored_ones() -> None:
    text = "case,dxa_t_score,Site,protocol\nCase 001,-1.0, A ,fast\nCase 002,,B,\n"
    rows = parse_reference_csv(text, {"Case 001", "Case 002"})
    assert rows["Case 001"].attributes == (("site", "A"), ("protocol", "fast"))
    assert rows["Case 001"].updates() == {
        "dxa_t_score": -1.0,
        "attributes": {"site": "A", "protocol": "fast"},
    }
    # an empty cell clears that attribute; one the file does not name stays as it was
    assert rows["Case 002"].updates({"protocol": "slow", "age_band": "60-69"}) == {
        "dxa_t_score": None,
        "attributes": {"age_band": "60-69", "site": "B"},
    }


def test_a_file_of_attributes_only_is_accepted_and_leaves_the_values() -> None:
    rows = parse_reference_csv("case,site\nCase 001,A\n", {"Case 001"})
    assert rows["Case 001"].updates() == {"attributes": {"site": "A"}}
