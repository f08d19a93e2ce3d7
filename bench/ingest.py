"""Benchmark: de-identifying ingest against dicognito, deid and a bare pydicom loop.

Run from the repository root::

    .venv/bin/python bench/ingest.py [--files 500] [--rounds 5] [--seed 7] [--zip-files 2000]

What it does, in one process and one run (so every figure shares the machine's current state):

1. Writes phantom cases (:func:`studies.phantom.writer.write_phantom`) until there are
   ``--zip-files`` instances, and copies the first ``--files`` of them into one folder under
   neutral names.
2. Times four candidates on exactly those files, each writing every output file to disk:

   * **bare**: ``pydicom.dcmread`` + ``pydicom.dcmwrite`` per file, nothing else: the least any
     tool that reads and writes DICOM with pydicom must do;
   * **ours**: the site's ingest path without Django -- ``studies.ingest.sources.iter_sources``
     and ``studies.ingest.untrusted.read_untrusted`` (size caps, header checks, pixel length
     check, sequence depth), then ``studies.ingest.deid_engine.deidentify_dataset`` and
     ``studies.ingest.deid_writer.write_deidentified`` to ``<study>/<series>/<sop>``;
   * **dicognito** 0.19 with its default ``Anonymizer()``, used as its documentation shows
     (one anonymizer for the set, ``dcmread`` / ``anonymize`` / ``save_as`` per file);
   * **deid** 0.4 with its default recipe (``DeidRecipe()``), used as its documentation shows
     (``get_identifiers`` then ``replace_identifiers(..., save=True)``).

   After one warm-up round, ``--rounds`` rounds run every candidate once, rotating which goes
   first; the figure is the median round. Reported: files/s, MB/s (input bytes), and the ratios.
   Targets: ours ahead of both peers; ours >= 0.5x the bare loop's throughput.
3. Zips ``--zip-files`` instances and runs ``manage.py deidentify ZIP DST`` in a child process;
   its peak RSS (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``, read by a small parent
   process that does nothing else) must stay under 300 MB.

Not a test: timings depend on the machine; see bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RSS_LIMIT_MB = 300.0
SECRET = b"bench-ingest-site-secret"


def make_inputs(work: Path, files: int, zip_files: int, seed: int) -> tuple[Path, Path]:
    """The phantom instances: a folder of ``files`` and a zip of ``zip_files``."""
    from studies.phantom.writer import write_phantom

    cases = max(1, zip_files // 11 + 1)
    while True:
        phantom = work / "phantom"
        case_dirs = write_phantom(phantom, cases=cases, seed=seed)
        instances = sorted(p for d in case_dirs for p in sorted(d.glob("*.dcm")))
        if len(instances) >= max(files, zip_files):
            break
        cases += 10
    folder = work / "set"
    folder.mkdir()
    for i, path in enumerate(instances[:files]):
        shutil.copyfile(path, folder / f"{i:05d}.dcm")
    archive = work / "set.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, path in enumerate(instances[:zip_files]):
            zf.write(path, f"upload/{i:05d}.dcm")
    return folder, archive


def bare(folder: Path, out: Path) -> int:
    from pydicom import dcmread, dcmwrite

    n = 0
    for path in sorted(folder.iterdir()):
        dcmwrite(out / path.name, dcmread(path), enforce_file_format=True)
        n += 1
    return n


def ours(folder: Path, out: Path) -> int:
    from studies.ingest.deid_engine import DeidConfig, deidentify_dataset
    from studies.ingest.deid_writer import write_deidentified
    from studies.ingest.sources import iter_sources
    from studies.ingest.untrusted import quiet_pydicom, read_untrusted

    config = DeidConfig(secret=SECRET)
    n = 0
    with quiet_pydicom():
        for source in iter_sources(folder):
            result = read_untrusted(source)
            if result.dataset is None:
                raise RuntimeError(f"{source.name}: {result.reason}")
            deid = deidentify_dataset(result.dataset, config=config)
            target = out / deid.relative_path
            target.parent.mkdir(parents=True, exist_ok=True)
            write_deidentified(deid.dataset, target)
            n += 1
    return n


def dicognito(folder: Path, out: Path) -> int:
    from dicognito.anonymizer import Anonymizer
    from pydicom import dcmread

    anonymizer = Anonymizer()
    n = 0
    for path in sorted(folder.iterdir()):
        with dcmread(path) as dataset:
            anonymizer.anonymize(dataset)
            dataset.save_as(out / path.name, enforce_file_format=True)
        n += 1
    return n


def deid(folder: Path, out: Path) -> int:
    from deid.config import DeidRecipe
    from deid.dicom import get_identifiers, replace_identifiers

    files = [str(p) for p in sorted(folder.iterdir())]
    recipe = DeidRecipe()
    items = get_identifiers(files)
    replace_identifiers(
        dicom_files=files, deid=recipe, ids=items, save=True, output_folder=str(out), overwrite=True
    )
    return len(list(out.iterdir()))


CANDIDATES: dict[str, Callable[[Path, Path], int]] = {
    "bare": bare,
    "ours": ours,
    "dicognito": dicognito,
    "deid": deid,
}


def time_round(name: str, folder: Path, work: Path, expected: int) -> float:
    out = Path(tempfile.mkdtemp(prefix=f"out-{name}-", dir=work))
    start = time.perf_counter()
    n = CANDIDATES[name](folder, out)
    elapsed = time.perf_counter() - start
    written = sum(1 for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out)
    if n != expected or written != expected:
        raise RuntimeError(f"{name}: wrote {written} files, expected {expected}")
    return elapsed


def check_ours(folder: Path, work: Path) -> None:
    """A fast but wrong candidate must not pass: spot-check our output is de-identified."""
    import pydicom

    out = Path(tempfile.mkdtemp(prefix="check-", dir=work))
    ours(folder, out)
    for path in sorted(out.rglob("*.dcm"))[::50]:
        data = path.read_bytes()
        ds = pydicom.dcmread(path)
        assert data[:128] == b"\x00" * 128
        assert str(ds.PatientName).startswith("VBQ-"), ds.PatientName
        assert b"PHANTOM^CASE" not in data  # the phantom's Patient's Name
        assert b"PHANTOM-" not in data  # and its Patient ID
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    shutil.rmtree(out)


_RSS_PARENT = (
    "import json, resource, subprocess, sys\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'code': done.returncode, 'kb': kb, 'out': done.stdout,"
    " 'err': done.stderr[-500:]}))\n"
)


def peak_rss(archive: Path, work: Path) -> tuple[float, dict[str, object], float]:
    dst = work / "rss-out"
    start = time.perf_counter()
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            _RSS_PARENT,
            sys.executable,
            str(REPO / "manage.py"),
            "deidentify",
            str(archive),
            str(dst),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    elapsed = time.perf_counter() - start
    child = json.loads(completed.stdout)
    if child["code"] != 0:
        raise RuntimeError(f"deidentify failed: {child['err']}")
    report = json.loads(child["out"])
    shutil.rmtree(dst)
    return child["kb"] / 1024, report, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--zip-files", type=int, default=2000)
    parser.add_argument("--no-append", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # deid's logger and pydicom's would flood the terminal
    warnings.simplefilter("ignore")

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        folder, archive = make_inputs(work, args.files, args.zip_files, args.seed)
        mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"inputs: {args.files} files, {mb:.1f} MB ({time.perf_counter() - t0:.0f} s)")
        check_ours(folder, work)

        names = list(CANDIDATES)
        for name in names:  # warm-up: imports, caches, page cache
            time_round(name, folder, work, args.files)
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                times[name].append(time_round(name, folder, work, args.files))
            print(f"round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in names))
        median = {name: statistics.median(v) for name, v in times.items()}

        rss_mb, report, rss_seconds = peak_rss(archive, work)

    rows = []
    for name in names:
        rows.append(
            f"| {name} | {median[name]:.2f} s | {args.files / median[name]:.0f} | "
            f"{mb / median[name]:.1f} | {median['bare'] / median[name]:.2f}x |"
        )
    vs_bare = median["bare"] / median["ours"]
    vs_dicognito = median["dicognito"] / median["ours"]
    vs_deid = median["deid"] / median["ours"]
    verdict = (
        f"ours / bare throughput **{vs_bare:.2f}x** (target >= 0.5x: "
        f"{'met' if vs_bare >= 0.5 else 'MISSED'}); ours is **{vs_dicognito:.2f}x** dicognito's "
        f"and **{vs_deid:.1f}x** deid's speed (target > 1: "
        f"{'met' if min(vs_dicognito, vs_deid) > 1 else 'MISSED'}); peak RSS of "
        f"`manage.py deidentify` on a {args.zip_files}-file zip **{rss_mb:.0f} MB** (target < "
        f"{RSS_LIMIT_MB:.0f} MB: {'met' if rss_mb < RSS_LIMIT_MB else 'MISSED'}; "
        f"{report.get('instances')} instances in {rss_seconds:.0f} s)."
    )
    machine = f"{os.cpu_count()} vCPU {platform.machine()}, Python {platform.python_version()}"
    command = (
        f".venv/bin/python bench/ingest.py --files {args.files} --rounds {args.rounds} "
        f"--seed {args.seed} --zip-files {args.zip_files}"
    )
    section = "\n".join(
        [
            "",
            f"## De-identifying ingest vs dicognito, deid and bare pydicom ({date.today()})",
            "",
            "Command (repository root):",
            "",
            f"    {command}",
            "",
            f"Machine: {machine}. Input: {args.files} phantom MR files ({mb:.1f} MB), each "
            f"candidate writing every output file; median of {args.rounds} interleaved rounds "
            "after a warm-up round.",
            "",
            "| candidate | median round | files/s | MB/s | throughput vs bare |",
            "|---|---|---|---|---|",
            *rows,
            "",
            verdict,
            "",
        ]
    )
    print(section)
    if not args.no_append:
        results = REPO / "bench" / "RESULTS.md"
        if not results.exists():
            results.write_text("# Benchmark results\n", encoding="utf-8")
        with results.open("a", encoding="utf-8") as handle:
            handle.write(section)
    ok = vs_bare >= 0.5 and min(vs_dicognito, vs_deid) > 1 and rss_mb < RSS_LIMIT_MB
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
