"""Progress bars (tqdm in a terminal, a widget in Jupyter) and safe progress callbacks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = ["ProgressBar", "call_progress"]

logger = logging.getLogger(__name__)


def call_progress(progress: Callable[[dict[str, Any]], None] | None, stats: dict[str, Any]) -> None:
    """Call a user progress callback in the caller; its errors are logged, not raised (as upstream)."""
    if progress is None:
        return
    try:
        progress(stats)
    except Exception as e:
        logger.warning("Error in progress callback: %s", e)


class ProgressBar:
    """A tqdm bar that draws a notebook widget under Jupyter; a no-op when disabled.

    Examples
    --------
    >>> with ProgressBar(total=3, desc="files", enabled=False) as bar:
    ...     bar.update(3)
    """

    def __init__(self, total: int | None, desc: str, unit: str = "it", enabled: bool = True) -> None:
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm  # notebook-friendly in Jupyter, plain tqdm in a terminal

            self._bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def set_postfix_str(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
