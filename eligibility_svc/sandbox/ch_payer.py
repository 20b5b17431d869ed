"""The payers behind the sandbox clearinghouse: find the scenario a 270 asks about and answer it.  Pure.

Scenarios live in ``<fixtures>/scenarios/<name>/`` as ``scenario.json`` (``request``: an
``EligibilityRequest``; ``trace_number``) and ``271.x12`` (the payer's answer to that request).
A 270 is read with ``x12.parse270`` and matched within its payer (2100A NM109) the way payers match:

==============================================  =========================================================
what the 270 carries                            answer
==============================================  =========================================================
member ID, name (and DOB if sent) of a scenario  that scenario's 271, echoing the 270 (below)
member ID of a scenario, another name            AAA 73 invalid/missing name (65 at 2100D for a dependent)
member ID and name of a scenario, another DOB    AAA 71 birth date mismatch (2100C, or 2100D)
name and DOB of a scenario, another member ID    AAA 72 invalid/missing member ID (2100C)
name and DOB of a scenario, no member ID         that scenario's 271 (search by demographics)
nothing that matches                             AAA 75 subscriber not found (67 patient not found at 2100D)
a payer ID no scenario has                       AAA 79 invalid participant identification (2100A)
==============================================  =========================================================

A member ID in one of the configured ``member_ranges`` (``ch_config.MemberRange``) at its scenario's
payer is matched as that scenario's member ID; the rest of the table applies unchanged.

A scenario's 271 is adjusted to answer *this* 270: fresh ISA/GS/ST control numbers and dates,
sender and receiver swapped from the 270's envelope, BHT03 = the 270's BHT03, every ``TRN*2`` = the
270's ``TRN*1`` (trace, originator, supplemental), and names, birth dates and the service date
echoed from the 270 wherever the scenario's 271 repeats the scenario request's value exactly
(ignoring case).  Where it differs, the payer is correcting the data or spelling it its own way,
and that stays.  Matching compares names like CORE 258: upper case, letters and digits only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import ValidationError

from eligibility_svc.errors import X12Error
from eligibility_svc.models import EligibilityRequest, Patient, Subscriber
from eligibility_svc.sandbox.ch_config import MemberRange
from eligibility_svc.x12.parse270 import Inquiry270, Member270, Name270, parse_270
from eligibility_svc.x12.reader import Delimiters, Segment, decode, detect_delimiters, read_interchange, split_segments
from eligibility_svc.x12.render import EnvelopeValues, interchange_segments, render_segments

log = logging.getLogger(__name__)

IMPLEMENTATION_271 = "005010X279A1"
IMPLEMENTATION_999 = "005010X231A1"
LINE_END = "\n"


# --- scenarios -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    request: EligibilityRequest
    trace_number: str
    x12_271: str


def load_scenarios(fixtures_dir: Path) -> list[Scenario]:
    """Every readable scenario under ``fixtures_dir/scenarios`` (or ``fixtures_dir`` itself); bad ones are logged."""
    root = fixtures_dir / "scenarios" if (fixtures_dir / "scenarios").is_dir() else fixtures_dir
    scenarios: list[Scenario] = []
    for folder in sorted(p for p in root.glob("*") if (p / "scenario.json").is_file() and (p / "271.x12").is_file()):
        try:
            scenarios.append(_load(folder))
        except (OSError, ValueError, ValidationError, KeyError) as exc:
            log.warning("sandbox: skipping scenario %s: %s", folder.name, type(exc).__name__)
    return scenarios


def _load(folder: Path) -> Scenario:
    data = json.loads((folder / "scenario.json").read_text(encoding="utf-8"))
    return Scenario(
        name=str(data.get("name") or folder.name),
        request=EligibilityRequest.model_validate(data["request"]),
        trace_number=str(data.get("trace_number", "")),
        x12_271=(folder / "271.x12").read_text(encoding="utf-8"),
    )


# --- matching --------------------------------------------------------------------------------------


def norm(value: str | None) -> str:
    """CORE 258-style comparison form: upper case, letters and digits only."""
    return "".join(ch for ch in (value or "").upper() if ch.isalnum())


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asked about, in comparison form: the patient (dependent or subscriber) and the member ID."""

    payer_id: str
    member_id: str
    last: str
    first: str
    birth_date: dt.date | None
    dependent: bool


def request_identity(request: EligibilityRequest) -> Identity:
    patient = request.patient
    return Identity(
        request.payer.id.strip(),
        norm(request.member_id),
        norm(patient.last_name),
        norm(patient.first_name),
        patient.birth_date,
        request.subscriber is not None,
    )


def inquiry_identity(inquiry: Inquiry270) -> Identity:
    patient = inquiry.dependent or inquiry.subscriber
    member = inquiry.subscriber.name
    return Identity(
        inquiry.source.id.strip(),
        norm(member.id) if member.id_qualifier in ("MI", "II") else "",
        norm(patient.name.last_or_org),
        norm(patient.name.first),
        patient.birth_date,
        inquiry.dependent is not None,
    )


@dataclass(frozen=True, slots=True)
class AaaAnswer:
    loop: str  # "2100A", "2100C" or "2100D"
    reason: str  # AAA03
    follow_up: str  # AAA04
    valid: str = "Y"  # AAA01


@dataclass(frozen=True, slots=True)
class Match:
    scenario: Scenario | None
    aaa: AaaAnswer | None = None


def find(inquiry: Inquiry270, scenarios: Sequence[Scenario], ranges: Sequence[MemberRange] = ()) -> Match:
    """The scenario the 270 asks about, or the AAA a payer would send (see the table above)."""
    asked = in_range(inquiry_identity(inquiry), scenarios, ranges)
    candidates = [(s, request_identity(s.request)) for s in scenarios if s.request.payer.id.strip() == asked.payer_id]
    if not candidates:
        return Match(None, AaaAnswer("2100A", "79", "C"))
    by_id = [(s, who) for s, who in candidates if asked.member_id and who.member_id == asked.member_id]
    if by_id:
        return _by_member_id(asked, by_id, inquiry)
    by_person = [s for s, who in candidates if _same_person(asked, who) and _same_birth(asked, who, strict=True)]
    if by_person:
        return (
            Match(_closest(by_person, inquiry)) if not asked.member_id else Match(None, AaaAnswer("2100C", "72", "C"))
        )
    return Match(None, _patient_aaa(asked, subscriber="75", dependent="67"))


def in_range(asked: Identity, scenarios: Sequence[Scenario], ranges: Sequence[MemberRange]) -> Identity:
    """``asked`` with the scenario's member ID when its member ID is in a range at that scenario's payer."""
    for member_range in ranges:
        if not asked.member_id.startswith(norm(member_range.prefix)):
            continue
        for known in scenarios:
            if known.name == member_range.scenario and known.request.payer.id.strip() == asked.payer_id:
                return replace(asked, member_id=norm(known.request.member_id))
    return asked


def _by_member_id(asked: Identity, found: list[tuple[Scenario, Identity]], inquiry: Inquiry270) -> Match:
    named = [(s, who) for s, who in found if _same_person(asked, who)]
    exact = [s for s, who in named if _same_birth(asked, who, strict=False)]
    if exact:
        return Match(_closest(exact, inquiry))
    if named:
        return Match(None, _patient_aaa(asked, subscriber="71", dependent="71"))
    return Match(None, _patient_aaa(asked, subscriber="73", dependent="65"))


def _closest(scenarios: list[Scenario], inquiry: Inquiry270) -> Scenario:
    """Of several scenarios for one member, the one asking about the same service (date, codes)."""
    asked = inquiry.request.service if inquiry.request is not None else None

    def likeness(scenario: Scenario) -> int:
        known = scenario.request.service
        if asked is None:
            return 0
        same_codes = known.service_types == asked.service_types and known.procedures == asked.procedures
        return 2 * same_codes + (known.date == asked.date)

    return max(scenarios, key=likeness)


def _patient_aaa(asked: Identity, *, subscriber: str, dependent: str) -> AaaAnswer:
    if asked.dependent:
        return AaaAnswer("2100D", dependent, "C")
    return AaaAnswer("2100C", subscriber, "C")


def _same_person(asked: Identity, known: Identity) -> bool:
    """Same last name, and the same first name when the 270 gives one (payers search on the initial too)."""
    if asked.last != known.last or asked.dependent != known.dependent:
        return False
    return not asked.first or asked.first == known.first


def _same_birth(asked: Identity, known: Identity, *, strict: bool) -> bool:
    if asked.birth_date is None or known.birth_date is None:
        return not strict
    return asked.birth_date == known.birth_date


# --- answers ---------------------------------------------------------------------------------------


def response_envelope(inquiry: Inquiry270, control: int, now: dt.datetime, *, functional_id: str) -> EnvelopeValues:
    """The answer's envelope: the 270's sender and receiver swapped, our control number and clock."""
    header = inquiry.header
    return EnvelopeValues(
        sender_id=header.receiver_id,
        receiver_id=header.sender_id,
        control_number=control,
        group_control_number=control,
        date=now.strftime("%Y%m%d"),
        time=now.strftime("%H%M"),
        sender_qualifier=header.receiver_qualifier,
        receiver_qualifier=header.sender_qualifier,
        application_sender=header.group_receiver_id or header.receiver_id,
        application_receiver=header.group_sender_id or header.sender_id,
        usage=header.usage or "T",
        functional_id=functional_id,
        implementation=IMPLEMENTATION_271 if functional_id == "HB" else IMPLEMENTATION_999,
    )


def answer_from_scenario(scenario: Scenario, inquiry: Inquiry270, control: int, now: dt.datetime) -> str:
    """The scenario's 271, adjusted to answer ``inquiry`` (control numbers, BHT03, TRN, echoes)."""
    text = decode(scenario.x12_271)
    delimiters, _ = detect_delimiters(text)
    segments = split_segments(text, delimiters)
    body = _transaction_body(segments)
    echo = _Echo(scenario.request, inquiry, now)
    adjusted = [echo.segment(segment.elements) for segment in body]
    return _wrap(adjusted, response_envelope(inquiry, control, now, functional_id="HB"), delimiters)


def _transaction_body(segments: list[Segment]) -> list[Segment]:
    """The first ST..SE of the interchange (a scenario answers one inquiry)."""
    start = next(i for i, s in enumerate(segments) if s.id == "ST")
    end = next((i for i in range(start, len(segments)) if segments[i].id == "SE"), len(segments) - 1)
    return segments[start : end + 1]


def _wrap(body: list[list[str]], envelope: EnvelopeValues, delimiters: Delimiters) -> str:
    """Number ST02/SE02 from the interchange control number, count SE01, and envelope the transaction."""
    st_control = f"{envelope.control_number:04d}"
    body = [list(segment) for segment in body]
    body[0] = [body[0][0], body[0][1], st_control, *body[0][3:]]
    body[-1] = ["SE", str(len(body)), st_control]
    return render_segments(interchange_segments([body], envelope, delimiters), delimiters, line_end=LINE_END)


class _Echo:
    """Rewrites a scenario 271's segments to echo the 270: BHT03 (BHT04/05 now), TRN*2, names, dates."""

    def __init__(self, request: EligibilityRequest, inquiry: Inquiry270, now: dt.datetime) -> None:
        self.request = request
        self.inquiry = inquiry
        self.now = now
        self.person: tuple[Patient | Subscriber, Member270] | None = None
        asked = inquiry.dependent or inquiry.subscriber
        self.asked_date = _first_date(asked, inquiry.subscriber, inquiry)
        self.known_date = request.service.date

    def segment(self, elements: list[str]) -> list[str]:
        out = list(elements)
        sid = out[0]
        if sid == "BHT" and len(out) > 3:
            out[3:6] = [self.inquiry.header.reference, self.now.strftime("%Y%m%d"), self.now.strftime("%H%M")]
        elif sid == "TRN" and out[1:2] == ["2"]:
            out = self._trace(out)
        elif sid == "NM1":
            out = self._name(out)
        elif sid == "DMG" and self.person is not None:
            out = self._birth(out)
        elif sid == "DTP":
            out = self._date(out)
        return out

    def _trace(self, out: list[str]) -> list[str]:
        patient = self.inquiry.dependent or self.inquiry.subscriber
        ours = next((t for t in (*patient.traces, *self.inquiry.subscriber.traces) if t.type == "1"), None)
        if ours is None:
            return out
        return ["TRN", "2", ours.number, ours.originator, ours.supplemental]

    def _name(self, out: list[str]) -> list[str]:
        self.person = self._person_for(out[1] if len(out) > 1 else "")
        if self.person is None:
            return out
        known, asked = self.person
        pairs = [(3, known.last_name, asked.name.last_or_org), (4, known.first_name, asked.name.first)]
        pairs.append((5, known.middle_name, asked.name.middle))
        if out[1] == "IL":
            pairs.append((9, self.request.member_id, self.inquiry.subscriber.name.id))
        for index, known_value, asked_value in pairs:
            if index < len(out) and known_value and asked_value and _same_text(out[index], known_value):
                out[index] = asked_value.upper()
        return out

    def _person_for(self, entity: str) -> tuple[Patient | Subscriber, Member270] | None:
        request, inquiry = self.request, self.inquiry
        if entity == "IL":
            return (request.subscriber or request.patient, inquiry.subscriber)
        if entity == "03" and inquiry.dependent is not None:
            return (request.patient, inquiry.dependent)
        return None

    def _birth(self, out: list[str]) -> list[str]:
        assert self.person is not None
        known, asked = self.person
        born, asked_born = known.birth_date, asked.birth_date
        if len(out) > 2 and born is not None and asked_born is not None and out[2] == _d8(born):
            out[2] = _d8(asked_born)
        return out

    def _date(self, out: list[str]) -> list[str]:
        if self.asked_date is None or len(out) < 4 or self.asked_date == self.known_date:
            return out
        known, asked = _d8(self.known_date), _d8(self.asked_date)
        out[3] = "-".join(asked if part == known else part for part in out[3].split("-"))
        return out


def _same_text(sent: str, known: str) -> bool:
    """The 271 repeats the scenario request's value (a payer's own spelling of it is kept)."""
    return sent.strip().upper() == known.strip().upper()


def _first_date(asked: Member270, subscriber: Member270, inquiry: Inquiry270) -> dt.date | None:
    for period in (asked.dates, subscriber.dates):
        if period is not None:
            return period.start
    return inquiry.request.service.date if inquiry.request is not None else None


def _d8(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def answer_with_aaa(inquiry: Inquiry270, aaa: AaaAnswer, control: int, now: dt.datetime) -> str:
    """A 271 that echoes the 270's parties and rejects it with ``aaa`` at its loop."""
    body: list[list[str]] = [
        ["ST", "271", "", IMPLEMENTATION_271],
        ["BHT", "0022", "11", inquiry.header.reference, now.strftime("%Y%m%d"), now.strftime("%H%M")],
    ]
    if aaa.loop == "2100A":  # a payer-level answer carries the information source only
        body += [["HL", "1", "", "20", "0"], _nm1(inquiry.source), _aaa(aaa)]
    else:
        body += _parties(inquiry, aaa)
    body.append(["SE", "", ""])
    return _wrap(body, response_envelope(inquiry, control, now, functional_id="HB"), inquiry.delimiters)


def _parties(inquiry: Inquiry270, aaa: AaaAnswer) -> list[list[str]]:
    dependent = inquiry.dependent
    body = [
        ["HL", "1", "", "20", "1"],
        _nm1(inquiry.source),
        ["HL", "2", "1", "21", "1"],
        _nm1(inquiry.receiver),
        ["HL", "3", "2", "22", "1" if dependent else "0"],
        *_member(inquiry.subscriber, aaa if aaa.loop == "2100C" else None),
    ]
    if dependent is not None:
        body += [["HL", "4", "3", "23", "0"], *_member(dependent, aaa if aaa.loop == "2100D" else None)]
    return body


def _member(member: Member270, aaa: AaaAnswer | None) -> list[list[str]]:
    """TRN*2 for each TRN*1 we were sent, the name as sent, the AAA, the demographics as sent."""
    segments = [["TRN", "2", t.number, t.originator, t.supplemental] for t in member.traces if t.type == "1"]
    segments.append(_nm1(member.name))
    if aaa is not None:
        segments.append(_aaa(aaa))
    if member.birth_date is not None:
        segments.append(["DMG", "D8", _d8(member.birth_date), member.sex])
    return segments


def _nm1(name: Name270) -> list[str]:
    return [
        "NM1",
        name.entity_id,
        name.entity_type,
        name.last_or_org,
        name.first,
        name.middle,
        "",
        name.suffix,
        name.id_qualifier if name.id else "",
        name.id,
    ]


def _aaa(aaa: AaaAnswer) -> list[str]:
    return ["AAA", aaa.valid, "", aaa.reason, aaa.follow_up]


# --- 999 -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    """One IK3 (segment) finding, with an optional IK4 (element) finding."""

    segment_id: str
    position: int  # within the transaction set, ST = 1
    loop: str
    segment_error: str  # IK304
    element: str = ""  # IK401
    element_ref: str = ""  # IK402
    element_error: str = ""  # IK403


def reject_999(inquiry: Inquiry270, rejection: Rejection, control: int, now: dt.datetime) -> str:
    """A 999 rejecting the 270 (IK5*R) for ``rejection``."""
    header = inquiry.header
    body = _ack_body("HS", header.group_control, header.implementation, header.transaction_control, rejection)
    return _wrap(body, response_envelope(inquiry, control, now, functional_id="FA"), inquiry.delimiters)


def member_id_rejection(inquiry: Inquiry270) -> Rejection:
    """The finding the sandbox's "999 rejection" fault reports: NM109 of 2100C, invalid character.

    IK302 counts from ST = 1.  In a 270 that ``parse_270`` accepted, ST, BHT and ``HL*1`` come right
    before ``NM1*PR``, so the ST sits three segments before the payer's name.
    """
    st_position = inquiry.source.position - 3
    return Rejection("NM1", inquiry.subscriber.name.position - st_position + 1, "2100C", "8", "9", "67", "6")


def _ack_body(
    functional_id: str, group_control: str, implementation: str, transaction_control: str, finding: Rejection
) -> list[list[str]]:
    body = [
        ["ST", "999", "", IMPLEMENTATION_999],
        ["AK1", functional_id, group_control, implementation],
        ["AK2", "270", transaction_control, implementation],
        ["IK3", finding.segment_id, str(finding.position), finding.loop, finding.segment_error],
    ]
    if finding.element:
        body.append(["IK4", finding.element, finding.element_ref, finding.element_error])
    return [*body, ["IK5", "R", "5"], ["AK9", "R", "1", "1", "0"], ["SE", "", ""]]


# --- reading the 270 -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A payload the sandbox cannot answer with a 271: why, and the 999 to send when it can make one."""

    message: str
    ack: str | None  # a 999 when the envelope was readable enough to acknowledge


def read_inquiry(payload: str, control: int, now: dt.datetime) -> Inquiry270 | Unreadable:
    """The first inquiry of the 270, or why there is none (with a 999 when one can be made)."""
    try:
        inquiries = parse_270(payload)
    except X12Error as exc:
        return Unreadable(exc.message, _ack_for_error(payload, exc, control, now))
    return inquiries[0]


def _ack_for_error(payload: str, exc: X12Error, control: int, now: dt.datetime) -> str | None:
    """A 999 for a 270 that is readable down to its ST but broken inside; None when it is not."""
    try:
        interchange = read_interchange(payload)
    except X12Error:
        return None
    transaction = interchange.transactions[0]
    group = transaction.group
    if transaction.set_id != "270" or group is None:
        return None
    st = transaction.segments[0]
    finding = Rejection(exc.segment_id or "ST", max((exc.position or st.position) - st.position + 1, 1), "", "8")
    body = _ack_body(group.el(1), group.el(6), group.el(8), transaction.control_number, finding)
    return _wrap(body, _swapped_envelope(interchange.isa, group, control, now), interchange.delimiters)


def _swapped_envelope(isa: Segment, group: Segment, control: int, now: dt.datetime) -> EnvelopeValues:
    """A 999's envelope from the raw ISA/GS of what it acknowledges (sender and receiver swapped)."""
    return EnvelopeValues(
        sender_id=isa.el(8).strip(),
        receiver_id=isa.el(6).strip(),
        control_number=control,
        group_control_number=control,
        date=now.strftime("%Y%m%d"),
        time=now.strftime("%H%M"),
        sender_qualifier=isa.el(7).strip(),
        receiver_qualifier=isa.el(5).strip(),
        application_sender=group.el(3),
        application_receiver=group.el(2),
        usage=isa.el(15).strip() or "T",
        functional_id="FA",
        implementation=IMPLEMENTATION_999,
    )


# --- damaged answers (faults) ----------------------------------------------------------------------


def truncate(x12: str) -> str:
    """The answer cut off part-way, mid-segment, as when a server dies while writing."""
    cut = max(len(x12) * 2 // 3, 1)
    return x12[:cut]


def malform(x12: str) -> str:
    """The answer with a broken ISA (elements 5 to 8 lost): no reader can find its delimiters."""
    element = x12[3:4] or "*"
    parts = x12.split(element, 16)
    if len(parts) < 10:
        return "ISX" + x12[3:]
    return element.join(parts[:5] + parts[9:])
