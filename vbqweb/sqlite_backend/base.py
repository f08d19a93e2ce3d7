"""Django's SQLite backend, with writers queued for the write lock instead of sleeping on it.

Why: SQLite has one writer at a time. A second writer's ``BEGIN IMMEDIATE`` fails with "busy"
and SQLite's busy handler sleeps and retries (1, 2, 5, 10 … up to 100 ms between tries), so a
writer waits up to 100 ms after the lock came free, and under load (the fast-pace benchmark:
16 web threads and the scoring worker saving and scoring) the waits pile up into seconds
(``bench/RESULTS.md``). Here a transaction first takes a lock of its own process
(``threading.Lock``: a waiting thread is woken the moment the holder lets go) and then a lock
shared by every process on the database file (``flock`` on ``<database>.write-lock``, asked
again every 2 ms while another process holds it), and only then ``BEGIN IMMEDIATE``; both are
let go at commit, rollback or close. A write outside a transaction (Django's autocommit
``UPDATE`` of ``QuerySet.update()``, a simple ``save()``, a session) takes its turn the same
way around its one statement: otherwise it would be left to the busy handler's sleeps and
starve behind the queue (the scoring worker's claims did). Nothing changes for readers (WAL:
they never wait) or for the data: SQLite's own lock still guards every write, this only
orders the writers.
A writer that waits longer than the database's ``timeout`` gets SQLite's own error ("database
is locked"), as before. A forked process (Celery's prefork pool) opens the lock file again and
starts with fresh process locks: what it inherited belongs to its parent.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from django.db import OperationalError
from django.db.backends.sqlite3 import base

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()
_PROCESS_POLL = 0.002


def _process_lock(path: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(path, threading.Lock())


def _forget_parents_locks() -> None:
    """A forked child (Celery's prefork pool) starts with locks of its own: the parent's
    ``threading.Lock`` may have been held by one of its threads at the fork, and would then
    never be released in the child."""
    global _process_locks_guard
    _process_locks.clear()
    _process_locks_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_parents_locks)


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")


class _QueuedCursor(base.SQLiteCursorWrapper):
    """Takes a writer's turn around a write statement run outside a transaction."""

    turns: DatabaseWrapper | None = None

    def execute(self, query: str, params: Any = None) -> Any:
        if self.turns is None or self.connection.in_transaction or not _is_write(query):
            return super().execute(query, params)
        with self.turns.single_statement_turn():
            return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        if self.turns is None or self.connection.in_transaction or not _is_write(query):
            return super().executemany(query, param_list)
        with self.turns.single_statement_turn():
            return super().executemany(query, param_list)


def _is_write(query: str) -> bool:
    return query.lstrip()[:6].upper() in _WRITES


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer_file: IO[bytes] | None = None
        self._writer_pid = 0
        self._writer_held: threading.Lock | None = None

    def _lock_path(self) -> str | None:
        if self.is_in_memory_db():
            return None
        return f"{self.settings_dict['NAME']}.write-lock"

    def _timeout(self) -> float:
        return float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))

    def _take_write_turn(self) -> None:
        path = self._lock_path()
        if path is None or self._writer_held is not None:
            return
        deadline = time.monotonic() + self._timeout()
        local = _process_lock(path)
        if not local.acquire(timeout=self._timeout()):
            raise OperationalError("database is locked (waited for this process's writers)")
        try:
            if self._writer_file is not None and self._writer_pid != os.getpid():
                # Opened before a fork: the parent's open file, whose flock the parent's and
                # every sibling's would share (a flock belongs to the open file, not the process).
                self._writer_file.close()  # this process's descriptor only: the parent's stays
                self._writer_file = None
            if self._writer_file is None:
                self._writer_file = open(path, "a+b")  # noqa: SIM115 (kept with the connection)
                self._writer_pid = os.getpid()
            while True:
                try:
                    fcntl.flock(self._writer_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise OperationalError("database is locked") from None
                    time.sleep(_PROCESS_POLL)
        except BaseException:
            local.release()
            raise
        self._writer_held = local

    def _end_write_turn(self) -> None:
        local, self._writer_held = self._writer_held, None
        if local is None:
            return
        try:
            if self._writer_file is not None:
                fcntl.flock(self._writer_file, fcntl.LOCK_UN)
        finally:
            local.release()

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = self.connection.cursor(factory=_QueuedCursor)
        cursor.turns = self
        return cursor

    @contextmanager
    def single_statement_turn(self) -> Iterator[None]:
        """A turn for one autocommit statement (none needed inside a turn already held)."""
        if self._writer_held is not None:
            yield
            return
        self._take_write_turn()
        try:
            yield
        finally:
            self._end_write_turn()

    def _start_transaction_under_autocommit(self) -> None:
        self._take_write_turn()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._end_write_turn()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._end_write_turn()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._end_write_turn()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._end_write_turn()
            if self._writer_file is not None:
                self._writer_file.close()
                self._writer_file = None
