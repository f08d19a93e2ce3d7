"""Receivers for what the study side announces (``studies.signals``), connected in ``ready``."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from studies.signals import analysis_inputs_changed, measurement_settings_changed


@receiver(measurement_settings_changed, dispatch_uid="readers.rescore_on_settings_change")
def rescore_readings(*, study: Any, **kwargs: Any) -> None:
    """The study measures differently now: score every reading's current ROIs again."""
    from readers.services import study_request_rescore

    study_request_rescore(study=study)


@receiver(analysis_inputs_changed, dispatch_uid="readers.reanalyse_on_input_change")
def reanalyse(*, study: Any, **kwargs: Any) -> None:
    """Thresholds or the reference standard changed: the stored agreement is out of date."""
    from readers.analysis.services import analysis_request

    analysis_request(study=study)


@receiver(post_delete, sender="studies.Study", dispatch_uid="readers.erase_study_files")
def erase_study_files(*, instance: Any, using: str, **kwargs: Any) -> None:
    """A deleted study's built files (reports, SRs: its readings) go once the deletion commits."""
    from readers.analysis.artifacts import files_erase

    transaction.on_commit(partial(files_erase, study_pk=instance.pk), using=using)
