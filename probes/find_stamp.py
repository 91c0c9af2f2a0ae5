"""GNU find's ``%T@``/``%C@`` stamps ("1715000000.1234567890") as integer nanoseconds: the one parser, used by
the file-integrity walk (probes/fim/walk.py), its command-based scan of remote hosts (probes/fim/remote.py) and
the SSH transport's batched stat (probes/remote/ssh_batch.py)."""

from __future__ import annotations


def stamp_ns(text: bytes | str) -> int:
    """Integer nanoseconds without float rounding. A negative stamp reads as find prints it: "-1.5" is 1.5 s
    before the epoch (the sign applies to the fraction too)."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    sec, _, frac = raw.partition(b".")
    if len(frac) >= 9:
        return int(sec + frac[:9])  # the digits are the nanosecond count; int() takes the sign and zeros
    return int(sec + (frac + b"000000000")[:9])
