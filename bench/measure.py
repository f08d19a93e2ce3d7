"""Benchmark: ``manage.py measure_vbq`` against a bare pydicom read of the same files.

Run from the repository root::

    .venv/bin/python bench/measure.py [--repeats 41] [--seed 1]

What it does, in one process and one run (so both figures share the machine's current state):

1. Writes one 15-slice phantom case (:mod:`studies.phantom.case`) and its truth ROI file to a
   temporary folder.
2. Baseline (a): ``pydicom.dcmread`` of every file of the case, plus ``.pixel_array`` of the
   instances the ROIs reference. This is the least any reader of the case must do.
3. Candidate (b): ``call_command("measure_vbq", "--rois", ROIS, CASE_DIR)`` (Django set up
   once beforehand, outside the timing): parse the ROI file, read the folder, decode the
   referenced slice(s), measure, print JSON.
4. Repeats (a) and (b) interleaved, alternating which goes first, after warm-up rounds, and
   reports the medians and the ratio (b)/(a). Target: ratio <= 1.5.

It also checks that the command's VBQ matches the phantom's truth within 2 %, so a fast but
wrong command cannot pass. Not a test: timings depend on the machine; see bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGET = 1.5


def write_case(folder: Path, seed: int) -> tuple[Path, Path, set[str], float]:
    """One 15-slice case and its truth ROI file; returns (case dir, ROI file, UIDs, true VBQ)."""
    from pydicom import dcmwrite

    from studies.phantom.case import make_case

    case = make_case(seed, 1, n_slices=15)
    case_dir = folder / case.name
    case_dir.mkdir()
    for name, ds in zip(case.file_names, case.datasets, strict=True):
        dcmwrite(case_dir / name, ds, enforce_file_format=True)
    rois_path = folder / "rois.json"
    rois_path.write_text(json.dumps(case.truth["rois"]), encoding="utf-8")
    uids = {roi["sop_instance_uid"] for roi in case.truth["rois"]["rois"]}
    return case_dir, rois_path, uids, float(case.truth["truth"]["vbq"])


def timed(function: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=41, help="timed rounds (>= 30)")
    parser.add_argument("--seed", type=int, default=1, help="phantom seed")
    args = parser.parse_args()
    if args.repeats < 30:
        parser.error("--repeats must be at least 30")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vbqweb.settings")
    import django

    django.setup()
    import pydicom
    from django.core.management import call_command

    with tempfile.TemporaryDirectory(prefix="vbq-bench-") as tmp:
        case_dir, rois_path, wanted, true_vbq = write_case(Path(tmp), args.seed)
        files = sorted(case_dir.glob("*.dcm"))

        def baseline() -> object:
            decoded = []
            for path in files:
                ds = pydicom.dcmread(path)
                if ds.SOPInstanceUID in wanted:
                    decoded.append(ds.pixel_array)
            return decoded

        output = io.StringIO()

        def command() -> object:
            output.seek(0)
            output.truncate()
            call_command("measure_vbq", str(case_dir), rois=str(rois_path), stdout=output)
            return output

        command()
        vbq = json.loads(output.getvalue())["vbq"]
        if abs(vbq / true_vbq - 1.0) > 0.02:
            print(f"measure_vbq gave VBQ {vbq}, the phantom's truth is {true_vbq}", file=sys.stderr)
            return 1

        for _ in range(5):  # warm-up: imports, caches, file system
            baseline()
            command()
        times_a: list[float] = []
        times_b: list[float] = []
        for i in range(args.repeats):
            if i % 2:
                times_b.append(timed(command))
                times_a.append(timed(baseline))
            else:
                times_a.append(timed(baseline))
                times_b.append(timed(command))

    a = statistics.median(times_a)
    b = statistics.median(times_b)
    ratio = b / a
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(
        f"case: 15 slices, {len(wanted)} referenced instance(s); {args.repeats} interleaved rounds"
    )
    print(f"(a) baseline  pydicom.dcmread x{len(files)} + pixel_array: median {a * 1e3:8.2f} ms")
    print(f"(b) measure_vbq via call_command:                 median {b * 1e3:8.2f} ms")
    print(f"ratio (b)/(a) = {ratio:.2f}x  (target <= {TARGET}x: {verdict})")
    print(f"VBQ measured {vbq:.4f}, truth {true_vbq:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
