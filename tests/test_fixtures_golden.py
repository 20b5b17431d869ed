"""Golden tests over ``x12_fixtures/scenarios``: every scenario's 271, interpreted for its request,
must contain what its hand-written ``expected.json`` says (``docs/interpretation.md`` is the rulebook).

Per scenario folder:

* ``test_scenario_file``: ``scenario.json`` is complete and its request passes the inquiry rules on
  the fixed "today" the fixtures are written for (2026-11-24), and a 270 can be built from it;
* ``test_271_is_canonical``: the 271 is in the canonical form the fixtures promise (delimiters,
  106-character ISA, counts, HL parent links, trace echo, no trailing empty elements);
* ``test_golden``: ``summarize(parse_271(271.x12)[0], request)`` dumped as JSON contains
  ``expected.json`` (``tests/support/golden.py``: subset, lists in full, numbers as decimals);
* ``test_render_round_trip``: parse then render gives the file back byte for byte.

And across scenarios: distinct (payer ID, member ID) pairs and distinct patient names, so the
sandbox clearinghouse can tell the scenarios apart.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from eligibility_svc.models import EligibilityRequest
from eligibility_svc.x12.build270 import Envelope, build_270
from eligibility_svc.x12.inquiry_rules import check_inquiry
from eligibility_svc.x12.interpret import summarize
from eligibility_svc.x12.parse271 import parse_271
from eligibility_svc.x12.reader import Segment, read_interchange
from eligibility_svc.x12.render import envelope_of, render_interchange
from tests.support.golden import assert_subset, subset_differences

FIXTURES = Path(__file__).resolve().parent.parent / "x12_fixtures"
SCENARIOS = FIXTURES / "scenarios"
TODAY = date(2026, 11, 24)  # the fixtures' service dates (2026-11-20) are judged against this day
IMPLEMENTATION = "005010X279A1"
ENVELOPE_KEYS = {"interchange_control", "group_control", "transaction_control", "created", "sender_id", "receiver_id"}
HL_PARENT_LEVEL = {"20": None, "21": "20", "22": "21", "23": "22"}


def _scenario_dirs() -> list[Path]:
    return sorted(path for path in SCENARIOS.iterdir() if (path / "scenario.json").is_file())


SCENARIO_DIRS = _scenario_dirs()
IDS = [path.name for path in SCENARIO_DIRS]


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: the top level must be an object"
    return data


def _request(folder: Path) -> EligibilityRequest:
    return EligibilityRequest.model_validate(_load(folder / "scenario.json")["request"])


def _normalized(name: str) -> str:
    """CORE 258: upper case, letters and digits only."""
    return "".join(ch for ch in name.upper() if ch.isalnum())


# --- the fixture set as a whole -----------------------------------------------------------------------


def test_there_are_enough_scenarios() -> None:
    assert len(SCENARIO_DIRS) >= 25, f"only {len(SCENARIO_DIRS)} scenarios under {SCENARIOS}"
    for folder in SCENARIO_DIRS:
        assert re.fullmatch(r"\d{2}-[a-z0-9]+(-[a-z0-9]+)*", folder.name), f"{folder.name}: use NN-kebab-name"
        for name in ("scenario.json", "271.x12", "expected.json"):
            assert (folder / name).is_file(), f"{folder.name}: {name} is missing"


def test_scenarios_are_distinguishable() -> None:
    """The sandbox matches a 270 by payer ID + member ID (or name + DOB): no two scenarios may collide."""
    keys: dict[tuple[str, str], str] = {}
    names: dict[tuple[str, str], str] = {}
    traces: dict[str, str] = {}
    for folder in SCENARIO_DIRS:
        scenario = _load(folder / "scenario.json")
        request = EligibilityRequest.model_validate(scenario["request"])
        if request.member_id:
            key = (request.payer.id, request.member_id.upper())
            assert key not in keys, f"{folder.name} and {keys.get(key)} share payer and member ID {key}"
            keys[key] = folder.name
        name = (_normalized(request.patient.last_name), _normalized(request.patient.first_name or ""))
        assert name not in names, f"{folder.name} and {names.get(name)} share the patient name {name}"
        names[name] = folder.name
        trace = scenario["trace_number"]
        assert trace not in traces, f"{folder.name} and {traces.get(trace)} share the trace number {trace}"
        traces[trace] = folder.name


# --- scenario.json ------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", SCENARIO_DIRS, ids=IDS)
def test_scenario_file(folder: Path) -> None:
    scenario = _load(folder / "scenario.json")
    assert scenario.get("name") == folder.name
    assert isinstance(scenario.get("description"), str)
    assert len(scenario["description"]) > 40, "say what the scenario exercises"
    envelope = scenario["envelope"]
    assert set(envelope) == ENVELOPE_KEYS
    datetime.fromisoformat(envelope["created"])
    for key in ("interchange_control", "group_control", "transaction_control"):
        assert str(envelope[key]).isdigit(), f"envelope.{key} must be numeric"
    trace = scenario["trace_number"]
    assert isinstance(trace, str)
    assert 1 <= len(trace) <= 50
    request = EligibilityRequest.model_validate(scenario["request"])
    assert request.service.service_types or request.service.procedures, "name what the scenario asks about"
    check_inquiry(request, today=TODAY)


@pytest.mark.parametrize("folder", SCENARIO_DIRS, ids=IDS)
def test_a_270_can_be_built(folder: Path) -> None:
    scenario = _load(folder / "scenario.json")
    values = scenario["envelope"]
    envelope = Envelope(
        sender_id=values["sender_id"],
        sender_qualifier="ZZ",
        receiver_id=values["receiver_id"],
        receiver_qualifier="ZZ",
        usage="T",
        interchange_control=int(values["interchange_control"]),
        group_control=int(values["group_control"]),
        transaction_control=int(values["transaction_control"]),
        created=datetime.fromisoformat(values["created"]),
    )
    text = build_270(_request(folder), envelope, scenario["trace_number"])
    assert f"TRN*1*{scenario['trace_number']}*" in text


# --- 271.x12 is canonical --------------------------------------------------------------------------------


def _canonical_text_problems(text: str) -> list[str]:
    problems = []
    if not text.endswith("~\n"):
        problems.append("the file must end with '~' and a newline")
    lines = text.split("\n")[:-1]
    for number, line in enumerate(lines, 1):
        if not line.endswith("~") or line.count("~") != 1:
            problems.append(f"line {number}: one segment per line, each ending in '~': {line!r}")
        if line != line.strip():
            problems.append(f"line {number}: blanks around the segment")
        if not line.startswith("ISA") and re.search(r"\*~$", line):
            problems.append(f"line {number}: trailing empty element: {line!r}")
    if lines:
        isa = lines[0]
        if len(isa) != 106:
            problems.append(f"the ISA is {len(isa)} characters, expected 106")
        elif isa[3] != "*" or isa[82] != "^" or isa[104] != ":" or isa[105] != "~":
            problems.append("the delimiters must be * ^ : ~")
    return problems


def _hl_problems(segments: list[Segment]) -> list[str]:
    problems = []
    levels: dict[str, str] = {}
    children: dict[str, int] = {}
    hls = [segment for segment in segments if segment.id == "HL"]
    for expected_id, hl in enumerate(hls, 1):
        hl_id, parent, level, has_children = hl.el(1), hl.el(2), hl.el(3), hl.el(4)
        if hl_id != str(expected_id):
            problems.append(f"HL {hl_id}: HL01 must count 1, 2, 3 ... (expected {expected_id})")
        if level not in HL_PARENT_LEVEL:
            problems.append(f"HL {hl_id}: unknown level {level!r}")
            continue
        want_parent_level = HL_PARENT_LEVEL[level]
        if want_parent_level is None:
            if parent:
                problems.append(f"HL {hl_id}: the information source has no parent")
        elif levels.get(parent) != want_parent_level:
            problems.append(f"HL {hl_id}: level {level} needs a level {want_parent_level} parent, got HL02 {parent!r}")
        else:
            children[parent] = children.get(parent, 0) + 1
        levels[hl_id] = level
        if has_children not in ("0", "1"):
            problems.append(f"HL {hl_id}: HL04 must be 0 or 1")
    for hl in hls:
        declared = hl.el(4) == "1"
        actual = children.get(hl.el(1), 0) > 0
        if declared != actual:
            problems.append(f"HL {hl.el(1)}: HL04 says {hl.el(4)} but it has {children.get(hl.el(1), 0)} child(ren)")
    return problems


@pytest.mark.parametrize("folder", SCENARIO_DIRS, ids=IDS)
def test_271_is_canonical(folder: Path) -> None:
    text = (folder / "271.x12").read_text(encoding="ascii")
    problems = _canonical_text_problems(text)
    interchange = read_interchange(text)
    delimiters = interchange.delimiters
    if (delimiters.element, delimiters.repetition, delimiters.component, delimiters.segment) != ("*", "^", ":", "~"):
        problems.append(f"unexpected delimiters {delimiters}")
    problems.extend(interchange.warnings)
    if len(interchange.transactions) != 1:
        problems.append(f"expected one transaction, found {len(interchange.transactions)}")
    transaction = interchange.transactions[0]
    problems.extend(transaction.warnings)
    segments = transaction.segments
    st, se = segments[0], segments[-1]
    if transaction.functional_id != "HB":
        problems.append(f"GS01 is {transaction.functional_id!r}, expected HB")
    if transaction.group_version != IMPLEMENTATION or st.el(3) != IMPLEMENTATION:
        problems.append(f"GS08/ST03 must be {IMPLEMENTATION}")
    if st.el(1) != "271":
        problems.append("ST01 must be 271")
    if se.id != "SE" or se.el(1) != str(len(segments)) or se.el(2) != st.el(2):
        problems.append(f"SE must be SE*{len(segments)}*{st.el(2)}, got {se.elements}")
    bht = segments[1]
    if bht.id != "BHT" or bht.el(1) != "0022" or bht.el(2) != "11" or not bht.el(3):
        problems.append(f"expected BHT*0022*11*<reference>, got {bht.elements}")
    text_segments = [line.rstrip("~").split("*") for line in text.split("\n")[:-1]]
    gs = next(row for row in text_segments if row[0] == "GS")
    ge, iea = text_segments[-2], text_segments[-1]
    if ge != ["GE", "1", gs[6]]:
        problems.append(f"GE must be GE*1*{gs[6]}, got {ge}")
    if iea != ["IEA", "1", interchange.control_number]:
        problems.append(f"IEA must be IEA*1*{interchange.control_number}, got {iea}")
    problems.extend(_hl_problems(segments))
    scenario = _load(folder / "scenario.json")
    has_member = any(segment.id == "HL" and segment.el(3) in ("22", "23") for segment in segments)
    echoes = [s for s in segments if s.id == "TRN" and s.el(1) == "2" and s.el(2) == scenario["trace_number"]]
    if has_member and not echoes:
        problems.append(f"no TRN*2 echoes the trace number {scenario['trace_number']}")
    assert not problems, f"{folder.name}/271.x12 is not canonical:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("folder", SCENARIO_DIRS, ids=IDS)
def test_271_names_echo_the_request(folder: Path) -> None:
    """The patient's name in the 271 is the one we sent, unless the scenario is about a correction."""
    expected = _load(folder / "expected.json")
    person = expected.get("patient") or expected.get("subscriber") or {}
    if person.get("corrections"):
        return
    request = _request(folder)
    text = (folder / "271.x12").read_text(encoding="ascii")
    qualifier = "03" if request.is_dependent else "IL"
    sent = (_normalized(request.patient.last_name), _normalized(request.patient.first_name or ""))
    found = {
        (_normalized(fields[3]), _normalized(fields[4]))
        for fields in (line.rstrip("~").split("*") for line in text.split("\n"))
        if fields[0] == "NM1" and fields[1] == qualifier and len(fields) > 4
    }
    if found:
        assert sent in found, f"{folder.name}: the 271 names {found}, the request {sent}"


# --- golden --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", SCENARIO_DIRS, ids=IDS)
def test_golden(folder: Path) -> None:
    request = _request(folder)
    transactions = parse_271((folder / "271.x12").read_text(encoding="ascii"))
    assert len(transactions) == 1
    summary = summarize(transactions[0], request)
    actual = summary.model_dump(mode="json")
    assert_subset(_load(folder / "expected.json"), actual)


@pytest.mark.parametrize("folder", SCENARIO_DIRS, ids=IDS)
def test_render_round_trip(folder: Path) -> None:
    """parse_271 then render gives the canonical file back byte for byte."""
    text = (folder / "271.x12").read_text(encoding="ascii")
    interchange = read_interchange(text)
    transactions = parse_271(text)
    rendered = render_interchange(transactions, envelope_of(interchange), interchange.delimiters, line_end="\n")
    assert rendered + "\n" == text


# --- the comparison itself ---------------------------------------------------------------------------


def test_subset_accepts_what_matches() -> None:
    actual = {"a": "1200.50", "b": [1, {"c": None, "d": "x"}], "e": "extra", "f": "01"}
    assert_subset({"a": 1200.5, "b": ["1", {"c": None}], "f": "01"}, actual)
    assert_subset({"a": "1200.5"}, actual)


def test_subset_reports_every_difference_with_its_path() -> None:
    actual = {"a": "1", "b": [1, 2], "c": {"d": "x"}, "f": "01", "g": True}
    problems = subset_differences(
        {"a": "2", "b": [1], "c": {"d": "y", "z": 1}, "f": "1", "g": 1, "missing": None}, actual
    )
    assert problems == [
        "a: expected 2, got 1",
        "b: expected 1 item(s), got 2: [1, 2]",
        "c.d: expected 'y', got 'x'",
        "c.z: missing (expected 1)",
        "f: expected '1', got '01'",
        "g: expected 1, got True",
        "missing: missing (expected None)",
    ]
    with pytest.raises(AssertionError, match=r"services\[0\]\.copay: expected 25, got 40"):
        assert_subset({"services": [{"copay": 25}]}, {"services": [{"copay": "40"}]})
