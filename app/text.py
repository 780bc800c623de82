"""Comments as words: the one folding and tokenisation that themes and suggested themes share.

A comment is folded (Unicode NFKD, combining marks U+0300-U+036F dropped, lower case), then cut
into words: runs of letters and digits. "Café" and "CAFE" are both the word `cafe`; "PREIS" is
`preis`; "e-mail" is the two words `e mail`. PostgreSQL does the same on the stored comments
(`fold_sql`, `WORD_CLASS`), so the matching and the counting stay in SQL; Python folds what a
caller gives (theme keywords) the same way.

Letters are what the database's LC_CTYPE calls alphanumeric: under a UTF-8 locale (C.UTF-8,
en_US.UTF-8) every script's letters; under the plain C locale only ASCII letters (accented Latin
letters still fold to them). normalize() needs a UTF-8 database.
"""

import re
import unicodedata
from typing import Any

from sqlalchemy import ColumnElement, func, literal, literal_column

# The combining diacritical marks NFKD splits off accented Latin, Greek and Cyrillic letters.
MARKS = "[\u0300-\u036f]"
_MARKS = re.compile(MARKS)
_WORD = re.compile(r"[^\W_]+")
# A word's letters in PostgreSQL's regular expressions (POSIX class, locale-aware).
WORD_CLASS = "[:alnum:]"


def fold(text: str) -> str:
    """NFKD, combining marks dropped, lower case: what `fold_sql` does in PostgreSQL."""
    return _MARKS.sub("", unicodedata.normalize("NFKD", text)).lower()


def words(text: str) -> list[str]:
    """The folded words of `text`, in order; [] when it has no letter or digit."""
    return _WORD.findall(fold(text))


def fold_sql(column: Any) -> ColumnElement[str]:
    """fold() in SQL: lower(regexp_replace(normalize(c, NFKD), marks, '', 'g'))."""
    return func.lower(
        func.regexp_replace(
            func.normalize(column, literal_column("NFKD")), literal(MARKS), literal(""), "g"
        )
    )


def phrase_pattern(phrases: list[list[str]]) -> str:
    """A PostgreSQL regular expression matching, in folded text, any of these word sequences as
    whole words: not preceded or followed by a letter or digit, words separated by anything but
    letters and digits. The words are letters and digits only, so nothing needs escaping."""
    between = f"[^{WORD_CLASS}]+"
    alternatives = "|".join(between.join(p) for p in phrases)
    return f"(?<![{WORD_CLASS}])(?:{alternatives})(?![{WORD_CLASS}])"
