"""DICOMweb (QIDO-RS and WADO-RS, PS3.18), scoped to what the user may read (docs/dicomweb.md).

- ``io``: pure encoding of DICOM JSON metadata, frames, multipart bodies, transfer syntaxes;
- ``query``: pure QIDO-RS matching, ``includefield`` and paging;
- ``render``: pure rendered images and thumbnails (window, viewport, JPEG/PNG/GIF);
- ``views``: WADO-RS retrieval and metadata (every object through ``readers.access``);
- ``qido``: search at every level; ``pictures``: rendered resources and thumbnails;
- ``fastpath``: the cached grant and responses that make repeated requests cheap;
- ``urls``: the routes under ``/dicomweb/``.
"""
