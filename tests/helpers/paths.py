"""Where things are: the repository, and the shared real DICOM beside it (absent in some clones:
tests that need it skip with a message that says so)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO / ".." / "shared" / "data"
