"""Reading import files without a database: the formula guard undone, cells read strictly, the
delimiter sniffed, records split across lines, and the presets' readings."""

import pytest

from app.models import ImportKind
from app.presenters.exports import guard_text
from app.services.import_files import (
    CsvRecords,
    FileRefused,
    csv_value,
    resolve_columns,
    sniff_delimiter,
    unguard,
)
from app.services.import_presets import instant, job_level_of, role_of, slug


@pytest.mark.parametrize(
    "text", ["=SUM(A1)", "'quoted", "''twice", "  -1", "@x", "\tx", "plain", "", " a", "'", "-"]
)
def test_unguard_undoes_exactly_the_export_guard(text: str) -> None:
    assert unguard(guard_text(text)) == text


def test_a_quote_the_guard_did_not_put_stays() -> None:
    assert unguard("'tis") == "'tis"


@pytest.mark.parametrize(
    ("cell", "value"),
    [("9", 9), ("0", 0), ("10", 10), ("9.5", "9.5"), (" 9", " 9"), ("09", "09"), ("yes", "yes")],
)
def test_a_score_cell_is_an_integer_only_when_it_is_one(cell: str, value: object) -> None:
    assert csv_value("score", cell) == (value, None)


def test_booleans_and_json_cells() -> None:
    assert csv_value("excluded", "true") == (True, None)
    assert csv_value("excluded", "yes") == ("yes", None)
    assert csv_value("attributes", '{"a": 1}') == ({"a": 1}, None)
    assert csv_value("attributes", "{") == (None, "not JSON text")


def test_the_delimiter_is_sniffed_outside_quotes() -> None:
    assert sniff_delimiter("a;b;c\r\n") == ";"
    assert sniff_delimiter('"x;y;z",b\r\n') == ","


def test_a_record_spanning_lines_is_read_whole_whichever_way_lines_arrive() -> None:
    records = CsvRecords(",")
    got: list[tuple[list[str] | None, str, str | None]] = []
    for line in ["a,b\r\n", '1,"two\n', 'lines""\n', 'end"\r\n', "3,4\r\n"]:
        records.push(line)
        got.extend(records.records())
    records.finish()
    got.extend(records.records())
    assert [cells for cells, _, _ in got] == [["a", "b"], ["1", 'two\nlines"\nend'], ["3", "4"]]


def test_unknown_columns_are_refused_and_mapped_ones_taken() -> None:
    with pytest.raises(FileRefused, match="scroe"):
        resolve_columns(ImportKind.RESPONSES, ["score", "scroe"], {}, lenient=False)
    targets = resolve_columns(
        ImportKind.RESPONSES, ["Score", "NPS Notes"], {"nps notes": "comment"}, lenient=False
    )
    assert targets == ["score", "comment"]


def test_preset_readings() -> None:
    assert instant("1767268800") == "2026-01-01T12:00:00Z"
    assert instant("2026-01-02 09:00:00 -0500") == "2026-01-02T09:00:00-05:00"
    assert instant("2026-01-02 09:00:00") == "2026-01-02 09:00:00"  # naive: not guessed
    assert slug("Acme Corp.") == "acme-corp."
    assert [job_level_of(t) for t in ("CEO", "Head of IT", "Team Lead", "Analyst", "")] == [
        "executive",
        "director",
        "manager",
        "individual_contributor",
        "other",
    ]
    assert [role_of(r) for r in ("Decision Maker", "Evaluator", "End User", "Gatekeeper")] == [
        "decision_maker",
        "influencer",
        "user",
        "other",
    ]
