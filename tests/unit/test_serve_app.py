"""The app as `nps serve` builds it in each web process: its garbage collector is set for a
long-lived server (checked in a process of its own: freezing the test process's heap would keep
every test's garbage)."""

import json
import subprocess
import sys

from app.main import GC_YOUNG_THRESHOLD

PROBE = """
import gc, json
from app.main import serve_app
before = gc.get_freeze_count()
app = serve_app()
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(),
                  "threshold": gc.get_threshold(), "routes": len(app.routes)}))
"""


def test_serve_app_freezes_what_startup_built_and_collects_young_objects_less_often() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] == 0
    assert seen["frozen"] > 100_000  # the imports and the app, out of every collection
    assert seen["threshold"][0] == GC_YOUNG_THRESHOLD > 700
    assert seen["routes"] > 20  # the whole app (routers included), as create_app builds it
