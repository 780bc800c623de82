"""The figures: statistics, the phases' times, and the results, printed and written; the table
of targets is bench.targets.
"""

import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import say
from bench.memory import RssSampler
from bench.targets import ratio, target_rows

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


# Statistics


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(samples_ms: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(samples_ms),
        "p50_ms": percentile(samples_ms, 50),
        "p99_ms": percentile(samples_ms, 99),
        "mean_ms": sum(samples_ms) / len(samples_ms) if samples_ms else None,
        "max_ms": max(samples_ms) if samples_ms else None,
    }


class Phases:
    """Wall time of each phase, and the service's memory at its end."""

    def __init__(self, sampler: RssSampler | None = None) -> None:
        self.seconds: dict[str, float] = {}
        # This script shares the cores with the service: what the load generator itself used.
        self.client_cpu_s: dict[str, float] = {}
        self.rss_mb: dict[str, float] = {}
        self.sampler = sampler

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        say(f"== {name} ...")
        began, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - began
            self.client_cpu_s[name] = time.process_time() - cpu
            if self.sampler is not None:
                self.rss_mb[name] = self.sampler.current_total_kb / 1024
            say(f"   {name}: {self.seconds[name]:.1f} s")


def machine_info() -> dict[str, Any]:
    def git(*arguments: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    memory_kb = None
    try:
        with open("/proc/meminfo") as f:
            memory_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    status = git("status", "--porcelain")
    return {
        "cpu_count": os.cpu_count(),
        "memory_mb": memory_kb / 1024 if memory_kb else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
    }


def scaling(report: dict[str, Any]) -> dict[str, Any]:
    """How each query's cost grew from the checkpoint to the end, beside the floor's growth."""
    queries = report.get("queries", {})
    first, last = queries.get("checkpoint"), queries.get("final")
    if not first or not last:
        return {}
    out: dict[str, Any] = {
        "responses": [first["responses"], last["responses"]],
        "growth": ratio(last["responses"], first["responses"]),
        "queries": {},
    }
    for name, b in last["api"].items():
        a = first["api"][name]
        fa, fb = first["floor"][name], last["floor"][name]
        out["queries"][name] = {
            "api_p50_ms": [a["p50_ms"], b["p50_ms"]],
            "api_p99_ms": [a["p99_ms"], b["p99_ms"]],
            "api_p50_growth": ratio(b["p50_ms"], a["p50_ms"]),
            "floor_p50_ms": [fa["p50_ms"], fb["p50_ms"]],
            "floor_p50_growth": ratio(fb["p50_ms"], fa["p50_ms"]),
        }
    return out


# Printing and writing


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.2g}"


def print_report(report: dict[str, Any]) -> None:
    rows = report["targets"]
    say()
    say("ratio = API / floor: for a rate, the share of the floor reached; for a latency, how many")
    say("times the plain SQL aggregate's time (below 1: faster than aggregating the raw rows).")
    header = ("metric", "API", "floor", "ratio", "target", "met?")
    table = [
        (
            r["metric"],
            _fmt(r["api"]),
            _fmt(r["floor"]),
            _fmt(r["ratio"]),
            r["target"] or "-",
            "-" if r["met"] is None else ("yes" if r["met"] else "NO"),
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *table]) for i in range(len(header))]
    for line in [header, tuple("-" * w for w in widths), *table]:
        say(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    if grown := report.get("scaling"):
        low, high = grown["responses"]
        say()
        say(f"cost growth from {low:,} to {high:,} responses (x{_fmt(grown['growth'])}):")
        for name, q in grown["queries"].items():
            p50 = q["api_p50_ms"]
            say(
                f"  {name:<17} p50 {_fmt(p50[0])} -> {_fmt(p50[1])} ms "
                f"(x{_fmt(q['api_p50_growth'])}); floor x{_fmt(q['floor_p50_growth'])}"
            )
    for phase in ("checkpoint", "final"):
        checks = report.get("queries", {}).get(phase, {}).get("verified")
        if checks:
            say(f"answers vs floor ({phase}): " + ", ".join(f"{k} {v}" for k, v in checks.items()))
    if rss := report.get("rss"):
        say()
        say(f"service peak RSS {rss['peak_total_mb']:.1f} MB (sum over processes); per process:")
        for p in rss["peak_by_process"]:
            say(f"  {p['pid']:>7}  {p['peak_mb']:7.1f} MB  {p['command']}")
    if errors := report.get("service_log_errors", {}).get("error_lines"):
        say(f"\nthe service logged {errors} error lines: see {report.get('service_log')}")
    say()
    say("phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["phases_s"].items()))


def finish(report: dict[str, Any], out: Path) -> None:
    report["targets"] = target_rows(report)
    report["scaling"] = scaling(report)
    print_report(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    say(f"results written to {out}")
