"""``manage.py dispatch_uploads [--every SECONDS]``: the former name of ``manage.py dispatch``.

Kept so that existing cron lines keep working: the upload outbox is now the site's outbox, and
its dispatcher sends every kind of background work (``vbqweb/management/commands/dispatch.py``).
"""

from __future__ import annotations

from vbqweb.management.commands.dispatch import Command as DispatchCommand


class Command(DispatchCommand):
    help = "The former name of `manage.py dispatch` (the outbox's dispatcher)."
