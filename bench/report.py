"""The figures: statistics, the phases' times, the one table of targets, and the results.

Every target is a row of `TARGETS`: the printed table and the JSON's `targets` both come from it,
and a target is only ever reported, never enforced.
"""

import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import say
from bench.service import RssSampler

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


# The targets


@dataclass(frozen=True)
class Target:
    """Met when the API's figure is at least `at_least`, below `below`, and (with `below_floor`)
    below the floor's figure as well; a missing figure, or a query that answered an error,
    misses it."""

    at_least: float | None = None
    below: float | None = None
    below_floor: bool = False

    @property
    def text(self) -> str:
        parts = [f">= {self.at_least:g}"] if self.at_least is not None else []
        parts += [f"< {self.below:g}"] if self.below is not None else []
        parts += ["< floor"] if self.below_floor else []
        return " and ".join(parts)

    def met(self, api: float | None, floor: float | None) -> bool:
        if api is None:
            return False
        if self.at_least is not None and api < self.at_least:
            return False
        if self.below is not None and api >= self.below:
            return False
        return not self.below_floor or (floor is not None and api < floor)


WORKSPACE_WIDE = Target(below=100, below_floor=True)

# Metric (as printed, without a query's error note) -> its target. A metric not named here is
# reported without one.
TARGETS: dict[str, Target] = {
    "bulk ingest, responses/s": Target(at_least=25_000),
    "single ingest, requests/s": Target(at_least=600),
    "single ingest p99, ms": Target(below=100),
    "invitations (batches), invitations/s": Target(at_least=5000),
    "public answers, requests/s": Target(at_least=600),
    "public answers p99, ms": Target(below=100),
    "nps_365d p99, ms": WORKSPACE_WIDE,
    "by_role p99, ms": WORKSPACE_WIDE,
    "by_account p99, ms": WORKSPACE_WIDE,
    "account p99, ms": Target(below=20),
    "trend_monthly_2y p99, ms": WORKSPACE_WIDE,
    "service peak RSS, MB": Target(below=300),
}


def _ratio(api: float | None, floor: float | None) -> float | None:
    return api / floor if api is not None and floor else None


def target_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """metric | API | floor | ratio (API / floor) | target | met, in the order printed."""
    rows: list[dict[str, Any]] = []

    def row(
        metric: str,
        api: float | None,
        floor: float | None = None,
        *,
        key: str | None = None,
        ok: bool = True,
    ) -> None:
        target = TARGETS.get(key or metric)
        rows.append(
            {
                "metric": metric,
                "api": api,
                "floor": floor,
                "ratio": _ratio(api, floor),
                "target": target.text if target else "",
                "met": (ok and target.met(api, floor)) if target else None,
            }
        )

    ingest = report.get("ingest", {})
    copy = report.get("floors", {}).get("copy", {}).get("rows_per_s")
    for kind, registered in report.get("registration", {}).items():
        row(f"register {kind} (PUT), requests/s", registered["requests_per_s"])
    if bulk := ingest.get("bulk"):
        row("bulk ingest, responses/s", bulk["responses_per_s"], copy)
    if single := ingest.get("single"):
        _one_by_one(row, "single ingest", single, ingest.get("single_floor"))
    collect = report.get("collect", {})
    if invited := collect.get("invitations"):
        floor_rows = collect.get("invitations_floor", {}).get("rows_per_s")
        row("invitations (batches), invitations/s", invited["invitations_per_s"], floor_rows)
        latency, floor_latency = invited["latency"], collect.get("invitations_floor", {})
        row(
            "invitations (batches) p99 per batch, ms",
            latency["p99_ms"],
            floor_latency.get("latency", {}).get("p99_ms"),
        )
        _cpu_rows(row, "invitations", "invitation", invited, floor_latency)
    if answered := collect.get("answers"):
        if answered.get("outcome") == "n/a":
            row(f"public answers: n/a ({answered['statuses']})", None)
        else:
            _one_by_one(row, "public answers", answered, collect.get("answers_floor"))
    if final := report.get("queries", {}).get("final"):
        for name, api in final["api"].items():
            floor = final["floor"][name]
            if api["outcome"] == "n/a":
                row(f"{name}: n/a ({api['detail'][:3]})", None, floor["p99_ms"])
                continue
            ok = api["outcome"] == "ok"
            label = name if ok else f"{name} [ERRORS {api['statuses']}]"
            row(f"{label} p50, ms", api["p50_ms"], floor["p50_ms"], key=f"{name} p50, ms", ok=ok)
            row(f"{label} p99, ms", api["p99_ms"], floor["p99_ms"], key=f"{name} p99, ms", ok=ok)
    if rss := report.get("rss"):
        row("service peak RSS, MB", rss["peak_total_mb"])
    return rows


def _one_by_one(row: Any, label: str, api: dict[str, Any], floor: dict[str, Any] | None) -> None:
    """A path posted one request at a time: its rate and latencies beside the floor's."""
    floor = floor or {}
    floor_latency = floor.get("latency", {})
    row(f"{label}, requests/s", api["requests_per_s"], floor.get("requests_per_s"))
    row(f"{label} p50, ms", api["latency"]["p50_ms"], floor_latency.get("p50_ms"))
    row(f"{label} p99, ms", api["latency"]["p99_ms"], floor_latency.get("p99_ms"))
    _cpu_rows(row, label, "request", api, floor)


def _cpu_rows(row: Any, label: str, unit: str, api: dict[str, Any], floor: dict[str, Any]) -> None:
    """CPU per request (or item) of the server's processes and of the database's backends:
    what the figures above cost, whatever else the machine was doing."""
    mine, floors = api.get("cpu", {}), floor.get("cpu", {})
    for part, key in (("server", "server_us_per_request"), ("database", "database_us_per_request")):
        row(f"{label} CPU, µs/{unit} ({part})", mine.get(key), floors.get(key))


def scaling(report: dict[str, Any]) -> dict[str, Any]:
    """How each query's cost grew from the checkpoint to the end, beside the floor's growth."""
    queries = report.get("queries", {})
    first, last = queries.get("checkpoint"), queries.get("final")
    if not first or not last:
        return {}
    out: dict[str, Any] = {
        "responses": [first["responses"], last["responses"]],
        "growth": _ratio(last["responses"], first["responses"]),
        "queries": {},
    }
    for name, b in last["api"].items():
        a = first["api"][name]
        fa, fb = first["floor"][name], last["floor"][name]
        out["queries"][name] = {
            "api_p50_ms": [a["p50_ms"], b["p50_ms"]],
            "api_p99_ms": [a["p99_ms"], b["p99_ms"]],
            "api_p50_growth": _ratio(b["p50_ms"], a["p50_ms"]),
            "floor_p50_ms": [fa["p50_ms"], fb["p50_ms"]],
            "floor_p50_growth": _ratio(fb["p50_ms"], fa["p50_ms"]),
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
