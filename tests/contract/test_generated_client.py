"""A client generated from openapi/openapi.json is typed: a script using it passes mypy --strict,
and the same script fails once the document loses the types it relies on."""

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.openapi import PATH as SNAPSHOT

BIN = Path(sys.executable).parent
PACKAGE = "nps_client"

# Each line marked `# typed:NAME` must type-check, and must stop type-checking when the
# mutation NAME (below) takes that type out of the document.
SCRIPT = """\
from typing import assert_type

from nps_client import AuthenticatedClient
from nps_client.api.accounts import get_account
from nps_client.api.responses import list_responses, record_response, record_responses_batch
from nps_client.api.scores import get_nps
from nps_client.models import (
    AccountRead,
    BatchRequest,
    BatchResult,
    NpsReport,
    PageResponseRead,
    Problem,
    ResponseCreate,
    ResponseRead,
)
from nps_client.types import Unset


def use(client: AuthenticatedClient) -> list[str]:
    seen: list[str] = []
    one = record_response.sync(
        client=client,
        body=ResponseCreate(score=9, stakeholder_id="dana@acme.example"),
        idempotency_key="crm-7781",
    )
    if isinstance(one, ResponseRead):
        seen.append(str(one.id))
    elif isinstance(one, Problem):
        seen.append(one.detail)

    batch = BatchRequest(responses=[ResponseCreate(score=6, stakeholder_id="lee@acme.example")])
    assert_type(batch.responses[0], ResponseCreate)  # typed:batch_items
    stored = record_responses_batch.sync(client=client, body=batch)
    if isinstance(stored, BatchResult):
        for result in stored.results:
            problem = result.problem
            if problem is not None and not isinstance(problem, Unset):
                assert_type(problem.status, int)  # typed:batch_problem
                seen.append(problem.title)

    report = get_nps.sync(client=client, group_by=None)
    if isinstance(report, NpsReport):
        assert_type(report.score.nps, float | None)
        seen.append(str(report.score.n))

    page = list_responses.sync(client=client, limit=10)
    if isinstance(page, PageResponseRead):
        seen.extend(r.stakeholder_id for r in page.data)

    account = get_account.sync("acme", client=client)
    if isinstance(account, AccountRead):
        assert_type(account.annual_revenue, str | None)  # typed:money
    return seen
"""


def _untyped_batch_items(spec: dict[str, Any]) -> None:
    spec["components"]["schemas"]["BatchRequest"]["properties"]["responses"]["items"] = {}


def _untyped_batch_problem(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["BatchItemResult"]["properties"]["problem"]
    problem["anyOf"] = [{"type": "object", "additionalProperties": True}, {"type": "null"}]


def _money_as_number(spec: dict[str, Any]) -> None:
    spec["components"]["schemas"]["Money"] = {"type": "number"}


MUTATIONS = {
    "batch_items": _untyped_batch_items,
    "batch_problem": _untyped_batch_problem,
    "money": _money_as_number,
}


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _generate(spec: dict[str, Any], work: Path) -> None:
    document = work / "openapi.json"
    document.write_text(json.dumps(spec))
    done = _run(
        BIN / "openapi-python-client",
        "generate",
        "--path",
        document,
        "--output-path",
        PACKAGE,
        "--meta",
        "none",
        "--overwrite",
        cwd=work,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (work / PACKAGE / "client.py").is_file(), done.stdout + done.stderr


# The script is checked strictly; the generated package's own code is the generator's business
# (its client.py trips newer mypy releases), so its errors are not reported, its types still used.
MYPY_INI = f"""\
[mypy]
strict = True
python_version = 3.11

[mypy-{PACKAGE}.*]
ignore_errors = True
"""


def _mypy(work: Path) -> subprocess.CompletedProcess[str]:
    # Its own configuration (not the project's), with a cache that the second run reuses.
    return _run(sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "script.py", cwd=work)


def test_a_generated_client_is_typed_and_the_check_bites(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(SCRIPT)
    (tmp_path / "mypy.ini").write_text(MYPY_INI)
    spec = json.loads(SNAPSHOT.read_text())

    _generate(spec, tmp_path)
    checked = _mypy(tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    weakened = copy.deepcopy(spec)
    for mutate in MUTATIONS.values():
        mutate(weakened)
    _generate(weakened, tmp_path)
    checked = _mypy(tmp_path)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    failing = {int(line) for line in re.findall(r"^script\.py:(\d+): error", checked.stdout, re.M)}
    lines = SCRIPT.splitlines()
    for name in MUTATIONS:
        marked = next(i for i, text in enumerate(lines, 1) if text.endswith(f"# typed:{name}"))
        assert marked in failing, (name, checked.stdout)
