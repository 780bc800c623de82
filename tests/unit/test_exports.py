"""The export's cells: the OWASP formula guard on text, numbers left alone, RFC 4180 quoting."""

import csv
import io

import pytest

from app.presenters.exports import Column, Kind, csv_line, csv_row, guard_text


def read_back(line: bytes) -> list[str]:
    return next(csv.reader(io.StringIO(line.decode(), newline="")))


class TestFormulaGuard:
    @pytest.mark.parametrize(
        ("text", "written"),
        [
            ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
            ("+1 555 0100", "'+1 555 0100"),
            ("-12.5", "'-12.5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tleading tab", "'\tleading tab"),
            ("\rleading return", "'\rleading return"),
            ("   =1+1", "'   =1+1"),
            (" @x", "' @x"),
            ("  -x", "'  -x"),
            # Already quoted: quoted again, so undoing the guard (one quote off) is lossless.
            ("'=1", "''=1"),
            ("'plain", "''plain"),
        ],
    )
    def test_neutralises_a_cell_a_spreadsheet_would_run(self, text: str, written: str) -> None:
        assert guard_text(text) == written

    @pytest.mark.parametrize(
        "text", ["plain", "a=b", "1-2", "x@y.com", "", "   ", "café", "\nnew line first"]
    )
    def test_leaves_other_text_alone(self, text: str) -> None:
        assert guard_text(text) == text


def column(kind: Kind) -> tuple[Column, ...]:
    return (Column("c", kind, lambda item: item["c"], "a cell"),)


class TestCells:
    @pytest.mark.parametrize(("value", "written"), [(-12.5, b"-12.5\r\n"), (-3, b"-3\r\n")])
    def test_a_negative_number_stays_a_bare_number(self, value: float, written: bytes) -> None:
        assert csv_row(column(Kind.NUMBER), {"c": value}) == written

    def test_a_negative_number_as_text_is_guarded(self) -> None:
        assert csv_row(column(Kind.TEXT), {"c": "-12.5"}) == b"'-12.5\r\n"

    def test_null_is_an_empty_cell(self) -> None:
        assert csv_row(column(Kind.NUMBER) + column(Kind.TEXT), {"c": None}) == b",\r\n"

    def test_booleans_and_json(self) -> None:
        assert csv_row(column(Kind.BOOLEAN), {"c": False}) == b"false\r\n"
        row = csv_row(column(Kind.JSON), {"c": {"b": 1, "a": "x,y"}})
        assert row == b'"{""a"":""x,y"",""b"":1}"\r\n'

    def test_a_number_column_refuses_text_that_is_no_number(self) -> None:
        with pytest.raises(TypeError):
            csv_row(column(Kind.NUMBER), {"c": True})

    def test_quotes_only_what_rfc_4180_needs_and_reads_back(self) -> None:
        cells: list[str | int] = ["plain", 'say "hi"', "a,b", "two\r\nlines", "ünïcode", 7]
        line = csv_line(cells)
        assert line == 'plain,"say ""hi""","a,b","two\r\nlines",ünïcode,7\r\n'.encode()
        assert read_back(line) == [*cells[:5], "7"]
