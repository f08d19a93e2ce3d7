"""Receiving cases from a hospital's systems: a DICOM C-STORE receiver and STOW-RS (issue 15).

A PACS sends with DICOM networking (C-STORE) or DICOMweb (STOW-RS); either way the instances go
through the *same* de-identifying ingest as a manager's browser upload: each association, and
each STOW request, becomes one :class:`~studies.models.Upload` whose files wait in the staging
storage (local disk or S3) and whose ingest is queued through the site's one outbox
(:mod:`vbqweb.jobs`), so the manager reads the same upload report on the uploads page.

One concern per module, each importing only the ones listed before it:

* :mod:`~studies.receiver.verdict`: is one received file an instance the site reads? A DICOM
  status and a reason for the sender (pure: pydicom and ``studies.ingest`` only);
* :mod:`~studies.receiver.multipart`: the parts of a ``multipart/related`` body (pure);
* :mod:`~studies.receiver.scp`: the C-STORE/C-ECHO service on pynetdicom, one called AE title
  per study (pure: it asks a callback which study an AE title names);
* :mod:`~studies.receiver.reception`: one association or request as one upload (Django);
* :mod:`~studies.receiver.views`: STOW-RS for a study's managers (Django, thin).

The management command ``dicom_receiver`` runs the SCP like a worker (``scripts/demo``,
compose's ``receiver`` service). Nothing here decides what the de-identification keeps: that is
``studies.ingest``'s, run by the worker.
"""
