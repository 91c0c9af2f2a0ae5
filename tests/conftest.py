from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own state directory; nothing touches /var/lib/precaution."""
    home = tmp_path / "state"
    monkeypatch.setenv("PRECAUTION_HOME", str(home))
    return home


def needs_root() -> pytest.MarkDecorator:
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root)")



# --- pytest-xdist: which tests share a worker ----------------------------------------------------------------
# `make test` runs the suite with `-n N --dist loadgroup`. Tests that share an expensive fixture of ours run on one
# worker, so that it is built once, as in a serial run: a session fixture (the netns labs, the collector per
# database) groups every test that uses it; a module fixture groups its module; other tests are spread one by one.
# The workers work the groups out from their collection (fixture scopes are known there) and write them to a file
# the controller's scheduler reads: xdist's own `xdist_group` marks cannot carry them under pytest 9 (xdist renames
# items through `Item._nodeid`, which pytest 9 no longer reads).
GROUPS_KEY = "precaution_xdist_groups"


def _group_of(item: pytest.Item) -> str | None:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    group = None
    for name in info.names_closure:
        defs = info.name2fixturedefs.get(name)
        if not defs or not defs[-1].baseid.startswith("tests"):
            continue  # pytest's own fixtures (tmp_path_factory, ...) are cheap
        scope = defs[-1].scope
        if scope == "session":
            return f"session:{name}"
        if scope in ("module", "package"):
            group = f"module:{item.nodeid.split('::')[0]}"
    return group


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """(xdist controller) tell each worker where to write its groups."""
    config = node.config
    if not hasattr(config, "_precaution_groups_dir"):
        config._precaution_groups_dir = tempfile.mkdtemp(prefix="precaution-xdist-")  # type: ignore[attr-defined]
    node.workerinput[GROUPS_KEY] = config._precaution_groups_dir  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workerinput = getattr(config, "workerinput", None)
    if not workerinput or GROUPS_KEY not in workerinput:
        return
    groups = {item.nodeid: g for item in items if (g := _group_of(item)) is not None}
    target = Path(workerinput[GROUPS_KEY]) / f"{workerinput['workerid']}.json"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups))
    tmp.replace(target)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup" or not hasattr(config, "_precaution_groups_dir"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    groups_dir = Path(config._precaution_groups_dir)  # type: ignore[attr-defined]

    class FixtureGroupScheduling(LoadScopeScheduling):
        """Like xdist's loadgroup, with the groups the workers wrote (read once collection is complete)."""

        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                self.groups = {}
                for path in sorted(groups_dir.glob("*.json")):
                    self.groups.update(json.loads(path.read_text()))
            return self.groups.get(nodeid, nodeid)

    return FixtureGroupScheduling(config, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    groups_dir = getattr(config, "_precaution_groups_dir", None)
    if groups_dir is not None:
        shutil.rmtree(groups_dir, ignore_errors=True)
