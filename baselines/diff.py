"""Baseline diff: (baseline, current) -> added / removed / changed, keyed by (probe, subject). Pure.

Unlike osquery's differential results, a changed subject is one item naming each attribute old -> new, and a
removed item carries the full old attributes. Volatile attributes (each probe row's VOLATILE) never count as
drift, and the profile's ignore rules drop expected drift with a stated reason.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import compress, count, groupby, repeat
from operator import attrgetter, itemgetter, ne
from typing import Any, Protocol, runtime_checkable

from baselines import messages as msg
from baselines.profile import Change, IgnoreRule
from baselines.rowdigest import row_digests
from probes.observation import AttrValue, Observation

ObsKey = tuple[str, str]
AttrMap = Mapping[str, AttrValue]
ObsIndex = Mapping[ObsKey, AttrMap]

_ABSENT: Any = object()


@contextmanager
def no_gc() -> Iterator[None]:
    """Building millions of small containers triggers the cyclic collector over and over although nothing
    here makes cycles; pausing it makes large baselines several times faster."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass(frozen=True, slots=True)
class AttrChange:
    name: str
    old: AttrValue
    new: AttrValue
    old_present: bool = True
    new_present: bool = True

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.old_present:
            out["old"] = _jsonable(self.old)
        if self.new_present:
            out["new"] = _jsonable(self.new)
        return out

    def text(self, lang: str = "en") -> str:
        old = _show(self.old, lang) if self.old_present else msg.ABSENT().get(lang)
        new = _show(self.new, lang) if self.new_present else msg.ABSENT().get(lang)
        return msg.ATTR_CHANGE(name=self.name, old=old, new=new).get(lang)

    def get(self, lang: str) -> str:  # a localised template parameter ({changes})
        return self.text(lang)


@dataclass(frozen=True, slots=True)
class DriftItem:
    change: Change
    probe: str
    subject: str
    old: AttrMap | None = None  # baseline attributes (removed, changed)
    new: AttrMap | None = None  # current attributes (added, changed)
    changes: tuple[AttrChange, ...] = ()  # changed items: the attributes that differ, by name

    @property
    def key(self) -> ObsKey:
        return (self.probe, self.subject)

    @property
    def changed_attrs(self) -> frozenset[str]:
        return frozenset(c.name for c in self.changes)

    def old_observation(self) -> Observation | None:
        return None if self.old is None else Observation(self.probe, self.subject, self.old)

    def new_observation(self) -> Observation | None:
        return None if self.new is None else Observation(self.probe, self.subject, self.new)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"change": self.change, "probe": self.probe, "subject": self.subject}
        if self.old is not None:
            out["old"] = {k: _jsonable(v) for k, v in self.old.items()}
        if self.new is not None:
            out["new"] = {k: _jsonable(v) for k, v in self.new.items()}
        if self.changes:
            out["changes"] = [c.to_json() for c in self.changes]
        return out

    def summary(self, lang: str = "en") -> str:
        """One line for tables: what changed, or the values an added/removed subject has/had."""
        if self.change == "changed":
            return ("；" if lang == "zh-CN" else "; ").join(c.text(lang) for c in self.changes)
        values = self.new if self.change == "added" else self.old
        shown = ", ".join(f"{k}={_show(v, lang)}" for k, v in (values or {}).items())
        return msg.WAS(values=shown).get(lang) if self.change == "removed" else shown


@dataclass(frozen=True, slots=True)
class Diff:
    added: tuple[DriftItem, ...] = ()
    removed: tuple[DriftItem, ...] = ()
    changed: tuple[DriftItem, ...] = ()
    ignored: Mapping[str, int] = field(default_factory=dict)  # ignore reason -> items (or parts) dropped
    probes: tuple[str, ...] = ()  # the probes compared

    @property
    def items(self) -> tuple[DriftItem, ...]:
        return self.added + self.removed + self.changed

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed)}

    def to_json(self) -> dict[str, Any]:
        return {
            "probes": list(self.probes),
            "counts": self.counts(),
            "added": [i.to_json() for i in self.added],
            "removed": [i.to_json() for i in self.removed],
            "changed": [i.to_json() for i in self.changed],
            "ignored": dict(self.ignored),
        }


def index(observations: Iterable[Observation]) -> dict[ObsKey, AttrMap]:
    """(probe, subject) -> attributes of the observations a baseline keeps (``in_baseline``); a later duplicate
    subject replaces an earlier one."""
    with no_gc():
        return {(o.probe, o.subject): o.attrs for o in filter(_in_baseline, observations)}


def volatile_of(observations: Iterable[Observation]) -> dict[str, frozenset[str]]:
    """Volatile attribute names per probe (of the observations a baseline keeps). VOLATILE is a class attribute
    of a row type, so a probe has one set per row type: the distinct (probe, set) pairs are collected in one
    pass at C speed and united."""
    with no_gc():
        pairs = {(o.probe, o.volatile) for o in filter(_in_baseline, observations)}
    out: dict[str, frozenset[str]] = {}
    for probe, names in pairs:
        if names:
            out[probe] = out.get(probe, frozenset()) | names
    return out


def diff(
    baseline: Iterable[Observation],
    current: Iterable[Observation],
    ignore: Sequence[IgnoreRule] = (),
    probes: Collection[str] | None = None,
) -> Diff:
    """Convenience over observation lists: volatile attributes come from the observations themselves."""
    baseline, current = list(baseline), list(current)
    volatile = volatile_of(baseline)
    for probe, names in volatile_of(current).items():
        volatile[probe] = volatile.get(probe, frozenset()) | names
    return diff_indexes(index(baseline), index(current), volatile, ignore, probes)


def diff_indexes(
    baseline: ObsIndex,
    current: ObsIndex,
    volatile: Mapping[str, frozenset[str]] | None = None,
    ignore: Sequence[IgnoreRule] = (),
    probes: Collection[str] | None = None,
) -> Diff:
    """Compare two indexes. ``probes`` limits the comparison (a probe that did not run now is not "removed")."""
    if isinstance(baseline, DigestIndex):
        by_probe: dict[str, ProbeRows] = {}
        with no_gc():
            for (probe, subject), attrs in current.items():  # keys are unique: no duplicate subjects
                rows = by_probe.setdefault(probe, ([], []))
                rows[0].append(subject)
                rows[1].append(attrs)
        return _diff_digests(baseline, by_probe, volatile or {}, ignore, probes)
    volatile = volatile or {}
    wanted = None if probes is None else frozenset(probes)
    out = _Collect(ignore, volatile)
    with no_gc():
        # Two comprehensions over every observation (one lookup and one dict comparison in C each); the
        # Python body below runs only for what differs.
        differing = [key for key, attrs in current.items() if baseline.get(key, _ABSENT) != attrs]
        gone = [key for key in baseline if key not in current]
        for key in differing:
            if wanted is None or key[0] in wanted:
                out.differs(key, baseline.get(key, _ABSENT), current[key])
        for key in gone:
            if wanted is None or key[0] in wanted:
                out.gone(key, baseline[key])
        seen_probes = set(map(itemgetter(0), baseline)) | set(map(itemgetter(0), current)) if wanted is None else set()
    return out.result(sorted(wanted) if wanted is not None else sorted(seen_probes))


def diff_observations(
    baseline: ObsIndex,
    current: Iterable[Observation],
    volatile: Mapping[str, frozenset[str]] | None = None,
    ignore: Sequence[IgnoreRule] = (),
    probes: Collection[str] | None = None,
) -> Diff:
    """``diff_indexes(baseline, index(current), ...)`` without building the tuple-keyed index of the current
    side: the fast path for a loaded baseline (a DigestIndex), which compares row digests probe by probe."""
    by_probe = group_by_probe(current)
    if isinstance(baseline, DigestIndex):
        return _diff_digests(baseline, by_probe, volatile or {}, ignore, probes)
    with no_gc():
        flat = {(p, s): a for p, (subjects, attrs) in by_probe.items() for s, a in zip(subjects, attrs, strict=True)}
    return diff_indexes(baseline, flat, volatile, ignore, probes)


ProbeRows = tuple[list[str], list[AttrMap]]  # subjects and their attributes


def group_by_probe(observations: Iterable[Observation]) -> dict[str, ProbeRows]:
    """probe -> (subjects, attributes) of the observations a baseline keeps, in order, duplicates kept (the
    diff keeps the later one, as ``index`` does). Observations come probe by probe, so groupby finds long runs
    and the per-run work is C-level."""
    out: dict[str, ProbeRows] = {}
    with no_gc():
        for probe, run in groupby(filter(_in_baseline, observations), _probe_of):
            rows = list(run)
            subjects, attrs = out.setdefault(probe, ([], []))
            subjects.extend(map(_subject_of, rows))
            attrs.extend(map(_attrs_of, rows))
    return out


def _unique(rows: ProbeRows) -> ProbeRows:
    """The rows with a duplicate subject's later attributes only, in place of its earlier ones."""
    unique = dict(zip(*rows, strict=True))
    return list(unique), list(unique.values())


_probe_of = attrgetter("probe")
_in_baseline = attrgetter("in_baseline")
_subject_of = attrgetter("subject")
_attrs_of = attrgetter("attrs")


@runtime_checkable
class DigestIndex(Protocol):
    """A baseline index that holds each row's digest (baselines/rowdigest.py) besides its attributes, so that
    unchanged rows are never decoded (baselines/store.py BaselineRows)."""

    def probe_names(self) -> Collection[str]: ...

    def probe_digests(self, probe: str) -> Mapping[str, bytes]: ...

    def digest_volatile(self, probe: str) -> frozenset[str]: ...

    def decode_many(self, probe: str, subjects: Collection[str]) -> dict[str, AttrMap]: ...

    def decoded(self) -> Iterator[tuple[ObsKey, AttrMap]]: ...


def _diff_digests(baseline: DigestIndex, current: Mapping[str, ProbeRows], volatile: Mapping[str, frozenset[str]],
                  ignore: Sequence[IgnoreRule], probes: Collection[str] | None) -> Diff:
    compared = sorted(probes) if probes is not None else sorted(set(baseline.probe_names()) | set(current))
    out = _Collect(ignore, volatile)
    with no_gc():
        for probe in compared:
            subjects, attrs = current.get(probe, ([], []))
            stored = baseline.probe_digests(probe)
            if not stored:
                subjects, attrs = _unique((subjects, attrs))
                differing, gone, old = list(range(len(subjects))), [], {}
            else:
                digests = row_digests(attrs, baseline.digest_volatile(probe))
                # One pop and one 16-byte comparison per observation, all in C; Python runs only for what
                # differs. Popping from a copy leaves exactly the gone subjects, without a pass over the baseline.
                unseen = dict(stored)
                found = list(map(unseen.pop, subjects, repeat(None)))
                differing = list(compress(count(), map(ne, found, digests)))
                new = [subjects[i] for i in differing if found[i] is None]
                if len(set(new)) != len(new) or any(s in stored for s in new):  # a subject came twice
                    subjects, attrs = _unique((subjects, attrs))
                    digests = row_digests(attrs, baseline.digest_volatile(probe))
                    unseen = dict(stored)
                    found = list(map(unseen.pop, subjects, repeat(None)))
                    differing = list(compress(count(), map(ne, found, digests)))
                gone = list(unseen)
                old = baseline.decode_many(probe, [subjects[i] for i in differing if found[i] is not None] + gone)
            for i in differing:
                out.differs((probe, subjects[i]), old.get(subjects[i], _ABSENT), attrs[i])
            for subject in gone:
                out.gone((probe, subject), old[subject])
    return out.result(compared)


class _Collect:
    """Turns differing and vanished subjects into drift items, applying volatile attributes and ignore rules."""

    def __init__(self, ignore: Sequence[IgnoreRule], volatile: Mapping[str, frozenset[str]]) -> None:
        self.ignore, self.volatile = ignore, volatile
        self.added: list[DriftItem] = []
        self.removed: list[DriftItem] = []
        self.changed: list[DriftItem] = []
        self.ignored: Counter[str] = Counter()

    def differs(self, key: ObsKey, old: Any, new: AttrMap) -> None:
        if old is _ABSENT:
            reason = _ignored_whole(self.ignore, "added", key, new)
            if reason:
                self.ignored[reason] += 1
            else:
                self.added.append(DriftItem("added", key[0], key[1], None, new))
            return
        vol = self.volatile.get(key[0])
        if vol and _equal_but(old, new, vol):  # e.g. only the pid of a restarted service differs
            return
        changes = _attr_changes(old, new, vol or frozenset())
        if changes:
            changes = _drop_ignored(self.ignore, key, new, changes, self.ignored)
        if changes:
            self.changed.append(DriftItem("changed", key[0], key[1], old, new, changes))

    def gone(self, key: ObsKey, old: AttrMap) -> None:
        reason = _ignored_whole(self.ignore, "removed", key, old)
        if reason:
            self.ignored[reason] += 1
        else:
            self.removed.append(DriftItem("removed", key[0], key[1], old, None))

    def result(self, compared: Sequence[str]) -> Diff:
        by_key = _sort_key
        return Diff(tuple(sorted(self.added, key=by_key)), tuple(sorted(self.removed, key=by_key)),
                    tuple(sorted(self.changed, key=by_key)), dict(self.ignored), tuple(compared))


def _sort_key(item: DriftItem) -> ObsKey:
    return item.key


def _equal_but(old: AttrMap, new: AttrMap, volatile: frozenset[str]) -> bool:
    a, b = dict(old), dict(new)
    for name in volatile:
        a.pop(name, None)
        b.pop(name, None)
    return a == b


def _attr_changes(old: AttrMap, new: AttrMap, volatile: frozenset[str]) -> tuple[AttrChange, ...]:
    out: list[AttrChange] = []
    for name in sorted(set(old) | set(new)):
        if name in volatile:
            continue
        a, b = old.get(name, _ABSENT), new.get(name, _ABSENT)
        if a == b and (a is _ABSENT) == (b is _ABSENT):
            continue
        out.append(AttrChange(name, None if a is _ABSENT else a, None if b is _ABSENT else b,
                              a is not _ABSENT, b is not _ABSENT))
    return tuple(out)


def _ignored_whole(rules: Sequence[IgnoreRule], change: str, key: ObsKey, attrs: AttrMap) -> str | None:
    for rule in rules:
        if rule.attributes is None and rule.attrs_only is None and rule.covers(change, key[0], key[1], attrs):
            return rule.reason
    return None


def _drop_ignored(rules: Sequence[IgnoreRule], key: ObsKey, new: AttrMap, changes: tuple[AttrChange, ...],
                  ignored: Counter[str]) -> tuple[AttrChange, ...]:
    for rule in rules:
        if not rule.covers("changed", key[0], key[1], new):
            continue
        if rule.attrs_only is not None:  # the item as a whole, only when nothing outside these changed
            if all(c.name in rule.attrs_only for c in changes):
                ignored[rule.reason] += 1
                return ()
            continue
        if rule.attributes is None:
            ignored[rule.reason] += 1
            return ()
        kept = tuple(c for c in changes if c.name not in rule.attributes)
        if len(kept) != len(changes):
            ignored[rule.reason] += 1
            changes = kept
            if not changes:
                return ()
    return changes


def apply(baseline: ObsIndex, items: Iterable[DriftItem]) -> dict[ObsKey, AttrMap]:
    """The baseline with these drift items accepted: added and changed take the current attributes, removed
    subjects go. Applying a whole diff gives the current set (volatile-only differences keep old values)."""
    with no_gc():
        # a loaded baseline decodes its rows in document order, a block at a time
        out = dict(baseline.decoded()) if isinstance(baseline, DigestIndex) else dict(baseline)
        for item in items:
            if item.change == "removed":
                out.pop(item.key, None)
            elif item.new is not None:
                out[item.key] = item.new
    return out


def _jsonable(value: AttrValue) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _show(value: AttrValue, lang: str = "en") -> str:
    if isinstance(value, bool):
        return (msg.TRUE if value else msg.FALSE).text(lang)
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v, lang) for v in value) + "]"
    if value is None:
        return "-"
    if isinstance(value, str) and len(value) > 24 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"  # digests: the prefix is enough to tell them apart in a table
    return str(value)
