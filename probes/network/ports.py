"""Port sets: ``PortSet.parse("22,80,1000-2000")``, kept as sorted, merged ranges."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from probes.errors import ProbeInputError

MIN_PORT = 1
MAX_PORT = 65535


@dataclass(frozen=True, slots=True)
class PortSet:
    """Inclusive, sorted, non-overlapping ranges of ports in 1..65535."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> PortSet:
        if not text or not text.strip():
            raise ProbeInputError("empty port list")
        if text.strip() in ("-", "all"):
            return cls.all()
        ranges: list[tuple[int, int]] = []
        for part in text.split(","):
            item = part.strip()
            if not item:
                raise ProbeInputError(f"bad port list {text!r}: empty item")
            lo_s, sep, hi_s = item.partition("-")
            try:
                lo = int(lo_s) if lo_s.strip() else MIN_PORT
                hi = (int(hi_s) if hi_s.strip() else MAX_PORT) if sep else lo
            except ValueError:
                raise ProbeInputError(f"bad port {item!r} in {text!r}: not a number") from None
            for p in (lo, hi):
                if not MIN_PORT <= p <= MAX_PORT:
                    raise ProbeInputError(f"port {p} out of range {MIN_PORT}-{MAX_PORT} in {text!r}")
            if lo > hi:
                raise ProbeInputError(f"bad port range {item!r}: {lo} > {hi}")
            ranges.append((lo, hi))
        return cls(_merge(ranges))

    @classmethod
    def of(cls, ports: Iterable[int]) -> PortSet:
        ranges = []
        for p in ports:
            if not MIN_PORT <= p <= MAX_PORT:
                raise ProbeInputError(f"port {p} out of range {MIN_PORT}-{MAX_PORT}")
            ranges.append((p, p))
        if not ranges:
            raise ProbeInputError("empty port list")
        return cls(_merge(ranges))

    @classmethod
    def all(cls) -> PortSet:
        return cls(((MIN_PORT, MAX_PORT),))

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and any(lo <= port <= hi for lo, hi in self.ranges)

    def __iter__(self) -> Iterator[int]:
        for lo, hi in self.ranges:
            yield from range(lo, hi + 1)

    def __len__(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.ranges)

    def issubset(self, other: PortSet) -> bool:
        return all(any(olo <= lo and hi <= ohi for olo, ohi in other.ranges) for lo, hi in self.ranges)

    def difference(self, other: PortSet) -> list[int]:
        """Ports here and not in other (for refusal messages; small sets only in practice)."""
        return [p for p in self if p not in other]

    def __str__(self) -> str:
        """nmap's ``-p`` syntax."""
        return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges)


def _merge(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)
