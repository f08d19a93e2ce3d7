"""Agreement and diagnostic plots as SVG text (issue 6): Bland–Altman, scatter, ROC.

Pure: numpy and matplotlib only, no Django, so the study pages, the printable report and the
tests draw the same figures. Why SVG text: it inlines into an HTML page (no file, no URL, no
static storage) and WeasyPrint renders it as vectors in the PDF; with ``svg.fonttype = "none"``
labels stay real text, so a PDF's text can be searched and extracted (the report test does).

Design decisions:

- **No pyplot.** Figures are built from :class:`matplotlib.figure.Figure` and rendered by the SVG
  canvas directly: no global figure registry to leak from a long-lived Celery worker or web
  process, and safe in threads. The Agg backend is still selected on import so nothing ever
  tries to open a window.
- **Deterministic.** ``svg.hashsalt`` is fixed and the date metadata is dropped, so the same
  data gives byte-identical SVG (cacheable, diffable, testable).
- **Missing data.** ``None``/NaN pairs are dropped (the ``n`` shown is what was drawn); fewer
  than two points give a small SVG saying "not enough data" — a plot never raises on data.
- **Style.** 4.5 × 3.2 in, DejaVu Sans (shipped with matplotlib, and the font the PDF renderer
  finds), Okabe–Ito colour-blind-safe colours, no seaborn. The identity line and other
  reference elements carry an SVG ``id`` (``identity``, ``bias``, ``loa-lower``, ...) so pages
  and tests can find them.
- **No ``<style>`` element.** Matplotlib writes one (``*{stroke-linejoin: round; …}``) into
  every SVG; inlined in a page, the site's Content-Security-Policy blocks it (and its ``*``
  would style the whole page). The same two properties are inherited, so they are set as
  attributes of the root ``<svg>`` instead: the figure draws the same.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType
from numpy.typing import NDArray

from studies.stats.estimators import bland_altman, ccc, pearson
from studies.vocabulary import LABELS

FloatArray = NDArray[np.float64]

FIGSIZE: Final = (4.5, 3.2)
"""Inches: two fit side by side on an A4 page at about 80 % scale, readable on a screen."""

BLUE: Final = "#0072B2"
ORANGE: Final = "#E69F00"
VERMILLION: Final = "#D55E00"
GREEN: Final = "#009E73"
PURPLE: Final = "#CC79A7"
SKY: Final = "#56B4E9"
GREY: Final = "#555555"
LEVEL_COLOURS: Final = dict(zip(LABELS, (BLUE, ORANGE, GREEN, PURPLE, VERMILLION), strict=True))
LEVEL_MARKERS: Final = dict(zip(LABELS, ("o", "s", "^", "D", "v"), strict=True))
THRESHOLD_COLOURS: Final = (VERMILLION, PURPLE, GREEN, SKY, ORANGE)
NOT_ENOUGH: Final = "not enough data"

_RC: Final[dict[RcKeyType, Any]] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "vbq-reader-studies",
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 8.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#444444",
    "axes.linewidth": 0.8,
    "axes.grid": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "legend.frameon": True,
    "legend.framealpha": 0.85,
    "legend.edgecolor": "none",
    "legend.facecolor": "white",
    "legend.borderpad": 0.3,
}

_XML_PROLOGUE = re.compile(r"\A\s*<\?xml[^>]*\?>\s*(<!DOCTYPE[^>]*>\s*)?", re.DOTALL)


# --- helpers --------------------------------------------------------------------------------


def _floats(values: Iterable[Any]) -> FloatArray:
    """Float array with ``None`` (and anything not a number) as NaN."""
    out: list[float] = []
    for value in values:
        try:
            out.append(math.nan if value is None else float(value))
        except (TypeError, ValueError):
            out.append(math.nan)
    return np.asarray(out, dtype=np.float64)


def finite_pairs(x: Iterable[Any], y: Iterable[Any]) -> tuple[FloatArray, FloatArray]:
    """The pairs where both values are finite numbers (``None``/NaN/inf dropped)."""
    a, b = _floats(x), _floats(y)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=FIGSIZE)
    FigureCanvasSVG(figure)
    axes = figure.add_subplot(1, 1, 1)
    return figure, axes


def _svg(figure: Figure) -> str:
    """The figure as an inline-ready ``<svg>`` element (no XML prologue or DOCTYPE)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = _METADATA.sub("", _XML_PROLOGUE.sub("", buffer.getvalue()))
    return unique_ids(_style_as_attributes(text).strip() + "\n")


_STYLE_ELEMENT = re.compile(r"\s*<style[^>]*>\s*\*\s*\{([^}]*)\}\s*</style>")
_EMPTY_DEFS = re.compile(r"\s*<defs>\s*</defs>")


def _style_as_attributes(svg: str) -> str:
    """Matplotlib's ``<style>*{property: value; …}</style>`` as attributes of the root element.

    Only inherited properties appear in it (``stroke-linejoin``, ``stroke-linecap``), so set on
    the root they reach every element, as the ``*`` rule did; an element's own ``style`` wins
    over both alike.
    """
    match = _STYLE_ELEMENT.search(svg)
    if match is None:
        return svg
    declarations = (d.split(":", 1) for d in match[1].split(";") if ":" in d)
    attributes = "".join(f' {name.strip()}="{value.strip()}"' for name, value in declarations)
    svg = _EMPTY_DEFS.sub("", svg[: match.start()] + svg[match.end() :], count=1)
    return svg.replace("<svg ", "<svg" + attributes + " ", 1)


_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_ID = re.compile(r'\bid="([^"]+)"')
_URL_REF = re.compile(r"url\(#([^)]+)\)")
_HREF_REF = re.compile(r'href="#([^"]+)"')


def unique_ids(svg: str) -> str:
    """Prefix every ``id`` (and its ``url(#…)``/``href="#…"`` references) with a content hash.

    Matplotlib numbers its ids per figure (``line2d_3``) and derives clip-path ids from the
    salt and the clip box, so two SVGs inlined in one HTML page would share ids, and a clip
    path or marker could resolve to the other figure's definition. A prefix from the SVG's
    own hash keeps the output deterministic and the ids unique across different figures.
    Semantic ids set by this module end the same way (``…-identity``, ``…-bias``).
    """
    prefix = "v" + hashlib.sha1(svg.encode("utf-8"), usedforsecurity=False).hexdigest()[:10]
    ids = set(_ID.findall(svg))
    svg = _ID.sub(lambda m: f'id="{prefix}-{m[1]}"', svg)
    svg = _URL_REF.sub(lambda m: f"url(#{prefix}-{m[1]})" if m[1] in ids else m[0], svg)
    return _HREF_REF.sub(lambda m: f'href="#{prefix}-{m[1]}"' if m[1] in ids else m[0], svg)


def _render(draw: Any) -> str:
    with matplotlib.rc_context(_RC):
        figure, axes = _figure()
        draw(figure, axes)
        figure.tight_layout(pad=0.6)
        return _svg(figure)


def not_enough_data_svg(title: str, detail: str = "") -> str:
    """A figure-sized SVG that says why there is no plot (fewer than two usable points)."""

    def draw(figure: Figure, axes: Axes) -> None:
        axes.set_axis_off()
        axes.set_title(title)
        message = NOT_ENOUGH + (f"\n{detail}" if detail else "")
        axes.text(0.5, 0.5, message, ha="center", va="center", color=GREY, transform=axes.transAxes)

    return _render(draw)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{float(value):.{digits}f}".replace("-", "−")


def _interval(ci: Sequence[Any] | None, digits: int = 2) -> str:
    if not ci or len(ci) != 2 or any(v is None or not math.isfinite(float(v)) for v in ci):
        return ""
    return f" [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]"


def _digits(values: FloatArray) -> int:
    """Decimals that suit the data's scale: VBQ (≈ 3) gets 2, SIs (≈ 300) get 0 or 1."""
    scale = float(np.nanmax(np.abs(values))) if values.size else 1.0
    if scale >= 100:
        return 0
    if scale >= 10:
        return 1
    return 2


def _equal_limits(
    axes: Axes, *arrays: FloatArray, extra: Iterable[float] = ()
) -> tuple[float, float]:
    values = np.concatenate([*arrays, np.asarray(list(extra), dtype=np.float64)])
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
    lo, hi = lo - 0.06 * span, hi + 0.06 * span
    axes.set_xlim(lo, hi)
    axes.set_ylim(lo, hi)
    axes.set_aspect("equal", adjustable="box")
    return lo, hi


# --- Bland–Altman ---------------------------------------------------------------------------


def bland_altman_svg(
    first: Iterable[Any],
    second: Iterable[Any],
    *,
    first_label: str,
    second_label: str,
    title: str,
) -> str:
    """Differences (first − second) against means, with bias, ±1.96 sd limits and their CIs.

    Bias and limits come from :func:`studies.stats.estimators.bland_altman`, so the plot and the
    tables show the same numbers; the 95 % CIs of the bias and of each limit are shaded bands.
    ``n`` (pairs drawn) is in the title.
    """
    a, b = finite_pairs(first, second)
    n = int(a.size)
    if n < 2:
        return not_enough_data_svg(title, f"n = {n} pair{'s' if n != 1 else ''}")
    stats = bland_altman(a, b)
    means, diffs = (a + b) / 2.0, a - b
    digits = _digits(np.concatenate([a, b]))

    def draw(figure: Figure, axes: Axes) -> None:
        bias, (lo, hi) = stats["bias"], stats["loa"]
        bands = [
            ("bias-ci", stats["bias_ci95"], BLUE),
            ("loa-lower-ci", stats["loa_ci95"][0], VERMILLION),
            ("loa-upper-ci", stats["loa_ci95"][1], VERMILLION),
        ]
        for gid, (band_lo, band_hi), colour in bands:
            if math.isfinite(band_lo) and math.isfinite(band_hi):
                band = axes.axhspan(band_lo, band_hi, color=colour, alpha=0.10, lw=0)
                band.set_gid(gid)
        axes.scatter(means, diffs, s=22, color=BLUE, alpha=0.8, edgecolors="white", lw=0.4)
        line = axes.axhline(
            bias,
            color=BLUE,
            lw=1.3,
            label=f"bias {_fmt(bias, digits)}{_interval(stats['bias_ci95'], digits)}",
        )
        line.set_gid("bias")
        for gid, value, label in (
            ("loa-upper", hi, "+1.96 sd"),
            ("loa-lower", lo, "−1.96 sd"),
        ):
            if math.isfinite(value):
                limit = axes.axhline(
                    value,
                    color=VERMILLION,
                    lw=1.1,
                    ls="--",
                    label=f"{label} {_fmt(value, digits)}",
                )
                limit.set_gid(gid)
        zero = axes.axhline(0.0, color="#999999", lw=0.7, ls=":")
        zero.set_gid("zero")
        axes.set_xlabel(f"Mean of {first_label} and {second_label}")
        axes.set_ylabel(f"{first_label} − {second_label}")
        axes.set_title(f"{title} (n = {n})")
        axes.legend(loc="best", handlelength=1.8, borderaxespad=0.3)
        # Keep the limits and their CIs in view even when the points cluster.
        extent = [*diffs, bias, lo, hi, *stats["loa_ci95"][0], *stats["loa_ci95"][1], 0.0]
        finite = [v for v in extent if math.isfinite(v)]
        span = max(finite) - min(finite) or 1.0
        axes.set_ylim(min(finite) - 0.08 * span, max(finite) + 0.30 * span)

    return _render(draw)


# --- scatter --------------------------------------------------------------------------------


def scatter_svg(
    x: Iterable[Any],
    y: Iterable[Any],
    *,
    x_label: str,
    y_label: str,
    title: str,
    thresholds: Mapping[str, float] | None = None,
) -> str:
    """y against x on equal axes with the identity line, optional thresholds, CCC and r.

    The identity (y = x) is the line of perfect agreement; Lin's CCC measures the distance
    from it and Pearson's r only the scatter around *some* line, so both are printed (with
    ``n``) in the upper-left corner. Thresholds are dotted lines on both axes, so the
    quadrants show category disagreements.
    """
    a, b = finite_pairs(x, y)
    n = int(a.size)
    if n < 2:
        return not_enough_data_svg(title, f"n = {n} pair{'s' if n != 1 else ''}")
    shown = dict(thresholds or {})

    def draw(figure: Figure, axes: Axes) -> None:
        lo, hi = _equal_limits(axes, a, b, extra=shown.values())
        identity = axes.plot([lo, hi], [lo, hi], color=GREY, lw=1.0, label="identity (y = x)")
        identity[0].set_gid("identity")
        for index, (name, value) in enumerate(shown.items()):
            colour = THRESHOLD_COLOURS[index % len(THRESHOLD_COLOURS)]
            vertical = axes.axvline(value, color=colour, lw=0.9, ls=":")
            vertical.set_gid(f"threshold-{index}-x")
            horizontal = axes.axhline(
                value, color=colour, lw=0.9, ls=":", label=f"{name} {_fmt(value)}"
            )
            horizontal.set_gid(f"threshold-{index}-y")
        axes.scatter(a, b, s=22, color=BLUE, alpha=0.8, edgecolors="white", lw=0.4, zorder=3)
        _agreement_frame(axes, a, b, x_label, y_label, title, handlelength=1.8)

    return _render(draw)


def _agreement_frame(
    axes: Axes,
    a: FloatArray,
    b: FloatArray,
    x_label: str,
    y_label: str,
    title: str,
    **legend: float,
) -> None:
    """What both agreement scatters draw around their points, written once so they match.

    The CCC, Pearson r and ``n`` of every point drawn (``a`` against ``b``) in the upper-left
    box, the axis labels and title, and the legend lower right (``legend``: its spacing).
    """
    concordance, correlation = ccc(a, b), pearson(a, b)
    text = (
        f"CCC {_fmt(concordance['value'])}{_interval(concordance['ci95'])}\n"
        f"Pearson r {_fmt(correlation['value'])}\n"
        f"n = {a.size}"
    )
    axes.text(
        0.03,
        0.97,
        text,
        transform=axes.transAxes,
        va="top",
        ha="left",
        fontsize=7.5,
        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white", "edgecolor": "#cccccc", "lw": 0.6},
        zorder=4,
    )
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    axes.legend(loc="lower right", borderaxespad=0.3, **legend)


def levels_scatter_svg(
    series: Mapping[str, tuple[Iterable[Any], Iterable[Any]]],
    *,
    x_label: str,
    y_label: str,
    title: str,
) -> str:
    """Per-level signal intensities of two readers, one colour and marker per level.

    ``series`` maps a level (``L1``…``L4``, ``CSF``) to its ``(x, y)`` values. Pooling the
    levels on one plot keeps the report short while still showing a level that disagrees;
    the CCC and r in the corner are over all the points drawn, and the legend gives each
    level's ``n``.
    """
    pairs = {label: finite_pairs(x, y) for label, (x, y) in series.items()}
    pairs = {label: xy for label, xy in pairs.items() if xy[0].size}
    xs = np.concatenate([xy[0] for xy in pairs.values()]) if pairs else np.zeros(0)
    ys = np.concatenate([xy[1] for xy in pairs.values()]) if pairs else np.zeros(0)
    n = int(xs.size)
    if n < 2:
        return not_enough_data_svg(title, f"n = {n} value{'s' if n != 1 else ''}")

    def draw(figure: Figure, axes: Axes) -> None:
        lo, hi = _equal_limits(axes, xs, ys)
        identity = axes.plot([lo, hi], [lo, hi], color=GREY, lw=1.0)
        identity[0].set_gid("identity")
        for label, (a, b) in pairs.items():
            axes.scatter(
                a,
                b,
                s=20,
                marker=LEVEL_MARKERS.get(label, "o"),
                color=LEVEL_COLOURS.get(label, BLUE),
                alpha=0.8,
                edgecolors="white",
                lw=0.4,
                label=f"{label} (n = {a.size})",
                zorder=3,
            )
        _agreement_frame(axes, xs, ys, x_label, y_label, title, handletextpad=0.2)

    return _render(draw)


# --- ROC ------------------------------------------------------------------------------------


def roc_svg(
    curve: Sequence[Mapping[str, Any]],
    *,
    auc: float | None,
    ci95: Sequence[float | None] | None,
    youden: Mapping[str, Any] | None = None,
    title: str,
    counts: tuple[int, int] | None = None,
) -> str:
    """The empirical ROC curve from :func:`studies.stats.diagnostics.roc_curve` points.

    Drawn as the staircase of operating points from (0, 0) to (1, 1) with the chance diagonal;
    the AUC with its DeLong 95 % CI in the legend; the Youden cut-off (``youden`` from
    :func:`studies.stats.diagnostics.youden`) marked with its sensitivity and specificity.
    ``counts`` = (positives, negatives) goes into the legend, under the AUC.
    """
    fpr, tpr = finite_pairs((p.get("fpr") for p in curve), (p.get("tpr") for p in curve))
    if fpr.size < 2:
        return not_enough_data_svg(title, "needs reference-positive and -negative cases")
    if fpr[-1] < 1.0 or tpr[-1] < 1.0:
        fpr, tpr = np.append(fpr, 1.0), np.append(tpr, 1.0)
    n_text = f"\n{counts[0]} positive, {counts[1]} negative" if counts is not None else ""

    def draw(figure: Figure, axes: Axes) -> None:
        chance = axes.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls=":", label="chance")
        chance[0].set_gid("chance")
        label = (f"AUC {_fmt(auc)}{_interval(ci95)}" if auc is not None else "ROC") + n_text
        line = axes.plot(fpr, tpr, color=BLUE, lw=1.6, label=label, drawstyle="default")
        line[0].set_gid("roc")
        if youden and youden.get("cutoff") is not None:
            sens, spec = youden.get("sensitivity"), youden.get("specificity")
            if sens is not None and spec is not None:
                marker = axes.plot(
                    [1.0 - float(spec)],
                    [float(sens)],
                    "o",
                    color=VERMILLION,
                    ms=6,
                    label=(
                        f"Youden cut-off {_fmt(youden['cutoff'])}: "
                        f"sens {_fmt(sens)}, spec {_fmt(spec)}"
                    ),
                    zorder=4,
                )
                marker[0].set_gid("youden")
        axes.set_xlim(-0.02, 1.02)
        axes.set_ylim(-0.02, 1.02)
        axes.set_aspect("equal", adjustable="box")
        axes.set_xlabel("1 − specificity (false-positive rate)")
        axes.set_ylabel("Sensitivity (true-positive rate)")
        axes.set_title(title)
        axes.legend(loc="lower right", handlelength=1.6, borderaxespad=0.3)

    return _render(draw)


# --- Bland–Altman by stratum ----------------------------------------------------------------

STRATUM_COLOURS: Final = (BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, "#000000", GREY)
MAX_STRATUM_POINTS: Final = 3000
"""Points drawn per plot at most (a seeded, even subsample): 1,000 cases × 45 reader pairs would
make a 5 MB SVG; the limits are computed from every point all the same."""


def strata_bland_altman_svg(
    groups: Mapping[str, tuple[Iterable[Any], Iterable[Any]]],
    *,
    title: str,
    with_limits: Collection[str] | None = None,
) -> str:
    """Bland–Altman points coloured by stratum, with each stratum's bias and limits.

    ``groups`` maps a stratum (``"1.5 T"``, ``"3 T"``) to its (means, differences) from
    :func:`studies.stats.strata.plot_groups`. Each stratum's bias (solid) and limits of
    agreement (dashed) are drawn in its colour over its own range of means, so a stratum whose
    readers agree less shows wider lines; only the strata in ``with_limits`` get lines (None:
    all; the page leaves out those with too few cases, as its table does). The legend gives
    each stratum's number of differences.
    """
    data = {name: finite_pairs(m, d) for name, (m, d) in groups.items()}
    data = {name: md for name, md in data.items() if md[0].size}
    total = sum(md[0].size for md in data.values())
    if total < 2:
        return not_enough_data_svg(title, f"n = {total} difference{'s' if total != 1 else ''}")
    keep = min(1.0, MAX_STRATUM_POINTS / total)
    rng = np.random.default_rng(0)

    def draw(figure: Figure, axes: Axes) -> None:
        for index, (name, (means, diffs)) in enumerate(data.items()):
            colour = STRATUM_COLOURS[index % len(STRATUM_COLOURS)]
            shown = rng.random(means.size) < keep if keep < 1.0 else np.ones(means.size, bool)
            points = axes.scatter(
                means[shown],
                diffs[shown],
                s=16,
                color=colour,
                alpha=0.7,
                edgecolors="white",
                lw=0.3,
                label=f"{name} ({diffs.size})",
                zorder=3,
            )
            points.set_gid(f"stratum-{index}")
            if diffs.size < 2 or (with_limits is not None and name not in with_limits):
                continue
            bias, sd = float(diffs.mean()), float(diffs.std(ddof=1))
            lo, hi = float(means.min()), float(means.max())
            for gid, value, style in (
                ("bias", bias, "-"),
                ("loa-lower", bias - 1.96 * sd, "--"),
                ("loa-upper", bias + 1.96 * sd, "--"),
            ):
                line = axes.plot([lo, hi], [value, value], color=colour, lw=1.1, ls=style)
                line[0].set_gid(f"stratum-{index}-{gid}")
        zero = axes.axhline(0.0, color="#999999", lw=0.7, ls=":")
        zero.set_gid("zero")
        axes.set_xlabel("Mean of the two readers' VBQ")
        axes.set_ylabel("Difference between the readers")
        axes.set_title(title)
        axes.legend(loc="best", handlelength=1.2, borderaxespad=0.3, title="group (points)")

    return _render(draw)
