"""The DICOM receiver: a C-STORE SCP (and C-ECHO) on one port, one called AE title per study.

Built on pynetdicom (the DICOM upper layer done by a maintained library, not by hand). What is
the site's decision, and why:

* **One port, many AE titles.** A PACS is configured with an AE title, a host and a port per
  destination; giving each reader study its own *called* AE title on the one port lets a PACS
  operator send a case straight into a study without any other channel. The title is looked up
  when the association is requested (pynetdicom's ``EVT_REQUESTED``), before anything else: an
  unknown title is an A-ASSOCIATE-RJ, *rejected-permanent, service-user, called AE title not
  recognised* (PS3.8 Table 9-21), so no byte of an image is ever received for no study.
* **Every storage SOP class is negotiated**, so that a CT or an SR sent by mistake is answered
  per instance, with a failure status and a reason the PACS shows its operator (an unsupported
  presentation context would only say "no context"); MR classes and secondary captures accept
  every transfer syntax pynetdicom knows (the ingest judges whether it can decode the pixels).
* **One association is one batch** (:class:`Batch`): the Django side stages each accepted
  instance and, when the association ends (released, or aborted: instances already answered
  with success were taken), queues the ingest as one upload.

Pure module: pynetdicom and pydicom; the site is reached only through the ``open_batch``
callback (:mod:`studies.receiver.reception` provides it), so this runs, and is tested, without
Django.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from studies.receiver.verdict import CANNOT_UNDERSTAND, READ_SOP_CLASSES, SUCCESS, Refusal

logger = logging.getLogger(__name__)

RECEIVER_AE_TITLE = "VBQ-RECEIVER"
"""The receiver's own title (what it calls itself in responses); never a study's."""
_REJECTED_PERMANENT, _SERVICE_USER, _CALLED_AE_NOT_RECOGNISED = 0x01, 0x01, 0x07


class Batch(Protocol):
    """What one association hands to the site: instances as Part 10 bytes, then its end."""

    def add(self, data: bytes, *, sop_class: str) -> Refusal | None:
        """Take one instance; None when taken, else why not (nothing is kept of it)."""

    def close(self) -> None:
        """The association ended: queue what was taken (called once)."""


OpenBatch = Callable[[str, str, str], Batch | None]
"""``(called AE title, calling AE title, peer address)`` -> a batch, or None: unknown title."""


class _Associations:
    """The open batches, by association (one thread each; the map is shared)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: dict[int, Batch] = {}

    def put(self, assoc: Any, batch: Batch) -> None:
        with self._lock:
            self._batches[id(assoc)] = batch

    def get(self, assoc: Any) -> Batch | None:
        with self._lock:
            return self._batches.get(id(assoc))

    def pop(self, assoc: Any) -> Batch | None:
        with self._lock:
            return self._batches.pop(id(assoc), None)


def _status(refusal: Refusal) -> Dataset:
    status = Dataset()
    status.Status = refusal.status
    status.ErrorComment = refusal.comment
    return status


def receiver_ae(open_batch: OpenBatch) -> tuple[AE, list[tuple[Any, Callable[..., Any]]]]:
    """The application entity and the event handlers to start its server with."""
    ae = AE(ae_title=RECEIVER_AE_TITLE)
    for context in AllStoragePresentationContexts:
        uid = str(context.abstract_syntax)
        syntaxes = ALL_TRANSFER_SYNTAXES if uid in READ_SOP_CLASSES else context.transfer_syntax
        ae.add_supported_context(uid, syntaxes)
    ae.add_supported_context(Verification)
    ae.require_called_aet = False  # checked per study in on_requested, not against one title
    associations = _Associations()

    def on_requested(event: Any) -> None:
        assoc = event.assoc
        primitive = assoc.requestor.primitive
        called = str(primitive.called_ae_title or "").strip()
        calling = str(primitive.calling_ae_title or "").strip()
        peer = f"{assoc.requestor.address}:{assoc.requestor.port}"
        try:
            batch = open_batch(called, calling, peer)
        except Exception:
            logger.exception("association from %s to %r: the site could not be asked", peer, called)
            batch = None
        if batch is None:
            logger.info(
                "association from %s (%s) to unknown AE title %r: rejected", peer, calling, called
            )
            assoc.acse.send_reject(_REJECTED_PERMANENT, _SERVICE_USER, _CALLED_AE_NOT_RECOGNISED)
            evt.trigger(assoc, evt.EVT_REJECTED, {})
            assoc.kill()
            return
        associations.put(assoc, batch)

    def on_store(event: Any) -> int | Dataset:
        batch = associations.get(event.assoc)
        if batch is None:  # cannot happen: the association was accepted with a batch
            return _status(Refusal(CANNOT_UNDERSTAND, "no study for this association"))
        sop_class = str(event.request.AffectedSOPClassUID or "")
        try:
            refusal = batch.add(event.encoded_dataset(), sop_class=sop_class)
        except Exception:
            logger.exception("C-STORE of %s: the site failed to take it", sop_class)
            refusal = Refusal(CANNOT_UNDERSTAND, "the receiver failed to take the instance")
        return SUCCESS if refusal is None else _status(refusal)

    def on_end(event: Any) -> None:
        batch = associations.pop(event.assoc)
        if batch is not None:
            batch.close()

    handlers = [
        (evt.EVT_REQUESTED, on_requested),
        (evt.EVT_C_STORE, on_store),
        (evt.EVT_RELEASED, on_end),
        (evt.EVT_ABORTED, on_end),
        (evt.EVT_CONN_CLOSE, on_end),
    ]
    return ae, handlers
