"""Shared test fixtures: where the public corpus and our own X12 fixtures live."""

from __future__ import annotations

from pathlib import Path

import pytest

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
