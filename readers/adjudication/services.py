"""Writes of adjudication: the consensus of a case, accepted or measured anew.

The decision is the one stored thing (``readers.models.Consensus``), audited, and it asks for
a recomputation of the study's analysis (the reference-standard analysis uses the consensus).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from readers.adjudication.selectors import CaseReadings
from readers.analysis.services import analysis_request
from readers.models import Consensus, Reading
from vbqweb.audit.actions import Action
from vbqweb.audit.services import record


def consensus_accept(*, adjudicator: AbstractBaseUser, item: CaseReadings, label: str) -> Consensus:
    """Make the reading shown as ``label`` ("Reader B") the case's consensus.

    The VBQ is that reading's current score, stored with the decision: the provenance says
    which reading and which score the adjudicator saw. A measurement the adjudicator had begun
    stays linked (and out of the inter-reader statistics)."""
    reading = item.reading_by_label(label)
    if reading is None:
        raise ValidationError(f"No reading {label} in this case.")
    with transaction.atomic():
        consensus, _ = Consensus.objects.update_or_create(
            case=item.case,
            session=item.session,
            defaults={
                "source": Consensus.Source.ACCEPTED,
                "accepted_reading": reading,
                "accepted_label": label,
                "vbq": item.vbq[reading.pk],
                "roi_version": reading.roi_version,
                "decided_by": adjudicator,
                "decided_at": timezone.now(),
            },
        )
        record(
            Action.CONSENSUS_RECORDED,
            actor=adjudicator,
            obj=consensus,
            detail={"source": "accepted", "label": label, "reading": reading.pk},
        )
        analysis_request(study=item.case.study)
    return consensus


def consensus_measure(*, adjudicator: AbstractBaseUser, item: CaseReadings) -> Reading:
    """Start (or resume) the adjudicator's own measurement of the case: a Reading owned by
    the adjudicator, scored by the normal pipeline once saved; its submitted score is the
    consensus. It is linked to the consensus in the same transaction, so it never counts as
    one more reader in the agreement analysis."""
    with transaction.atomic():
        existing = (
            Consensus.objects.select_for_update()
            .filter(case=item.case, session=item.session)
            .first()
        )
        if existing is not None and existing.measured_reading is not None:
            reading = existing.measured_reading
        else:
            reading, _ = Reading.objects.get_or_create(
                reader=adjudicator, case=item.case, session=item.session
            )
        consensus, _ = Consensus.objects.update_or_create(
            case=item.case,
            session=item.session,
            defaults={
                "source": Consensus.Source.MEASURED,
                "accepted_reading": None,
                "accepted_label": "",
                "measured_reading": reading,
                "vbq": None,
                "roi_version": None,
                "decided_by": adjudicator,
                "decided_at": timezone.now(),
            },
        )
        record(
            Action.CONSENSUS_RECORDED,
            actor=adjudicator,
            obj=consensus,
            detail={"source": "measured", "reading": reading.pk},
        )
        analysis_request(study=item.case.study)
    return reading
