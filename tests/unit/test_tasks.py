"""The API and the worker know the same tasks, whichever of them a process imports."""

import subprocess
import sys

import pytest

SHOW_TASKS = "import {module}; from app.jobs import TASKS; print(' '.join(sorted(TASKS.tasks)))"


@pytest.mark.parametrize("module", ["app.main", "app.worker"])
def test_a_process_knows_every_task(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SHOW_TASKS.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.split() == [
        "deletions.purge",
        "events.dispatch",
        "events.purge",
        "idempotency.purge",
        "jobs.purge",
        "rate_limits.purge",
        "webhooks.deliver",
    ]
