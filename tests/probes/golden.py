"""Golden files: fixtures/<probe>/<case>.raw.json (what gather() read on a real system) and
<case>.expected.json (the observations parse() must give). PRECAUTION_REGEN=1 rewrites the expected files;
review the diff before committing. A missing expected file fails (tests/golden.py)."""

from __future__ import annotations

import json
from pathlib import Path

from probes.observation import Observation
from probes.registry import get_probe
from tests.golden import compare_golden

FIXTURES = Path(__file__).parent / "fixtures"


def cases(probe_id: str) -> list[Path]:
    return sorted((FIXTURES / probe_id).glob("*.raw.json"))


def check_case(probe_id: str, raw_path: Path) -> list[Observation]:
    probe = get_probe(probe_id)
    raw = json.loads(raw_path.read_text(encoding="utf-8"))
    observations = [Observation.from_row(probe_id, row) for row in probe.parse(raw)]
    got = [o.to_json() for o in observations]
    expected_path = raw_path.with_name(raw_path.name.replace(".raw.json", ".expected.json"))
    compare_golden(got, expected_path)
    return observations
