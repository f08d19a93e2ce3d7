"""Signals the study side sends so that the readers side can react without a reverse import.

``studies`` must not import ``readers`` (the import-linter contract), yet some study changes
invalidate what the readers side computed. These signals are the seam: ``readers`` connects
receivers (in its ``AppConfig.ready``); ``studies`` only sends.

They are sent inside the transaction that made the change, so a receiver's own writes commit
or roll back with it; a receiver that enqueues work should do so with ``delay_on_commit``.
"""

from __future__ import annotations

from django.dispatch import Signal

measurement_settings_changed = Signal()
"""A study's ROI statistic, level aggregate or minimum levels changed: rescore its readings.

Sent with ``sender=Study``, ``study`` (the saved study) and ``changed`` (a frozenset of the
changed field names).
"""

analysis_inputs_changed = Signal()
"""A study's thresholds or reference standard changed: its stored analysis is out of date.

Sent with ``sender=Study``, ``study`` and ``what`` (``"thresholds"`` or ``"reference_standard"``).
"""
