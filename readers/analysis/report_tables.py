"""The tables of the agreement report: rows of already formatted cells from the analysis' JSON.

Each function turns one block of :func:`studies.stats.agreement.analyse`'s result (ICC forms,
reader pairs, kappa per threshold, SI per level, level exclusions, intra-reader comparisons) or of
:func:`studies.stats.diagnostics.evaluate`'s into the rows the template prints. Why a module of
its own: the tables read only the analysis, never the records or the plots, so they can be
checked and changed without the figures (:mod:`.report_figures`). No Django, no models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from readers.analysis.report_format import (
    _cell,
    _estimate,
    _finite,
    _pair_name,
    ci,
    fmt,
    p_value,
)
from studies.stats.planning import precision_so_far
from studies.vocabulary import LABELS, LEVELS

MEASUREMENT_ERROR_METHODS: Final = (
    "Measurement error in VBQ units (de Vet et al., J Clin Epidemiol 2006;59:1033–1039), from "
    "the same two-way ANOVA as the ICCs: variance components case = (MSR − MSE)/k, reader = "
    "(MSC − MSE)/n and residual = MSE (a negative estimate reported as 0); standard error of "
    "measurement SEM(agreement) = √(reader + residual), SEM(consistency) = √residual; smallest "
    "detectable change SDC = 1.96 · √2 · SEM, the smallest change in one patient’s VBQ that "
    "exceeds measurement error with 95 % confidence. For intra-reader repeatability the "
    "sessions take the place of the readers."
)
CATEGORICAL_METHODS: Final = (
    "Per threshold, besides Fleiss’ kappa with its 95 % CI (jackknife over cases with one "
    "evenly split pseudo-case, Fleiss & Davies 1982, t distribution: it keeps its 95 % from 20 "
    "cases on, where Gwet’s linearised interval covers 87 %): "
    "percent agreement (share of cases on which all readers agree) and Gwet’s AC1 (Gwet 2008), "
    "which stays interpretable when one category is rare; with two or more thresholds, the "
    "ordered categories (number of thresholds reached) get a linear- and a quadratic-weighted "
    "Cohen’s kappa per reader pair (Cohen 1968)."
)
PLANNING_METHODS: Final = (
    "Cases needed for a target ICC interval width: Bonett (Stat Med 2002;21:1331–1335), "
    "n = 1 + 8 z² (1 − ICC)² (1 + (k − 1) ICC)² / (k (k − 1) w²)."
)
TARGET_ICC_WIDTH: Final = 0.2
"""The 95 % CI width of ICC2 the "precision so far" line aims at (Bonett's worked example)."""


def sdc_sentence(sdc: Any, who: str = "different readers") -> str:
    """One line a clinician reads: how large a change must be to exceed measurement error."""
    if not _finite(sdc):
        return "The smallest detectable change cannot be estimated yet (too few complete cases)."
    return (
        f"A change in one patient’s VBQ smaller than {fmt(sdc, 2)} may be measurement error "
        f"when {who} measure (SDC, 95 %); a larger change is beyond it."
    )


def _measurement_error(block: Mapping[str, Any], who: str) -> dict[str, Any] | None:
    """SEM, SDC and the variance components of one session block or intra-reader comparison."""
    sem = block.get("sem")
    if not sem:
        return None
    sdc = block.get("sdc") or {}
    components = block.get("variance_components") or {}
    return {
        "components": {k: fmt(components.get(k), 4) for k in ("case", "reader", "residual")},
        "has_components": bool(components),
        "sem_agreement": fmt(sem.get("agreement")),
        "sem_consistency": fmt(sem.get("consistency")),
        "sdc_agreement": fmt(sdc.get("agreement")),
        "sdc_consistency": fmt(sdc.get("consistency")),
        "sentence": sdc_sentence(sdc.get("agreement"), who),
    }


def _weighted_kappa_rows(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "pair": _pair_name(p["readers"]),
            "n": p.get("n", 0),
            "linear": fmt(p.get("linear")),
            "quadratic": fmt(p.get("quadratic")),
        }
        for p in (block.get("weighted_kappa") or {}).get("pairs") or []
    ]


def _precision(block: Mapping[str, Any], target: float = TARGET_ICC_WIDTH) -> dict[str, Any] | None:
    """The "precision so far" line: ICC2's CI width now, the target, and cases still needed."""
    icc2 = (block.get("icc") or {}).get("ICC2") or {}
    readers = len(block.get("readers") or [])
    status = precision_so_far(
        float(icc2["value"]) if _finite(icc2.get("value")) else float("nan"),
        [float(v) if _finite(v) else float("nan") for v in (icc2.get("ci95") or [None, None])],
        readers,
        int(block.get("n") or 0),
        target,
    )
    if status is None:
        return None
    if status["reached"]:
        text = (
            f"Precision so far: the 95 % CI of ICC2 is {fmt(status['width'], 2)} wide "
            f"({status['cases']} cases), within the target of {fmt(target, 2)}."
        )
    else:
        text = (
            f"Precision so far: the 95 % CI of ICC2 is {fmt(status['width'], 2)} wide with "
            f"{status['cases']} cases; to narrow it to {fmt(target, 2)} with {readers} readers, "
            f"about {status['more_cases']} more cases read by all are needed "
            f"({status['cases_needed']} in all, Bonett 2002, at ICC2 = "
            f"{fmt(icc2.get('value'), 2)})."
        )
    return status | {"text": text}


ICC_MODELS: Final = {
    "ICC1": ("ICC(1,1)", "One-way random effects, single reader"),
    "ICC2": ("ICC(2,1)", "Two-way random effects, absolute agreement, single reader"),
    "ICC3": ("ICC(3,1)", "Two-way mixed effects, consistency, single reader"),
    "ICC1k": ("ICC(1,k)", "One-way random effects, mean of k readers"),
    "ICC2k": ("ICC(2,k)", "Two-way random effects, absolute agreement, mean of k readers"),
    "ICC3k": ("ICC(3,k)", "Two-way mixed effects, consistency, mean of k readers"),
}


def _icc_rows(icc: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, (notation, model) in ICC_MODELS.items():
        form = icc.get(name) or {}
        rows.append(
            {
                "name": name,
                "notation": notation,
                "model": model,
                **_estimate(form),
                "F": fmt(form.get("F"), 2),
                "df": f"{form.get('df1', '–')}, {form.get('df2', '–')}",
                "p": p_value(form.get("pval")),
            }
        )
    return rows


def _pair_rows(pairs: Sequence[Mapping[str, Any]], digits: int) -> list[dict[str, Any]]:
    rows = []
    for pair in pairs:
        ba = pair.get("bland_altman") or {}
        loa = ba.get("loa") or [None, None]
        loa_ci = ba.get("loa_ci95") or [None, None]
        slope = (ba.get("proportional_bias") or {}).get("slope")
        slope_p = (ba.get("proportional_bias") or {}).get("p")
        concordance = pair.get("ccc") or {}
        correlation = pair.get("pearson") or {}
        rows.append(
            {
                "pair": _pair_name(pair["readers"]),
                "n": pair.get("n", 0),
                "bias": _cell(ba.get("bias"), ba.get("bias_ci95"), digits),
                "sd": fmt(ba.get("sd"), digits),
                "loa_lower": _cell(loa[0], loa_ci[0], digits),
                "loa_upper": _cell(loa[1], loa_ci[1], digits),
                "ccc": _estimate(concordance),
                "pearson": _estimate(correlation),
                "slope": fmt(slope, 3),
                "slope_p": p_value(slope_p),
            }
        )
    return rows


NOT_ENOUGH: Final = "not enough data"


def kappa_text(value: Any, n: Any) -> str:
    """A kappa for a table: "not enough data" with fewer than two cases or no variation (κ is
    undefined, or −1 from a single case, which says nothing), else the number (issue 13)."""
    if not _finite(value) or not isinstance(n, int) or n < 2:
        return NOT_ENOUGH
    return fmt(value)


REFERENCE_NAMES: Final = {
    "dxa_t_score": "DXA T-score",
    "qct_bmd": "QCT BMD (mg/cm³)",
    "osteoporosis_dxa": "Osteoporosis by DXA (T-score ≤ −2.5)",
    "fragility_fracture": "Fragility fracture",
}
"""The reference standards in words, for the page and the report (not the field names)."""


def _kappa_rows(kappa: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, block in kappa.items():
        n = block.get("n", 0)
        rows.append(
            {
                "name": name,
                "threshold": fmt(block.get("threshold"), 2),
                "n": n,
                "fleiss": kappa_text(block.get("fleiss"), n),
                "fleiss_ci": ci(block.get("fleiss_ci95"), 2),
                "percent_agreement": fmt(100 * block["percent_agreement"], 0)
                if _finite(block.get("percent_agreement"))
                else "–",
                "gwet_ac1": kappa_text(block.get("gwet_ac1"), n),
                "positive": [f"{r}: {k}" for r, k in (block.get("positive") or {}).items()],
                "pairs": [
                    {
                        "pair": _pair_name(p["readers"]),
                        "cohen": kappa_text(p.get("cohen"), p.get("n", n)),
                        "agreement": fmt(100 * p["agreement"], 0)
                        if _finite(p.get("agreement"))
                        else "–",
                    }
                    for p in block.get("pairs") or []
                ],
            }
        )
    return rows


def _in_order(blocks: Mapping[str, Any], names: Sequence[str]) -> list[tuple[str, Any]]:
    """The analysis' per-level blocks in the vocabulary's order, leaving out levels it has none of.

    Why: the analysis keys them by level name, the tables list them top to bottom (L1 first).
    """
    return [(name, blocks[name]) for name in names if blocks.get(name)]


def _level_rows(levels: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for column, block in _in_order(levels, LABELS):
        icc = block.get("icc") or {}
        rows.append(
            {
                "column": column,
                "n": block.get("n", 0),
                "icc1": _estimate(icc.get("ICC1")),
                "icc2": _estimate(icc.get("ICC2")),
                "icc3": _estimate(icc.get("ICC3")),
                "ccc": [
                    {
                        "pair": _pair_name(p["readers"]),
                        "value": fmt((p.get("ccc") or {}).get("value")),
                    }
                    for p in block.get("pairs") or []
                ],
            }
        )
    return rows


def _exclusion_rows(exclusions: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for level, block in _in_order(exclusions, LEVELS):
        agreements = [
            p["agreement"] for p in block.get("pairs") or [] if _finite(p.get("agreement"))
        ]
        rows.append(
            {
                "level": level,
                "n": block.get("n", 0),
                "excluded": [f"{r}: {k}" for r, k in (block.get("excluded") or {}).items()],
                "total": sum((block.get("excluded") or {}).values()),
                "agreement": (
                    f"{fmt(100 * min(agreements), 0)}–{fmt(100 * max(agreements), 0)} %"
                    if agreements and min(agreements) != max(agreements)
                    else (f"{fmt(100 * agreements[0], 0)} %" if agreements else "–")
                ),
                "fleiss": fmt(block.get("fleiss")),
            }
        )
    return rows


def _intra_rows(intra: Mapping[str, Any], digits: int) -> list[dict[str, Any]]:
    rows = []
    for reader, block in intra.items():
        for comparison in block.get("by_session") or [block]:
            icc = comparison.get("icc") or {}
            ba = comparison.get("bland_altman") or {}
            loa = ba.get("loa") or [None, None]
            concordance = comparison.get("ccc") or {}
            sessions = comparison.get("sessions") or [1, 2]
            rows.append(
                {
                    "reader": reader,
                    "sessions": f"{sessions[0]} vs {sessions[1]}",
                    "n": comparison.get("n", 0),
                    "icc2": _estimate(icc.get("ICC2")),
                    "icc3": _estimate(icc.get("ICC3")),
                    "bias": _cell(ba.get("bias"), ba.get("bias_ci95"), digits),
                    "loa": f"{fmt(loa[0], digits)} to {fmt(loa[1], digits)}",
                    "ccc": _estimate(concordance),
                    "sem": fmt((comparison.get("sem") or {}).get("agreement")),
                    "sdc": fmt((comparison.get("sdc") or {}).get("agreement")),
                    "kappa": [
                        f"{name}: {kappa_text(k.get('cohen'), k.get('n', 0))}"
                        for name, k in (comparison.get("kappa") or {}).items()
                    ],
                }
            )
    return rows


def _diagnostic_tables(diagnostics: Mapping[str, Any]) -> dict[str, Any]:
    continuous = [
        {
            "name": REFERENCE_NAMES.get(name, name),
            "n": block.get("n", 0),
            "pearson": _estimate(block.get("pearson")),
            "pearson_p": p_value((block.get("pearson") or {}).get("p")),
            "spearman": fmt((block.get("spearman") or {}).get("value")),
            "spearman_p": p_value((block.get("spearman") or {}).get("p")),
        }
        for name, block in (diagnostics.get("continuous") or {}).items()
    ]
    binary = []
    for name, block in (diagnostics.get("binary") or {}).items():
        auc = block.get("auc") or {}
        youden = block.get("youden") or {}
        binary.append(
            {
                "name": REFERENCE_NAMES.get(name, name),
                "n": block.get("n", 0),
                "n_positive": block.get("n_positive", 0),
                "n_negative": block.get("n_negative", 0),
                "auc": _cell(auc.get("auc"), auc.get("ci95")),
                "youden": {
                    "cutoff": fmt(youden.get("cutoff"), 3),
                    "j": fmt(youden.get("j")),
                    **{k: fmt(youden.get(k)) for k in ("sensitivity", "specificity", "ppv", "npv")},
                },
                "thresholds": [
                    {
                        "name": label,
                        "threshold": fmt(t.get("threshold"), 2),
                        "n": t.get("n", 0),
                        "counts": " / ".join(str(t.get(k, 0)) for k in ("tp", "fp", "tn", "fn")),
                        **{
                            k: fmt(t.get(k))
                            for k in ("sensitivity", "specificity", "ppv", "npv", "accuracy")
                        },
                    }
                    for label, t in (block.get("thresholds") or {}).items()
                ],
            }
        )
    return {
        "n_cases": diagnostics.get("n_cases", 0),
        "score": diagnostics.get("score") or "the VBQ score of each case",
        "continuous": continuous,
        "binary": binary,
    }
