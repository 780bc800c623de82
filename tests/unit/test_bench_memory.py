"""bench.memory's window: the peak of one stretch of the run, not of the whole run."""

import os

from bench.memory import RssSampler


class TestWindow:
    def test_a_window_reports_its_own_peak_not_the_runs(self) -> None:
        sampler = RssSampler(os.getpid())
        sampler.peak_total_kb = 10**9  # an earlier stretch's peak, far above this process's
        with sampler.window() as memory:
            ballast = bytearray(64 * 1024 * 1024)  # touched: resident while the window is open
            ballast[::4096] = b"x" * len(ballast[::4096])
        del ballast
        assert memory["start_mb"] > 0
        assert memory["peak_mb"] >= memory["start_mb"] + 60
        assert memory["peak_mb"] < 10**9 / 1024
        assert sampler.peak_total_kb == 10**9

    def test_a_window_shorter_than_the_interval_still_has_a_figure(self) -> None:
        sampler = RssSampler(os.getpid(), interval=3600)
        with sampler.window() as memory:
            pass
        assert memory["peak_mb"] >= memory["start_mb"] > 0
