"""``manage.py measure_vbq --rois ROIS.json PATH [PATH ...]``: measure one reading (spec §3).

A thin wrapper so that the command and the site compute the same numbers: parse the ROI file,
read only the referenced instances, measure, print JSON. Bad input gives one line on stderr that
names the file and the problem (Django prints ``CommandError: ...``), exit status 1, and nothing
on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from readers.measurement.dicomio import DicomReadError, load_images
from readers.measurement.measure import STATISTICS, MeasurementError, measure_vbq
from readers.measurement.rois import RoiError, load_roi_file
from vbqweb.commands import OneLineErrorsMixin, one_line


def _min_levels(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 4:
        raise argparse.ArgumentTypeError(f"must be from 1 to 4, got {value}")
    return value


class Command(OneLineErrorsMixin, BaseCommand):
    help = "Measure the VBQ score of one reading: ROI file + DICOM files or folders -> JSON."

    # A pure computation: the site's system checks (URLs, database) are not needed to run it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rois", required=True, metavar="ROIS.json", help="vbq.rois/1 file")
        parser.add_argument(
            "paths", nargs="+", metavar="PATH", help="DICOM files or folders (searched recursively)"
        )
        parser.add_argument("--roi-statistic", choices=STATISTICS, default="median")
        parser.add_argument("--level-aggregate", choices=STATISTICS, default="median")
        parser.add_argument("--min-levels", type=_min_levels, default=3, metavar="N")

    def handle(self, *args: Any, **options: Any) -> None:
        rois_path: str = options["rois"]
        if options["min_levels"] not in range(1, 5):  # call_command(min_levels=...) skips argparse
            raise CommandError(f"--min-levels must be from 1 to 4, got {options['min_levels']!r}")
        # Library warnings on stderr would break the "one line on stderr" contract.
        pydicom_logger = logging.getLogger("pydicom")
        level = pydicom_logger.level
        pydicom_logger.setLevel(logging.CRITICAL)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                roi_set = load_roi_file(rois_path)  # messages start with the path
                images = load_images(options["paths"], wanted_uids=roi_set.referenced_uids)
                result = measure_vbq(
                    roi_set,
                    images,
                    roi_statistic=options["roi_statistic"],
                    level_aggregate=options["level_aggregate"],
                    min_levels=options["min_levels"],
                )
            except (RoiError, DicomReadError) as error:
                raise CommandError(one_line(str(error))) from None
            except MeasurementError as error:
                raise CommandError(one_line(f"{rois_path}: {error}")) from None
            finally:
                pydicom_logger.setLevel(level)
        self.stdout.write(json.dumps(result, allow_nan=False))
