"""``interpret._builder`` builds output models without validation (the hot path's shortcut past
pydantic).  These tests hold it to the one promise that makes that safe: every model it builds is
indistinguishable from a validated one - equal, serialized byte for byte alike (key order included),
with pydantic's own bookkeeping (fields set, extra, private) as validation leaves it - for every
summary of every fixture scenario and every 5010 corpus file, with and without the request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, PrivateAttr

from eligibility_svc import errors
from eligibility_svc.models import CoverageSummary, EligibilityRequest
from eligibility_svc.x12 import interpret
from eligibility_svc.x12.interpret import summarize
from eligibility_svc.x12.parse271 import parse_271

SCENARIOS = Path(__file__).resolve().parent.parent / "x12_fixtures" / "scenarios"


def _cases(corpus: Path) -> Iterator[tuple[str, str, EligibilityRequest | None]]:
    for folder in sorted(p for p in SCENARIOS.iterdir() if (p / "scenario.json").is_file()):
        request = EligibilityRequest.model_validate(json.loads((folder / "scenario.json").read_text())["request"])
        text = (folder / "271.x12").read_text()
        yield folder.name, text, request
        yield f"{folder.name} (no request)", text, None
    for path in sorted((corpus / "271").iterdir()):
        yield path.name, path.read_bytes().decode("utf-8", errors="replace"), None


def _summaries(corpus: Path) -> list[tuple[str, CoverageSummary]]:
    found: list[tuple[str, CoverageSummary]] = []
    for name, text, request in _cases(corpus):
        try:
            transactions = parse_271(text)
        except errors.X12UnsupportedVersion:
            continue
        for transaction in transactions:
            found.append((name, summarize(transaction, request)))
            found.extend((f"{name} member {i}", s) for i, s in enumerate(interpret.interpret(transaction, request)))
    return found


def _models(value: Any) -> Iterator[BaseModel]:
    """``value`` and every model inside it."""
    if isinstance(value, BaseModel):
        yield value
        for item in value.__dict__.values():
            yield from _models(item)
    elif isinstance(value, list):
        for item in value:
            yield from _models(item)


def test_built_summaries_equal_validated_ones(corpus_dir: Path) -> None:
    summaries = _summaries(corpus_dir)
    assert len(summaries) > 100
    for name, summary in summaries:
        validated = CoverageSummary.model_validate(summary.model_dump())
        assert validated == summary, name
        assert summary.model_dump_json() == validated.model_dump_json(), name
        assert CoverageSummary.model_validate_json(summary.model_dump_json()) == summary, name
        built, checked = list(_models(summary)), list(_models(validated))
        assert [type(m) for m in built] == [type(m) for m in checked], name
        for model, twin in zip(built, checked, strict=True):
            assert list(model.__dict__) == list(type(model).model_fields), f"{name}: {type(model).__name__} field order"
            assert model.__pydantic_fields_set__ == twin.__pydantic_fields_set__, name
            assert model.__pydantic_extra__ is None
            assert model.__pydantic_private__ is None


def test_built_models_behave_like_validated_ones(corpus_dir: Path) -> None:
    """Assignment and copies work as on any model, and instances share no lists."""
    _, summary = next(s for s in _summaries(corpus_dir) if s[1].benefits)
    copied = summary.model_copy(deep=True)
    assert copied == summary
    summary.benefits[0].messages.append("changed")
    assert copied.benefits[0].messages != summary.benefits[0].messages
    summary.status_detail = "changed"
    assert "status_detail" in summary.model_fields_set
    assert summary.model_copy(update={"check_id": "x"}).check_id == "x"


def test_the_builder_refuses_models_it_cannot_build_faithfully() -> None:
    class WithPrivate(BaseModel):
        value: int = 0
        _seen: int = PrivateAttr(default=0)

    with pytest.raises(TypeError):
        interpret._builder(WithPrivate)
