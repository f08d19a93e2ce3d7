"""The words of a VBQ reading, defined once (spec section 2).

Every layer speaks of the same things: the vertebral levels a reader measures, the CSF label,
the ROI shapes, the reasons a level may be excluded and the ROI JSON's schema name. ROI parsing
and measurement (``readers.measurement``), the phantom, the statistics and plots
(``studies.stats``), the exports, the report, the site's templates and the viewer (which gets
them from the page, see ``readers.views``) all take them from here, so a new reason or shape is
added in one place.

Why here: ``studies`` is the lowest app (``readers`` imports it, never the reverse) and this is
the lowest pure layer, so every other module, pure or not, may import it.

Pure: imports nothing of Django, Celery, ``vbqweb`` or any model (import-linter contract).
"""

from __future__ import annotations

from typing import Final

ROI_SCHEMA: Final = "vbq.rois/1"
"""The ``schema`` value of an ROI set (spec section 2)."""

LEVELS: Final = ("L1", "L2", "L3", "L4")
"""The vertebral levels whose median signal is the numerator of VBQ, cranial to caudal."""

CSF: Final = "CSF"
"""The label of the cerebrospinal-fluid ROI, the denominator of VBQ."""

LABELS: Final = (*LEVELS, CSF)
"""Every label of an ROI set, in the order pages, downloads and tables list them."""

DEFAULT_CSF_LEVEL: Final = "L3"
"""The level the CSF ROI is placed at when a set does not say (spec section 2)."""

SHAPES: Final = ("ellipse", "rectangle", "polygon")
"""The ROI shapes of spec section 2."""

REASON_NAMES: Final = {
    "fracture": "Fracture",
    "hemangioma": "Hemangioma",
    "instrumentation": "Instrumentation or cement",
    "modic": "Severe Modic change",
    "other": "Other",
}
"""Why a level may be excluded (spec section 2), with the name a reader sees for each."""

REASONS: Final = tuple(REASON_NAMES)
"""The exclusion reasons as the ROI JSON spells them."""
