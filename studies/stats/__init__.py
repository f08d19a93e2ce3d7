"""Statistics of a reader study: agreement, diagnostic accuracy, their plots, the reference CSV.

The pure science layer of ``studies``: the agreement estimators (:mod:`.estimators`) and the
whole agreement document of a study (:mod:`.agreement`), diagnostic accuracy against a reference
standard (:mod:`.diagnostics`), their SVG plots (:mod:`.plots`) and the parser of the
reference-standard CSV (:mod:`.reference_csv`). The site (in Celery), ``manage.py agreement``,
the report and the tests all call the same functions, so they compute the same numbers.

Pure: numpy, scipy and matplotlib only. Nothing here may import Django, Celery, ``vbqweb`` or any
model (``readers.models``, ``studies.models``); the import-linter contracts in ``pyproject.toml``
check it. Import from the modules themselves: this package re-exports nothing.
"""
