"""``manage.py audit_verify``: re-compute the audit trail's hash chain.

Exit status 0 and one line (``audit chain intact: N events, head #S <hash>``) when every
event's sequence, ``prev_hash`` and ``hash`` hold; otherwise one line on stderr naming the
first broken event and why, and exit status 1. Note the head: a deleted *last* event leaves a
chain that holds, which only a head recorded earlier reveals (``--head S:HASH`` checks that
the event S still has that hash; ``docs/audit.md``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vbqweb.audit.chain import FIELDS, chain_break
from vbqweb.audit.models import AuditEvent
from vbqweb.commands import OneLineErrorsMixin, one_line


class Command(OneLineErrorsMixin, BaseCommand):
    help = "Check the audit trail's hash chain; name the first broken event."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--head",
            default="",
            help="SEQUENCE:HASH noted earlier (an earlier run's output): it must still be there",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = AuditEvent.objects.order_by("sequence").values(*FIELDS, "hash")
        count, last = 0, None

        def counted() -> Any:
            nonlocal count, last
            for row in rows.iterator(chunk_size=2000):
                count, last = count + 1, row
                yield row

        broken = chain_break(counted())
        if broken is not None:
            sequence, reason = broken
            raise CommandError(one_line(f"audit chain broken at event #{sequence}: {reason}"))
        if options["head"]:
            self._check_head(options["head"])
        head = f"head #{last['sequence']} {last['hash']}" if last else "empty"
        self.stdout.write(f"audit chain intact: {count} events, {head}")

    def _check_head(self, head: str) -> None:
        sequence, _, digest = head.partition(":")
        if not sequence.isdigit() or not digest:
            raise CommandError("--head takes SEQUENCE:HASH")
        found = AuditEvent.objects.filter(sequence=int(sequence)).values_list("hash", flat=True)
        if list(found) != [digest]:
            raise CommandError(
                one_line(
                    f"audit chain broken at event #{sequence}: not the head noted earlier "
                    "(events were removed from the end)"
                )
            )
