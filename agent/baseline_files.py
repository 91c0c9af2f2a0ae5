"""Baselines on disk: <state>/baselines/<kind>/<id>/current.jsonl plus history/v<N>-<digest>.jsonl.

Every version is signed with the agent key (baselines/store.py holds the format). ``current.jsonl`` is written
first and the history copy second, both atomically: a crash in between leaves a valid current baseline whose
history copy is re-written next time. Replacing current.jsonl by an older signed version is detected, because
history then holds a newer one (rolled back).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.keys import agent_signing_key
from agent.state import StateDir, atomic_write
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


class BaselineFiles:
    def __init__(self, state: StateDir) -> None:
        self.state = state

    def scope_dir(self, scope: Scope) -> Path:
        return self.state.path / "baselines" / scope.kind / scope.id

    def current_path(self, scope: Scope) -> Path:
        return self.scope_dir(scope) / CURRENT

    def exists(self, scope: Scope) -> bool:
        return self.current_path(scope).exists()

    def load(self, scope: Scope, hostname: str, machine_id: str) -> Baseline:
        """The verified current baseline; BaselineMissing, or BaselineInvalid with the reason."""
        path = self.current_path(scope)
        public = agent_signing_key(self.state).public_key()
        try:
            with path.open("rb") as fh:
                baseline = read_document(fh, public)  # verified while read; rows decoded only when used
        except FileNotFoundError:
            raise BaselineMissing(f"no baseline for {scope.label} yet") from None
        except OSError as exc:
            raise BaselineInvalid("unreadable", f"{path}: {exc.strerror or exc}") from None
        digest = baseline.sha256
        check_identity(baseline.meta, scope, hostname, machine_id)
        newest = max((e.meta.version for e in self._history_names(scope)), default=0)
        if newest > baseline.meta.version:
            raise BaselineInvalid("rolled-back", f"current baseline is version {baseline.meta.version} but history "
                                                 f"holds version {newest}: an older baseline was put back")
        history = self._history_path(scope, baseline.meta.version, digest)
        if not history.exists():
            data = path.read_bytes()
            if body_sha256(data) == digest:  # the file is still the one just verified
                log.info("re-writing history copy of %s version %d", scope.label, baseline.meta.version)
                atomic_write(history, data)
        return baseline

    def save(self, meta: BaselineMeta, entries: Mapping[ObsKey, AttrMap],
             volatile: Mapping[str, frozenset[str]]) -> Path:
        """Sign and store a new version; the previous one stays in history."""
        key = agent_signing_key(self.state)
        body = encode_body(meta, entries, volatile)
        data = sign_body(body, key)
        digest = hashlib.sha256(body).hexdigest()
        path = self.current_path(meta.scope)
        atomic_write(path, data)
        atomic_write(self._history_path(meta.scope, meta.version, digest), data)
        return path

    def history(self, scope: Scope) -> list[HistoryEntry]:
        """Every stored version, oldest first (headers only; each is verified when loaded as current)."""
        return sorted(self._history_names(scope), key=lambda e: e.meta.version)

    def _history_path(self, scope: Scope, version: int, digest: str) -> Path:
        return self.scope_dir(scope) / "history" / f"v{version:06d}-{digest[:16]}.jsonl"

    def _history_names(self, scope: Scope) -> list[HistoryEntry]:
        folder = self.scope_dir(scope) / "history"
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        out: list[HistoryEntry] = []
        for name in names:
            m = _HISTORY_NAME.match(name)
            if not m:
                continue
            path = folder / name
            try:
                with path.open("rb") as fh:
                    header = read_header(fh.readline())
                meta = BaselineMeta.from_json(header.get("meta") or {})
            except (OSError, BaselineInvalid) as exc:
                log.warning("unreadable baseline history file %s: %s", path, exc)
                continue
            out.append(HistoryEntry(meta, path, m.group(2)))
        return out
