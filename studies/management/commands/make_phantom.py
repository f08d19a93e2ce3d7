"""``manage.py make_phantom OUT [--cases N] [--seed S] [--wrong-series KIND ...]``: write
synthetic lumbar spine cases.

Each case is a sagittal T1 series of real DICOM files with a ``truth.json`` (true marrow and CSF
signal, true VBQ, and a ready ``vbq.rois/1`` ROI set); see :mod:`studies.phantom`.

``--wrong-series KIND`` (repeatable; ``axial-t2`` or ``post-contrast``) adds that series to every
case as further files, ``IM2001.dcm ...`` for the axial T2 and ``IM3001.dcm ...`` for the
post-contrast T1, so that an ingest test sees a study with series VBQ must not be read on. The
truth and its ROIs still refer to the sagittal T1 series.

OUT may be missing, empty, or the output of an earlier ``make_phantom`` run (only ``case-NNN``
folders holding ``IM####.dcm`` files and a ``vbq.phantom/1`` ``truth.json``). In the last case the
old cases are replaced, so a smaller ``--cases`` leaves no stale case behind. Any other content
(a file, a foreign folder) is refused: the command never deletes what it did not write. Cases
are generated in a temporary sibling folder and moved into place at the end, so a failure leaves
OUT as it was.

Prints ``{"cases": N, "out": ABS_PATH, "case_dirs": [ABS_PATH, ...], "wrong_series": [KIND,
...]}`` on stdout (the kinds written, each once, in the order first named). Bad arguments
give one line on stderr and a non-zero exit status (1 for a bad value, 2 for unparsable syntax).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.phantom.acquisition import WRONG_SERIES_KINDS
from studies.phantom.writer import write_phantom
from vbqweb.commands import OneLineErrorsMixin, one_line


class Command(OneLineErrorsMixin, BaseCommand):
    help = "Write synthetic sagittal T1 lumbar spine DICOM cases with a known VBQ (phantom)."

    # Pure file generation: the site's system checks (URLs, database) are not needed.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", metavar="OUT", help="output folder (created if missing)")
        parser.add_argument("--cases", type=int, default=5, metavar="N", help="default 5")
        parser.add_argument("--seed", type=int, default=1, metavar="S", help="default 1")
        parser.add_argument(
            "--wrong-series",
            action="append",
            choices=WRONG_SERIES_KINDS,
            default=None,
            metavar="KIND",
            help=f"also write this series in every case ({', '.join(WRONG_SERIES_KINDS)}); "
            "repeatable",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        cases, seed = options["cases"], options["seed"]
        if isinstance(cases, bool) or not isinstance(cases, int) or cases < 1:
            raise CommandError(f"--cases must be a positive integer, got {cases!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise CommandError(f"--seed must be a non-negative integer, got {seed!r}")
        kinds = options.get("wrong_series") or []
        if isinstance(kinds, str):  # call_command(wrong_series="axial-t2") skips argparse
            kinds = [kinds]
        out = Path(options["out"]).expanduser().absolute()
        try:
            case_dirs = write_phantom(out, cases=cases, seed=seed, wrong_series=kinds)
        except (ValueError, OSError) as error:
            raise CommandError(one_line(str(error))) from None
        summary = {
            "cases": cases,
            "out": str(out),
            "case_dirs": [str(p) for p in case_dirs],
            "wrong_series": list(dict.fromkeys(kinds)),  # as written: each kind once
        }
        self.stdout.write(json.dumps(summary))
