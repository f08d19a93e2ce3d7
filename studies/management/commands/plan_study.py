"""``manage.py plan_study --icc R --readers K --width W [--confidence 0.95]`` (spec §6).

Prints ``{"cases", "icc", "readers", "width", "confidence", "method": "Bonett 2002"}``: how many
cases a reliability study needs so that the ICC's confidence interval is ``W`` wide when the ICC
is about ``R`` and ``K`` readers read every case (:mod:`studies.stats.planning`). Why a command:
the number of cases is decided before a study exists on the site, often in a grant proposal.

A value outside the formula's domain (R or W outside (0, 1), K < 2, confidence outside (0, 1))
is one line on stderr naming the option and the problem, a non-zero exit status and nothing on
stdout (spec §3); a value that does not parse is argparse's one-line error (status 2).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.stats.planning import PlanningInputError, plan
from vbqweb.commands import OneLineErrorsMixin, one_line


class Command(OneLineErrorsMixin, BaseCommand):
    help = "Cases needed for a target ICC confidence-interval width (Bonett 2002) -> JSON."

    # A pure computation: the site's system checks (URLs, database) are not needed to run it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--icc",
            type=float,
            required=True,
            metavar="R",
            help="the ICC you expect, strictly between 0 and 1",
        )
        parser.add_argument(
            "--readers", type=int, required=True, metavar="K", help="readers per case (at least 2)"
        )
        parser.add_argument(
            "--width",
            type=float,
            required=True,
            metavar="W",
            help="the confidence interval's full width, strictly between 0 and 1",
        )
        parser.add_argument(
            "--confidence",
            type=float,
            default=0.95,
            metavar="LEVEL",
            help="two-sided confidence level (default 0.95)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = plan(
                float(options["icc"]),
                int(options["readers"]),
                float(options["width"]),
                float(options["confidence"]),
            )
        except PlanningInputError as error:
            raise CommandError(one_line(f"plan_study: {error}")) from None
        self.stdout.write(json.dumps(result, allow_nan=False, indent=2))
