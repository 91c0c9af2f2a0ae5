"""Port sets: ``PortSet.parse("22,80,1000-2000")``, kept as sorted, merged ranges."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from probes.errors import ProbeInputError
from probes.ranges import merge_ranges

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
            if item.startswith("-"):
                # nmap reads "-100" as 1-100, but "-1" is also how a negative number looks: never guess
                raise ProbeInputError(f"bad port {item!r} in {text!r}: ports are 1-{MAX_PORT}; write a range from "
                                      f"port 1 as 1{item}")
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
        return cls(merge_ranges(ranges))

    @classmethod
    def of(cls, ports: Iterable[int]) -> PortSet:
        ranges = []
        for p in ports:
            if not MIN_PORT <= p <= MAX_PORT:
                raise ProbeInputError(f"port {p} out of range {MIN_PORT}-{MAX_PORT}")
            ranges.append((p, p))
        if not ranges:
            raise ProbeInputError("empty port list")
        return cls(merge_ranges(ranges))

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

