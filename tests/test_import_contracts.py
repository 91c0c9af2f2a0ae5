"""The import-linter contracts in pyproject.toml hold, and import-linter sees function-level (lazy) imports."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not LINT.exists() and shutil.which("lint-imports") is None:
        pytest.fail("lint-imports missing: pip install -e '.[test]'")
    exe = str(LINT) if LINT.exists() else "lint-imports"
    return subprocess.run([exe, "--no-cache", *args], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}, check=False)


def test_project_contracts_kept() -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_lazy_import_up_the_layers_breaks_the_contract(tmp_path: Path) -> None:
    """A copy of the layers contract on two throwaway packages: the only bad import is inside a function."""
    for pkg in ("low", "high"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "high" / "api.py").write_text("from low import facts\n\nVALUE = facts.VALUE\n")
    (tmp_path / "low" / "facts.py").write_text("VALUE = 1\n\n\ndef later() -> int:\n    from high import api\n\n"
                                               "    return api.VALUE\n")
    (tmp_path / "setup.cfg").write_text("[importlinter]\nroot_packages =\n    low\n    high\n\n"
                                        "[importlinter:contract:layers]\nname = layers\ntype = layers\n"
                                        "layers =\n    high\n    low\n")
    done = _lint(tmp_path, "--config", "setup.cfg")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "low.facts -> high.api (l.5)" in done.stdout
