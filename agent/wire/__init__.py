"""The wire schema: the typed documents precaution emits and the collector ingests.

Pydantic v2 models only: no I/O, no heavy imports (the collector imports this package). Every document carries a
versioned ``schema`` field and is strict on input (unknown fields refused, no coercion: a string is never
accepted where a list is expected). JSON Schema files generated from these models live in ``docs/schema/``
(``python -m agent.wire.export``, ``make schema``).

Modules: ``base`` (WireModel, Text, Timestamp), ``findings`` (Finding, Remediation), ``scan`` (ScanDocument,
InspectionDocument, ProbeRunDoc, BaselineComparisonDoc, ObservationDoc), ``netscan`` (NetscanDocument),
``remote`` (RemoteDocument), ``notice`` (NoticeBody, NoticeDocument, AcknowledgementDoc), ``contents``
(record entry contents, one model per ``kind``: what writers pass to the Recorder), ``record`` (whole
entries with the chain fields, a union discriminated by ``kind``; ``parse_entry``, ``RecordLine``; it
re-exports the contents), ``chain`` (pure
record-chain verification), ``signatures`` (pure notice-signature verification).
"""
