"""A real Redis server, real Celery workers and a real Celery beat for integration tests.

No eager mode and no mocks: a worker is ``celery -A vbqweb worker`` in its own process (and its
own process group, so that a test can kill it with its pool, as a machine or container dies),
talking to a ``redis-server`` started here on a free loopback port, and reading the same test
database and media root as the test process. The Redis server can be stopped and started again
on the same port (with no persistence: what it held is lost, as after a crash), and any worker
can be stopped, started again or killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from vbqweb.celery import app as celery_app
from vbqweb.tasks import QUEUES

BASE_DIR = Path(settings.BASE_DIR)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, what: str, every: float = 0.2
) -> Any:
    """Poll ``predicate`` until it returns something true (returned); fail after ``timeout`` s.

    The tests wait on conditions with generous deadlines and never assert after a fixed sleep,
    so that a loaded 2-core machine is slower, not flaky.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout} s")
        time.sleep(every)


class RedisServer:
    """``redis-server`` on a fixed loopback port, without persistence; stop and start at will."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed: run scripts/setup")
        self.exe = exe
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        argv = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            argv, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(self.ping, timeout=20, what="redis-server answering PING", every=0.05)

    def stop(self) -> None:
        """Stop the server and wait until the port refuses connections."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None
        wait_until(lambda: not self.ping(), timeout=20, what="redis-server stopped", every=0.05)


def _database_url(db: dict) -> str:
    if db["ENGINE"] in ("django.db.backends.sqlite3", "vbqweb.sqlite_backend"):
        return f"sqlite:///{db['NAME']}"
    user, password = db.get("USER") or "", db.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class CeleryProcess:
    """One ``celery -A vbqweb worker`` or ``beat`` process, started in a process group of its own.

    ``log_path`` collects its output across restarts (appended). ``poll()`` is the process's, as
    for a ``Popen``.
    """

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, name: str) -> None:
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll() if self.proc is not None else -1

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, *, ready: Callable[[], bool] | None = None) -> CeleryProcess:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "vbqweb", *self.argv],
                cwd=BASE_DIR,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if ready is not None:
            wait_until(ready, timeout=90, what=f"{self.name} ready (log: {self.log_path})")
        return self

    def stop(self) -> None:
        """A warm shutdown (SIGTERM: the running task finishes), then SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap_group()

    def kill(self) -> None:
        """SIGKILL to the whole process group: the worker and its pool die at once, mid-task."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reap_group()

    def _reap_group(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # pool children left behind, if any


class CeleryWorker(CeleryProcess):
    """A worker consuming ``queues`` under ``hostname``; ready once it answers a control ping."""

    def __init__(
        self, env: dict[str, str], log_path: Path, hostname: str, queues: list[str] | None
    ) -> None:
        argv = ["worker", "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO"]
        argv += ["--hostname", hostname, "--without-gossip", "--without-mingle"]
        argv += ["--without-heartbeat"]
        if queues:
            argv += ["--queues", ",".join(queues)]
        super().__init__(argv, env, log_path, hostname)
        self.hostname = hostname

    def ping(self) -> bool:
        try:
            return bool(celery_app.control.ping(destination=[self.hostname], timeout=0.5))
        except Exception:  # the broker is down at this moment
            return False

    def start(self, *, ready: Callable[[], bool] | None = None) -> CeleryWorker:
        super().start(ready=ready or self.ping)
        return self


class Processes:
    """What a test needs to start more workers like the session's one."""

    def __init__(self, env: dict[str, str], folder: Path, queues: list[str] | None) -> None:
        self.env = env
        self.folder = folder
        self.queues = queues

    def worker(self, name: str, **extra_env: str) -> CeleryWorker:
        env = {**self.env, **extra_env}
        hostname = f"{name}-{os.getpid()}@localhost"
        return CeleryWorker(env, self.folder / f"{name}.log", hostname, self.queues)

    def beat(self) -> CeleryProcess:
        schedule = self.folder / "celerybeat-schedule"
        argv = ["beat", "--loglevel", "INFO", "--schedule", str(schedule)]
        return CeleryProcess(argv, self.env, self.folder / "beat.log", "celery beat")


def beat_started(beat: CeleryProcess) -> bool:
    return "Sending due task dispatch-jobs" in beat.log()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture(scope="session")
def celery_processes(
    redis_url: str, django_db_setup, django_db_blocker, media_root: Path, tmp_path_factory
) -> Processes:
    """The environment of the test's Celery processes: the test database, Redis, media root."""
    from django.db import connection

    with django_db_blocker.unblock():
        database_url = _database_url(connection.settings_dict)
    celery_app.conf.broker_url = redis_url
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vbqweb.settings",
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "VBQ_MEDIA_ROOT": str(media_root),
        # Short periods for tests: the dispatcher every second, the agreement 1 s after the
        # last submission (the worker requests it when it scores a submitted reading).
        "VBQ_DISPATCH_EVERY": "1",
        "VBQ_ANALYSIS_DELAY": "1",
    }
    return Processes(env, tmp_path_factory.mktemp("celery"), list(QUEUES))


@pytest.fixture(scope="package")
def celery_worker(celery_processes: Processes) -> Iterator[CeleryWorker]:
    """The package's worker: every queue, the test database; the test process publishes to it.

    Package-scoped (the packages whose conftest imports it: tests/integration, tests/browser),
    so that it and beat's dispatcher are gone before the next package runs: a worker left
    running would score the work that a later unit test leaves waiting in the outbox on
    purpose (the test database is one file). Tests that stop or kill it start it again before
    they end (:class:`CeleryWorker`)."""
    worker = celery_processes.worker("pytest").start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="package")
def celery_beat(
    celery_processes: Processes, celery_worker: CeleryWorker
) -> Iterator[CeleryProcess]:
    """Celery beat in its own process (the one scheduler): it sends the outbox's dispatcher
    every second here, which a worker runs."""
    beat = celery_processes.beat()
    beat.start(ready=lambda: beat_started(beat))
    try:
        yield beat
    finally:
        beat.stop()
