"""The synthetic lumbar spine phantom: sagittal T1-weighted series with a known VBQ, as real DICOM.

Why a phantom: no openly licensed lumbar spine MRI with a known marrow and CSF signal exists, yet
every part of the project (ingest, viewer, ROI geometry, measurement, agreement statistics) needs
series whose answer is known in advance. The phantom draws that answer first and then paints an
image that honours it. Its modules, in the order a case is made:

* :mod:`~studies.phantom.params`: every random draw of a case, the truth (VBQ, CSF and marrow
  signal) among them;
* :mod:`~studies.phantom.fields`: numeric helpers on the pixel grid (soft steps, signed
  distances, blur, smooth random fields);
* :mod:`~studies.phantom.geometry`: where everything lies: the spine curve, the pixels'
  coordinates along it, canal and sac, and the suggested ROIs;
* :mod:`~studies.phantom.painting`: the tissues painted into an image and a label map, with the
  heterogeneity of marrow and CSF;
* :mod:`~studies.phantom.render`: one slice, made to honour the truth: texture, the median of
  every suggested ROI pinned to the true signal, the ROI self-check, Rician noise, stored pixels;
* :mod:`~studies.phantom.acquisition`: the DICOM headers of the sagittal T1 and of the wrong
  series (an axial T2 or a post-contrast T1 that the ingest must judge ineligible);
* :mod:`~studies.phantom.case`: one case in memory (``make_case``) and its truth document;
* :mod:`~studies.phantom.writer`: case folders on disk (``write_phantom``), which replace only
  earlier phantom output.

Deterministic: every random draw comes from ``numpy.random.SeedSequence([seed, index, ...])`` and
every UID is a ``2.25.`` UID hashed from the seed, so one seed gives byte-identical files on one
platform; nothing time-dependent is written.

Pure: numpy and pydicom only, ``mypy --strict`` clean. Nothing in this package may import Django,
Celery, ``vbqweb`` or any model (``readers.models``, ``studies.models``), so the management
commands, benches and tests use it without a running site; its only project import is
:mod:`studies.vocabulary`. Nothing is re-exported here: import from the module that holds a name.
"""
