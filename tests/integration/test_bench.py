"""`make bench`, run tiny: every phase works end to end and reports each figure beside its floor.

Timings are never asserted (they are the benchmark's to report, not a test's to judge): this
proves the run completes, stores exactly what it sent, and writes every metric with its floor.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--responses=300",
    "--checkpoint=0",
    "--accounts=10",
    "--stakeholders=60",
    "--other-workspaces=0",
    "--repeats=1",
    "--single-requests=40",
    "--invitations=30",
    "--invitation-batch=10",
    "--workers=1",
    "--clients=2",
    "--single-clients=4",
    "--webhook-requests=10",
    "--webhook-events=30",
    "--overload-seconds=3",
    "--overload-readers=6",
    "--overload-writers=1",
    "--revalidation-seconds=2",
    "--revalidation-clients=4",
    "--import-responses=500",
]


def _run(server_url: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPS_")}
    env["NPS_BENCH_DATABASE_URL"] = server_url
    return subprocess.run(
        [sys.executable, "-m", "bench.run", *TINY, f"--out={out}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class TestBenchRun:
    def test_a_tiny_run_reports_every_path_beside_its_floor(
        self, server_url: str, tmp_path: Path
    ) -> None:
        out = tmp_path / "bench.json"
        done = _run(server_url, out)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        report = json.loads(out.read_text())
        assert report["error"] is None
        # The service ran as in production: as the role row-level security binds.
        assert "row-level security does not bind" not in Path(report["service_log"]).read_text()
        single, collect = report["ingest"]["single"], report["collect"]
        assert (single["stored"], single["failed"]) == (40, 0)
        assert report["ingest"]["single_floor"]["stored"] == 40
        assert (collect["invitations"]["stored"], collect["invitations"]["failed"]) == (30, 0)
        assert collect["invitations_floor"]["stored"] == 30
        assert (collect["answers"]["stored"], collect["answers"]["failed"]) == (30, 0)
        assert collect["answers"]["statuses"] == {"201": 30}  # no retry, no 429
        assert collect["answers_floor"]["stored"] == 30
        rows = {row["metric"]: row for row in report["targets"]}
        for metric, target in [
            ("single ingest, requests/s", ">= 600"),
            ("single ingest p99, ms", "< 100"),
            ("invitations (batches), invitations/s", ">= 5000"),
            ("public answers, requests/s", ">= 600"),
            ("public answers p99, ms", "< 100"),
        ]:
            row = rows[metric]
            assert row["target"] == target
            assert row["api"] > 0
            assert row["floor"] > 0
            assert isinstance(row["met"], bool)
        for label in ("single ingest", "public answers"):
            # Read in clock ticks (10 ms): a tiny run's floor may round to 0.
            cost = rows[f"{label} CPU, µs/request (server)"]
            assert cost["api"] >= 0
            assert cost["floor"] >= 0
        assert "public answers, requests/s" in done.stdout
        plans = report["plans"]
        assert set(plans["cold"]) == set(plans["settled"]) == set(plans["cold_over_settled"])
        for name, factor in plans["cold_over_settled"].items():
            assert rows[f"{name} cold / settled p50"] == {
                "metric": f"{name} cold / settled p50",
                "api": factor,
                "floor": None,
                "ratio": None,
                "target": "< 2",
                "met": factor < 2,
            }
            assert plans["settled"][name]["floor"]["n"] > 0
        hooks = report["webhooks"]
        assert (hooks["ingest_without"]["stored"], hooks["ingest_with"]["stored"]) == (10, 10)
        assert hooks["end_to_end"]["delivered"] == 10
        assert (hooks["drain"]["pending"], hooks["drain"]["lost"]) == (30, 0)
        assert hooks["floor"]["events"] == 30
        for metric, target in [
            ("webhooks: delivered end to end, events/s", ""),
            ("outbox drain, deliveries/s", ""),
            ("single ingest p99 with a webhook (floor: without), ms", ""),
            ("webhooks: events lost", "< 1"),
            ("webhooks: events delivered twice", "< 1"),
        ]:
            assert rows[metric]["target"] == target
            assert rows[metric]["api"] is not None
        assert rows["webhooks: events lost"]["api"] == 0
        assert rows["outbox drain, deliveries/s"]["floor"] > 0
        overload = report["overload"]
        assert (overload["readers"], overload["writers"]) == (6, 1)
        reads = overload["reads"]["statuses"]
        assert sum(reads.values()) > 0
        assert set(reads) <= {"200", "503"}, reads  # served, or told the service is busy
        assert overload["reads"]["busy_503"] == reads.get("503", 0)
        assert set(overload["writes"]["statuses"]) <= {"201", "503"}
        assert overload["writes"]["statuses"].get("201", 0) > 0
        assert overload["healthz"]["statuses"].keys() == {"200"}
        for metric, target in [
            ("overload: single writes p99, ms", "< 1000"),
            ("overload: /healthz p99, ms", "< 100"),
            ("overload: heavy reads answered 503 busy", ""),
        ]:
            assert rows[metric]["target"] == target
            assert rows[metric]["api"] is not None
        polled = report["revalidation"]
        assert polled["clients"] == 4
        assert set(polled["statuses"]) == {"304"}, polled["statuses"]
        assert set(polled["cached_equals_fresh"].values()) == {"match"}
        assert set(polled["paced"]["statuses"]) == {"304"}, polled["paced"]["statuses"]
        assert polled["paced"]["offered_per_s"] == 500
        for metric, target in [
            ("304 revalidation p50, ms", "< 2"),
            ("304 revalidations/s", ">= 2000"),
            ("304 revalidation p50 at the paced rate, ms", "< 2"),
            ("cached reports unlike a fresh computation", "< 1"),
        ]:
            assert rows[metric]["target"] == target
            assert rows[metric]["api"] is not None
        assert rows["cached reports unlike a fresh computation"]["api"] == 0
        # The explain queries' memory: the service's RSS during each one's calls (issue 15).
        final = report["queries"]["final"]["api"]
        for name in ("drivers", "drivers_shapley", "themes", "themes_suggested"):
            memory = final[name]["rss_mb"]
            assert 0 < memory["start_mb"] <= memory["peak_mb"] <= report["rss"]["peak_total_mb"]
            assert (
                rows[f"{name}: service peak RSS during its calls, MB"]["api"] == memory["peak_mb"]
            )
            assert (
                rows[f"{name}: service RSS when its calls began, MB"]["api"] == memory["start_mb"]
            )
