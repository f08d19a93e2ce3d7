"""``manage.py plan_study`` (spec §6): the JSON document and the one-line errors of spec §3."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from tests.helpers.cli import assert_one_line_error, run_manage


def test_cli_prints_the_spec_document() -> None:
    done = run_manage("plan_study", "--icc", "0.8", "--readers", "2", "--width", "0.2")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout) == {
        "cases": 51,
        "icc": 0.8,
        "readers": 2,
        "width": 0.2,
        "confidence": 0.95,
        "method": "Bonett 2002",
    }


def test_confidence_is_an_option() -> None:
    out = io.StringIO()
    call_command("plan_study", icc=0.8, readers=2, width=0.2, confidence=0.99, stdout=out)
    result = json.loads(out.getvalue())
    assert result["confidence"] == 0.99
    assert result["cases"] > 51


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (("--icc", "0", "--readers", "2", "--width", "0.2"), "--icc"),
        (("--icc", "1.2", "--readers", "2", "--width", "0.2"), "--icc"),
        (("--icc", "0.8", "--readers", "1", "--width", "0.2"), "--readers"),
        (("--icc", "0.8", "--readers", "3", "--width", "1"), "--width"),
        (("--icc", "0.8", "--readers", "3", "--width", "-0.1"), "--width"),
    ],
)
def test_bad_input_is_one_line_with_status_1(args: tuple[str, ...], word: str) -> None:
    line = assert_one_line_error(run_manage("plan_study", *args), 1)
    assert word in line


@pytest.mark.parametrize(
    "args",
    [
        ("--icc", "high", "--readers", "2", "--width", "0.2"),
        ("--icc", "0.8", "--readers", "2.5", "--width", "0.2"),
        ("--icc", "0.8", "--readers", "2"),
    ],
)
def test_unparsable_arguments_are_one_line_too(args: tuple[str, ...]) -> None:
    assert_one_line_error(run_manage("plan_study", *args), 2)


def test_call_command_raises_command_error() -> None:
    with pytest.raises(CommandError, match="--icc"):
        call_command("plan_study", icc=1.5, readers=2, width=0.2)
