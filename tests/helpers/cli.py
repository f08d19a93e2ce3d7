"""Running ``manage.py`` for real, for the tests of spec §3's command-line contract.

Most command tests use ``call_command``, which is faster; a few run the real command line in a
subprocess because only that shows the exit status and what reaches stdout and stderr (spec §3:
an error is one line on stderr, a non-zero exit status and nothing on stdout).
"""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.paths import REPO

VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


def run_manage(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python manage.py ARGS...`` from the repository root; never raises on a bad exit."""
    return subprocess.run(
        [PYTHON, str(REPO / "manage.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int | None = None) -> str:
    """Check spec §3's error contract and return the stderr line.

    The exit status is ``code`` (any non-zero status when None: Django gives 1 for a
    ``CommandError``, argparse 2 for unparsable arguments), stdout is empty, and stderr is
    exactly one line with no traceback.
    """
    if code is None:
        assert result.returncode != 0, result.stderr
    else:
        assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
