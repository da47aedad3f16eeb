"""Cutting a sequence of weighted items (files, with their bytes) into runs of about equal weight.

Greedy packing up to a size (fill a task, start the next) leaves a small
last task: 2000 small files on 2 worker threads became 8 full tasks and a
ninth, and one worker idled while the other ran it. Here the items are cut
into ``k`` runs, each aiming at an equal share of the weight still to place;
the runs keep their order.
"""

from __future__ import annotations

__all__ = ["run_count", "run_ids"]


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
