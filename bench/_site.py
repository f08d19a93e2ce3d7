"""A throw-away Django site for the in-process benchmarks (``analysis_cost.py``, ``stats.py``):
its own ``var/`` folder (SQLite database, media) under a temporary directory, DEBUG off, so a
benchmark never touches the developer's database. The caller removes the folder when done."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def throwaway_site(prefix: str, **environ: str) -> Path:
    """Set Django up on a new temporary ``var/`` (``environ`` adds settings); the folder."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="vbqweb.settings",
        DJANGO_DEBUG="0",
        VBQ_VAR_DIR=str(work / "var"),
        VBQ_LOG_LEVEL="WARNING",
        **environ,
    )
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    os.chdir(ROOT)
    import django

    django.setup()
    return work
