"""The pure side of ingest: reading untrusted input, de-identification, series eligibility.

Everything here works on bytes, files and pydicom datasets, and nothing else: what an upload
holds (:mod:`~studies.ingest.sources`), reading one file of it safely
(:mod:`~studies.ingest.untrusted`), the DICOM PS3.15 de-identification profile (the table of
actions :mod:`~studies.ingest.deid_table`, the keyed derivations and identifier checks
:mod:`~studies.ingest.deid_identity`, the engine :mod:`~studies.ingest.deid_engine` and the
writer :mod:`~studies.ingest.deid_writer`), and whether a series can be read for VBQ
(:mod:`~studies.ingest.eligibility`), over the shared value helpers of
:mod:`~studies.ingest.values`. The Django side (uploads, storage, cases) is the package
:mod:`studies.uploads`.

These modules must not import Django, Celery, ``vbqweb`` or any models (``studies.models``,
``readers.models``): they are tested, benchmarked and run by the ``deidentify`` command without
a site, and an import-linter contract in ``pyproject.toml`` enforces it. Import from the modules
themselves; this package re-exports nothing.
"""
