"""The receiver's pure parts: which received file is taken (and with which status it is refused),
and the parts of a multipart/related body. No site, no network."""

from __future__ import annotations

import tempfile
from typing import IO

import pytest

from studies.phantom.case import make_case
from studies.receiver.multipart import MultipartError, iter_parts
from studies.receiver.verdict import (
    CANNOT_UNDERSTAND,
    SOP_CLASS_NOT_SUPPORTED,
    Refusal,
    judge,
    peek_uids,
)
from tests.helpers.ingestdata import dicom_bytes, phantom_case_bytes

CT = "1.2.840.10008.5.1.4.1.1.2"


def ct_bytes() -> bytes:
    ds = make_case(5, 1).datasets[0]
    ds.SOPClassUID = CT
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.Modality = "CT"
    return dicom_bytes(ds)


def test_a_phantom_mr_instance_is_taken():
    assert judge(phantom_case_bytes(5, 1)[0], sop_class="1.2.840.10008.5.1.4.1.1.4") is None


def test_a_class_the_ingest_never_reads_is_refused_before_parsing():
    refusal = judge(b"not even dicom", sop_class=CT)
    assert refusal is not None
    assert refusal.status == SOP_CLASS_NOT_SUPPORTED
    assert "not an MR image" in refusal.reason


def test_a_ct_announced_as_nothing_is_refused_by_the_ingests_own_check():
    refusal = judge(ct_bytes())
    assert refusal is not None
    assert refusal.status == SOP_CLASS_NOT_SUPPORTED
    assert "MR images only" in refusal.reason


def test_a_truncated_instance_cannot_be_understood():
    data = phantom_case_bytes(5, 1)[1]
    refusal = judge(data[: len(data) // 2])
    assert refusal is not None
    assert refusal.status == CANNOT_UNDERSTAND
    assert "truncated" in refusal.reason


def test_the_error_comment_fits_an_lo():
    refusal = Refusal(CANNOT_UNDERSTAND, "x " * 100)
    assert len(refusal.comment) <= 64
    assert refusal.comment.endswith("...")


def test_peek_names_a_refused_instance_when_it_can():
    data = ct_bytes()
    assert peek_uids(data)[0] == CT
    assert peek_uids(b"garbage") == ("", "")


def _body(parts: list[bytes], boundary: str = "b0und") -> IO[bytes]:
    body = tempfile.TemporaryFile()  # noqa: SIM115  # the caller closes it
    for part in parts:
        body.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        body.write(part + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    return body


def test_parts_come_back_byte_for_byte():
    payloads = [b"\r\n--b0un not a boundary\r\n", b"", bytes(range(256)) * 10]
    with _body(payloads) as body:
        got = [
            (p.content_type, bytes(view[p.start : p.end])) for p, view in iter_parts(body, "b0und")
        ]
    assert got == [("application/dicom", p) for p in payloads]


def test_a_part_without_headers_and_a_preamble():
    with tempfile.TemporaryFile() as body:
        body.write(b"preamble\r\n--xy\r\n\r\nDATA\r\n--xy--")
        parts = [(p.headers, bytes(v[p.start : p.end])) for p, v in iter_parts(body, "xy")]
    assert parts == [({}, b"DATA")]


@pytest.mark.parametrize(
    "raw",
    [b"no boundary at all", b"--xy\r\nContent-Type: a\r\n\r\nDATA never closed", b"--xy"],
)
def test_malformed_bodies_are_refused(raw):
    with tempfile.TemporaryFile() as body:
        body.write(raw)
        with pytest.raises(MultipartError):
            list(iter_parts(body, "xy"))
