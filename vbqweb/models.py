"""The site's one table of background work: the transactional outbox (:mod:`vbqweb.jobs`).

A :class:`Job` is written in the same transaction as the change that needs it, so work is never
lost between the database and the broker: if the broker is down when the change commits, the
row waits and the dispatcher sends it later. It lives in ``vbqweb`` because every room records
work the same way and none of them owns the others' jobs.
"""

from __future__ import annotations

from django.db import models


class Job(models.Model):
    """One piece of background work, coalesced by ``key``, from its request to its end.

    * ``key`` names what the work is about ("score reading 12 at ROI version 3", "the agreement
      of study 5", "the ingest of upload 7"): a burst of requests for the same thing is one row.
    * ``generation`` counts requests; a run remembers the one it started with
      (``run_generation``), so that a request made while it ran sends the work again.
    * ``token`` counts sends; a run holds the token it started with (its lease), so a run that
      was presumed lost, and the job sent again with a new token, can change nothing more; a
      duplicate delivery finds the job running or done and runs nothing.
    * ``due_at`` is when the dispatcher must look at the row again: when to send it (waiting),
      when a send not picked up is presumed lost (sent), or when a run without a heartbeat is
      presumed dead (running), each from the work's own ``deadline``.
    """

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting to be sent"
        SENT = "sent", "Sent, not yet picked up"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    key = models.CharField(max_length=200, unique=True)
    work = models.CharField(max_length=200, help_text="The task's registered name.")
    queue = models.CharField(max_length=50)
    kwargs = models.JSONField(default=dict)
    deadline = models.PositiveIntegerField(
        help_text="Seconds a send may wait to be picked up, or a run go without a heartbeat."
    )
    max_runs = models.PositiveSmallIntegerField(default=3)
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    generation = models.PositiveIntegerField(default=1)
    run_generation = models.PositiveIntegerField(default=0)
    token = models.PositiveIntegerField(default=0)
    not_before = models.DateTimeField(help_text="The debounce: never sent before this.")
    due_at = models.DateTimeField()
    requested_at = models.DateTimeField()
    waiting_since = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0, help_text="Times a send was attempted.")
    sends = models.PositiveIntegerField(
        default=0, help_text="Sends the broker accepted since the job was last picked up."
    )
    runs = models.PositiveSmallIntegerField(default=0, help_text="Times a worker started it.")
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="Who ran it last.")
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["state", "due_at"], name="job_state_due")]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"
