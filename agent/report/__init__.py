"""Renderers of a scan result: terminal table, JSON, self-contained HTML."""
