"""Canonical JSON: one spelling of a value, so two bodies that mean the same compare equal."""

import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant whitespace. `true` and `1` (or `5` and `5.0`) stay apart,
    as they do in the stored JSON, where Python's `==` would call them equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
