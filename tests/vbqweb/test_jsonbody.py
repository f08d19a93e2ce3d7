"""The site's one JSON loader (``vbqweb.jsonbody``): strict, bounded, and only ever a
``JsonBodyError`` (a 400), whatever the bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vbqweb.jsonbody import JsonBodyError, loads_untrusted, nesting_depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [[1], {"b": []}]}', 4),
        ('["[[[[", "]]]", "\\"[["]', 1),  # brackets inside strings do not nest
        ("[" * 4096 + "]" * 4096, 4096),
    ],
)
def test_nesting_depth_is_counted_without_decoding(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 4096 + b"]" * 4096, "nested 4096 levels deep; at most 16"),
        (b'{"a":' * 2000, "nested 2000 levels deep"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'{"a": {"b": 1, "b": 1}}', "duplicate key 'b'"),
        (b"[NaN]", "NaN is not a number"),
        (b"[-Infinity]", "-Infinity is not a number"),
        (b"1" * 5000, "invalid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"   ", "empty"),
        (b"{", "invalid JSON: Expecting property name"),
        (b"[" + b"1," * 10_000 + b"1]", "at most 16384"),
    ],
)
def test_what_is_refused_and_why(raw: bytes, message: str) -> None:
    with pytest.raises(JsonBodyError) as error:
        loads_untrusted(raw)
    assert message in str(error.value)


def test_limits_are_the_callers() -> None:
    assert loads_untrusted(b"[[[1]]]", max_depth=3) == [[[1]]]
    with pytest.raises(JsonBodyError, match="at most 2"):
        loads_untrusted(b"[[[1]]]", max_depth=2)
    assert loads_untrusted(b"[" + b"1," * 10_000 + b"1]", max_bytes=64 * 1024)[-1] == 1


def test_text_is_measured_in_utf8_bytes() -> None:
    assert loads_untrusted('"é"', max_bytes=4) == "é"
    with pytest.raises(JsonBodyError, match="4 bytes; at most 3"):
        loads_untrusted('"é"', max_bytes=3)


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_the_one_error(raw: bytes) -> None:
    with contextlib.suppress(JsonBodyError):
        loads_untrusted(raw, max_depth=4)


@given(st.text(alphabet='[]{}"\\:,1a ', max_size=300))
def test_any_bracket_soup_decodes_or_raises_the_one_error(text: str) -> None:
    with contextlib.suppress(JsonBodyError):
        loads_untrusted(text, max_depth=4)
