"""Integer ranges: port lists and address spans are kept as sorted, merged (low, high) pairs."""

from __future__ import annotations

from collections.abc import Iterable


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted, with overlapping and adjacent ranges joined: (1, 3), (4, 9), (8, 12) -> (1, 12)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)
