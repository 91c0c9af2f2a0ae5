"""Per-observation digests: a stable 128-bit hash of an observation's non-volatile attributes. Pure.

A baseline stores one digest per row, so a diff compares an unchanged observation by one dict lookup and one
bytes comparison and decodes only the rows whose digest differs. The digest is BLAKE2b-128 of the values in
sorted name order, personalised with a tag of the names (the personalisation costs no extra compression, unlike
a key; plain SHA-256 measured no faster per row), so two observations have the same digest exactly when they
have the same non-volatile attribute names with the same values of the same types (``1``, ``1.0`` and ``True``
differ; such a false difference only costs a full comparison, never a missed change). Values are serialised
with marshal version 0, which writes every str, int, float, bool, None and tuple the same way in every process
(no interning or reference flags, unlike later versions) and runs in C: a million digests are a chain of
C-level maps with no Python bytecode per observation.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache, partial
from itertools import repeat
from operator import contains, itemgetter, methodcaller
from typing import Any

from probes.observation import AttrValue

SCHEME = "blake2b-128/marshal0"
DIGEST_SIZE = 16  # named in the baseline header; a new scheme means a new format version
_MARSHAL_VERSION = 0
_digest_of = methodcaller("digest")

AttrMap = Mapping[str, AttrValue]


@lru_cache(maxsize=1024)
def _names_tag(names: tuple[str, ...]) -> bytes:
    return hashlib.blake2b(marshal.dumps(names, _MARSHAL_VERSION), digest_size=16).digest()


def _plain(value: Any) -> Any:
    """Exact built-in types for values marshal refuses (str/int subclasses such as enums), as JSON stores them."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, int):  # IntEnum and the like (bool cannot be subclassed)
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, tuple):  # named tuples too
        return tuple(map(_plain, value))
    if isinstance(value, list):
        return list(map(_plain, value))
    raise TypeError(f"attribute value of type {type(value).__name__} cannot be stored in a baseline")


def _hash(names: tuple[str, ...], values: tuple[Any, ...]) -> bytes:
    try:
        data = marshal.dumps(values, _MARSHAL_VERSION)
    except ValueError:
        data = marshal.dumps(_plain(values), _MARSHAL_VERSION)
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE, person=_names_tag(names)).digest()


def row_digest(attrs: AttrMap, volatile: Collection[str] = frozenset()) -> bytes:
    """The digest of one observation's attributes, leaving out the volatile ones (the definition)."""
    names = tuple(sorted(n for n in attrs if n not in volatile))
    return _hash(names, tuple(attrs[n] for n in names))


def row_digests(rows: Sequence[AttrMap], volatile: Collection[str] = frozenset()) -> list[bytes]:
    """``[row_digest(a, volatile) for a in rows]``, fast when the rows share one set of attribute names (every
    observation of a probe does): the shared names are checked in C and the digests computed in C."""
    if not rows:
        return []
    names_all = sorted(rows[0])
    names = tuple(n for n in names_all if n not in volatile)
    if _same_names(rows, len(names_all), [n for n in names_all if n in volatile]):
        values: Any
        if len(names) >= 2:
            values = map(itemgetter(*names), rows)
        elif names:
            values = zip(map(itemgetter(names[0]), rows))  # 1-tuples, as in row_digest
        else:
            values = repeat((), len(rows))
        hasher = partial(hashlib.blake2b, digest_size=DIGEST_SIZE, person=_names_tag(names))
        try:
            return list(map(_digest_of, map(hasher, map(marshal.dumps, values, repeat(_MARSHAL_VERSION)))))
        except KeyError:  # a row has another name in place of one of ours: digest each row by itself
            pass
        except ValueError:  # a value marshal refuses (a str or int subclass): normalised one row at a time
            pass
    return [row_digest(a, volatile) for a in rows]


def _same_names(rows: Sequence[AttrMap], count: int, volatile_present: list[str]) -> bool:
    """Every row has ``count`` names and each of these volatile names; with every non-volatile name present
    (itemgetter raises otherwise) that means the same names as the first row."""
    if set(map(len, rows)) != {count}:
        return False
    return all(all(map(contains, rows, repeat(name))) for name in volatile_present)
