"""Durations as people write them in options and config ("90s", "30m", "24h", "2d", a bare number of
seconds): the one parser (advance-notice lead times, relative times, config values)."""

from __future__ import annotations

import datetime as dt
import re

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> dt.timedelta:
    """Raises ValueError naming the text for anything else (negative, other units, empty)."""
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 24h, 2d)")
    return dt.timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
