"""Baselines on disk: <state>/baselines/<kind>/<id>/current.jsonl plus history/v<N>-<digest>.jsonl.

Every version is signed with the agent key (baselines/store.py holds the format). ``current.jsonl`` is written
first and the history copy second, both atomically: a crash in between leaves a valid current baseline whose
history copy is re-written next time. Replacing current.jsonl by an older signed version is detected, because
history then holds a newer one (rolled back).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import hashlib
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.errors import UserError
from agent.keys import load_agent_key
from agent.state import StateDir, atomic_write, locked, open_state_file, read_state_file
from baselines.diff import AttrMap, ObsKey
from baselines.store import (
    Baseline,
    BaselineInvalid,
    BaselineMeta,
    Scope,
    body_sha256,
    check_identity,
    encode_body,
    read_document,
    read_header,
    sign_body,
)

log = logging.getLogger(__name__)

CURRENT = "current.jsonl"
_HISTORY_NAME = re.compile(r"^v(\d{6,})-([0-9a-f]{16})\.jsonl$")


class BaselineMissing(Exception):
    """No baseline has been captured for this scope yet."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    meta: BaselineMeta
    path: Path
    sha256_prefix: str


def host_scope(root: str = "/") -> Scope:
    """The local host is ``host/local``; a mounted tree inspected with --root gets a scope of its own."""
    path = os.path.abspath(root)
    if path == "/":
        return Scope("host", "local")
    return Scope("host", "root-" + hashlib.sha256(path.encode()).hexdigest()[:12])


def login_user() -> str:
    """Who runs this: the sudo caller when there is one, else the login name."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class RecordedVersion:
    """What the inspection record says is the current version of a scope."""

    version: int
    sha256: str | None  # None in entries written before the record held digests
    seq: int


class BaselineFiles:
    def __init__(self, state: StateDir) -> None:
        self.state = state

    def scope_dir(self, scope: Scope) -> Path:
        return self.state.path / "baselines" / scope.kind / scope.id

    def current_path(self, scope: Scope) -> Path:
        return self.scope_dir(scope) / CURRENT

    def exists(self, scope: Scope) -> bool:
        return self.current_path(scope).exists() or self.current_path(scope).is_symlink()

    def _dir(self, scope: Scope, *more: str) -> Path:
        """The scope's directory (or one below it), created 0700 and never through a link."""
        return self.state.subdir("baselines", scope.kind, scope.id, *more)

    @contextlib.contextmanager
    def writing(self, scope: Scope) -> Iterator[None]:
        """Hold the scope's writer lock: load, compare and save under it."""
        with locked(self._dir(scope) / ".lock"):
            yield

    def recorded(self, scope: Scope) -> RecordedVersion | None:
        from agent import record

        needle = record.canonical({"baseline": scope.label})
        entry = record.last_entry_with(self.state.record, needle)
        if entry is None or not isinstance(entry.summary, dict) or entry.kind not in ("baseline-capture",
                                                                                     "baseline-accept"):
            return None
        try:
            version = int(entry.summary["version"])
        except (KeyError, TypeError, ValueError):
            return None
        sha = entry.summary.get("sha256")
        return RecordedVersion(version, sha if isinstance(sha, str) else None, entry.seq)

    def load(self, scope: Scope, hostname: str, machine_id: str) -> Baseline:
        """The verified current baseline; BaselineMissing, or BaselineInvalid with the reason."""
        path = self.current_path(scope)
        try:
            fd = open_state_file(path, os.O_RDONLY)
        except FileNotFoundError:
            self._check_absent(scope)
            raise BaselineMissing(f"no baseline for {scope.label} yet") from None
        except UserError as exc:  # a link, FIFO or device planted in its place
            raise BaselineInvalid("unreadable", str(exc)) from None
        except OSError as exc:
            raise BaselineInvalid("unreadable", f"{path}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as fh:
            key = load_agent_key(self.state)
            if key is None:
                raise BaselineInvalid("foreign-key", f"the agent key ({self.state.path / 'agent.key'}) is missing: the "
                                                     "baseline's signature cannot be checked")
            baseline = read_document(fh, key.public_key())  # verified while read; rows decoded only when used
        digest = baseline.sha256
        check_identity(baseline.meta, scope, hostname, machine_id)
        newest = max((e.meta.version for e in self._history_names(scope)), default=0)
        if newest > baseline.meta.version:
            raise BaselineInvalid("rolled-back", f"current baseline is version {baseline.meta.version} but history "
                                                 f"holds version {newest}: an older baseline was put back")
        self._check_recorded(scope, baseline)
        history = self._history_path(scope, baseline.meta.version, digest)
        if not history.exists():
            data = read_state_file(path)
            if body_sha256(data) == digest:  # the file is still the one just verified
                log.info("re-writing history copy of %s version %d", scope.label, baseline.meta.version)
                self._dir(scope, "history")
                atomic_write(history, data)
        return baseline

    def _check_absent(self, scope: Scope) -> None:
        """No current.jsonl: fine only if no version was ever accepted for this scope."""
        kept = max((e.meta.version for e in self._history_names(scope)), default=0)
        recorded = self.recorded(scope)
        if recorded is not None or kept:
            version = max(kept, recorded.version if recorded else 0)
            raise BaselineInvalid("missing", f"the current baseline of {scope.label} is gone, but "
                                             f"{'the inspection record' if recorded else 'its history'} holds "
                                             f"version {version}: it was deleted")

    def _check_recorded(self, scope: Scope, baseline: Baseline) -> None:
        recorded = self.recorded(scope)
        if recorded is None:
            return
        meta = baseline.meta
        if meta.version == recorded.version and recorded.sha256 in (None, baseline.sha256):
            return
        if meta.version == recorded.version + 1 and recorded.sha256 is not None \
                and meta.parent_sha256 == recorded.sha256:
            # Written, then interrupted before its record entry: complete the record and carry on.
            log.warning("baseline %s version %d has no record entry (interrupted); recording it now",
                        scope.label, meta.version)
            self._record_recovered(meta, baseline.sha256)
            return
        if meta.version < recorded.version:
            raise BaselineInvalid("rolled-back", f"current baseline is version {meta.version} but the inspection "
                                                 f"record says version {recorded.version} was accepted "
                                                 f"(entry {recorded.seq}): an older baseline was put back")
        raise BaselineInvalid("altered", f"current baseline (version {meta.version}, {baseline.sha256[:16]}) is not "
                                         f"the one the inspection record names (version {recorded.version}"
                                         f"{', ' + recorded.sha256[:16] if recorded.sha256 else ''}, entry "
                                         f"{recorded.seq})")

    def next_version(self, scope: Scope) -> int:
        recorded = self.recorded(scope)
        return max(max((e.meta.version for e in self._history_names(scope)), default=0),
                   recorded.version if recorded else 0) + 1

    def save(self, meta: BaselineMeta, entries: Mapping[ObsKey, AttrMap],
             volatile: Mapping[str, frozenset[str]]) -> tuple[Path, str]:
        """Sign and store a new version (the previous one stays in history): its path and body digest. The
        caller records it next (the record entry names the digest); a crash in between is recovered by
        ``load``."""
        from agent.record import Recorder

        key = Recorder(self.state).ensure_agent_key()
        body = encode_body(meta, entries, volatile)
        data = sign_body(body, key)
        digest = hashlib.sha256(body).hexdigest()
        path = self._dir(meta.scope) / CURRENT
        atomic_write(path, data)
        self._dir(meta.scope, "history")
        atomic_write(self._history_path(meta.scope, meta.version, digest), data)
        return path, digest

    def _record_recovered(self, meta: BaselineMeta, digest: str) -> None:
        from agent.record import Recorder
        from agent.wire.contents import BaselineAcceptContent, BaselineCaptureContent, BaselineScopeDoc, BaselineSummary

        content = BaselineCaptureContent if meta.action == "capture" else BaselineAcceptContent
        Recorder(self.state).write(content(
            scope=BaselineScopeDoc(baseline=meta.scope.label), tests=list(meta.probes),
            summary=BaselineSummary(version=meta.version, items=meta.accepted_items, note=meta.note, sha256=digest,
                                    recovered="record entry written after an interrupted save")),
            results=meta.to_json(), actor=meta.accepted_by)

    def history(self, scope: Scope) -> list[HistoryEntry]:
        """Every stored version, oldest first (headers only; each is verified when loaded as current)."""
        return sorted(self._history_names(scope), key=lambda e: e.meta.version)

    def _history_path(self, scope: Scope, version: int, digest: str) -> Path:
        return self.scope_dir(scope) / "history" / f"v{version:06d}-{digest[:16]}.jsonl"

    def _history_names(self, scope: Scope) -> list[HistoryEntry]:
        folder = self.scope_dir(scope) / "history"
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        out: list[HistoryEntry] = []
        for name in names:
            m = _HISTORY_NAME.match(name)
            if not m:
                continue
            path = folder / name
            try:
                with os.fdopen(open_state_file(path, os.O_RDONLY), "rb") as fh:
                    header = read_header(fh.readline())
                meta = BaselineMeta.from_json(header.get("meta") or {})
            except (OSError, UserError, BaselineInvalid) as exc:
                log.warning("unreadable baseline history file %s: %s", path, exc)
                continue
            out.append(HistoryEntry(meta, path, m.group(2)))
        return out
