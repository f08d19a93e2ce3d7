"""DICOM network peers for the receiver's tests: our ``manage.py dicom_receiver`` in its own
process, and Debian's Orthanc as a sending PACS (a temporary configuration, loopback only).

Both are real processes talking DICOM over TCP; nothing is mocked. Orthanc is configured with
our receiver as a modality and driven through its REST API, as a PACS operator would.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.helpers.workers import wait_until

BASE_DIR = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class ReceiverProcess:
    """``manage.py dicom_receiver`` on a free loopback port, with the test's database,
    staging folder and Redis (``env``: the Celery processes' environment)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = {**env, "VBQ_UPLOAD_ROOT": str(settings.VBQ_UPLOAD_ROOT)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> ReceiverProcess:
        argv = [sys.executable, "manage.py", "dicom_receiver", "--port", str(self.port)]
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=BASE_DIR,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(
            lambda: _listening(self.port) or self.proc.poll() is not None,  # type: ignore[union-attr]
            timeout=90,
            what=f"dicom_receiver listening (log: {self.log_path})",
        )
        assert self.proc.poll() is None, self.log()
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


class Orthanc:
    """Debian's Orthanc with a temporary configuration: its own storage, HTTP and DICOM ports
    on loopback, no plugins, and one modality: ``vbq``, our receiver under ``called_aet``."""

    def __init__(self, folder: Path, *, called_aet: str, receiver_port: int) -> None:
        exe = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
        if not Path(exe).exists():
            pytest.fail("Orthanc is not installed: run scripts/setup")
        self.exe = exe
        self.folder = folder
        self.http_port = free_port()
        self.config = folder / "orthanc.json"
        self.config.write_text(
            json.dumps(
                {
                    "Name": "VBQ test PACS",
                    "StorageDirectory": str(folder / "db"),
                    "IndexDirectory": str(folder / "db"),
                    "HttpPort": self.http_port,
                    "DicomPort": free_port(),
                    "DicomAet": "TESTPACS",
                    "RemoteAccessAllowed": False,
                    "AuthenticationEnabled": False,
                    "Plugins": [],
                    "DicomModalities": {"vbq": [called_aet, "127.0.0.1", receiver_port]},
                }
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def request(self, method: str, path: str, body: bytes | None = None) -> object:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read() or b"null")

    def _up(self) -> bool:
        try:
            return bool(self.request("GET", "/system"))
        except OSError:
            return False

    def start(self) -> Orthanc:
        with open(self.folder / "orthanc.log", "ab") as out:
            self.proc = subprocess.Popen(
                [self.exe, str(self.config)], cwd=self.folder, stdout=out, stderr=subprocess.STDOUT
            )
        wait_until(self._up, timeout=60, what="Orthanc answering /system")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@contextlib.contextmanager
def orthanc(folder: Path, *, called_aet: str, receiver_port: int) -> Iterator[Orthanc]:
    server = Orthanc(folder, called_aet=called_aet, receiver_port=receiver_port).start()
    try:
        yield server
    finally:
        server.stop()
