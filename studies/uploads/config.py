"""The site's settings for the pure ingest: its de-identification key and its upload limits.

The pure ``studies.ingest`` package takes its configuration as arguments and never reads
Django's settings; this module is where the site's values are read, once, for every caller
(the upload's transfer and ingest, the ``deidentify`` command, the demo).
"""

from __future__ import annotations

from django.conf import settings

from studies.ingest.deid_engine import DeidConfig
from studies.ingest.deid_identity import new_uid
from studies.ingest.sources import IngestLimits


def deid_config() -> DeidConfig:
    """The site's de-identification settings, the same for the command, the site and the demo.

    ``VBQ_DEID_SECRET`` when set, else ``SECRET_KEY``: it keys every HMAC, so it must stay
    constant for the site's lifetime or re-ingested files stop matching their earlier copies.
    """
    secret = getattr(settings, "VBQ_DEID_SECRET", None) or settings.SECRET_KEY
    return DeidConfig.from_text(str(secret))


def ingest_limits() -> IngestLimits:
    """The site's bounds on an upload: ``IngestLimits`` defaults, with ``VBQ_INGEST_LIMITS``
    (a dict of its fields) applied on top."""
    return IngestLimits(**getattr(settings, "VBQ_INGEST_LIMITS", {}))


def deid_uid(original: str) -> str:
    """The de-identified form of a source UID on this site (e.g. to remap a phantom's ROIs)."""
    return new_uid(original, deid_config().secret)
