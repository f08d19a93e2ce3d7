"""DICOMweb (QIDO-RS and WADO-RS, PS3.18) for the viewer, scoped to what the user may read.

- ``io``: pure encoding of DICOM JSON metadata, frames and multipart bodies (no Django);
- ``views``: the access-checked endpoints (every object through ``readers.access``);
- ``urls``: the routes under ``/dicomweb/``.
"""
