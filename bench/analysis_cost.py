"""Benchmark: the cost of one agreement recomputation, and of asking for one (R readers × C cases).

Run from the repository root::

    .venv/bin/python bench/analysis_cost.py [--readers 50] [--cases 20] [--before 98286b0]

A throw-away SQLite database gets ``--readers`` × ``--cases`` submitted, scored readings
(``bench/load.py``'s seeding: phantom cases, real measurements). Then, each the median of
``--rounds`` runs in this process (CPU seconds of this process, wall seconds, and bytes):

* **recompute**: ``analysis_compute`` as the worker runs it, with a change in between so that it
  really recomputes (one reading's result touched), and the bytes of JSON it writes;
* **request**: ``analysis_request`` as every scored submission calls it inside its transaction;
* **detail**: the per-pair document a manager's page asks for (``analysis_document``), first
  build and then from storage.

``--before REV`` measures ``readers/analysis/services.py`` as it was at git revision ``REV``
instead (loaded from ``git show``; the rest of the tree is today's), so that a change can be
measured against what it replaced in the same run.

Not a test: timings depend on the machine; see bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from _site import ROOT, throwaway_site  # bench/ is this script's own folder on sys.path


def _services(before: str | None, work: Path) -> ModuleType:
    if before is None:
        from readers.analysis import services

        return services
    source = subprocess.run(
        ["git", "show", f"{before}:readers/analysis/services.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = work / "services_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("services_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed(func: Any) -> tuple[float, float, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    value = func()
    return time.process_time() - cpu, time.perf_counter() - wall, value


def _stored_bytes(study_pk: int) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT length(records) + length(analysis) + coalesce(length(diagnostics), 0) "
            "FROM readers_studyanalysis WHERE study_id = %s",
            [study_pk],
        )
        return int(cursor.fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", help="git revision of readers/analysis/services.py")
    args = parser.parse_args()

    work = throwaway_site("vbq-bench-analysis-")
    try:
        from django.core.management import call_command
        from django.db import transaction
        from django.utils import timezone
        from load import seed_study  # bench/load.py

        from readers.models import StudyAnalysis, VbqResult
        from studies.models import Study

        call_command("migrate", verbosity=0)
        setup = seed_study(
            readers=args.readers,
            cases=args.cases,
            seed_readings=args.readers * args.cases,
            seed=2026,
        )
        study = Study.objects.get(pk=setup["study"])
        services = _services(args.before, work)
        recompute, request, first, stored = [], [], [], []
        size = 0
        for _ in range(args.rounds):
            VbqResult.objects.filter(pk=VbqResult.objects.order_by("?").first().pk).update(
                computed_at=timezone.now()
            )  # a change: the recomputation cannot skip
            cpu, wall, _ = _timed(lambda: services.analysis_compute(study_pk=study.pk))
            recompute.append((cpu, wall))
            size = _stored_bytes(study.pk)

            def ask() -> None:
                with transaction.atomic():
                    services.analysis_request(study=study)

            cpu, wall, _ = _timed(ask)
            request.append((cpu, wall))
            if hasattr(services, "analysis_document"):
                state = StudyAnalysis.objects.get(study=study)
                first.append(_timed(lambda s=state: services.analysis_document(state=s))[:2])
                stored.append(_timed(lambda s=state: services.analysis_document(state=s))[:2])
        state = StudyAnalysis.objects.get(study=study)
        whole = (
            services.analysis_document(state=state)
            if hasattr(services, "analysis_document")
            else state.analysis
        )

        def median(rows: list[tuple[float, float]]) -> dict[str, float] | None:
            if not rows:
                return None
            return {
                "cpu_s": round(statistics.median(r[0] for r in rows), 4),
                "wall_s": round(statistics.median(r[1] for r in rows), 4),
            }

        report = {
            "services": f"git {args.before}" if args.before else "working tree",
            "readers": args.readers,
            "cases": args.cases,
            "readings": setup["readings"],
            "recompute": median(recompute),
            "recompute_writes_bytes": size,
            "request_in_transaction": median(request),
            "detail_first_build": median(first),
            "detail_from_storage": median(stored),
            "whole_document_bytes": len(json.dumps(whole)),
            "reader_pairs": len(whole["inter_reader"].get("pairs", [])),
        }
        print(json.dumps(report, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
