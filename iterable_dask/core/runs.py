"""Cutting a sequence of weighted items (files, with their bytes) into runs of about equal weight.

Greedy packing up to a size (fill a task, start the next) leaves a small
last task: 2000 small files on 2 worker threads became 8 full tasks and a
ninth, and one worker idled while the other ran it. Here the items are cut
into ``k`` runs, each aiming at an equal share of the weight still to place;
the runs keep their order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

__all__ = ["TASKS_PER_THREAD", "group_runs", "run_count", "run_ids"]

T = TypeVar("T")

#: Tasks per worker thread a plan aims for at least (Spark's rule for packing splits), so a slow task
#: delays the end little: the one number every planner of tasks uses.
TASKS_PER_THREAD = 4


def run_count(total: int, target: int, items: int, min_runs: int = 1) -> int:
    """The fewest runs keeping each within ``target`` (at least ``min_runs``, at most one per item).

    Examples
    --------
    >>> run_count(total=2000, target=300, items=2000, min_runs=8)
    8
    >>> run_count(total=2000, target=100, items=2000, min_runs=8)
    20
    >>> run_count(total=2000, target=100, items=3, min_runs=8)
    3
    """
    runs = max(1, -(-total // max(1, target)), min_runs)
    return max(1, min(runs, items))


def run_ids(weights: list[int], runs: int, target: int | None = None) -> list[int]:
    """The run of each item: consecutive, ``runs`` of them (more if ``target`` caps a run), balanced by weight.

    Each run aims at an equal share of the weight still to place; an item
    joins the run when at least half of it fits the share, and when as many
    items are left as runs, each gets its own.

    Examples
    --------
    >>> run_ids([1] * 9, 2)
    [0, 0, 0, 0, 0, 1, 1, 1, 1]
    >>> run_ids([5, 1, 1, 1, 1, 1], 2)
    [0, 1, 1, 1, 1, 1]
    >>> run_ids([10, 12, 9, 11], 4)
    [0, 1, 2, 3]
    >>> run_ids([0] * 8, 4)
    [0, 0, 1, 1, 2, 2, 3, 3]
    """
    if not any(weights):  # nothing to weigh (empty files, no open cost): count the items
        weights = [1] * len(weights)
    out: list[int] = []
    left = sum(weights)
    run = -1
    filled = goal = 0.0
    for i, weight in enumerate(weights):
        runs_after = runs - run - 1  # runs still to start after the current one
        if run < 0 or runs_after >= len(weights) - i:
            new = True
        else:
            new = (runs_after > 0 and filled + weight / 2 > goal) or (target is not None and filled + weight > target)
        if new:
            run += 1
            filled = 0.0
            goal = left / max(1, runs - run)
        out.append(run)
        filled += weight
        left -= weight
    return out


def group_runs(
    items: Sequence[T], weights: Sequence[int | None], target: int, threads: int | None = None
) -> Iterator[list[T]]:
    """Consecutive items in tasks: those with a weight in balanced runs, those without (None) one task each.

    The one planner of tasks over files: a weighed item is a whole file that
    may share a task (its bytes plus an open cost); an item of weight None
    (a byte range, a file read in the caller) is a task of its own and closes
    the run before it, so order holds. The weighed items are cut into the
    fewest runs that keep each within ``target`` and give at least
    :data:`TASKS_PER_THREAD` tasks per worker thread (with ``threads``), each
    run aiming at an equal share (:func:`run_ids`).

    Examples
    --------
    >>> list(group_runs("abcdef", [1, 1, None, 1, 1, 1], target=10))
    [['a', 'b'], ['c'], ['d', 'e', 'f']]
    >>> list(group_runs("abcdefgh", [1] * 8, target=10, threads=1))
    [['a', 'b'], ['c', 'd'], ['e', 'f'], ['g', 'h']]
    """
    weighed = [w for w in weights if w is not None]
    min_runs = threads * TASKS_PER_THREAD if threads else 1
    runs = iter(run_ids(weighed, run_count(sum(weighed), target, len(weighed), min_runs), target))
    group: list[T] = []
    current = None
    for item, weight in zip(items, weights, strict=True):
        if weight is None:
            if group:
                yield group
            group, current = [], None
            yield [item]
            continue
        run = next(runs)
        if group and run != current:
            yield group
            group = []
        current = run
        group.append(item)
    if group:
        yield group
