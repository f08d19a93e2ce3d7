"""The measurement science of a reading, pure: what a VBQ is, computed from ROIs and pixels.

- ``rois``: parse and validate ROI sets in the ``vbq.rois/1`` JSON (spec section 2);
- ``geometry``: image geometry from DICOM headers (spacing, orientation, slice positions);
- ``dicomio``: read stored slices into modality-valued pixel arrays;
- ``measure``: ROI masks, per-level statistics and the VBQ itself (spec sections 1-3);
- ``sr``: the TID 1500 DICOM Structured Report of one reading.

The site (``readers.services``), the ``measure_vbq`` command and the SR downloads all call these
modules, so the browser, the worker and the command line give one answer.

Must not import Django, Celery, ``vbqweb`` or any models (import-linter contract in
``pyproject.toml``); it may import the vocabulary (``studies.vocabulary``), numpy, pydicom and
highdicom.
"""
