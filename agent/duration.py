"""Durations as people write them in options and config ("90s", "30m", "24h", "2d", a bare number of
seconds): the one parser (advance-notice lead times, relative times, config values)."""

from __future__ import annotations

import datetime as dt
import re

MAX_DURATION = dt.timedelta(days=3660)  # ten years: anything longer is a typo or an attempt to overflow
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> dt.timedelta:
    """Raises ValueError naming the text for anything else (negative, other units, empty)."""
    m = _DURATION_RE.match(text) if len(text) <= 32 else None
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 24h, 2d)")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not seconds <= MAX_DURATION.total_seconds():  # also refuses inf and nan
        raise ValueError(f"duration {text!r} is more than ten years")
    return dt.timedelta(seconds=seconds)
