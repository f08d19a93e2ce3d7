"""Coverage of the 95 % interval of Fleiss' kappa (``studies.stats.categorical.fleiss``).

Run from the repository root::

    .venv/bin/python bench/kappa_ci.py [--runs 5000] [--seed 2002] [--record]

Why: spec §6 reports ``fleiss_ci95`` next to each threshold's kappa; an interval is only worth
printing if it covers the true kappa about as often as it claims. Each scenario draws ``runs``
seeded studies: a share π of cases is "positive-leaning" (each reader calls it positive with
probability a), the rest with probability b, readers independent given the case. The
population Fleiss kappa of that model is the intraclass correlation of the binary ratings,
``π(1 − π)(a − b)² / (p̄(1 − p̄))`` with ``p̄ = πa + (1 − π)b``; the script counts how often the
interval contains it. Target: ≥ 93 % for the nominal 95 % at 20, 30, 50, 100 and 200 cases, for
the interval the agreement reports (``fleiss_ci95``: :func:`fleiss_small_sample_ci`, the
jackknife over cases with one pseudo-case, Fleiss & Davies 1982). Gwet's linearised interval
(:func:`fleiss`'s ``ci95``, the one reported before issue 14 item 6) is printed beside it as the
baseline. One scenario is shown and not held to the target: a rare category at 30 cases (about
12 positive readings in all), where no interval tried (Wald, Fisher z, log(1 − κ), percentile and
BCa bootstrap, beta-binomial profile likelihood, jackknife) reached 93 %.

``--record`` appends the table and the command to ``bench/RESULTS.md``. Not a test: the small
seeded version is ``tests/studies/stats/test_categorical.py``.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from studies.stats.categorical import fleiss, fleiss_small_sample_ci  # noqa: E402

TARGET = 0.93
# (cases, readers, π, a, b, held to the target)
SCENARIOS = [
    (20, 2, 0.4, 0.95, 0.05, True),
    (20, 3, 0.3, 0.9, 0.1, True),
    (20, 5, 0.2, 0.9, 0.1, True),
    (30, 2, 0.3, 0.9, 0.1, True),
    (30, 4, 0.5, 0.8, 0.2, True),
    (30, 3, 0.1, 0.9, 0.05, False),
    (50, 4, 0.3, 0.9, 0.1, True),
    (60, 3, 0.2, 0.95, 0.05, True),
    (100, 10, 0.5, 0.8, 0.2, True),
    (100, 3, 0.2, 0.9, 0.1, True),
    (200, 5, 0.05, 0.9, 0.02, True),
]


def true_kappa(pi: float, a: float, b: float) -> float:
    p_bar = pi * a + (1 - pi) * b
    return pi * (1 - pi) * (a - b) ** 2 / (p_bar * (1 - p_bar))


def coverage(
    n: int, k: int, pi: float, a: float, b: float, runs: int, seed: int
) -> tuple[float, float, int]:
    """Share of runs whose interval holds the true kappa (reported interval, Gwet's), and
    runs with no interval (every reading in one category: counted as not covered)."""
    kappa = true_kappa(pi, a, b)
    rng = np.random.default_rng(seed)
    covered = covered_gwet = undefined = 0
    for _ in range(runs):
        p = np.where(rng.random(n) < pi, a, b)
        positive = (rng.random((n, k)) < p[:, None]).sum(axis=1)
        counts = np.column_stack([k - positive, positive]).astype(float)
        lo, hi = fleiss_small_sample_ci(counts)
        if np.isnan(lo):
            undefined += 1
            continue
        covered += lo <= kappa <= hi
        g_lo, g_hi = fleiss(counts)["ci95"]
        covered_gwet += g_lo <= kappa <= g_hi
    return covered / runs, covered_gwet / runs, undefined


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2002)
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    rows = []
    ok = True
    start = time.perf_counter()
    for index, (n, k, pi, a, b, held) in enumerate(SCENARIOS):
        share, gwet, undefined = coverage(n, k, pi, a, b, args.runs, args.seed + index)
        passed = share >= TARGET
        ok &= passed or not held
        verdict = ("OK" if passed else "BELOW TARGET") if held else "shown only"
        rows.append((n, k, pi, a, b, true_kappa(pi, a, b), share, gwet, undefined, verdict))
        print(
            f"{n:4d} cases x {k:2d} readers, pi={pi:.2f} a={a:.2f} b={b:.2f}: "
            f"kappa={true_kappa(pi, a, b):.3f} coverage={share:.4f} (Gwet's {gwet:.4f}; "
            f"no interval: {undefined}) -> {verdict}"
        )
    elapsed = time.perf_counter() - start
    print(
        f"{args.runs} runs per scenario, {elapsed:.1f} s; target >= {TARGET:.0%}: "
        f"{'OK' if ok else 'FAILED'}"
    )
    if args.record:
        record(args, rows, ok)
    return 0 if ok else 1


def record(args: argparse.Namespace, rows: list[tuple[object, ...]], ok: bool) -> None:
    lines = [
        "",
        "## Fleiss' kappa 95 % interval: coverage by simulation "
        f"({datetime.date.today().isoformat()})",
        "",
        "Command (repository root):",
        "",
        f"    .venv/bin/python bench/kappa_ci.py --runs {args.runs} --seed {args.seed} --record",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, numpy "
        f"{np.__version__}. Reported interval (`fleiss_ci95`): jackknife over cases with one "
        "pseudo-case split evenly (Fleiss & Davies 1982; Agresti & Coull 1998), "
        "κ* ± t(0.975, n − 1)·se widened to hold κ, clipped to [−1, 1]; beside it the "
        "previous one, Gwet's linearised variance. Target >= 93 % at 20 to 200 cases: "
        f"**{'met' if ok else 'NOT met'}**.",
        "",
        "| cases | readers | π | a | b | true κ | coverage | Gwet's (before) | no interval "
        "| verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, k, pi, a, b, kappa, share, gwet, undefined, verdict in rows:
        lines.append(
            f"| {n} | {k} | {pi} | {a} | {b} | {kappa:.3f} | **{share:.2%}** | {gwet:.2%} "
            f"| {undefined} | {verdict} |"
        )
    with (REPO / "bench" / "RESULTS.md").open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
