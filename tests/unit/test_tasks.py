"""The API and the worker know the same tasks and event subscribers, whichever of them a process
imports."""

import subprocess
import sys

import pytest

SHOW_TASKS = "import {module}; from app.jobs import TASKS; print(' '.join(sorted(TASKS.tasks)))"
SHOW_SUBSCRIBERS = (
    "import {module}; from app.outbox import SUBSCRIBERS; "
    "print(' '.join(sorted({{h.__name__ for hs in SUBSCRIBERS.by_type.values() for h in hs}})))"
)


def _run(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.split()


@pytest.mark.parametrize("module", ["app.main", "app.worker"])
def test_a_process_knows_every_task(module: str) -> None:
    assert _run(SHOW_TASKS.format(module=module)) == [
        "deletions.purge",
        "events.dispatch",
        "events.purge",
        "idempotency.purge",
        "imports.run",
        "jobs.purge",
        "rate_limits.purge",
        "statistics.refresh",
        "tallies.fold",
        "webhooks.deliver",
    ]


@pytest.mark.parametrize("module", ["app.main", "app.worker"])
def test_a_process_knows_every_event_subscriber(module: str) -> None:
    assert _run(SHOW_SUBSCRIBERS.format(module=module)) == [
        "add_account_score",
        "announce_movement",
        "open_cases_for_response",
        "queue_deliveries",
        "reassess_account",
    ]
