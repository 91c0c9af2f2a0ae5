"""Write (or check) the JSON Schema files generated from the wire models: ``python -m agent.wire.export
[--check] [DIR]`` (default ``docs/schema``). ``--check`` exits 1 naming every stale or missing file."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from agent.wire.netscan import NetscanDocument
from agent.wire.notice import AcknowledgementDoc, NoticeDocument
from agent.wire.record import RECORD_ENTRY, RecordLine
from agent.wire.remote import RemoteDocument
from agent.wire.scan import InspectionDocument, ScanDocument

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"
BASE_URI = "https://precaution.invalid/schema/"

# file name -> model (or adapter); one file per document the agent emits and the collector ingests
DOCUMENTS: dict[str, type[BaseModel] | TypeAdapter[Any]] = {
    "scan.schema.json": ScanDocument,
    "inspection.schema.json": InspectionDocument,
    "netscan.schema.json": NetscanDocument,
    "remote.schema.json": RemoteDocument,
    "notice.schema.json": NoticeDocument,
    "acknowledgement.schema.json": AcknowledgementDoc,
    "record-entry.schema.json": RECORD_ENTRY,
    "record-line.schema.json": RecordLine,
}


def schema_of(name: str) -> dict[str, Any]:
    model = DOCUMENTS[name]
    schema = model.json_schema(by_alias=True) if isinstance(model, TypeAdapter) else \
        model.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": BASE_URI + name, **schema}


def render(name: str) -> str:
    return json.dumps(schema_of(name), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def stale(directory: Path = DEFAULT_DIR) -> list[str]:
    """Files that are missing or differ from what the models generate."""
    out = []
    for name in DOCUMENTS:
        path = directory / name
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current != render(name):
            out.append(str(path))
    return out


def write(directory: Path = DEFAULT_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DOCUMENTS:
        path = directory / name
        text = render(name)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    rest = [a for a in args if a != "--check"]
    directory = Path(rest[0]) if rest else DEFAULT_DIR
    if check:
        bad = stale(directory)
        for path in bad:
            sys.stderr.write(f"stale schema: {path} (run `make schema`)\n")
        return 1 if bad else 0
    for written in write(directory):
        sys.stdout.write(f"wrote {written}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
