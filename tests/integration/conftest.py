"""Integration fixtures live in tests/fixtures/ (registered by tests/conftest.py); short_home is here."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture
def short_home() -> Iterator[str]:
    """A HOME with a short path, for tools (Molecule) that put UNIX sockets under it."""
    home = tempfile.mkdtemp(prefix="relops-home-")
    yield home
    shutil.rmtree(home, ignore_errors=True)
