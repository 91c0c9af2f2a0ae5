"""Fixtures for network tests: the namespace lab (tests/lab.py), built once per session and always removed."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.lab import Lab


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """12 hosts on bridge ``lab.bridge`` (``lab.network``), real listeners; see tests/lab.py for the layout."""
    if os.geteuid() != 0:
        pytest.skip("network lab needs root (network namespaces, veth, bridge)")
    the_lab = Lab()
    try:
        yield the_lab
    finally:
        the_lab.close()
