"""The one table of targets: every target is a row of `TARGETS`, and the printed table and the
JSON's `targets` both come from `target_rows`. A target is only ever reported, never enforced.
"""

from dataclasses import dataclass
from typing import Any


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
# The explain queries (GET /v1/drivers, /v1/themes and their variants): the service's memory
# during their calls is reported beside their latency (issue "Explain the score").
EXPLAIN_QUERIES = ("drivers", "themes")

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
    # Right after the bulk load against after VACUUM ANALYZE (bench.plans), uncached.
    "cold / settled p50": Target(below=2),
    # Polling an unchanged report (bench.revalidation).
    "304 revalidation p50, ms": Target(below=2),
    "304 revalidations/s": Target(at_least=2000),
    "304 revalidation p50 at the paced rate, ms": Target(below=2),
    "cached reports unlike a fresh computation": Target(below=1),
    # Under 300 concurrent heavy reads (bench.overload).
    "overload: single writes p99, ms": Target(below=1000),
    "overload: /healthz p99, ms": Target(below=100),
    # At least once, and never lost: every event the receiver should have, once.
    "webhooks: events lost": Target(below=1),
    "webhooks: events delivered twice": Target(below=1),
}


def ratio(api: float | None, floor: float | None) -> float | None:
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
                "ratio": ratio(api, floor),
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
            if name.startswith(EXPLAIN_QUERIES) and (memory := api.get("rss_mb")):
                row(f"{name}: service peak RSS during its calls, MB", memory["peak_mb"])
                row(f"{name}: service RSS when its calls began, MB", memory["start_mb"])
    if folded := report.get("tallies"):
        row("tallies.fold after the load, s", folded["seconds"])
    if folded := report.get("tallies_after_singles"):
        row("tallies.fold after the single answers, s", folded["seconds"])
    if plans := report.get("plans"):
        for name, settled in plans["settled"].items():
            row(
                f"{name} uncached p50, ms (settled)",
                settled["api"]["p50_ms"],
                settled.get("floor", {}).get("p50_ms"),
            )
        for name, cold in plans["cold"].items():
            row(f"{name} uncached p50 right after the load, ms", cold["api"]["p50_ms"])
        for name, factor in plans["cold_over_settled"].items():
            row(f"{name} cold / settled p50", factor, key="cold / settled p50")
    if polled := report.get("revalidation"):
        row("304 revalidation p50, ms", polled["latency"]["p50_ms"])
        row("304 revalidation p99, ms", polled["latency"]["p99_ms"])
        row("304 revalidations/s", polled["not_modified_per_s"])
        if paced := polled.get("paced"):
            row("304 revalidation p50 at the paced rate, ms", paced["latency"]["p50_ms"])
            row("304 revalidation p99 at the paced rate, ms", paced["latency"]["p99_ms"])
            row("304 revalidations/s offered (paced)", paced["offered_per_s"])
        unlike = [name for name, check in polled["cached_equals_fresh"].items() if check != "match"]
        row("cached reports unlike a fresh computation", len(unlike))
    if overload := report.get("overload"):
        for q in ("p50", "p99"):
            row(f"overload: single writes {q}, ms", overload["writes"]["latency"][f"{q}_ms"])
            row(f"overload: /healthz {q}, ms", overload["healthz"]["latency"][f"{q}_ms"])
        row("overload: heavy reads answered 503 busy", overload["reads"]["busy_503"])
    if hooks := report.get("webhooks"):
        _webhook_rows(row, hooks)
    if rss := report.get("rss"):
        row("service peak RSS, MB", rss["peak_total_mb"])
    return rows


def _webhook_rows(row: Any, hooks: dict[str, Any]) -> None:
    """bench.webhooks: ingest with a webhook beside ingest without one (in the floor column),
    delivery beside the floor's bare POSTs to the same receiver, and the drain."""
    without, with_ = hooks["ingest_without"]["latency"], hooks["ingest_with"]["latency"]
    for q in ("p50", "p99"):
        label = f"single ingest {q} with a webhook (floor: without), ms"
        row(label, with_[f"{q}_ms"], without[f"{q}_ms"])
    row(
        "single ingest CPU with a webhook (floor: without), µs/request (server)",
        hooks["ingest_with"]["cpu"]["server_us_per_request"],
        hooks["ingest_without"]["cpu"]["server_us_per_request"],
    )
    floor = hooks.get("floor", {})
    ends = hooks["end_to_end"]
    row(
        "webhooks: delivered end to end, events/s",
        ends["events_per_s"],
        floor.get("deliveries_per_s"),
    )
    row("webhooks: answer to delivery p50, ms", ends["delay"]["p50_ms"])
    row("webhooks: answer to delivery p99, ms", ends["delay"]["p99_ms"])
    lost, twice = ends["events"] - ends["delivered"], ends["twice"]
    if drained := hooks.get("drain"):
        events = drained["events"]
        row(
            f"outbox drain of {events:,} pending events, s",
            drained["seconds"],
            floor.get("seconds"),
        )
        row(
            "outbox drain, deliveries/s", drained["deliveries_per_s"], floor.get("deliveries_per_s")
        )
        cost = drained["cpu"]
        row("outbox drain CPU, µs/delivery (worker)", cost["server_us_per_request"])
        row("outbox drain CPU, µs/delivery (database)", cost["database_us_per_request"])
        lost, twice = lost + drained["lost"], twice + drained["twice"]
    row("webhooks: events lost", lost)
    row("webhooks: events delivered twice", twice)


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
