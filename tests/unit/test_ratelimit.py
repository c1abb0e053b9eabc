"""The sliding window of R23's sending limits, on a clock the test moves."""

from __future__ import annotations

from govmail.config import RateLimits
from govmail.mailstore.ratelimit import SendingLimits, duration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_slides_one_recipient_at_a_time() -> None:
    clock = Clock()
    limits = SendingLimits(RateLimits(window_s=60, max_recipients=2), clock)
    assert limits.count(1, external=False) is None
    clock.now += 30
    assert limits.count(1, external=False) is None
    over = limits.count(1, external=False)
    assert over is not None and over.limit == 2 and not over.external
    assert over.retry_after_s == 30  # when the first recipient leaves the window
    assert limits.count(2, external=False) is None  # another account
    clock.now += 30
    assert limits.count(1, external=False) is None  # the first one left
    assert limits.count(1, external=False) is not None  # the second is still in


def test_refused_recipients_are_not_counted_and_alert_once_per_window() -> None:
    clock = Clock()
    limits = SendingLimits(RateLimits(window_s=60, max_recipients=1), clock)
    assert limits.count(1, external=False) is None
    firsts = [over.first for _ in range(5) if (over := limits.count(1, external=False))]
    assert firsts == [True, False, False, False, False]
    clock.now += 61
    assert limits.count(1, external=False) is None  # the refusals did not extend the window
    over = limits.count(1, external=False)
    assert over is not None and over.first  # a new window, a new alert


def test_external_limit_applies_to_external_recipients_only() -> None:
    limits = SendingLimits(
        RateLimits(window_s=60, max_recipients=5, max_external_recipients=1), Clock()
    )
    assert limits.count(1, external=True) is None
    over = limits.count(1, external=True)
    assert over is not None and over.external and over.limit == 1
    assert limits.count(1, external=False) is None


def test_duration_in_words() -> None:
    assert duration(3600) == ("1 giờ", "1 hour")
    assert duration(61) == ("2 phút", "2 minutes")
    assert duration(3) == ("3 giây", "3 seconds")
