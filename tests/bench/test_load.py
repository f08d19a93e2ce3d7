"""bench/load.py's data check: what counts as a lost save or a reading without exactly one
current result (the benchmark itself is not a test: its figures depend on the machine)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "bench_load", Path(__file__).resolve().parents[2] / "bench" / "load.py"
)
assert _spec is not None
assert _spec.loader is not None
load = importlib.util.module_from_spec(_spec)
sys.modules["bench_load"] = load  # its dataclasses look their module up
_spec.loader.exec_module(load)

pytestmark = pytest.mark.pure

L12, L1234, ALL = ["L1", "L2"], ["L1", "L2", "L3", "L4"], ["L1", "L2", "L3", "L4", "CSF"]


def check(**changes):
    """Reading 7: three saves, kept as one coalesced revision (v3), submitted, scored once."""
    data = {
        "acknowledged": [(7, 1, L12), (7, 2, L1234), (7, 3, ALL)],
        "submitted": [7],
        "readings": {7: ("submitted", 3, ALL)},
        "revisions": {7: {3}},
        "results": [(7, 1), (7, 2), (7, 3)],
    }
    return load.check_saves_and_results(**(data | changes))


def test_coalesced_saves_scored_once_each_pass() -> None:
    result = check()
    assert result["ok"]
    assert result["lost_saves"] == []
    assert (result["acknowledged_saves"], result["submitted_readings"]) == (3, 1)


def test_a_last_save_that_is_not_the_current_set_is_lost() -> None:
    result = check(readings={7: ("submitted", 3, L1234)})
    assert not result["ok"]
    assert result["lost_saves"] == [[7, 3]]


def test_an_acknowledged_version_newer_than_the_stored_one_is_lost() -> None:
    result = check(readings={7: ("submitted", 2, L1234)}, revisions={7: {2}})
    assert [7, 3] in result["lost_saves"]


def test_a_save_with_no_revision_at_or_after_it_is_lost() -> None:
    result = check(revisions={7: set()})
    assert result["lost_saves"] == [[7, 1], [7, 2], [7, 3]]


def test_a_submitted_reading_needs_exactly_one_current_result() -> None:
    missing = check(results=[(7, 1), (7, 2)])
    assert missing["without_current_result"] == [7]
    assert not missing["ok"]
    twice = check(results=[(7, 3), (7, 3)])
    assert twice["with_several_current_results"] == [7]
    assert not twice["ok"]


def test_a_reading_acknowledged_as_submitted_but_still_a_draft_fails() -> None:
    result = check(readings={7: ("draft", 3, ALL)})
    assert result["not_submitted"] == [7]
    assert not result["ok"]
