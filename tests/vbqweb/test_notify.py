"""Wake-ups over a real Redis (vbqweb.notify): a subscription sees what is announced after it
was made, on its own topic only; without Redis nothing waits and nothing fails."""

from __future__ import annotations

import threading
import time

from tests.helpers.brokers import broker_at, broker_down
from vbqweb import notify


def test_an_announcement_after_the_subscription_wakes_the_waiter(redis_url: str) -> None:
    with broker_at(redis_url), notify.waiting_on("score:1") as waiter:
        timer = threading.Timer(0.3, notify.announce, args=("score:1",))
        timer.start()
        began = time.monotonic()
        assert waiter.wait(5) is True
        assert 0.25 <= time.monotonic() - began < 2
        timer.join()


def test_other_topics_and_earlier_announcements_do_not_wake_it(redis_url: str) -> None:
    with broker_at(redis_url):
        notify.announce("score:2")  # before anyone listens: gone
        with notify.waiting_on("score:2") as waiter:
            notify.announce("score:3")
            began = time.monotonic()
            assert waiter.wait(0.5) is False
            assert time.monotonic() - began >= 0.45


def test_without_redis_nothing_waits_and_nothing_fails() -> None:
    with broker_down():
        notify.announce("score:4")
        began = time.monotonic()
        with notify.waiting_on("score:4") as waiter:
            assert waiter.wait(5) is False
        assert time.monotonic() - began < 2
