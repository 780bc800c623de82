"""The README's walk-through as a script: its bash blocks split into commands, each command's
sample output (the `# =>` comment under it) kept beside it, and a sample checked against what the
command really printed.

A sample is JSON with `...` where the README leaves things out. It matches an output when every
member it shows is in the output with that value (objects: the members shown; arrays: the elements
shown, in order, among the output's), and a number shown with d decimals is the output's number
rounded to d decimals.
"""

import json
import math
import re
import shlex
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

FENCE = re.compile(r"^```(\w*)\s*$")
SAMPLE_START = "# => "
SAMPLE_MORE = "#    "


@dataclass
class Command:
    text: str
    line: int  # in the README, 1-based
    sample: list[str] = field(default_factory=list)

    @property
    def sample_text(self) -> str | None:
        return "\n".join(self.sample) if self.sample else None


def section(markdown: str, heading: str) -> tuple[str, int]:
    """The text under `## heading` up to the next `## `, and the line it starts on."""
    lines = markdown.splitlines()
    start = lines.index(f"## {heading}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end]), start + 1


def code_blocks(text: str, first_line: int = 1) -> list[tuple[str, list[tuple[int, str]]]]:
    """Each fenced block as (language, [(line number, line)])."""
    blocks: list[tuple[str, list[tuple[int, str]]]] = []
    current: list[tuple[int, str]] | None = None
    language = ""
    for number, line in enumerate(text.splitlines(), first_line):
        fence = FENCE.match(line)
        if fence and current is None:
            language, current = fence.group(1), []
        elif line.startswith("```") and current is not None:
            blocks.append((language, current))
            current = None
        elif current is not None:
            current.append((number, line))
    if current is not None:
        raise ValueError(f"a code block opened before line {first_line} is never closed")
    return blocks


_QUOTED = re.compile(r"'[^']*'|" + r'"(?:[^"\\]|\\.)*"')
_COMMENT = re.compile(r"(^|\s)#.*$", re.MULTILINE)


def _complete(text: str) -> bool:
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on
        return False
    # The brackets of `name=(...)` arrays and `{ ...; }` function bodies, outside quotes.
    bare = _COMMENT.sub("", _QUOTED.sub("", text))
    return bare.count("(") <= bare.count(")") and bare.count("{") <= bare.count("}")


def commands(lines: list[tuple[int, str]]) -> list[Command]:
    """The commands of a bash block, with the sample under each."""
    found: list[Command] = []
    pending: list[str] = []
    pending_line = 0
    in_sample = False
    for number, line in lines:
        if pending:
            pending.append(line)
            if _complete("\n".join(pending)):
                found.append(Command("\n".join(pending), pending_line))
                pending = []
            continue
        stripped = line.strip()
        if stripped.startswith(SAMPLE_START.strip()) and line.startswith(SAMPLE_START):
            if not found:
                raise ValueError(f"line {number}: a sample before any command")
            if found[-1].sample:
                raise ValueError(f"line {number}: a second sample for one command")
            found[-1].sample.append(line[len(SAMPLE_START) :])
            in_sample = True
            continue
        if in_sample and line.startswith(SAMPLE_MORE):
            found[-1].sample.append(line[len(SAMPLE_MORE) :])
            continue
        in_sample = False
        if not stripped or stripped.startswith("#"):
            continue
        if _complete(line):
            found.append(Command(line, number))
        else:
            pending, pending_line = [line], number
    if pending:
        raise ValueError(f"line {pending_line}: a command that never ends")
    return found


_ELISION = re.compile(r",\s*\.\.\.(?=\s*[}\]])|\.\.\.\s*,|(?<=[\[{])\s*\.\.\.\s*(?=[}\]])")


def parse_sample(text: str) -> Any:
    """A sample as JSON: `...` left out, decimals kept exactly as written."""
    return json.loads(_ELISION.sub("", text), parse_float=Decimal)


def mismatches(sample: Any, actual: Any, path: str = "$") -> list[str]:
    """Where `sample` is not shown truthfully by `actual` (empty when it is)."""
    if isinstance(sample, dict):
        if not isinstance(actual, dict):
            return [f"{path}: the output has {_kind(actual)}, the README an object"]
        problems: list[str] = []
        for key, value in sample.items():
            if key not in actual:
                problems.append(f"{path}.{key}: not in the output")
            else:
                problems += mismatches(value, actual[key], f"{path}.{key}")
        return problems
    if isinstance(sample, list):
        if not isinstance(actual, list):
            return [f"{path}: the output has {_kind(actual)}, the README an array"]
        return _in_order(sample, actual, path)
    if isinstance(sample, Decimal):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return [f"{path}: the README shows {sample}, the output {actual!r}"]
        places = max(0, -int(sample.as_tuple().exponent))
        if not _rounds_to(actual, sample, places):
            return [f"{path}: the README shows {sample}, the output {actual!r}"]
        return []
    if isinstance(sample, int) and not isinstance(sample, bool):
        if isinstance(actual, float) and actual.is_integer():
            actual = int(actual)
        if isinstance(actual, bool) or actual != sample:
            return [f"{path}: the README shows {sample}, the output {actual!r}"]
        return []
    if sample != actual:
        return [f"{path}: the README shows {sample!r}, the output {actual!r}"]
    return []


def _rounds_to(actual: float, shown: Decimal, places: int) -> bool:
    scaled = Decimal(repr(actual)) * (Decimal(10) ** places)
    # half away from zero, as the service rounds for display
    rounded = math.floor(abs(scaled) + Decimal("0.5")) * (1 if scaled >= 0 else -1)
    return Decimal(rounded) == shown * (Decimal(10) ** places)


def _in_order(sample: list[Any], actual: list[Any], path: str) -> list[str]:
    position = 0
    for index, wanted in enumerate(sample):
        while position < len(actual) and mismatches(wanted, actual[position], path):
            position += 1
        if position == len(actual):
            best = mismatches(wanted, actual[min(index, len(actual) - 1)], f"{path}[{index}]")
            return best or [f"{path}[{index}]: not in the output (in this order)"]
        position += 1
    return []


def _kind(value: Any) -> str:
    return type(value).__name__
