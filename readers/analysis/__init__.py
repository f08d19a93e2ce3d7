"""Agreement analytics of a study: one room for everything a manager gets from the readings.

- ``services``: the study's long-format records, the claimed and debounced recomputation in the
  worker, the stored ``StudyAnalysis`` and its staleness;
- ``exports``: measurement and statistics downloads (CSV/JSON);
- ``report``: the HTML and PDF report;
- ``sr_export``: DICOM SR per reading and per study (zip);
- ``views`` and ``urls``: the manager-only pages and downloads under ``/studies/<pk>/``.

The statistics themselves are pure and live in ``studies.stats``; this package fetches the
readings, calls them and stores or renders what they return. Django code: it may import
``readers`` models and selectors and ``studies``, never the reverse.
"""
