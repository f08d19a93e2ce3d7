"""Lock timer for bench/load.py: loaded by the servers it starts (``PYTHONPATH``), never by the
site otherwise (it does nothing unless ``VBQ_BENCH_LOCKS`` names a folder).

Why: "lock waits" are what made saves queue behind the agreement under load (SQLite has one
writer). Django opens a SQLite write transaction with ``BEGIN IMMEDIATE``, which waits for the
write lock; on PostgreSQL the waits are on row locks (``SELECT ... FOR UPDATE``). Every such
statement that takes over a millisecond is appended to ``locks-<pid>.log`` in that folder as
``wait <process> <seconds>``. And to find who makes the others wait, every transaction held
over 50 ms (``BEGIN`` to commit or rollback) is written as ``hold <process> <seconds>
<its first statements>``.
"""

from __future__ import annotations

import os
import sys
import threading
import time

_folder = os.environ.get("VBQ_BENCH_LOCKS")

if _folder:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.signals import connection_created

    _name = os.path.basename(sys.argv[0]) or "python"
    _lock = threading.Lock()
    _path = os.path.join(_folder, f"locks-{os.getpid()}.log")

    def _write(line: str) -> None:
        with _lock, open(_path, "a") as log:
            log.write(line + "\n")

    def _timed(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        connection = context["connection"]
        text = sql if isinstance(sql, str) else str(sql)
        held = getattr(connection, "_bench_held", None)
        if held is not None and len(held[1]) < 6:
            held[1].append(" ".join(text.split())[:70])
        if not (text.startswith("BEGIN") or "FOR UPDATE" in text):
            return execute(sql, params, many, context)
        began = time.monotonic()
        try:
            return execute(sql, params, many, context)
        finally:
            seconds = time.monotonic() - began
            if seconds > 0.001:
                _write(f"wait {_name} {seconds:.4f}")
            if text.startswith("BEGIN"):
                connection._bench_held = (time.monotonic(), [])

    def _ended(original):  # type: ignore[no-untyped-def]
        def end(self):  # type: ignore[no-untyped-def]
            try:
                return original(self)
            finally:
                held = getattr(self, "_bench_held", None)
                self._bench_held = None
                if held is not None and (seconds := time.monotonic() - held[0]) > 0.05:
                    _write(f"hold {_name} {seconds:.4f} {' | '.join(held[1])}")

        return end

    BaseDatabaseWrapper._commit = _ended(BaseDatabaseWrapper._commit)  # type: ignore[method-assign]
    BaseDatabaseWrapper._rollback = _ended(BaseDatabaseWrapper._rollback)  # type: ignore[method-assign]

    def _queue_timed(original):  # type: ignore[no-untyped-def]
        """The site's SQLite backend (vbqweb.sqlite_backend) waits for its turn to write before
        ``BEGIN``: that wait is a lock wait too."""

        def take(self):  # type: ignore[no-untyped-def]
            began = time.monotonic()
            try:
                return original(self)
            finally:
                if (seconds := time.monotonic() - began) > 0.001:
                    _write(f"wait {_name} {seconds:.4f}")

        take._bench_timed = True
        return take

    def _install(sender, connection, **kwargs):  # type: ignore[no-untyped-def]
        if _timed not in connection.execute_wrappers:
            connection.execute_wrappers.append(_timed)
        cls = type(connection)
        take = getattr(cls, "_take_write_turn", None)
        if take is not None and not getattr(take, "_bench_timed", False):
            cls._take_write_turn = _queue_timed(take)

    connection_created.connect(_install, weak=False)
