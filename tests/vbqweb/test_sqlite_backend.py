"""SQLite's writers take turns (vbqweb.sqlite_backend): a waiting writer starts the moment the
holder commits, not on the next wake-up of SQLite's busy handler (up to 100 ms later).

Real threads and a real second process on the test database file; skipped on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import OperationalError, connection, connections, transaction

from vbqweb.faults import is_database_unavailable

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "vbqweb.sqlite_backend",
        reason="the SQLite backend's own test (this run uses another database)",
    ),
]

HOLD = 0.25


def _write(key: str) -> None:
    Group.objects.create(name=key)


def _holder(key: str, committed: list[float], started: threading.Event) -> None:
    try:
        with transaction.atomic():
            _write(key)
            started.set()
            time.sleep(HOLD)
        committed.append(time.monotonic())
    finally:
        connection.close()


def test_a_waiting_writer_of_this_process_starts_as_soon_as_the_holder_commits() -> None:
    committed: list[float] = []
    started = threading.Event()
    holder = threading.Thread(target=_holder, args=("holder", committed, started))
    holder.start()
    assert started.wait(5)
    with transaction.atomic():  # waits for the holder's turn to end
        began = time.monotonic()
        _write("waiter")
    holder.join()
    # SQLite's busy handler would retry 228 ms and then 328 ms into the wait: 78 ms late here.
    gap = began - committed[0]
    assert gap < 0.03, f"started {gap * 1000:.0f} ms after the holder's commit"
    assert set(Group.objects.values_list("name", flat=True)) == {"holder", "waiter"}


HOLDER_SCRIPT = """
import os, sys, time
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "vbqweb.settings"
django.setup()
from django.db import connection, transaction
from django.conf import settings
from django.contrib.auth.models import Group
settings.DATABASES["default"]["NAME"] = sys.argv[1]
connection.settings_dict["NAME"] = sys.argv[1]
with transaction.atomic():
    connection.cursor().execute("SELECT 1")
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
print(time.time(), flush=True)
"""


def _hold_in_another_process(seconds: float) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER_SCRIPT, connection.settings_dict["NAME"], str(seconds)],
        cwd=Path(settings.BASE_DIR),
        env={**os.environ, "PYTHONPATH": str(settings.BASE_DIR)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "holding"
    return process


def test_a_writer_of_another_process_is_waited_for_and_followed_closely() -> None:
    process = _hold_in_another_process(HOLD)
    with transaction.atomic():
        began = time.time()
        _write("after the other process")
    out, _ = process.communicate(timeout=30)
    committed = float(out.split()[-1])
    assert began >= committed - 0.005  # it did wait for the other process's turn
    assert began - committed < 0.03, f"{(began - committed) * 1000:.0f} ms after its commit"


def test_a_writer_that_waits_beyond_the_timeout_gets_a_retryable_error() -> None:
    process = _hold_in_another_process(2.0)
    connections["default"].close()
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = options.get("timeout")
    options["timeout"] = 0.3
    try:
        began = time.monotonic()
        with pytest.raises(OperationalError, match="locked") as caught, transaction.atomic():
            _write("too late")
        assert time.monotonic() - began < 1.5
        assert is_database_unavailable(caught.value)  # answered 503 + Retry-After, not 500
    finally:
        options["timeout"] = saved
        connection.close()
        process.communicate(timeout=30)
    _write("later")  # the turn is free again
    assert Group.objects.filter(name="later").exists()


def _turn_in_a_child(hold_after_fork) -> str:
    """Fork; the child tries to take a write turn on the connection it inherited once the
    parent has run ``hold_after_fork`` (which takes the turn, or does nothing); what it got."""
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = options.get("timeout")
    options["timeout"] = 0.3
    go_read, go_write = os.pipe()
    out_read, out_write = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # the child: never back into pytest, whatever happens
            try:
                os.read(go_read, 1)
                try:
                    connection._take_write_turn()
                    outcome = "took the turn"
                except OperationalError as error:
                    outcome = str(error)
                os.write(out_write, outcome.encode())
            finally:
                os._exit(0)
        os.close(out_write)
        with hold_after_fork():
            os.write(go_write, b"x")
            with os.fdopen(out_read) as pipe:
                outcome = pipe.read()
        os.waitpid(pid, 0)
        return outcome
    finally:
        options["timeout"] = saved
        os.close(go_read)
        os.close(go_write)


def test_a_forked_process_opens_its_own_lock_file() -> None:
    """Celery's prefork pool forks the worker after Django has connected: a child that used
    the lock file opened by its parent would share the parent's flock (a flock belongs to the
    open file, not the process) and write "in turn" while the parent does."""
    _write("before the fork")  # the connection has its lock file open now
    outcome = _turn_in_a_child(transaction.atomic)  # the parent holds the turn: the child waits
    connection.close()
    assert outcome == "database is locked"


def test_a_forked_process_starts_with_free_process_locks() -> None:
    """A thread of the parent holding the turn at the fork holds the process's lock: the child
    inherits it held, and nobody in the child would ever release it. The child waits for the
    file lock instead, as any other process does."""
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                _write("holder")
                started.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert started.wait(5)
    try:
        outcome = _turn_in_a_child(contextlib.nullcontext)
    finally:
        release.set()
        holder.join()
    connection.close()
    assert outcome == "database is locked"  # not "... (waited for this process's writers)"
