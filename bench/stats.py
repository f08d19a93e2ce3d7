"""Benchmark: the agreement page, the PDF report and the SR zip, built on request (before issue 13
item 8) against served as the worker built them (now), on the demo study and on 200 cases × 5
readers × 2 sessions.

Run from the repository root::

    .venv/bin/python bench/stats.py [--rounds 5] [--before-rounds 1] [--cases 200] [--readers 5]
        [--record]

One process, one throw-away SQLite site (``VBQ_VAR_DIR`` in a temporary folder, DEBUG off):

1. Seeds the demo study (``manage.py seed_demo``: 10 phantom cases, 3 readers, 2 sessions) and a
   study of ``--cases`` phantom cases × ``--readers`` readers × 2 sessions, every reading submitted
   and scored by the real measurement (``bench/load.py``'s phantom and ROI jitter), then
   computes each study's analysis as the worker does (``analysis_compute``).
2. **Before** (on request), as the old views did on every request, timed in this process: the
   page's heavy part (the stored analysis, its staleness, the per-pair document, the report
   context with its figures, the figures' HTML), the PDF (context, report HTML, WeasyPrint), the
   SR zip (every reading's SR written into a zip in memory; above ``--sr-sample`` readings, that
   many are timed and the time scaled to all of them: highdicom takes ~0.3-1 s per SR, so the
   old zip of 2,000 readings takes 10-30 minutes).
3. **Build**: ``files_build`` once, as the worker runs it after the analysis (the cost moved
   off the request).
4. **After** (served when built): the manager's GET of the agreement page, ``report.pdf`` and
   ``sr.zip`` through Django's test client (the whole view, middleware and the response body
   read), the median of ``--rounds`` (the old path: ``--before-rounds``, 1 by default, as its
   SR zip alone takes minutes on 2,000 readings).

Targets (issue 13): page < 0.5 s, PDF and SR zip < 0.5 s when built. ``--record`` appends the
table and the command to ``bench/RESULTS.md``. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime
import io
import itertools
import json
import platform
import random
import shutil
import statistics
import time
import zipfile
from collections.abc import Callable
from typing import Any

from _site import ROOT, throwaway_site  # bench/ is this script's own folder on sys.path

TARGET_S = 0.5


def _median(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def seed_big(*, cases: int, readers: int, seed: int) -> int:
    """A study of ``cases`` × ``readers`` × 2 sessions, every reading submitted and scored."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone
    from load import THRESHOLDS, _moved, _phantom  # bench/load.py

    from readers.analysis.services import analysis_compute
    from readers.measurement.dicomio import read_slice
    from readers.measurement.measure import ALGORITHM_VERSION, measure_vbq
    from readers.measurement.rois import parse_roi_set
    from readers.models import Reading, VbqResult
    from studies import services as study_services
    from studies.models import Role
    from tests.helpers.factories import case_set_import_trusted_files

    dirs = _phantom(cases, seed)
    study = study_services.study_create(name="Stats benchmark", thresholds=THRESHOLDS)
    study.sessions = 2
    study.save(update_fields=["sessions"])
    case_set_import_trusted_files(
        study=study,
        name="phantom",
        cases=[(f"Case {i:03d}", sorted(d.glob("*.dcm"))) for i, d in enumerate(dirs, 1)],
    )
    truths = {}
    for d in dirs:
        truth = json.loads((d / "truth.json").read_text())
        truths[truth["series_instance_uid"]] = truth["rois"]
    users = [
        get_user_model().objects.create(username=f"statsreader{i}") for i in range(1, readers + 1)
    ]
    for user in users:
        study_services.assignment_set(study=study, user=user, role=Role.READER)
    rng = random.Random(seed)
    method = study.measurement_settings()
    now = timezone.now()
    for case in study.cases.all():
        series = case.reading_series
        images = {}
        for instance in series.instances.all():
            with instance.file.open("rb") as fh:
                image = read_slice(fh, name=instance.sop_instance_uid)
            images[image.sop_instance_uid] = image
        for user in users:
            for session in (1, 2):
                rois = parse_roi_set(_moved(truths[series.series_instance_uid], rng)).to_json()
                detail = measure_vbq(parse_roi_set(rois), images, **method)
                reading = Reading.objects.create(
                    reader=user,
                    case=case,
                    session=session,
                    status=Reading.Status.SUBMITTED,
                    rois=rois,
                    roi_version=1,
                    submitted_at=now,
                )
                vbq = detail.get("vbq")
                VbqResult.objects.create(
                    reading=reading,
                    roi_version=1,
                    algorithm_version=ALGORITHM_VERSION,
                    status=VbqResult.Status.OK
                    if vbq is not None
                    else VbqResult.Status.NOT_COMPUTED,
                    vbq=vbq,
                    numerator=detail.get("numerator"),
                    csf_si=(detail.get("csf") or {}).get("si"),
                    method=method,
                    detail=detail,
                )
    analysis_compute(study_pk=study.pk)
    return study.pk


def measure(study_pk: int, rounds: int, before_rounds: int, sr_sample: int) -> dict[str, Any]:
    """Before (on request) and after (served when built) for one study."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from readers.analysis import artifacts
    from readers.analysis import services as analytics
    from readers.analysis.report import render_report_html, render_report_pdf
    from readers.analysis.sr_export import study_sr_count, study_sr_members
    from studies.models import Role, Study
    from studies.services import assignment_set

    study = Study.objects.get(pk=study_pk)
    manager = get_user_model().objects.create(username=f"statsmanager{study_pk}")
    assignment_set(study=study, user=manager, role=Role.MANAGER)
    state = analytics.analysis_state(study=study)
    analytics.analysis_document(state=state)  # the per-pair detail, stored once as before

    def old_page() -> int:
        state = analytics.analysis_state(study=study)
        analytics.analysis_is_stale(state=state)
        document = analytics.analysis_document(state=state)
        report = artifacts.report_context_for(study=study, state=state, document=document)
        return len(artifacts.figures_html(state=state, document=document, report=report))

    def old_pdf() -> int:
        state = analytics.analysis_state(study=study)
        document = analytics.analysis_document(state=state)
        report = artifacts.report_context_for(study=study, state=state, document=document)
        return len(render_report_pdf(render_report_html(report)))

    total = study_sr_count(study=study)
    sample = min(total, sr_sample)

    def old_zip() -> int:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in itertools.islice(study_sr_members(study=study), sample):
                archive.writestr(name, data)
        return sample

    before = {
        "page": _median(old_page, before_rounds),
        "pdf": _median(old_pdf, before_rounds),
        # More readings than the sample: timed on the sample, scaled to every reading.
        "zip": _median(old_zip, before_rounds) * total / max(sample, 1),
    }
    started = time.perf_counter()
    built = artifacts.files_build(study_pk=study.pk)
    build = time.perf_counter() - started
    assert set(built) == set(artifacts.Kind.values), built

    client = Client()
    client.force_login(manager)
    sizes: dict[str, int] = {}

    def get(name: str) -> Callable[[], None]:
        url = reverse(f"analytics:{name}", kwargs={"pk": study.pk})

        def fetch() -> None:
            response = client.get(url)
            assert response.status_code == 200, (name, response.status_code)
            body = response.getvalue()
            if name == "agreement":
                assert "Preparing" not in body.decode(), "the page was not built"
            sizes[name] = len(body)

        return fetch

    after = {
        "page": _median(get("agreement"), rounds),
        "pdf": _median(get("report_pdf"), rounds),
        "zip": _median(get("study_srs"), rounds),
    }
    names = zipfile.ZipFile(
        io.BytesIO(client.get(reverse("analytics:study_srs", kwargs={"pk": study.pk})).getvalue())
    ).namelist()
    return {
        "readings": len(state.records),
        "readers": len({r["reader"] for r in state.records}),
        "cases": len({r["case"] for r in state.records}),
        "before": before,
        "after": after,
        "build": build,
        "sizes": sizes,
        "srs": len(names),
        "sr_sample": sample if sample < total else None,
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| study | readings | what | before: on request | after: served built | ratio | size |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        for what, name in (("agreement page", "page"), ("PDF report", "pdf"), ("SR zip", "zip")):
            size = r["sizes"][{"page": "agreement", "pdf": "report_pdf", "zip": "study_srs"}[name]]
            ratio = r["before"][name] / r["after"][name]
            mark = "" if r["after"][name] < TARGET_S else " (over target)"
            if name == "zip" and r["sr_sample"]:
                what = f"SR zip (before: {r['sr_sample']} readings timed, scaled)"
            lines.append(
                f"| {label} | {r['readings']} | {what} | {r['before'][name]:.3f} s | "
                f"**{r['after'][name] * 1000:.1f} ms**{mark} | {ratio:,.0f}x | "
                f"{size / 1024:,.0f} kB |"
            )
        lines.append(
            f"| {label} | | worker's build (all four files, once) | | {r['build']:.1f} s | | |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the served path")
    parser.add_argument("--before-rounds", type=int, default=1, help="rounds of the old path")
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--readers", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--sr-sample", type=int, default=200, help="readings of the old SR zip timed, then scaled"
    )
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()

    work = throwaway_site("vbq-bench-stats-", VBQ_MFA_REQUIRED="0")
    try:
        import logging

        logging.getLogger("weasyprint").setLevel(logging.ERROR)
        logging.getLogger("fontTools").setLevel(logging.ERROR)
        from django.core.management import call_command

        from readers.management.commands.seed_demo import DEMO_STUDY
        from studies.models import Study

        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        call_command("seed_demo", stdout=io.StringIO())
        demo = Study.objects.get(name=DEMO_STUDY).pk
        big = seed_big(cases=args.cases, readers=args.readers, seed=args.seed)
        print(f"seeded in {time.perf_counter() - t0:.0f} s", flush=True)
        results = {}
        for label, pk in (("demo", demo), (f"{args.cases} × {args.readers} × 2", big)):
            results[label] = measure(pk, args.rounds, args.before_rounds, args.sr_sample)
            print(label, json.dumps(results[label], indent=1), flush=True)
        text = table(results)
        print(text)
        if args.record:
            record(text, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def record(text: str, args: argparse.Namespace) -> None:
    import django

    command = (
        f".venv/bin/python bench/stats.py --rounds {args.rounds} "
        f"--before-rounds {args.before_rounds} --sr-sample {args.sr_sample} --cases {args.cases} "
        f"--readers {args.readers} --record"
    )
    section = f"""

## Agreement page, PDF, SR zip served when built (issue 13 item 8, {datetime.date.today()})

Command (repository root): `{command}`

One process, a throw-away SQLite site (DEBUG off). "Before" is the on-request build the old
views did on every request (the stored analysis, its per-pair document already stored, the
report context with its figures, then the page's HTML / the report HTML and WeasyPrint / every
reading's SR into a zip); "after" is the manager's GET through Django's test client of the
page, `report.pdf` and `sr.zip` as the worker built them (`readers/analysis/artifacts.py`),
body read. After: medians of {args.rounds} rounds; before: {args.before_rounds} round(s) (the
old SR zip of 2,000 readings alone takes minutes). {platform.machine()}, Python
{platform.python_version()}, Django {django.get_version()}; the machine (2 vCPU) was shared
with other helpers' test runs.

{text}
"""
    with (ROOT / "bench" / "RESULTS.md").open("a") as fh:
        fh.write(section)


if __name__ == "__main__":
    main()
