"""Windows.refund: a hit taken back, before or after it was flushed."""

from app.local_limits import OVERFLOW, Windows
from app.services.rate_limits import Policy

POLICY = Policy("failed-auth", 3, 60)
NOW = 1_800_000_030.0  # 30 s into a 60 s window


def test_a_refund_before_the_flush_leaves_nothing_to_flush() -> None:
    windows = Windows()
    windows.hit("fail-ip", POLICY, NOW)
    windows.refund("fail-ip", POLICY, NOW)
    assert windows.seen("fail-ip", POLICY, NOW) == 0
    assert windows.pending == {}


def test_a_refund_after_the_flush_goes_with_the_next_one_as_a_negative_count() -> None:
    windows = Windows(flush_every=0)
    windows.hit("fail-ip", POLICY, NOW)
    windows.hit("fail-ip", POLICY, NOW)
    flush = windows.take(NOW)
    assert flush is not None
    flush.applied([(key, start, hits) for key, start, hits in zip(*flush.rows(), strict=True)])
    flush.committed()
    flush.settle()
    windows.refund("fail-ip", POLICY, NOW + 1)
    assert windows.seen("fail-ip", POLICY, NOW + 1) == 1
    again = windows.take(NOW + 1)
    assert again is not None
    assert again.rows()[2] == [-1]


def test_a_refund_counts_in_the_window_of_its_hit() -> None:
    windows = Windows()
    windows.hit("fail-ip", POLICY, NOW)
    windows.hit("fail-ip", POLICY, NOW + 60)  # the next window
    windows.refund("fail-ip", POLICY, NOW)
    assert windows.seen("fail-ip", POLICY, NOW) == 0
    assert windows.seen("fail-ip", POLICY, NOW + 60) == 1


def test_a_hit_that_went_to_the_overflow_counter_is_refunded_there() -> None:
    windows = Windows(capacity=1)
    windows.hit("fail-a", POLICY, NOW)
    windows.hit("fail-b", POLICY, NOW)  # past capacity: shares the overflow counter
    assert windows.seen(f"fail-b:{OVERFLOW}", POLICY, NOW) == 1
    windows.refund("fail-b", POLICY, NOW)
    assert windows.pending == {("fail-a", 1_800_000_000): 1}
