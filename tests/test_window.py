"""windowed_results keeps a bounded number of tasks in flight and cancels them on early exit."""

from __future__ import annotations

import time

import pytest

from iterable_dask.core.window import windowed_results


def _slow_square(x):
    time.sleep(0.01 * (x % 3))
    return x * x


def test_results_in_order_and_inputs_pulled_lazily(client):
    pulled = []

    def items():
        for i in range(40):
            pulled.append(i)
            yield i

    gen = windowed_results(client, _slow_square, items(), window=4, key_prefix="test-window")
    first = [next(gen) for _ in range(3)]
    assert first == [(0, 0), (1, 1), (2, 4)]
    assert len(pulled) <= 3 + 4  # consumed + window
    rest = list(gen)
    assert [i for i, _ in first + rest] == list(range(40))
    assert all(r == i * i for i, r in first + rest)


def test_unordered_yields_everything_once(client):
    got = list(windowed_results(client, _slow_square, range(30), window=3, key_prefix="test-window-u", ordered=False))
    assert sorted(got) == [(i, i * i) for i in range(30)]


def _boom(x):
    if x == 5:
        raise KeyError(f"no {x}")
    return x


def _tasks_named(client, prefix: str) -> list[str]:
    return [
        k for k in client.run_on_scheduler(lambda dask_scheduler: list(map(str, dask_scheduler.tasks))) if prefix in k
    ]


def _wait_until_gone(client, prefix: str, timeout: float = 30.0) -> None:
    """Poll the scheduler until no task of ``prefix`` is left (cancellation is asynchronous)."""
    deadline = time.monotonic() + timeout
    while _tasks_named(client, prefix):
        assert time.monotonic() < deadline, f"tasks {prefix!r} still on the scheduler after {timeout}s"
        time.sleep(0.05)


def test_task_errors_reach_the_consumer_and_cancel_the_rest(client):
    with pytest.raises(KeyError, match="no 5"):
        list(windowed_results(client, _boom, range(50), window=4, key_prefix="test-window-e"))
    _wait_until_gone(client, "test-window-e")


def test_closing_early_cancels_in_flight_tasks(client):
    gen = windowed_results(client, _slow_square, range(1000), window=5, key_prefix="test-window-c")
    next(gen)
    assert 0 < len(_tasks_named(client, "test-window-c")) <= 5 + 1  # the window, plus the one being yielded
    gen.close()
    _wait_until_gone(client, "test-window-c")


def test_window_must_be_positive(client):
    with pytest.raises(ValueError, match="window must be >= 1, got 0"):
        next(windowed_results(client, abs, [1], window=0, key_prefix="x"))


def _fail_late_first(x):
    time.sleep(0.3 if x == 0 else 0)
    raise ValueError(f"failed {x}")


def test_ordered_raises_the_first_failure_in_input_order(client):
    with pytest.raises(ValueError, match="failed 0"):
        list(windowed_results(client, _fail_late_first, range(4), window=4, key_prefix="test-window-f"))
