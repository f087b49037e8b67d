"""JSON Merge Patch (RFC 7396), the body format of settings writes."""

from __future__ import annotations

from typing import Any


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Return `target` with `patch` applied; neither argument is modified.

    A `null` member removes the key, which on revalidation restores that field's default.
    """
    if not isinstance(patch, dict):
        return patch
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def json_diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """The leaf-level differences between two JSON documents, as `{path, before, after}` rows."""
    if isinstance(before, dict) and isinstance(after, dict):
        rows: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after)):
            child = f"{path}.{key}" if path else key
            rows.extend(json_diff(before.get(key), after.get(key), child))
        return rows
    if before == after:
        return []
    return [{"path": path, "before": before, "after": after}]
