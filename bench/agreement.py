"""Benchmark: ``studies.stats.agreement`` against pingouin on 1,000 cases × 10 readers × 2 sessions.

Run from the repository root::

    .venv/bin/python bench/agreement.py [--repeats 15] [--seed 6] [--record]

What it does, in one process and one run (so both figures share the machine's current state):

1. Builds seeded readings: 1,000 cases with a true VBQ, 10 readers each with a bias and noise,
   2 sessions; per-level SIs (L1-L4, CSF) with ~3 % of levels excluded (empty cells), so
   ``analyse`` does all its work including the unbalanced per-level statistics. Every reading
   has a score (minimum levels 1), so the ICC runs on the full 1,000 × 10 matrix.
2. ICC: the six forms with F-based 95 % CIs on session 1's complete 1,000 × 10 matrix, by
   (a) ``pingouin.intraclass_corr`` on the long table (baseline) and (b)
   ``studies.stats.estimators.icc`` on the matrix; interleaved, alternating which goes first,
   after warm-up; medians and the ratio (a)/(b) (target ≥ 10×) and the largest absolute
   difference of any value or CI bound (target ≤ 1e-9; pingouin's CI rounding switched off).
3. The full ``analyse`` end to end on the 20,000 readings with three thresholds, plus the
   site's strata (``studies.stats.strata.stratify``: field strength, manufacturer and a site
   attribute, issue 14) (target < 2 s for both), timed in the same interleaved loop; the
   pingouin ICC time is printed next to it as the named baseline.

``--record`` appends a section with the figures and the command to ``bench/RESULTS.md``.
Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import pingouin as pg  # noqa: E402
import scipy  # noqa: E402

from studies.stats.agreement import analyse  # noqa: E402
from studies.stats.estimators import ICC_FORMS, icc  # noqa: E402
from studies.stats.strata import stratify  # noqa: E402

N_CASES, N_READERS, N_SESSIONS = 1000, 10, 2
ICC_TARGET = 10.0
ANALYSE_TARGET_S = 2.0
TOLERANCE = 1e-9
THRESHOLDS = {"screening": 2.95, "osteopenia": 3.0, "fracture": 3.05}
PINGOUIN_NAMES = dict(
    zip(
        ICC_FORMS,
        ["ICC(1,1)", "ICC(A,1)", "ICC(C,1)", "ICC(1,k)", "ICC(A,k)", "ICC(C,k)"],
        strict=True,
    )
)


def readings(seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    csf = rng.uniform(120, 200, N_CASES)
    marrow = csf[:, None] * rng.normal(3.0, 0.4, (N_CASES, 1)) + rng.normal(0, 15, (N_CASES, 4))
    reader_gain = rng.normal(1.0, 0.03, N_READERS)
    # Strata as the site adds them (issue 14): 2 field strengths, 3 vendors, 4 sites.
    strata = [
        {
            "Field strength": "1.5 T" if case % 3 else "3 T",
            "Manufacturer": ("GE", "Philips", "Siemens")[case % 3],
            "site": "ABCD"[case % 4],
        }
        for case in range(N_CASES)
    ]
    rows: list[dict[str, Any]] = []
    for session in range(1, N_SESSIONS + 1):
        for case in range(N_CASES):
            for reader in range(N_READERS):
                levels = marrow[case] * reader_gain[reader] + rng.normal(0, 12, 4)
                kept = [value if rng.random() > 0.03 else None for value in levels]
                csf_si = csf[case] + rng.normal(0, 4)
                measured = [value for value in kept if value is not None]
                # min_levels = 1 here, so that every reading has a score and the ICC runs on
                # the full 1,000 x 10 matrix the issue names; the level SIs stay unbalanced.
                vbq = float(np.median(measured)) / csf_si if measured else None
                rows.append(
                    {
                        "case": f"case{case:04d}",
                        "reader": f"R{reader:02d}",
                        "session": session,
                        "vbq": vbq,
                        "L1": kept[0],
                        "L2": kept[1],
                        "L3": kept[2],
                        "L4": kept[3],
                        "CSF": csf_si,
                        "strata": strata[case],
                    }
                )
    return rows


def session_matrix(rows: list[dict[str, Any]]) -> tuple[np.ndarray, pd.DataFrame]:
    """Session 1's complete cases: the matrix for ours, the long table for pingouin."""
    long = pd.DataFrame([r for r in rows if r["session"] == 1])[["case", "reader", "vbq"]]
    wide = long.pivot(index="case", columns="reader", values="vbq").dropna()
    complete = long[long["case"].isin(wide.index)]
    return wide.to_numpy(dtype=float), complete.reset_index(drop=True)


def pingouin_icc(long: pd.DataFrame) -> pd.DataFrame:
    return pg.intraclass_corr(long, targets="case", raters="reader", ratings="vbq")


def max_difference(ours: dict[str, Any], theirs: pd.DataFrame) -> float:
    table = theirs.set_index("Type")
    worst = 0.0
    for form, name in PINGOUIN_NAMES.items():
        row = table.loc[name]
        worst = max(
            worst,
            abs(ours[form]["value"] - row["ICC"]),
            abs(ours[form]["ci95"][0] - row["CI95"][0]),
            abs(ours[form]["ci95"][1] - row["CI95"][1]),
        )
    return worst


CPU: dict[str, list[float]] = {}
"""CPU seconds per candidate: on a shared machine (other test suites on the 2 cores) the wall
time of the end-to-end figure moves with the load; its CPU time barely does."""


def timed(fn: Callable[[], Any], name: str = "") -> float:
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    CPU.setdefault(name, []).append(time.process_time() - cpu)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    pg.options["round.column.CI95"] = None  # compare unrounded bounds

    rows = readings(args.seed)
    matrix, long = session_matrix(rows)
    difference = max_difference(icc(matrix), pingouin_icc(long))

    for _ in range(2):  # warm-up: imports, caches, allocator
        pingouin_icc(long)
        icc(matrix)
        analyse(rows, THRESHOLDS)
        stratify(rows)

    candidates: dict[str, Callable[[], Any]] = {
        "pingouin": lambda: pingouin_icc(long),
        "icc": lambda: icc(matrix),
        "analyse": lambda: (analyse(rows, THRESHOLDS), stratify(rows)),
    }
    times: dict[str, list[float]] = {name: [] for name in candidates}
    order = list(candidates)
    for round_ in range(args.repeats):
        for name in order if round_ % 2 == 0 else order[::-1]:
            times[name].append(timed(candidates[name], name))
    median = {name: statistics.median(values) for name, values in times.items()}
    ratio = median["pingouin"] / median["icc"]

    icc_ok = ratio >= ICC_TARGET and difference <= TOLERANCE
    analyse_ok = median["analyse"] < ANALYSE_TARGET_S
    print(
        f"data: {N_CASES} cases x {N_READERS} readers x {N_SESSIONS} sessions "
        f"({len(rows)} readings, levels L1-L4 + CSF, seed {args.seed}); "
        f"session 1 complete cases for ICC: {matrix.shape[0]} x {matrix.shape[1]}"
    )
    print(f"rounds: {args.repeats} (interleaved, alternating order, 2 warm-up rounds)")
    print(f"(a) pingouin.intraclass_corr  median {median['pingouin'] * 1e3:9.3f} ms")
    print(f"(b) studies.stats.estimators.icc    median {median['icc'] * 1e3:9.3f} ms")
    print(
        f"ICC speed-up (a)/(b): {ratio:.1f}x (target >= {ICC_TARGET:.0f}x); "
        f"max |difference| of values and CI bounds: {difference:.2e} (target <= {TOLERANCE:g})"
        f" -> {'OK' if icc_ok else 'MISSED'}"
    )
    print(
        f"analyse() + stratify() end to end: median {median['analyse']:.3f} s (target < "
        f"{ANALYSE_TARGET_S:.0f} s) -> {'OK' if analyse_ok else 'MISSED'}; "
        f"baseline: pingouin ICC alone {median['pingouin'] * 1e3:.1f} ms; "
        f"CPU time median {statistics.median(CPU['analyse']):.3f} s; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    if args.record:
        record(args, rows, matrix, median, ratio, difference, icc_ok, analyse_ok)
    return 0 if icc_ok and analyse_ok else 1


def record(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    matrix: np.ndarray,
    median: dict[str, float],
    ratio: float,
    difference: float,
    icc_ok: bool,
    analyse_ok: bool,
) -> None:
    path = REPO / "bench" / "RESULTS.md"
    if not path.exists():
        path.write_text(
            "# Benchmark results\n\nEvery ratio here is measured against a baseline timed in "
            "the same process and run, interleaved with the candidate, because machines are "
            "noisy: absolute times move with the machine and its load; the ratio is the figure "
            "to compare.\n",
            encoding="utf-8",
        )
    text = path.read_text(encoding="utf-8")
    section = "## `studies.stats.agreement` vs pingouin (1,000 cases x 10 readers x 2 sessions)"
    machine = (
        f"{platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, pingouin {pg.__version__}"
    )
    lines = []
    if section not in text:
        lines += [
            "",
            section,
            "",
            "Command (repository root):",
            "",
            f"    .venv/bin/python bench/agreement.py --repeats {args.repeats} --seed "
            f"{args.seed} --record",
            "",
            f"Data: {len(rows)} seeded readings with L1-L4 and CSF SIs (~3 % of levels "
            "excluded, every reading scored); ICC on session 1's complete "
            f"{matrix.shape[0]} x {matrix.shape[1]} matrix; `analyse` with three thresholds.",
            "",
            "- (a) baseline: `pingouin.intraclass_corr` (six forms, CIs; CI rounding off).",
            "- (b) candidate: `studies.stats.estimators.icc` on the same data. "
            "Target (a)/(b) >= 10x, max |difference| <= 1e-9.",
            "- (c) `studies.stats.agreement.analyse` end to end (inter-reader per session, "
            "intra-reader, kappa, levels, exclusions). Target < 2 s.",
            "",
            "| date | machine | rounds | (a) median | (b) median | (a)/(b) | max abs diff "
            "| (c) analyse median |",
            "|---|---|---|---|---|---|---|---|",
        ]
    lines.append(
        f"| {datetime.date.today().isoformat()} | {machine} | {args.repeats} "
        f"| {median['pingouin'] * 1e3:.2f} ms | {median['icc'] * 1e3:.3f} ms "
        f"| **{ratio:.0f}x**{'' if icc_ok else ' (missed)'} | {difference:.1e} "
        f"| **{median['analyse']:.3f} s**{'' if analyse_ok else ' (missed)'} |"
    )
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
