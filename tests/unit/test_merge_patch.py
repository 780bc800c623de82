"""RFC 7396 merge patch and the entity-tag helpers: pure functions, no database."""

import copy
from typing import Any

import pytest

from app.canonical import canonical_json
from app.etags import if_match_passes, if_none_match_hits, strong_etag
from app.merge_patch import merge_patch

# RFC 7396 Appendix A, every example: (target, patch, result).
RFC_7396_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


class TestMergePatch:
    @pytest.mark.parametrize(("target", "patch", "result"), RFC_7396_EXAMPLES)
    def test_rfc_7396_examples(self, target: Any, patch: Any, result: Any) -> None:
        assert merge_patch(target, patch) == result

    def test_neither_argument_is_changed(self) -> None:
        target = {"a": {"b": 1, "c": 2}, "d": [1]}
        patch = {"a": {"b": None, "e": {"f": 3}}, "d": None}
        before = copy.deepcopy((target, patch))

        merge_patch(target, patch)

        assert (target, patch) == before


class TestEntityTags:
    def test_equal_json_values_have_equal_tags(self) -> None:
        assert strong_etag({"a": 1, "b": [1, 2]}) == strong_etag({"b": [1, 2], "a": 1})
        assert strong_etag({"a": 1}) != strong_etag({"a": 2})
        assert canonical_json({"b": 1, "a": "é"}) == '{"a":"\\u00e9","b":1}'

    @pytest.mark.parametrize(
        ("header", "passes"),
        [
            (None, True),
            ('"t1"', True),
            ('"t0", "t1"', True),
            ("*", True),
            ('"t0"', False),
            ('W/"t1"', False),
            ("", False),
        ],
    )
    def test_if_match_compares_strongly(self, header: str | None, passes: bool) -> None:
        assert if_match_passes(header, '"t1"') is passes

    @pytest.mark.parametrize(
        ("header", "hits"),
        [(None, False), ('"t1"', True), ('W/"t1"', True), ('"t0" ,"t1"', True), ("*", True)],
    )
    def test_if_none_match_compares_weakly(self, header: str | None, hits: bool) -> None:
        assert if_none_match_hits(header, '"t1"') is hits
        assert if_none_match_hits(header, '"t2"') is (hits and header == "*")
