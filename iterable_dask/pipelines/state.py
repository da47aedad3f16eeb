"""Merging the state that parallel tasks changed back into the caller's state.

Every task starts from its own copy of ``start_state``. When it finishes,
what it changed is merged into the caller's state in source order, like
Spark's accumulators, by :func:`merge_state`:

- numbers (int, float, complex; not bool) add up what each task added;
- lists and tuples extend with the items each task appended;
- :class:`collections.Counter` adds each task's new counts;
- sets union;
- dicts merge key by key with these same rules;
- anything else (strings, bools, None, objects) takes the value of the last
  task, in source order, that changed it.

A ``merge_state(merged, task_state)`` argument replaces this rule.
"""

from __future__ import annotations

import copy
from collections import Counter
from numbers import Number
from typing import Any

__all__ = ["merge_state", "merge_value"]

_MISSING = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


def merge_value(merged: Any, task: Any, start: Any = _MISSING) -> Any:
    """Merge one task's value into the merged value; ``start`` is what the task started from.

    Examples
    --------
    >>> merge_value(10, 7, 5)   # the task added 2
    12
    >>> merge_value([1, 2], [0, 9], [0])  # the task appended 9
    [1, 2, 9]
    """
    if merged is _MISSING:
        return copy.deepcopy(task) if start is _MISSING else _delta(task, start)
    if _is_number(merged) and _is_number(task):
        base = start if _is_number(start) else 0
        return merged + (task - base)
    if isinstance(merged, Counter) and isinstance(task, Counter):
        out = Counter(merged)
        base = start if isinstance(start, Counter) else Counter()
        for key, value in task.items():
            added = value - base.get(key, 0)
            if added:
                out[key] += added
        return out
    if isinstance(merged, dict) and isinstance(task, dict):
        base = start if isinstance(start, dict) else {}
        out = dict(merged)
        for key, value in task.items():
            out[key] = merge_value(merged.get(key, _MISSING), value, base.get(key, _MISSING))
        return out
    if isinstance(merged, (set, frozenset)) and isinstance(task, (set, frozenset)):
        return type(merged)(merged | task)
    if isinstance(merged, (list, tuple)) and isinstance(task, (list, tuple)):
        base = start if isinstance(start, (list, tuple)) else ()
        added = list(task[len(base) :]) if list(task[: len(base)]) == list(base) else list(task)
        return type(merged)([*merged, *added])
    if start is not _MISSING and _equal(task, start):
        return merged  # unchanged by this task
    return copy.deepcopy(task)


def _delta(task: Any, start: Any) -> Any:
    """What a task added to a value the caller does not have yet."""
    if _is_number(task) and _is_number(start):
        return task - start
    return copy.deepcopy(task)


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b


def merge_state(merged: dict[str, Any], task_state: dict[str, Any], start_state: dict[str, Any]) -> dict[str, Any]:
    """Merge a task's final state into ``merged`` (in place) by the documented rule; return it.

    Examples
    --------
    >>> start = {"count": 0, "seen": []}
    >>> merged = {"count": 0, "seen": []}
    >>> merge_state(merged, {"count": 3, "seen": ["a"]}, start)
    {'count': 3, 'seen': ['a']}
    >>> merge_state(merged, {"count": 2, "seen": ["b"], "last": "b"}, start)
    {'count': 5, 'seen': ['a', 'b'], 'last': 'b'}
    """
    for key, value in task_state.items():
        merged[key] = merge_value(merged.get(key, _MISSING), value, start_state.get(key, _MISSING))
    return merged
