"""``python -m benchmarks.suite``: run the suite and write its report (see :mod:`benchmarks.suite.main`)."""

from __future__ import annotations

import sys

from .main import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
