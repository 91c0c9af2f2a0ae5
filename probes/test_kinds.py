"""The kinds of test an advance notice may allow and the scope guard approves, in one list."""

from __future__ import annotations

TEST_KINDS: tuple[str, ...] = ("host", "discovery", "portscan", "service", "passive")
