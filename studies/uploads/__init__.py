"""Getting cases in on the site: chunked uploads, their outbox, and the de-identifying ingest.

Django code around the pure ``studies.ingest`` package: it stages uploaded bytes, hands finished
uploads to the worker through the site's outbox, stores what the pure ingest returns as cases,
series and instances, and reports per file. Views stay thin; every object comes through
``studies.access``.

One concern per module, each importing only the ones listed before it:

* :mod:`~studies.uploads.config`: the site's settings for the pure ingest (key, limits);
* :mod:`~studies.uploads.pipeline`: the one code path every way in uses (also ``deidentify``);
* :mod:`~studies.uploads.staging`: an upload's temporary folder;
* :mod:`~studies.uploads.outbox`: a queued upload's ingest job in the site's outbox;
* :mod:`~studies.uploads.series`: series eligibility, the reading series, the TR/TE ranges;
* :mod:`~studies.uploads.store`: writing (and undoing) an ingest's cases, series, instances;
* :mod:`~studies.uploads.ingest`: running an ingest (the task's body, the synchronous path);
* :mod:`~studies.uploads.transfer`: the browser's chunked, resumable transfer, finish, cancel;
* :mod:`~studies.uploads.housekeeping`: the periodic upkeep (dead ingests, clean-ups);
* :mod:`~studies.uploads.views`: the pages and JSON endpoints.

A leading underscore marks a name private to this package: siblings may import it.
"""
