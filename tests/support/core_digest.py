"""What the X12 core computes from every fixture, every corpus file and seeded mutations of them, as JSON lines.

``test_compiled_core`` runs this file as a script against a mypyc-compiled build of the package and
compares its lines with the ones the pure-Python package gives in the test process: any difference is a
behaviour the compiler changed (a stricter runtime type check turned into a crash, an integer or
string edge case, a different exception).

    python tests/support/core_digest.py     # first line: the core kind, then one line per result

Imports nothing from ``tests``: the script runs with only the package under test on its path.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from eligibility_svc.core_build import core_kind
from eligibility_svc.errors import EligibilityError
from eligibility_svc.models import EligibilityRequest
from eligibility_svc.x12.build270 import Envelope, build_270
from eligibility_svc.x12.fastcheck import definitely_clean
from eligibility_svc.x12.interpret import interpret, summarize
from eligibility_svc.x12.parse270 import parse_270
from eligibility_svc.x12.parse271 import parse_271
from eligibility_svc.x12.reader import decode, detect_delimiters
from eligibility_svc.x12.render import render_transaction
from eligibility_svc.x12.validate import validate_x12

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "x12_fixtures" / "scenarios"
CORPUS = ROOT.parent / "shared" / "corpus"
ENVELOPE = Envelope("PRACTICE1", "ZZ", "CLEARINGHOUSE", "ZZ", "T", 101, 102, 103, datetime(2026, 3, 2, 9, 30))
MUTATIONS_PER_FILE = 12


def digest() -> Iterator[str]:
    """Every result, one JSON line each, in a fixed order."""
    for folder in sorted(p for p in SCENARIOS.iterdir() if p.is_dir()):
        request = EligibilityRequest.model_validate(json.loads((folder / "scenario.json").read_text())["request"])
        text = (folder / "271.x12").read_text(encoding="utf-8")
        yield from _file(folder.name, text, request)
        yield _line(folder.name, "270", lambda r=request: _inquiry(r))
        yield from _mutations(folder.name, text, request)
    for path in sorted((CORPUS / "271").iterdir()):
        yield from _file(path.name, path.read_bytes().decode("utf-8", "replace"), None)
    for path in sorted((CORPUS / "270").iterdir()):
        data = path.read_bytes()
        yield _line(path.name, "parse_270", lambda data=data: parse_270(data))


def _file(name: str, text: str, request: EligibilityRequest | None) -> Iterator[str]:
    yield _line(name, "answers", lambda: _answers(text, request))
    yield _line(name, "fastcheck", lambda: definitely_clean(text))
    yield _line(name, "validate", lambda: validate_x12(text))
    yield _line(name, "render", lambda: _rendered(text))


def _answers(text: str, request: EligibilityRequest | None) -> object:
    transactions = parse_271(text)
    return [[interpret(tx, request), summarize(tx, request)] for tx in transactions]


def _rendered(text: str) -> object:
    delimiters, _ = detect_delimiters(decode(text))
    return [render_transaction(tx, delimiters) for tx in parse_271(text)]


def _inquiry(request: EligibilityRequest) -> object:
    built = build_270(request, ENVELOPE, "TRACE-0001")
    return [built, parse_270(built)]


def _mutations(name: str, text: str, request: EligibilityRequest) -> Iterator[str]:
    rng = random.Random(name)  # the same mutations in both processes
    for index in range(MUTATIONS_PER_FILE):
        mutated = _mutate(text, rng)
        yield _line(f"{name}#{index}", "answers", lambda m=mutated: _answers(m, request))
        yield _line(f"{name}#{index}", "fastcheck", lambda m=mutated: definitely_clean(m))


def _mutate(text: str, rng: random.Random) -> str:
    """One small damage: a character dropped or inserted, a segment dropped or repeated, an element replaced."""
    segments = text.split("~")
    where = rng.randrange(len(text))
    kind = rng.randrange(5)
    if kind == 0:
        return text[:where] + text[where + 1 :]
    if kind == 1:
        return text[:where] + rng.choice("*:^~\n0A ") + text[where:]
    at = rng.randrange(len(segments))
    if kind == 2:
        return "~".join(segments[:at] + segments[at + 1 :])
    if kind == 3:
        return "~".join(segments[: at + 1] + segments[at:])
    elements = segments[at].split("*")
    elements[rng.randrange(len(elements))] = rng.choice(["", "X" * 90, "99999999999", "-1", "20261399", "1.2.3"])
    segments[at] = "*".join(elements)
    return "~".join(segments)


def _line(name: str, what: str, work: Callable[[], object]) -> str:
    try:
        outcome: dict[str, object] = {"ok": work()}
    except EligibilityError as exc:
        outcome = {"error": type(exc).__name__, "code": exc.code, "message": str(exc)}
    except Exception as exc:  # a crash is a result to compare too
        outcome = {"crash": type(exc).__name__, "message": str(exc)}
    return json.dumps({"file": name, "what": what, **outcome}, default=_plain, sort_keys=True)


def _plain(value: Any) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return str(value)


def main() -> None:
    out = sys.stdout
    out.write(core_kind() + "\n")
    for line in digest():
        out.write(line + "\n")


if __name__ == "__main__":
    main()
