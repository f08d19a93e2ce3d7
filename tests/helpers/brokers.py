"""A broker that is elsewhere, down or hung, for the tests that prove requests never wait on it.

One implementation for every test module: kombu keeps a global registry of connection pools
keyed by broker URL, and a pool force-closed in place stays registered and breaks every later
``apply_async`` to the real broker ("Acquire on closed pool"). Clearing the registry instead
(``kombu.pools.reset()``) leaves the process as it found it, whatever order the tests run in.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import kombu.pools

from vbqweb import jobs
from vbqweb.celery import app as celery_app


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Point the test process's Celery app at another broker for the duration."""
    previous = celery_app.conf.broker_url

    def reset() -> None:
        # A port freed by one test is often handed out again to the next: a pause left by
        # an earlier outage on the same URL would skip this test's first send.
        jobs._paused_until.clear()
        kombu.pools.reset()
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    reset()
    celery_app.conf.broker_url = url
    try:
        yield
    finally:
        reset()
        celery_app.conf.broker_url = previous


@contextmanager
def broker_down() -> Iterator[None]:
    """Nothing listens on the broker's port: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with broker_at(f"redis://127.0.0.1:{port}/0"):
        yield


@contextmanager
def broker_hung() -> Iterator[None]:
    """The kernel accepts connections; nobody ever reads or answers (by default ``.delay()``
    would then block indefinitely)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        with broker_at(f"redis://127.0.0.1:{server.getsockname()[1]}/0"):
            yield
