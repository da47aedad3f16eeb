"""Test helpers: sequential reference reads with iterabledata itself."""

from __future__ import annotations

from typing import Any

from iterable import open_iterable


def sequential(path: str, **iterableargs: Any) -> list[Any]:
    """Records of ``path`` as iterabledata reads them, one by one."""
    it = open_iterable(path, iterableargs=iterableargs)
    try:
        return list(it)
    finally:
        it.close()


def read_in_process(readers: list[Any]) -> list[Any]:
    """Call partition readers in this process, in order (pure logic, no cluster)."""
    out: list[Any] = []
    for reader in readers:
        out.extend(reader())
    return out
