"""Where bytes live: local disk by default, an S3-compatible object store when configured.

The site reaches every stored byte through Django's storage API (``STORAGES`` in the settings,
``VBQ_STORAGE`` = ``local`` or ``s3``; ``docs/storage.md``): ``default`` holds the de-identified
instances, ``staging`` an upload's bytes between the transfer and the ingest. So web and worker
share nothing but the database, Redis and, with ``s3``, the object store.

Two things every room that touches storage needs, kept here once:

* :class:`UploadRootStorage`, the local ``staging``: ``VBQ_UPLOAD_ROOT`` read when it is used
  (not when the settings are imported), so that a test or a deployment that changes the
  setting is obeyed, with owner-only permissions and overwrites allowed (the transfer chooses
  every name and replaces a piece it rewrites);
* :func:`storage_listdir` and :func:`storage_delete_tree`: a folder's listing and its deletion
  with everything under it, the same on local disk and on an object store (staged uploads, a
  deleted study's built files);
* :func:`storage_unavailable`: is this error the store being unreachable (try again later), as
  opposed to a fault of the request or of the data? The ingest puts its upload back in the
  queue on such an error instead of failing it; DICOMweb answers 503 instead of 500.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage

try:  # botocore comes with django-storages[s3]; a local-only install may lack it
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError
except ImportError:  # pragma: no cover
    BotoCoreError = ClientError = BotoConnectionError = ()  # type: ignore[assignment,misc]


class UploadRootStorage(FileSystemStorage):
    """``VBQ_UPLOAD_ROOT`` on local disk, read at each use; files 0600, folders 0700."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("file_permissions_mode", 0o600)
        kwargs.setdefault("directory_permissions_mode", 0o700)
        kwargs.setdefault("allow_overwrite", True)
        super().__init__(**kwargs)

    @property  # type: ignore[override]
    def base_location(self) -> str:
        return str(self._location or settings.VBQ_UPLOAD_ROOT)

    @property  # type: ignore[override]
    def location(self) -> str:
        return os.path.abspath(self.base_location)


def storage_listdir(storage: Storage, path: str) -> tuple[list[str], list[str]]:
    """The folders and files under ``path``; none when it does not exist."""
    try:
        return storage.listdir(path)
    except FileNotFoundError:  # local disk: no folder yet (the S3 listing is simply empty)
        return [], []


def storage_delete_tree(storage: Storage, path: str) -> None:
    """Delete ``path`` and everything under it."""
    directories, files = storage_listdir(storage, path)
    for name in files:
        storage.delete(f"{path}/{name}")
    for name in directories:
        storage_delete_tree(storage, f"{path}/{name}")
    storage.delete(path)  # the folder on local disk; nothing (a missing key) on S3


def storage_unavailable(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) says the object store could not be reached or
    could not answer now: a connection refused or cut, a timeout, an HTTP 5xx or a throttle.

    Local disk has no such state: its errors are the request's or the machine's, never "later".
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if BotoConnectionError and isinstance(current, BotoConnectionError):
            return True  # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError ...
        if ClientError and isinstance(current, ClientError):
            response = getattr(current, "response", {}) or {}
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            code = str(response.get("Error", {}).get("Code", ""))
            if int(status) >= 500 or code in {"SlowDown", "ServiceUnavailable", "RequestTimeout"}:
                return True
        elif BotoCoreError and isinstance(current, BotoCoreError):
            name = type(current).__name__
            if "Connection" in name or "Timeout" in name:
                return True
        current = current.__cause__ or current.__context__
    return False
