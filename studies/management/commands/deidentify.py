"""``manage.py deidentify SRC DST``: de-identify a DICOM file, folder or zip (spec sections 3, 4).

The same code path as the site's ingest: :func:`studies.uploads.pipeline.deidentified_sources`
(which the upload task and the demo's :func:`~studies.uploads.ingest.case_set_ingest_paths` use
too) reads the untrusted input safely with :mod:`studies.ingest.untrusted`, applies the profile of
:mod:`studies.ingest.deid_engine` and serialises each instance; this command only decides where
the bytes go.
Output files are named from the new UIDs only, ``DST/<study uid>/<series uid>/<sop uid>.dcm``;
no source name reaches DST.

Prints ``{"instances": n, "series": m, "rejected": [{"name": ..., "reason": ...}]}``: ``name``
is the source's path relative to SRC (or its zip member name), printed for the operator and
never written to DST.

**Quarantine.** An instance whose pixels may show burned-in text (declared, or a secondary or
screen capture) is still de-identified and written, but under ``DST/quarantine/<study>/<series>/
<sop>.dcm``, and listed under an extra ``"quarantined"`` key (only present when non-empty) with
its name and reason, mirroring the site, where such instances wait for an admin and are never
shown to readers. ``instances`` and ``series`` count every file written, quarantined included.
A second file with the same SOP Instance UID as one already written is rejected as a duplicate.

DST must be missing or an empty folder. Everything is written to a temporary folder beside DST
and moved into place at the end, so a failure (or a refused upload: zip bomb totals, too many
files, empty input) leaves no partial output. Bad input gives one line on stderr (Django prints
``CommandError: ...``) and exit status 1.

The HMAC secret is ``settings.VBQ_DEID_SECRET`` when set, else ``settings.SECRET_KEY``, passed
through a labelled key derivation (:meth:`studies.ingest.deid_engine.DeidConfig.from_text`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.ingest.deid_engine import DeidConfig
from studies.ingest.sources import IngestError
from studies.ingest.untrusted import quiet_pydicom
from studies.uploads.config import deid_config
from studies.uploads.pipeline import deidentified_sources
from vbqweb.commands import OneLineErrorsMixin, one_line

__all__ = ["Command", "deid_config"]


class Command(OneLineErrorsMixin, BaseCommand):
    help = "De-identify DICOM (a file, folder or zip) into DST with the site's profile (spec §4)."

    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("src", metavar="SRC", help="a DICOM file, a folder or a zip")
        parser.add_argument("dst", metavar="DST", help="an empty or new output folder")

    def handle(self, *args: Any, **options: Any) -> None:
        src = Path(options["src"]).expanduser().absolute()
        dst = Path(options["dst"]).expanduser().absolute()
        if not src.exists():
            raise CommandError(f"{src}: no such file or folder")
        if dst.exists() and not dst.is_dir():
            raise CommandError(f"{dst}: exists and is not a folder")
        if dst.is_dir() and any(dst.iterdir()):
            raise CommandError(f"{dst}: not empty (DST must be a new or empty folder)")
        real_src, real_dst = src.resolve(), dst.resolve()
        if real_src.is_dir() and (real_dst == real_src or real_src in real_dst.parents):
            raise CommandError(f"{dst}: inside SRC {src}; choose an output folder outside it")

        config = deid_config()
        dst.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
        try:
            # Library warnings or log lines on stderr would break the one-line contract.
            with quiet_pydicom():
                report = self._run(src, staging, config)
            self._publish(staging, dst)
        except IngestError as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise CommandError(one_line(f"{src}: {error}")) from None
        except CommandError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            raise CommandError(one_line(f"{src}: {type(error).__name__}: {error}")) from None
        self.stdout.write(json.dumps(report, ensure_ascii=False))

    @staticmethod
    def _run(src: Path, staging: Path, config: DeidConfig) -> dict[str, Any]:
        rejected: list[dict[str, str]] = []
        quarantined: list[dict[str, str]] = []
        written: set[str] = set()
        series: set[str] = set()
        for outcome in deidentified_sources([src], config=config):
            source, deid = outcome, outcome.deid
            if deid is None or outcome.data is None:
                rejected.append({"name": source.name, "reason": outcome.reason or "unreadable"})
                continue
            relative = deid.relative_path
            if deid.quarantine_reason is not None:
                relative = f"quarantine/{relative}"
            if deid.sop_uid in written:
                rejected.append(
                    {
                        "name": source.name,
                        "reason": "same SOP Instance UID as a file already written (duplicate)",
                    }
                )
                continue
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as handle:
                handle.write(outcome.data)
            written.add(deid.sop_uid)
            series.add(deid.series_uid)
            if deid.quarantine_reason is not None:
                quarantined.append(
                    {"name": source.name, "reason": deid.quarantine_reason, "path": relative}
                )
        report: dict[str, Any] = {
            "instances": len(written),
            "series": len(series),
            "rejected": sorted(rejected, key=lambda r: (r["name"], r["reason"])),
        }
        if quarantined:
            report["quarantined"] = sorted(quarantined, key=lambda r: r["name"])
        return report

    @staticmethod
    def _publish(staging: Path, dst: Path) -> None:
        """Move the finished output into place: rename, or fill the existing empty folder."""
        if not dst.exists():
            os.replace(staging, dst)
            return
        for entry in sorted(staging.iterdir()):
            os.replace(entry, dst / entry.name)
        staging.rmdir()
