"""What the site and the demo leave on the host is its user's only (issue 12, "Host").

``var/`` holds the SQLite database (password hashes, sessions), the images and the Redis
password. Stored files are 0600 in 0700 folders whatever the umask (settings); the demo runs
under ``umask 077`` and starts Redis with a password kept in a 0600 file, never on a command
line (scripts/services.sh, run here as the demo runs it).
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest
import redis
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

BASE_DIR = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_stored_by_the_site_are_private_whatever_the_umask(tmp_path) -> None:
    previous = os.umask(0o022)  # a permissive umask, as a service manager may give
    try:
        storage = FileSystemStorage(location=tmp_path / "media")
        name = storage.save("studies/1/series/instance.dcm", ContentFile(b"DICM"))
    finally:
        os.umask(previous)
    assert mode(tmp_path / "media" / name) == 0o600
    assert mode(tmp_path / "media" / "studies" / "1" / "series") == 0o700
    assert mode(tmp_path / "media" / "studies") == 0o700


def test_the_demo_makes_var_private_before_writing_to_it() -> None:
    demo = (BASE_DIR / "scripts" / "demo").read_text()
    assert "umask 077" in demo
    first_write = min(
        demo.index(marker) for marker in ('mkdir -p "$VBQ_VAR_DIR"', "manage.py migrate")
    )
    assert demo.index("umask 077") < first_write
    assert 'chmod -R go-rwx "$VBQ_VAR_DIR"' in demo


@pytest.mark.integration
def test_the_demo_s_redis_has_a_password_kept_private(tmp_path) -> None:
    """The demo's own steps: umask 077, var/, the password made once, Redis started with it."""
    var = tmp_path / "var"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = f"""
        source scripts/services.sh
        umask 077
        mkdir -p '{var}'
        password=$(secret_file '{var}/redis-password')
        again=$(secret_file '{var}/redis-password')
        [[ $password == "$again" ]] || exit 3
        redis_start {port} '{var}/redis' "$password"
        echo "$password"
    """
    done = subprocess.run(
        ["bash", "-c", script], cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    password = done.stdout.strip().splitlines()[-1]
    try:
        assert len(password) >= 32
        assert mode(var) == 0o700
        assert mode(var / "redis-password") == 0o600
        assert mode(var / "redis") == 0o700
        for name in ("redis.conf", "redis.log", "redis.pid"):
            assert mode(var / "redis" / name) == 0o600, name
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        assert redis.Redis.from_url(f"redis://:{password}@127.0.0.1:{port}/0").ping()
        # Not on the command line, where `ps` shows it to every user of the machine.
        pid = (var / "redis" / "redis.pid").read_text().strip()
        assert password not in Path(f"/proc/{pid}/cmdline").read_text()
    finally:
        redis.Redis(port=port, password=password).shutdown(nosave=True)
