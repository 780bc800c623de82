"""docs/scoring.md's worked examples are what app.scoring computes.

Each table after a `<!-- checked: NAME -->` line is parsed; every number must equal the code's
result rounded (half away from zero) to the digits the page shows.
"""

import re
from pathlib import Path

import pytest

from app.scoring import (
    CIMethod,
    Interval,
    Precision,
    Tally,
    WeightedTally,
    compare,
    compare_weighted,
    confidence_interval,
    precision,
    rate,
    round_half_away,
    weighted_interval,
    wilson_interval,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "scoring.md"
Row = dict[str, str]
# The page is typeset: minus signs, and a multiplication sign between score and weight.
MINUS, TIMES = "\N{MINUS SIGN}", "\N{MULTIPLICATION SIGN}"


def checked_table(name: str) -> list[Row]:
    """The rows of the table after `<!-- checked: name -->`, keyed by its header."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"<!-- checked: {name} -->") + 1
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, rule, *rows = table
    assert set("".join(rule)) <= {"-"}
    assert rows, f"the table {name!r} has no rows"
    return [dict(zip(header, row, strict=True)) for row in rows]


def number(text: str) -> float:
    return float(text.replace(MINUS, "-"))


def shown(value: float, text: str) -> bool:
    """`value` rounded to the digits of `text` is the number `text` shows."""
    digits = len(text.partition(".")[2])
    return round_half_away(value, digits) == number(text)


def interval_shown(interval: Interval | None, text: str) -> bool:
    assert interval is not None
    low, high = text.strip("[]").split(",")
    return shown(interval.low, low.strip()) and shown(interval.high, high.strip())


def tally(text: str) -> Tally:
    promoters, passives, detractors = (int(c) for c in text.split("/"))
    return Tally(promoters, passives, detractors)


def pairs(text: str) -> list[tuple[int, float]]:
    out = []
    for item in text.split(","):
        score, weight = item.strip().split(TIMES)
        out.append((int(score), float(weight)))
    return out


def test_the_page_is_where_the_api_points() -> None:
    assert DOC.is_file()


@pytest.mark.parametrize("row", checked_table("intervals"), ids=lambda r: r["Counts"])
def test_intervals(row: Row) -> None:
    t = tally(row["Counts"])
    level = number(row["Level"])
    assert t.nps is not None
    assert shown(t.nps, row["NPS"])
    for method in CIMethod:
        if row[method.value]:
            interval = confidence_interval(t, method=method, confidence=level)
            assert interval_shown(interval, row[method.value]), method


@pytest.mark.parametrize("row", checked_table("weighted"), ids=lambda r: r["Answers"])
def test_weighted(row: Row) -> None:
    answers = pairs(row["Answers"])
    w = WeightedTally.from_pairs(answers)
    plain = Tally.from_scores(score for score, _ in answers)
    assert w.nps is not None
    assert plain.nps is not None
    assert shown(w.nps, row["Weighted NPS"])
    assert shown(w.n_effective, row["n_effective"])
    assert interval_shown(weighted_interval(w), row["Interval (0.95)"])
    assert shown(plain.nps, row["Unweighted NPS"])


def _side(text: str) -> Tally | WeightedTally:
    return WeightedTally.from_pairs(pairs(text)) if TIMES in text else tally(text)


@pytest.mark.parametrize(
    "row", checked_table("changes"), ids=lambda r: f"{r['First']} {r['Second']}"
)
def test_changes(row: Row) -> None:
    first, second = _side(row["First"]), _side(row["Second"])
    if isinstance(first, WeightedTally):
        assert isinstance(second, WeightedTally)
        change = compare_weighted(first, second)
    else:
        assert isinstance(second, Tally)
        change = compare(first, second)
    assert change is not None
    assert first.nps is not None
    assert second.nps is not None
    assert shown(first.nps, row["NPS first"])
    assert shown(second.nps, row["NPS second"])
    assert shown(change.difference, row["difference"])
    assert shown(change.adjusted_difference, row["adjusted_difference"])
    assert interval_shown(Interval(change.low, change.high), row["Interval"])
    assert shown(change.z, row["z"])
    assert shown(change.p_value, row["p"])
    assert change.significant is {"yes": True, "no": False}[row["Significant"]]


@pytest.mark.parametrize(
    "row", checked_table("rates"), ids=lambda r: f"{r['Answered']}/{r['Invited']}"
)
def test_rates(row: Row) -> None:
    answered, invited = int(row["Answered"]), int(row["Invited"])
    share = rate(answered, invited)
    assert share is not None
    assert shown(share, row["Rate"])
    interval = wilson_interval(answered, invited, confidence=number(row["Level"]))
    assert interval_shown(interval, row["Wilson"])


def test_the_rate_example_in_the_prose() -> None:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"(\d+) of (\d+) still gives \[(\S+), (\S+)\]", text)
    assert match is not None
    answered, invited, low, high = match.groups()
    interval = wilson_interval(int(answered), int(invited))
    assert interval_shown(interval, f"[{low}, {high}]")


@pytest.mark.parametrize("row", checked_table("precision"), ids=lambda r: r["n"])
def test_precision(row: Row) -> None:
    assert precision(int(row["n"])) is Precision(row["Precision"])


def test_the_change_example_in_the_prose() -> None:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(
        r"(\d+/\d+/\d+) against (\d+/\d+/\d+) \(P/passives/D\) is a\s+swing of "
        r"(\S+) points, with z = (\S+) and p = ([\d.]*\d)",
        text,
    )
    assert match is not None
    first, second, difference, z, p = match.groups()
    change = compare(tally(first), tally(second))
    assert change is not None
    assert shown(change.difference, difference)
    assert shown(change.z, z)
    assert shown(change.p_value, p)
