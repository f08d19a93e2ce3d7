"""An upload's temporary folder: where its bytes wait between the transfer and the ingest.

``VBQ_UPLOAD_ROOT/<id>/`` holds the upload's lock file and, under ``files/``, what the browser
sent, under server-chosen names only (``<i:06d>.bin`` once complete, see
:mod:`studies.uploads.transfer`). The ingest reads the files from here and the folder is
deleted when it ends, when the upload is cancelled, or by the periodic sweep
(:mod:`studies.uploads.housekeeping`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from django.conf import settings

from studies.models import Upload


def upload_directory(upload: Upload | int) -> Path:
    """``VBQ_UPLOAD_ROOT/<id>/``: the upload's bytes, under server-chosen names only."""
    pk = upload if isinstance(upload, int) else upload.pk
    return Path(settings.VBQ_UPLOAD_ROOT) / str(int(pk))


REMOVING = ".removing-"
"""Infix of an upload folder being deleted (``.<id>.removing-<hex>``), see below."""


def upload_directory_remove(upload: Upload | int) -> None:
    """Delete an upload's folder for good: rename it out of its ``<id>`` name, then delete it.

    Deleting in place races with a request that arrives meanwhile: the upload lock opens
    ``<id>/.lock`` with ``O_CREAT``, so once ``rmtree`` has removed the old lock file but not yet
    the folder, such a request creates a new one there, ``rmtree``'s final ``rmdir`` fails (it
    ignores errors), and the folder stays behind (seen in the upload page's cancel test). After
    the atomic rename, a late request finds no folder and answers "no longer here". A deletion
    cut short leaves a ``.<id>.removing-*`` folder that the periodic clean-up removes.
    """
    directory = upload_directory(upload)
    doomed = directory.with_name(f".{directory.name}{REMOVING}{uuid.uuid4().hex}")
    try:
        os.rename(directory, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def upload_paths(upload: Upload) -> tuple[list[Path], list[int]]:
    """The received files in the browser's order, and each one's index in what it sent."""
    directory = upload_directory(upload) / "files"
    paths = sorted(directory.glob("*.bin")) if directory.is_dir() else []
    return paths, [int(p.stem) for p in paths]
