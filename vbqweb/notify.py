"""Wake-ups for long polls: "something you wait for has changed", over Redis publish/subscribe.

Why: a reader waits for the score of every autosave. Polling at fixed intervals makes the
score arrive on the next tick of the schedule, not when it is computed (half a second late on
average), and every tick is a request. A poll may instead wait on the server
(:func:`waiting_on`) until the worker announces its result (:func:`announce`) or a few seconds
pass. The database stays the truth: an announcement carries no data, the waiter reads again,
and a lost announcement (Redis away, a restart) only costs the wait's timeout. So Redis being
down degrades this to plain polling; nothing is lost and no request fails because of it.

The topic names are internal (never sent to a browser): ``score:<reading pk>``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import redis
from django.conf import settings

from vbqweb.celery import app as celery_app

logger = logging.getLogger(__name__)

PREFIX = "vbq:notify:"
_pool_lock = threading.Lock()
_pools: dict[str, redis.ConnectionPool] = {}


def _client() -> redis.Redis:
    """A client of the broker's Redis (the Celery app's ``broker_url``: ``REDIS_URL``), on one
    pool per URL and process; threads share it, and redis-py's pool opens fresh connections
    in a forked worker child."""
    url = str(celery_app.conf.broker_url)
    with _pool_lock:
        pool = _pools.get(url)
        if pool is None:
            pool = redis.ConnectionPool.from_url(
                url, socket_timeout=2, socket_connect_timeout=1, health_check_interval=30
            )
            _pools[url] = pool
    return redis.Redis(connection_pool=pool)


def score_topic(reading_pk: int) -> str:
    """The topic of a reading's score (its result stored, whatever the version)."""
    return f"score:{reading_pk}"


def announce(topic: str) -> None:
    """Tell whoever waits on ``topic`` to look again. Best effort: never raises."""
    try:
        _client().publish(PREFIX + topic, b"1")
    except redis.RedisError as error:
        logger.info("notify %s: not announced (%s); waiters fall back to polling", topic, error)


class Waiter:
    """A subscription made *before* the caller reads the state, so that an announcement made
    between that read and :meth:`wait` is not missed."""

    def __init__(self, pubsub: redis.client.PubSub | None) -> None:
        self._pubsub = pubsub

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds`` for an announcement; True if one came. Without Redis,
        returns False at once (the caller answers with what it has)."""
        if self._pubsub is None:
            return False
        end = time.monotonic() + seconds
        try:
            while (left := end - time.monotonic()) > 0:
                message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
                if message is not None and message.get("type") == "message":
                    return True
        except redis.RedisError as error:
            logger.info("notify: wait ended early (%s)", error)
        return False


_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def _waiter_slots() -> threading.BoundedSemaphore:
    """How many threads of this process may wait at once (``VBQ_SCORE_WAITERS``): a web
    process has a fixed number of threads, and waiters must never take them all."""
    size = max(1, int(settings.VBQ_SCORE_WAITERS))
    with _slots_lock:
        if size not in _slots:
            _slots[size] = threading.BoundedSemaphore(size)
        return _slots[size]


@contextmanager
def waiting_on(topic: str) -> Iterator[Waiter]:
    """Subscribe to ``topic`` for the block: read the state inside it, then :meth:`Waiter.wait`
    if it is not what you wait for, then read it again. When every waiting slot of the process
    is taken, the waiter does not wait (the caller answers at once and its client polls)."""
    slots = _waiter_slots()
    if not slots.acquire(blocking=False):
        yield Waiter(None)
        return
    try:
        with _subscribed(topic) as waiter:
            yield waiter
    finally:
        slots.release()


@contextmanager
def _subscribed(topic: str) -> Iterator[Waiter]:
    pubsub = None
    try:
        pubsub = _client().pubsub()
        pubsub.subscribe(PREFIX + topic)
        # Wait for Redis to confirm: only then is an announcement made after the caller's
        # read of the state sure to reach this subscription.
        confirmed = pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
        if not confirmed or confirmed.get("type") != "subscribe":
            raise redis.RedisError("subscription not confirmed within 1 s")
    except redis.RedisError as error:
        logger.info("notify %s: no subscription (%s); answering without waiting", topic, error)
        if pubsub is not None:
            _close(pubsub)
        pubsub = None
    try:
        yield Waiter(pubsub)
    finally:
        if pubsub is not None:
            _close(pubsub)


def _close(pubsub: redis.client.PubSub) -> None:
    with suppress(redis.RedisError):
        pubsub.close()
