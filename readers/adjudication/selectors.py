"""Reads for adjudication and review: which cases need an adjudicator, the readers' letters,
the outliers of the manager's case table, and the viewer's payload of several readings.

Everything is computed from the current results (submitted readings of the study's readers,
the result of each one's current ROI version) and the stored agreement analysis, so nothing is
lost when a worker dies: a case appears on the worklist as soon as its last reading is scored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Prefetch

from readers.models import Consensus, Reading, StudyAnalysis, VbqResult
from studies.models import Case, Role, Study

PALETTE = ["#f97316", "#22d3ee", "#a3e635", "#f472b6", "#facc15", "#818cf8", "#34d399", "#fb7185"]
"""One colour per reading in the review viewer: bright on a grey MR image, and told apart."""


@dataclass
class CaseReadings:
    """One case in one session with the submitted, scored readings of the study's readers."""

    case: Case
    session: int
    readings: list[Reading]  # in letter order
    vbq: dict[int, float]  # reading pk → its current VBQ
    labels: dict[int, str]  # reading pk → "Reader A"
    reasons: list[str] = field(default_factory=list)  # why it needs adjudication
    consensus: Consensus | None = None

    @property
    def vbq_range(self) -> float:
        values = list(self.vbq.values())
        return max(values) - min(values) if values else 0.0

    def reading_by_label(self, label: str) -> Reading | None:
        return next((r for r in self.readings if self.labels[r.pk] == label), None)


def reader_letters(case: Case, user_pks: list[int]) -> dict[int, str]:
    """User pk → "Reader A", "Reader B", … for this case: stable (a keyed hash of the case and
    the user), different from case to case, so that a letter names no one across cases."""
    key = settings.SECRET_KEY.encode()

    def rank(pk: int) -> str:
        return hmac.new(key, f"adjudication:{case.pk}:{pk}".encode(), hashlib.sha256).hexdigest()

    ordered = sorted(user_pks, key=rank)
    return {pk: f"Reader {_letters(i)}" for i, pk in enumerate(ordered)}


def _letters(i: int) -> str:
    """0 → A, 25 → Z, 26 → AA …"""
    text = ""
    i += 1
    while i:
        i, rest = divmod(i - 1, 26)
        text = chr(65 + rest) + text
    return text


def inter_reader_sdc(study: Study) -> dict[int, float]:
    """Session → the inter-reader SDC of agreement of the stored analysis (spec §6:
    1.96·√2·SEM_agreement, the half-width of the readers' 95 % limits of agreement); empty
    while no analysis is stored."""
    analysis = (
        StudyAnalysis.objects.filter(study=study).values_list("analysis", flat=True).first() or {}
    )
    blocks = list(analysis.get("inter_reader_by_session") or [])
    if not blocks and analysis.get("inter_reader"):
        blocks = [analysis["inter_reader"]]
    limits: dict[int, float] = {}
    for block in blocks:
        value = (block.get("sdc") or {}).get("agreement")
        if isinstance(value, int | float) and value == value and block.get("session"):
            limits[int(block["session"])] = float(value)
    return limits


_LEAN_RESULTS = Prefetch("results", queryset=VbqResult.objects.defer("detail", "method"))
"""Results without their measurement detail: the worklist and the outliers need the VBQ only,
and they load every scored reading of the study."""


def _scored_groups(study: Study) -> dict[tuple[int, int], list[Reading]]:
    """(case pk, session) → the submitted readings of the study's current readers with a
    current computed VBQ (an adjudicator's own measurement is not one of them)."""
    readers = study.assignments.filter(role=Role.READER).values("user_id")
    readings = (
        Reading.objects.filter(
            case__study=study,
            status=Reading.Status.SUBMITTED,
            reader__in=readers,
            adjudication_consensus__isnull=True,
        )
        .select_related("case")
        .prefetch_related(_LEAN_RESULTS)
    )
    groups: dict[tuple[int, int], list[Reading]] = defaultdict(list)
    for reading in readings:
        result = reading.current_result()
        if result is not None and result.vbq is not None:
            reading.current_vbq = result.vbq  # type: ignore[attr-defined]
            groups[(reading.case_id, reading.session)].append(reading)
    return groups


def _case_readings(case: Case, session: int, readings: list[Reading]) -> CaseReadings:
    letters = reader_letters(case, [r.reader_id for r in readings])
    readings = sorted(readings, key=lambda r: letters[r.reader_id])
    return CaseReadings(
        case=case,
        session=session,
        readings=readings,
        vbq={r.pk: r.current_vbq for r in readings},  # type: ignore[attr-defined]
        labels={r.pk: letters[r.reader_id] for r in readings},
    )


def disagreement(study: Study, item: CaseReadings, sdc: dict[int, float]) -> list[str]:
    """Why the readers of this case disagree under the study's rule (empty: they agree)."""
    reasons = []
    values = list(item.vbq.values())
    threshold = study.adjudication_threshold
    if threshold is not None and len({v >= threshold.value for v in values}) > 1:
        reasons.append(f"categories differ at {threshold.name} (VBQ ≥ {threshold.value:g})")
    limit = sdc.get(item.session)
    if study.adjudication_use_sdc and limit is not None and item.vbq_range > limit:
        reasons.append(f"VBQ range {item.vbq_range:.3f} exceeds the SDC {limit:.3f}")
    return reasons


def adjudication_cases(study: Study) -> list[CaseReadings]:
    """The adjudicator's worklist: every case whose every reader of a session has submitted a
    scored reading and whose readers disagree, plus every case already decided; by case label
    and session. Empty while the study's adjudication is off."""
    if not study.adjudication:
        return []
    n_readers = study.assignments.filter(role=Role.READER).count()
    sdc = inter_reader_sdc(study)
    decided = {(c.case_id, c.session): c for c in Consensus.objects.filter(case__study=study)}
    items = []
    for (case_pk, session), readings in _scored_groups(study).items():
        if n_readers < 2 or len(readings) < n_readers:
            continue
        item = _case_readings(readings[0].case, session, readings)
        item.reasons = disagreement(study, item, sdc)
        item.consensus = decided.get((case_pk, session))
        if item.reasons or item.consensus is not None:
            items.append(item)
    items.sort(key=lambda i: (i.case.label, i.session))
    return items


def adjudication_case(study: Study, case: Case, session: int) -> CaseReadings | None:
    """One case of the worklist, or None when it is not on it."""
    return next(
        (i for i in adjudication_cases(study) if i.case.pk == case.pk and i.session == session),
        None,
    )


def study_consensus(study: Study) -> dict[tuple[int, int], Consensus]:
    """(case pk, session) → the stored consensus, for the manager's case table."""
    return {
        (c.case_id, c.session): c
        for c in Consensus.objects.filter(case__study=study)
        .select_related("decided_by", "measured_reading")
        .prefetch_related("measured_reading__results")
    }


def study_outliers(study: Study) -> dict[int, str]:
    """Reading pk → why it is flagged: its VBQ differs from the mean of the case's other
    readings of the same session by more than the inter-reader limits of agreement (±SDC of
    agreement of the stored analysis). Nothing is flagged before an analysis is stored."""
    sdc = inter_reader_sdc(study)
    flags: dict[int, str] = {}
    for (_, session), readings in _scored_groups(study).items():
        limit = sdc.get(session)
        if limit is None or len(readings) < 2:
            continue
        for reading in readings:
            others = [r.current_vbq for r in readings if r.pk != reading.pk]  # type: ignore[attr-defined]
            difference = reading.current_vbq - sum(others) / len(others)  # type: ignore[attr-defined]
            if abs(difference) > limit:
                flags[reading.pk] = (
                    f"differs from the other readings' mean by {difference:+.3f} "
                    f"(limits of agreement ±{limit:.3f})"
                )
    return flags


def review_readings(
    item: CaseReadings, *, focus: int | None = None, names: bool = False
) -> list[dict[str, Any]]:
    """The viewer's readings: label, colour, VBQ and ROI set of each. ``names`` adds the
    reader's username (managers only); the adjudicator's payload carries no name or id."""
    rows = []
    for i, reading in enumerate(item.readings):
        row: dict[str, Any] = {
            "label": reading.reader.get_username() if names else item.labels[reading.pk],
            "color": PALETTE[i % len(PALETTE)],
            "vbq": item.vbq.get(reading.pk),
            "rois": reading.rois,
            "focus": reading.pk == focus,
        }
        rows.append(row)
    return rows


def case_readings_for_review(reading: Reading) -> CaseReadings:
    """The readings of the reviewed reading's case and session by the study's readers (the
    reviewed one included even when it is a draft or not yet scored), for the manager."""
    study = reading.case.study
    readers = study.assignments.filter(role=Role.READER).values("user_id")
    readings = list(
        Reading.objects.filter(case=reading.case, session=reading.session)
        .filter(adjudication_consensus__isnull=True)
        .exclude(rois__isnull=True)
        .filter(reader__in=readers)
        .select_related("reader", "case")
        .prefetch_related("results")
    )
    if reading.pk not in {r.pk for r in readings}:
        readings.append(reading)
    for r in readings:
        result = r.current_result()
        r.current_vbq = result.vbq if result is not None else None  # type: ignore[attr-defined]
    readings.sort(key=lambda r: r.reader.get_username())
    return CaseReadings(
        case=reading.case,
        session=reading.session,
        readings=readings,
        vbq={r.pk: r.current_vbq for r in readings},  # type: ignore[attr-defined]
        labels={r.pk: r.reader.get_username() for r in readings},
    )


def review_context(study: Study) -> dict[str, object]:
    """What the manager's case table adds (issue 13 item 7, issue 14): each flagged reading's
    reason, each case's consensus per session, and whether adjudication is on."""
    by_case: dict[int, list[Consensus]] = defaultdict(list)
    for (case_pk, _), consensus in sorted(study_consensus(study).items()):
        by_case[case_pk].append(consensus)
    return {
        "outliers": study_outliers(study),
        "consensus_by_case": dict(by_case),
        "adjudication_on": study.adjudication,
        "outlier_limits": inter_reader_sdc(study),
    }
