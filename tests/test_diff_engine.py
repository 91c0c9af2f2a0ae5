"""The diff engine: properties over random observation sets, and the cases the anchors get wrong."""

from __future__ import annotations

import enum
from functools import cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.diff import apply, diff, diff_indexes, diff_observations, index, volatile_of
from baselines.profile import parse_profile
from baselines.rowdigest import row_digest, row_digests
from baselines.store import BaselineMeta, Scope, encode_body, load_document, sign_body
from probes.observation import Observation

PROBES = ("accounts", "listeners", "files")
VOLATILE = {"listeners": frozenset({"pid"}), "files": frozenset({"atime"})}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["a", "b", "/usr/bin/x"]))
values = st.one_of(scalars, st.tuples(scalars, scalars))
attr_maps = st.dictionaries(st.sampled_from(["uid", "mode", "pid", "atime", "exe", "sha256"]), values, max_size=5)


@st.composite
def observation_sets(draw: st.DrawFn) -> list[Observation]:
    keys = draw(st.sets(st.tuples(st.sampled_from(PROBES), st.sampled_from(["p", "q", "r", "s", "t"])), max_size=12))
    return [Observation(p, s, draw(attr_maps), VOLATILE.get(p, frozenset())) for p, s in sorted(keys)]


def strip_volatile(obs_index):
    return {k: {a: v for a, v in attrs.items() if a not in VOLATILE.get(k[0], ())} for k, attrs in obs_index.items()}


@settings(max_examples=150, deadline=None)
@given(observation_sets())
def test_diff_with_itself_is_empty(obs):
    result = diff(obs, obs)
    assert result.empty and result.items == ()


@settings(max_examples=150, deadline=None)
@given(observation_sets(), observation_sets())
def test_applying_the_diff_gives_the_current_set_modulo_volatile(old, new):
    result = diff(old, new)
    patched = apply(index(old), result.items)
    assert strip_volatile(patched) == strip_volatile(index(new))
    assert diff(list(_observations(patched)), new).empty


@settings(max_examples=100, deadline=None)
@given(observation_sets(), observation_sets())
def test_items_are_partitioned_and_changes_name_real_differences(old, new):
    result = diff(old, new)
    old_ix, new_ix = index(old), index(new)
    assert {i.key for i in result.added} == set(new_ix) - set(old_ix)
    assert {i.key for i in result.removed} == set(old_ix) - set(new_ix)
    for item in result.changed:
        assert item.changes, "a changed item names at least one attribute"
        for c in item.changes:
            assert c.name not in VOLATILE.get(item.probe, ())
            assert (old_ix[item.key].get(c.name), c.name in old_ix[item.key]) == (c.old, c.old_present)
            assert (new_ix[item.key].get(c.name), c.name in new_ix[item.key]) == (c.new, c.new_present)
    for item in result.removed:  # the removed side keeps every old value (osquery shows confusing rows)
        assert item.old == old_ix[item.key]


def _observations(obs_index):
    for (probe, subject), attrs in obs_index.items():
        yield Observation(probe, subject, attrs, VOLATILE.get(probe, frozenset()))


def listener(port, pid, exe="/usr/sbin/sshd"):
    return Observation("listeners", f"tcp|0.0.0.0|{port}", {"port": port, "pid": pid, "exe": exe},
                       frozenset({"pid"}))


def test_service_restart_is_not_drift_but_a_new_program_is():
    assert diff([listener(22, 100)], [listener(22, 555)]).empty
    result = diff([listener(22, 100)], [listener(22, 555, "/tmp/evil")])
    (item,) = result.changed
    assert [(c.name, c.old, c.new) for c in item.changes] == [("exe", "/usr/sbin/sshd", "/tmp/evil")]
    assert "exe: /usr/sbin/sshd -> /tmp/evil" in item.summary()


def test_removed_item_shows_old_values_and_added_shows_new():
    result = diff([listener(22, 1)], [listener(8080, 2, "/usr/bin/python3")])
    (gone,) = result.removed
    (new,) = result.added
    assert gone.old == {"port": 22, "pid": 1, "exe": "/usr/sbin/sshd"} and gone.new is None
    assert gone.summary().startswith("was: ") and "exe=/usr/sbin/sshd" in gone.summary()
    assert new.new is not None and new.new["port"] == 8080


def test_probes_not_compared_are_not_reported_removed():
    old = [listener(22, 1), Observation("accounts", "root", {"uid": 0})]
    result = diff_indexes(index(old), index([listener(22, 1)]), probes={"listeners"})
    assert result.empty and result.probes == ("listeners",)


PROFILE = """
profile: {id: t, title: {en: t, zh-CN: t}}
ignore:
  - {probe: files, subject: "/var/log/*", reason: logs grow}
  - {probe: files, subject_regex: "^/etc/adj", attributes: [sha256, mtime_ns], reason: hwclock rewrites it}
  - {probe: accounts, change: removed, reason: accounts are removed by the HR process}
rules: []
"""


def test_ignore_rules_drop_subjects_or_attributes_with_reason():
    profile = parse_profile(PROFILE)
    old = [Observation("files", "/var/log/syslog", {"size": 1}), Observation("files", "/etc/adjtime",
                                                                             {"sha256": "a", "mtime_ns": 1, "mode": 1}),
           Observation("accounts", "bob", {"uid": 1001})]
    new = [Observation("files", "/var/log/syslog", {"size": 2}), Observation("files", "/etc/adjtime",
                                                                             {"sha256": "b", "mtime_ns": 2, "mode": 1}),
           Observation("files", "/var/log/new.log", {"size": 0})]
    result = diff(old, new, profile.ignore)
    assert result.empty
    assert result.ignored == {"logs grow": 2, "hwclock rewrites it": 1, "accounts are removed by the HR process": 1}
    # the same file with a mode change still drifts: only sha256 and mtime_ns are ignored
    new[1] = Observation("files", "/etc/adjtime", {"sha256": "b", "mtime_ns": 2, "mode": 0o777})
    (item,) = diff(old, new, profile.ignore).changed
    assert [c.name for c in item.changes] == ["mode"]


# --- row digests and the loaded (lazily decoded) baseline --------------------------------------------------------

def strict(value):
    """Type-strict form: 1, 1.0 and True are different attribute values to a baseline (JSON keeps them apart)."""
    return (type(value).__name__, tuple(map(strict, value)) if isinstance(value, tuple) else value)


def strict_attrs(attrs, volatile=frozenset()):
    return {k: strict(v) for k, v in attrs.items() if k not in volatile}


@settings(max_examples=300, deadline=None)
@given(attr_maps, attr_maps, st.sampled_from([frozenset(), frozenset({"pid"}), frozenset({"pid", "atime"})]))
def test_digests_are_equal_exactly_when_non_volatile_attributes_are(a, b, volatile):
    same = strict_attrs(a, volatile) == strict_attrs(b, volatile)
    assert (row_digest(a, volatile) == row_digest(b, volatile)) == same
    assert row_digest(a, volatile) == row_digest(dict(reversed(list(a.items()))), volatile)  # order-free


class Port(enum.IntEnum):
    SSH = 22


@settings(max_examples=200, deadline=None)
@given(st.lists(attr_maps, max_size=8), st.sampled_from([frozenset(), frozenset({"pid"})]))
def test_batch_digests_match_one_at_a_time(rows, volatile):
    assert row_digests(rows, volatile) == [row_digest(r, volatile) for r in rows]
    same_names = [{"uid": i, "pid": i, "exe": "/x"} for i in range(5)]
    assert row_digests(same_names, volatile) == [row_digest(r, volatile) for r in same_names]
    # a volatile name swapped for a new one (same count) must not be taken for the shared names
    swapped = [*same_names, {"uid": 1, "evil": 1, "exe": "/x"}]
    assert row_digests(swapped, volatile) == [row_digest(r, volatile) for r in swapped]


def test_enum_values_digest_like_the_plain_values_json_gives_back():
    assert row_digests([{"port": Port.SSH}]) == [row_digest({"port": 22})]
    assert row_digest({"port": True}) != row_digest({"port": 1}) != row_digest({"port": 1.0})
    assert row_digests([{"one": 1}, {"one": 2}]) == [row_digest({"one": 1}), row_digest({"one": 2})]
    assert row_digests([{}, {}]) == [row_digest({})] * 2


@cache
def _key():
    return Ed25519PrivateKey.generate()


def loaded(obs):
    """The observations saved, signed and loaded back: the baseline a diff really starts from."""
    meta = BaselineMeta(Scope("host", "local"), 1, "t", "a", "t", "a", "capture", 0, "0", "h", "m", "default",
                        PROBES)
    data = sign_body(encode_body(meta, index(obs), volatile_of(obs)), _key())
    return load_document(data, _key().public_key())


@settings(max_examples=150, deadline=None)
@given(observation_sets())
def test_lazy_decode_gives_identical_observations(obs):
    baseline = loaded(obs)
    rows = baseline.entries
    assert len(rows) == len(obs) and set(rows) == {o.key for o in obs}
    by_key = {o.key: o for o in obs}
    for key, attrs in rows.decoded():
        assert strict_attrs(attrs) == strict_attrs(by_key[key].attrs)
    for o in obs:  # one at a time (position index) and per probe (one pass)
        assert strict_attrs(rows[o.key]) == strict_attrs(o.attrs)
        assert strict_attrs(loaded(obs).entries.decode_many(o.probe, [o.subject])[o.subject]) == strict_attrs(o.attrs)
        assert rows.probe_digests(o.probe)[o.subject] == row_digest(o.attrs, VOLATILE.get(o.probe, frozenset()))
    assert sorted(baseline.observations(), key=lambda o: o.key) == sorted(
        (Observation(o.probe, o.subject, rows[o.key], VOLATILE.get(o.probe, frozenset())) for o in obs),
        key=lambda o: o.key)


def _same_diff(a, b):
    assert a.probes == b.probes and a.ignored == b.ignored
    assert [i.to_json() for i in a.items] == [i.to_json() for i in b.items]


@settings(max_examples=150, deadline=None)
@given(observation_sets(), observation_sets(), st.none() | st.sets(st.sampled_from(PROBES)))
def test_digest_diff_of_a_loaded_baseline_equals_the_plain_diff(old, new, probes):
    volatile = volatile_of(old) | volatile_of(new)
    plain = diff_indexes(index(old), index(new), volatile, probes=probes)
    baseline = loaded(old)
    _same_diff(diff_observations(baseline.entries, new, volatile, probes=probes), plain)
    _same_diff(diff_indexes(baseline.entries, index(new), volatile, probes=probes), plain)
    _same_diff(diff_observations(index(old), new, volatile, probes=probes), plain)
    patched = apply(baseline.entries, plain.items)
    if probes is None:
        assert strip_volatile(patched) == strip_volatile(index(new))
    else:  # the compared probes take the current rows, the others keep the baseline's
        def part(obs_index, inside):
            return strip_volatile({k: v for k, v in obs_index.items() if (k[0] in probes) == inside})

        assert part(patched, True) == part(index(new), True)
        assert part(patched, False) == part(index(old), False)


def test_digest_diff_applies_ignore_rules_and_volatile_from_either_side():
    profile = parse_profile(PROFILE)
    old = [Observation("files", "/var/log/syslog", {"size": 1}), Observation("files", "/etc/adjtime",
                                                                             {"sha256": "a", "mtime_ns": 1, "mode": 1}),
           Observation("accounts", "bob", {"uid": 1001}), listener(22, 100)]
    new = [Observation("files", "/var/log/syslog", {"size": 2}), Observation("files", "/etc/adjtime",
                                                                             {"sha256": "b", "mtime_ns": 2, "mode": 1}),
           listener(22, 555)]
    baseline = loaded(old)
    result = diff_observations(baseline.entries, new, volatile_of(old), profile.ignore)
    assert result.empty
    assert result.ignored == {"logs grow": 1, "hwclock rewrites it": 1, "accounts are removed by the HR process": 1}
    # a probe that declares a new volatile attribute now: the stored digest differs, the full compare drops it
    moved = [Observation("files", "/var/log/syslog", {"size": 1, "atime": 5}, frozenset({"atime"}))]
    assert diff_observations(loaded(old[:1]).entries, moved, {"files": frozenset({"atime"})}).empty


def test_a_subject_observed_twice_counts_once_with_its_later_attributes():
    old = [listener(22, 1), listener(80, 1)]
    twice = [listener(22, 1, "/tmp/evil"), listener(22, 2), listener(443, 1), listener(443, 3, "/usr/bin/x")]
    plain = diff_indexes(index(old), index(twice), volatile_of(old))
    result = diff_observations(loaded(old).entries, twice, volatile_of(old))
    _same_diff(result, plain)
    assert [i.key[1] for i in result.added] == ["tcp|0.0.0.0|443"] and result.added[0].new["exe"] == "/usr/bin/x"
    assert [i.key[1] for i in result.removed] == ["tcp|0.0.0.0|80"] and not result.changed
