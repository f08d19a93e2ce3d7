"""``manage.py dicom_receiver [--bind ADDRESS] [--port PORT]``: receive cases from a PACS.

Runs the C-STORE/C-ECHO receiver of :mod:`studies.receiver.scp` until SIGTERM or Ctrl-C, like
a worker (``scripts/demo`` starts it; compose runs it as the ``receiver`` service). Each study is
reached under its own called AE title (shown to its managers on the study page); what a PACS
sends becomes an upload, ingested by the worker (:mod:`studies.receiver.reception`).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.receiver.reception import open_reception
from studies.receiver.scp import RECEIVER_AE_TITLE, receiver_ae
from vbqweb.commands import OneLineErrorsMixin, one_line


class Command(OneLineErrorsMixin, BaseCommand):
    help = "Receive DICOM instances from a PACS (C-STORE), one called AE title per study."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=settings.VBQ_DICOM_BIND, help="address to listen on")
        parser.add_argument("--port", type=int, default=settings.VBQ_DICOM_PORT)

    def handle(self, *args: Any, **options: Any) -> None:
        ae, handlers = receiver_ae(open_reception)
        try:
            server = ae.start_server(
                (options["bind"], options["port"]), block=False, evt_handlers=handlers
            )
        except OSError as error:
            raise CommandError(
                one_line(f"cannot listen on {options['bind']}:{options['port']}: {error}")
            ) from error
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(
            f"DICOM receiver {RECEIVER_AE_TITLE} listening on {options['bind']}:"
            f"{options['port']} (one called AE title per study)",
        )
        self.stdout.flush()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            server.shutdown()
