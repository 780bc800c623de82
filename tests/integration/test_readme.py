"""The README's walk-through, run as a new user would: its commands in order against a running
`nps serve`, and every sample output it shows checked against what the command printed."""

import asyncio
import json
import re
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import free_port, started_nps, until_ready
from tests.support.readme import Command, code_blocks, commands, mismatches, parse_sample, section

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MARK = "@@@ README command "
# Where the README's webhook receiver listens (docs/examples/receiver.py).
RECEIVER_PORT = re.compile(r"\b8080\b")
RECEIVER = ROOT / "docs" / "examples" / "receiver.py"
SHELL_WORDS = re.compile(
    r"^\s*(curl|make|export|get|auth=|nps|docker|\.venv/bin/|cd|git|psql|NPS_\w+=)(\b|\s)"
)


def walk_through() -> list[Command]:
    text, first = section(README, "Walk-through")
    blocks = code_blocks(text, first)
    assert blocks, "the walk-through has no code block"
    found: list[Command] = []
    for language, lines in blocks:
        if language == "bash":
            found += commands(lines)
    return found


def script(steps: list[Command], url: str, key: str, receiver_port: int) -> str:
    """The walk-through as one bash script; curl fails on any 4xx or 5xx answer, and the
    webhook receiver it starts is stopped however the script ends. The README's receiver port
    becomes a free one."""
    parts = [
        "set -euo pipefail",
        'curl() { command curl --fail-with-body --show-error "$@"; }',
        "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT",
    ]
    for number, step in enumerate(steps):
        text = RECEIVER_PORT.sub(str(receiver_port), step.text)
        if text.startswith("export NPS="):
            text = f"export NPS={url} KEY={key}"
        parts += [text, f"printf '\\n{MARK}{number}\\n'"]
    return "\n".join(parts) + "\n"


def outputs(stdout: str) -> list[str]:
    pieces = re.split(rf"\n?{re.escape(MARK)}\d+\n", stdout)
    return [piece.strip() for piece in pieces]


def test_every_shell_block_in_the_readme_is_marked_bash() -> None:
    wrong = [
        (language or "(none)", lines[0][0])
        for language, lines in code_blocks(README)
        if language != "bash" and any(SHELL_WORDS.match(line) for _, line in lines)
    ]
    assert not wrong, f"shell blocks not marked bash (language, first line): {wrong}"


def test_the_walk_through_parses_and_shows_samples() -> None:
    steps = walk_through()
    assert steps[0].text.startswith("export NPS="), "the walk-through starts by naming the service"
    assert sum(1 for step in steps if step.sample) >= 4


def test_the_receiver_shown_is_the_one_the_walk_through_runs() -> None:
    text, first = section(README, "Walk-through")
    shown = ["\n".join(line for _, line in lines) for language, lines in code_blocks(text, first)
             if language == "python"]  # fmt: skip
    assert shown == [RECEIVER.read_text(encoding="utf-8").rstrip("\n")]
    # The port the test replaces is the webhook's URL's and the receiver's, and no other.
    uses = [step.text.split("\n")[0] for step in walk_through() if RECEIVER_PORT.search(step.text)]
    assert len(uses) == 2, uses
    assert f"{RECEIVER.relative_to(ROOT)} 8080" in "\n".join(s.text for s in walk_through())


async def test_the_walk_through_runs_and_its_samples_are_its_own_output(
    empty_database_url: str,
) -> None:
    steps = walk_through()
    port, key = free_port(), "nps_" + secrets.token_urlsafe(32)
    receiver_port = free_port()
    while receiver_port == port:
        receiver_port = free_port()
    # Act on answers delivers to a receiver on this machine: the service must admit loopback.
    with started_nps(
        empty_database_url,
        "serve",
        NPS_PORT=str(port),
        NPS_BOOTSTRAP_API_KEY=key,
        NPS_WEBHOOKS_ALLOW_PRIVATE="true",
    ):
        await until_ready(port)
        run = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-c", script(steps, f"http://127.0.0.1:{port}", key, receiver_port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    printed = outputs(run.stdout)
    if run.returncode != 0:
        failed = steps[len(printed) - 1]
        pytest.fail(
            f"README line {failed.line} failed (exit {run.returncode}):\n{failed.text}\n"
            f"output: {printed[-1][:2000]}\nstderr: {run.stderr[-2000:]}"
        )
    problems: list[str] = []
    for step, output in zip(steps, printed, strict=False):
        if step.sample_text is None:
            continue
        try:
            actual = json.loads(output)
        except json.JSONDecodeError:
            problems.append(f"README line {step.line}: the output is not JSON: {output[:300]}")
            continue
        shown = parse_sample(step.sample_text)
        problems += [f"README line {step.line}: {p}" for p in mismatches(shown, actual)]
    assert not problems, "\n".join(problems)
