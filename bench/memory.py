"""The service's processes as the benchmark watches them: their tree, and a thread that samples
the RSS of the service process and all its descendants."""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(_children(current))
    return found


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return "?"


class RssSampler(threading.Thread):
    """Every 100 ms: VmRSS of the service process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid = pid
        self.interval = interval
        self.stopping = threading.Event()
        self.peak_total_kb = 0
        self.current_total_kb = 0
        self.peak_by_pid: dict[int, int] = {}
        # The highest total since the last window() began: the peak of one stretch of the run
        # (one query's calls), not of the whole run.
        self.window_peak_kb = 0
        self.commands: dict[int, str] = {}
        self.samples = 0

    def sample(self) -> None:
        pending = [self.pid]
        total = 0
        while pending:
            pid = pending.pop()
            rss = _rss_kb(pid)
            if rss is None:
                continue
            if pid not in self.commands:
                self.commands[pid] = _command(pid)
            total += rss
            self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), rss)
            pending.extend(_children(pid))
        self.current_total_kb = total
        self.peak_total_kb = max(self.peak_total_kb, total)
        self.window_peak_kb = max(self.window_peak_kb, total)
        self.samples += 1

    @contextmanager
    def window(self) -> Iterator[dict[str, float]]:
        """The service's peak RSS (sum over its processes) while the block runs, sampled at
        its start and end as well as every interval between, so a block shorter than the
        interval still has a figure: `peak_mb` of the yielded dict, set when the block ends, beside
        `start_mb`, the total when it began."""
        self.window_peak_kb = 0
        self.sample()
        out: dict[str, float] = {"start_mb": self.current_total_kb / 1024}
        try:
            yield out
        finally:
            self.sample()
            out["peak_mb"] = self.window_peak_kb / 1024

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=2)

    def report(self) -> dict[str, Any]:
        return {
            "peak_total_mb": self.peak_total_kb / 1024,
            "samples": self.samples,
            "interval_s": self.interval,
            "peak_by_process": [
                {"pid": pid, "peak_mb": kb / 1024, "command": self.commands.get(pid, "?")}
                for pid, kb in sorted(self.peak_by_pid.items())
            ],
        }


@contextmanager
def sampling(pid: int) -> Iterator[RssSampler]:
    sampler = RssSampler(pid)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()
