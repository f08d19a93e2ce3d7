"""The C-STORE SCP on its own (no site): the called AE title decides, each instance is judged
by the batch, the batch is closed once when the association ends. The sender is pynetdicom's
SCU; the batch is a plain list (the site's is in ``tests/integration/test_dicom_receiver.py``).
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    MRImageStorage,
    Verification,
)

from studies.receiver.scp import receiver_ae
from studies.receiver.verdict import SOP_CLASS_NOT_SUPPORTED, Refusal, judge
from tests.helpers.ingestdata import phantom_case_bytes


class ListBatch:
    def __init__(self) -> None:
        self.taken: list[bytes] = []
        self.closed = 0

    def add(self, data: bytes, *, sop_class: str) -> Refusal | None:
        refusal = judge(data, sop_class=sop_class)
        if refusal is None:
            self.taken.append(data)
        return refusal

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def scp() -> Iterator[tuple[int, list[tuple[str, str, ListBatch]]]]:
    opened: list[tuple[str, str, ListBatch]] = []

    def open_batch(called: str, calling: str, peer: str) -> ListBatch | None:
        if called != "VBQSTUDY1":
            return None
        batch = ListBatch()
        opened.append((calling, peer, batch))
        return batch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ae, handlers = receiver_ae(open_batch)
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
    try:
        yield port, opened
    finally:
        server.shutdown()


def sender() -> AE:
    ae = AE(ae_title="SENDER")
    ae.add_requested_context(Verification)
    ae.add_requested_context(MRImageStorage, ExplicitVRLittleEndian)
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    return ae


def test_an_unknown_called_ae_title_is_rejected(scp):
    port, opened = scp
    assoc = sender().associate("127.0.0.1", port, ae_title="NOSUCHSTUDY")
    assert assoc.is_rejected
    assert not opened


def test_echo_store_and_one_close(scp, tmp_path):
    port, opened = scp
    data = phantom_case_bytes(11, 1)[0]
    path = tmp_path / "mr.dcm"
    path.write_bytes(data)
    ct = tmp_path / "ct.dcm"
    ds = dcmread(path)
    ds.SOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.Modality = "CT"
    ds.save_as(ct)
    assoc = sender().associate("127.0.0.1", port, ae_title="VBQSTUDY1")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0
    assert assoc.send_c_store(path).Status == 0
    refused = assoc.send_c_store(ct)
    assoc.release()
    assert refused.Status == SOP_CLASS_NOT_SUPPORTED
    assert "not an MR image" in refused.ErrorComment
    ((calling, peer, batch),) = opened
    assert calling == "SENDER"
    assert peer.startswith("127.0.0.1:")
    ((taken,),) = [batch.taken]
    received, sent = dcmread(io.BytesIO(taken)), dcmread(io.BytesIO(data))
    assert received.SOPInstanceUID == sent.SOPInstanceUID
    assert received.PixelData == sent.PixelData  # the data set as sent (meta rebuilt)
    assert batch.closed == 1
