"""Shared test fixtures: where the public corpus and our own X12 fixtures live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs every property test with a fixed seed so a red run is reproducible; locally they explore.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# A real redis-server (started once per session) and sandbox clearinghouses on real sockets.
pytest_plugins = ["tests.support.redis_server", "tests.support.ch_servers"]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
FIXTURES = ROOT / "x12_fixtures"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The 43 public 270/271 files (``../shared/corpus``); CI has them at the same place."""
    assert CORPUS.is_dir(), f"the shared corpus is missing at {CORPUS}"
    return CORPUS


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
