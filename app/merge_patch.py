"""RFC 7396 JSON Merge Patch, as a pure function of two parsed JSON values."""

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """The target with the patch applied: objects merge member by member, recursively; a null
    member removes that member; anything else (arrays, scalars, a non-object patch) replaces.

    Neither argument is changed.
    """
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged
