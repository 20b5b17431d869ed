"""Build a 005010X279A1 270 eligibility inquiry from an ``EligibilityRequest``.

Pure: the request, the envelope values and a trace number in, X12 text out.  Control numbers
are drawn before calling (``ControlNumbers``): the service takes them from an atomic Redis counter
so replicas never reuse one, tests from ``SequentialCounter``.

What is written, loop by loop (TR3 names; ``?`` marks a segment written only when there is a value)::

    ISA  GS*HS ... *005010X279A1
    ST*270*nnnn*005010X279A1   BHT*0022*13*<trace number>*CCYYMMDD*HHMM
    2000A  HL*1**20*1                     information source
      2100A  NM1*PR*2*<payer>*****PI*<payer id>
    2000B  HL*2*1*21*1                    information receiver
      2100B  NM1*1P*(1|2)*...*XX*<npi>  PRV*PE*PXC*<taxonomy>?
    2000C  HL*3*2*22*(0|1)                subscriber; 1 when a dependent follows
      TRN*1*<trace>*<originator>          (here only when the subscriber is the patient)
      2100C  NM1*IL*1*...*MI*<member id>?  REF*6P*<group>?  DMG*D8*<dob>*<sex>?  DTP*291?
        2110C  EQ*<stc> | EQ**HC:<code>:<modifiers>   III*ZZ*<place of service>?   (one per code)
      2000D  HL*4*3*23*0                  dependent (when request.subscriber is set)
        TRN*1*<trace>*<originator>
        2100D  NM1*03*1*...  DMG?  INS*N*<relationship>?  DTP*291
          2110D  EQ ...  III*ZZ ...
    SE  GE  IEA

Choices, and why:

* Delimiters ``*`` element, ``^`` repetition, ``:`` component, ``~`` terminator, and a newline after
  every terminator: readable in logs and diffs, and every reader (ours included) skips blanks
  between segments.  The ISA is still exactly 106 characters up to and including its ``~``.
* One EQ per service type code and one per procedure (rather than EQ01 repetitions): some payers
  read only the first repetition; separate 2110 loops are answered separately.  With neither,
  ``EQ*30`` (health benefit plan coverage), the inquiry CORE 154 obliges every payer to answer.
* Place of service goes in each 2110 loop as ``III*ZZ*<code>`` right after its EQ (the 2110C
  order is EQ, AMT, AMT, III, REF, DTP): a 2110 loop is answered on its own, so every EQ carries it.
* The service date goes once in 2100C (2100D for a dependent), applying to every EQ: ``D8`` for a
  single day, ``RD8`` whenever ``end_date`` is given (even the same day, so it reads back the same).
* TRN goes in the patient's loop: 2000C when the subscriber is the patient, 2000D for a dependent
  (the TR3's subscriber trace is for "when the subscriber is the patient").  BHT03 carries the same
  trace number, so either echo finds the inquiry.
* Names are upper-cased; no trailing empty elements; ST02/SE02 are padded to four digits (ST02 is
  AN 4/9), ISA13/IEA02 to nine; GS06/GE02 are written unpadded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

from eligibility_svc.errors import ConfigurationError, InquiryInvalid
from eligibility_svc.ids import unique_hex
from eligibility_svc.models import EligibilityRequest, Patient, Payer, PersonName, Provider, ServiceRequest
from eligibility_svc.settings import X12Settings
from eligibility_svc.x12.inquiry_rules import X12_TEXT_CHARACTERS, writable_problems
from eligibility_svc.x12.reader import Delimiters

ELEMENT = "*"
REPETITION = "^"
COMPONENT = ":"
TERMINATOR = "~"
LINE_END = "\n"  # written after every terminator; not part of the X12 syntax
DELIMITERS = Delimiters(element=ELEMENT, component=COMPONENT, segment=TERMINATOR, repetition=REPETITION)

IMPLEMENTATION = "005010X279A1"
ISA_VERSION = "00501"
MAX_CONTROL_NUMBER = 999_999_999  # ISA13 is nine digits
DEFAULT_SERVICE_TYPE = "30"
# TRN03: "9" (a user-assigned identifier) followed by nine characters.  Ours until settings carry one.
DEFAULT_TRACE_ORIGINATOR = "9000000000"
_ISA_ID_WIDTH = 15


# --- control numbers -----------------------------------------------------------------------------


class ControlCounter(Protocol):
    """Where control numbers come from.  Each call returns a number never returned before (until wrap)."""

    def next_control(self) -> int: ...


class SequentialCounter:
    """In-memory ``ControlCounter``: ``start``, ``start + 1`` ... wrapping after 999999999 to 1."""

    def __init__(self, start: int = 1) -> None:
        _check_control("start", start)
        self._next = start

    def next_control(self) -> int:
        number = self._next
        self._next = number + 1 if number < MAX_CONTROL_NUMBER else 1
        return number


@dataclass(frozen=True, slots=True)
class ControlNumbers:
    """ISA13, GS06 and ST02 of one interchange, each 1..999999999."""

    interchange: int
    group: int
    transaction: int

    def __post_init__(self) -> None:
        _check_control("interchange", self.interchange)
        _check_control("group", self.group)
        _check_control("transaction", self.transaction)

    @classmethod
    def same(cls, number: int) -> ControlNumbers:
        """One number for all three: an interchange holds one group holding one 270, so a number
        unique per interchange is unique per group and per transaction too."""
        return cls(number, number, number)

    @classmethod
    def from_counter(cls, counter: ControlCounter) -> ControlNumbers:
        """The next number of ``counter``, for all three (see ``same``)."""
        return cls.same(counter.next_control())


def _check_control(name: str, number: int) -> None:
    if not 1 <= number <= MAX_CONTROL_NUMBER:
        raise ValueError(f"{name} control number {number} is outside 1..{MAX_CONTROL_NUMBER}")


# --- envelope ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who sends to whom, control numbers and the creation time: everything around the 270 itself.

    ``sender_id``/``receiver_id`` go to ISA06/ISA08 (padded to 15) and GS02/GS03; ``created`` to
    ISA09/10, GS04/05 and BHT04/05, written as given (minutes precision).  Invalid identifiers raise
    ``ConfigurationError`` (they come from settings), invalid control numbers ``ValueError``.
    """

    sender_id: str
    sender_qualifier: str
    receiver_id: str
    receiver_qualifier: str
    usage: Literal["P", "T"]
    interchange_control: int
    group_control: int
    transaction_control: int
    created: datetime

    def __post_init__(self) -> None:
        _check_party("sender_id", self.sender_id, "sender_qualifier", self.sender_qualifier)
        _check_party("receiver_id", self.receiver_id, "receiver_qualifier", self.receiver_qualifier)
        if self.usage not in ("P", "T"):
            raise ConfigurationError(f"x12.usage must be P or T, not {self.usage!r}")
        ControlNumbers(self.interchange_control, self.group_control, self.transaction_control)

    @classmethod
    def from_settings(cls, settings: X12Settings, *, control: int | ControlNumbers, created: datetime) -> Envelope:
        """The envelope our settings describe, with the control number(s) drawn for this interchange:
        one number serves ISA13, GS06 and ST02 (see ``ControlNumbers.same``), or give all three."""
        numbers = control if isinstance(control, ControlNumbers) else ControlNumbers.same(control)
        return cls(
            sender_id=settings.sender_id,
            sender_qualifier=settings.sender_qualifier,
            receiver_id=settings.receiver_id,
            receiver_qualifier=settings.receiver_qualifier,
            usage=settings.usage,
            interchange_control=numbers.interchange,
            group_control=numbers.group,
            transaction_control=numbers.transaction,
            created=created,
        )


def _check_party(id_name: str, value: str, qualifier_name: str, qualifier: str) -> None:
    # GS02/GS03 are 2..15 characters; ISA06/ISA08 are 15 wide, so the same bound serves both.
    if not 2 <= len(value) <= _ISA_ID_WIDTH or value != value.strip() or not _writable(value):
        raise ConfigurationError(
            f"x12.{id_name} {value!r} must be 2 to 15 characters of the X12 character set, "
            "without leading or trailing blanks"
        )
    if len(qualifier) != 2 or not qualifier.isascii() or not qualifier.isalnum():
        raise ConfigurationError(f"x12.{qualifier_name} {qualifier!r} must be a two-character code such as ZZ")


def _writable(value: str) -> bool:
    return all(ch in X12_TEXT_CHARACTERS for ch in value)


# --- the builder ---------------------------------------------------------------------------------


def build_270(
    request: EligibilityRequest,
    envelope: Envelope,
    trace_number: str,
    *,
    trace_originator: str = DEFAULT_TRACE_ORIGINATOR,
) -> str:
    """The complete interchange (ISA through IEA) asking about ``request``.

    ``trace_number`` (TRN02 and BHT03, 1..50 characters) is how the 271 is matched to this inquiry;
    ``trace_originator`` (TRN03) is ten characters starting with 1 (EIN), 3 (DUNS) or 9 (assigned).
    Raises ``InquiryInvalid`` when a request value cannot be written in X12 and ``ValueError`` for a
    malformed trace number or originator.  The business rules (dates, NPI, search options) are
    ``inquiry_rules.check_inquiry``'s: run it first.
    """
    problems = writable_problems(request)
    if problems:
        raise InquiryInvalid(problems)
    _check_trace(trace_number, trace_originator)
    trace = _segment("TRN", "1", trace_number, trace_originator)
    segments = [*_interchange_header(envelope), *_transaction(request, envelope, trace_number, trace)]
    segments.extend(_interchange_trailer(envelope))
    return "".join(segment + TERMINATOR + LINE_END for segment in segments)


def new_trace_number() -> str:
    """A fresh TRN02/BHT03 value: 32 upper-case random hex digits, unique without coordination."""
    return unique_hex().upper()


def _check_trace(trace_number: str, originator: str) -> None:
    if not 1 <= len(trace_number) <= 50 or trace_number != trace_number.strip() or not _writable(trace_number):
        raise ValueError(f"trace number {trace_number!r} must be 1 to 50 X12 characters without outer blanks")
    if len(originator) != 10 or originator[0] not in "139" or not originator.isascii() or not originator.isalnum():
        raise ValueError(f"trace originator {originator!r} must be 10 letters or digits starting with 1, 3 or 9")


def _segment(*elements: str) -> str:
    """Join elements with ``*``, dropping trailing empty ones (X12 forbids them)."""
    values = list(elements)
    while values and not values[-1]:
        values.pop()
    return ELEMENT.join(values)


def _interchange_header(envelope: Envelope) -> list[str]:
    created = envelope.created
    isa = ELEMENT.join(
        [
            "ISA",
            "00",
            " " * 10,
            "00",
            " " * 10,
            envelope.sender_qualifier,
            envelope.sender_id.ljust(_ISA_ID_WIDTH),
            envelope.receiver_qualifier,
            envelope.receiver_id.ljust(_ISA_ID_WIDTH),
            created.strftime("%y%m%d"),
            created.strftime("%H%M"),
            REPETITION,
            ISA_VERSION,
            f"{envelope.interchange_control:09d}",
            "0",  # ISA14: no TA1 acknowledgment requested
            envelope.usage,
            COMPONENT,
        ]
    )
    gs = _segment(
        "GS",
        "HS",
        envelope.sender_id,
        envelope.receiver_id,
        created.strftime("%Y%m%d"),
        created.strftime("%H%M"),
        str(envelope.group_control),
        "X",
        IMPLEMENTATION,
    )
    return [isa, gs]


def _interchange_trailer(envelope: Envelope) -> list[str]:
    return [
        _segment("GE", "1", str(envelope.group_control)),
        _segment("IEA", "1", f"{envelope.interchange_control:09d}"),
    ]


def _transaction(request: EligibilityRequest, envelope: Envelope, trace_number: str, trace: str) -> list[str]:
    """ST through SE; SE01 counts every segment from ST to SE inclusive."""
    control = f"{envelope.transaction_control:04d}"
    created = envelope.created
    segments = [
        _segment("ST", "270", control, IMPLEMENTATION),
        _segment("BHT", "0022", "13", trace_number, created.strftime("%Y%m%d"), created.strftime("%H%M")),
        *_loop_2000a(request.payer),
        *_loop_2000b(request.provider),
        *_loop_2000c(request, trace),
    ]
    segments.append(_segment("SE", str(len(segments) + 1), control))
    return segments


def _loop_2000a(payer: Payer) -> list[str]:
    return [
        _segment("HL", "1", "", "20", "1"),
        _segment("NM1", "PR", "2", payer.name.upper(), "", "", "", "", "PI", payer.id),
    ]


def _loop_2000b(provider: Provider) -> list[str]:
    if provider.organization_name:
        name = _segment("NM1", "1P", "2", provider.organization_name.upper(), "", "", "", "", "XX", provider.npi)
    else:
        last, first = _upper(provider.last_name), _upper(provider.first_name)
        name = _segment("NM1", "1P", "1", last, first, "", "", "", "XX", provider.npi)
    segments = [_segment("HL", "2", "1", "21", "1"), name]
    if provider.taxonomy:
        segments.append(_segment("PRV", "PE", "PXC", provider.taxonomy))
    return segments


def _loop_2000c(request: EligibilityRequest, trace: str) -> list[str]:
    """The subscriber level; for a dependent it ends with the 2000D loop."""
    subscriber = request.subscriber
    if subscriber is None:
        return [
            _segment("HL", "3", "2", "22", "0"),
            trace,
            _person_name("IL", request.patient, request.member_id),
            *_group(request.group_number),
            *_demographics(request.patient.birth_date, request.patient.sex),
            *_service(request.service),
        ]
    return [
        _segment("HL", "3", "2", "22", "1"),
        _person_name("IL", subscriber, request.member_id),
        *_group(request.group_number),
        *_demographics(subscriber.birth_date, subscriber.sex),
        *_loop_2000d(request.patient, request.service, trace),
    ]


def _loop_2000d(patient: Patient, service: ServiceRequest, trace: str) -> list[str]:
    segments = [
        _segment("HL", "4", "3", "23", "0"),
        trace,
        _person_name("03", patient, None),  # 2100D carries no ID: a dependent is found under the subscriber's
        *_demographics(patient.birth_date, patient.sex),
    ]
    if patient.relationship:
        segments.append(_segment("INS", "N", patient.relationship))
    return [*segments, *_service(service)]


def _person_name(entity: str, person: PersonName, member_id: str | None) -> str:
    """NM1 for a person: NM103 last, NM104 first, NM105 middle, NM107 suffix, NM108/09 MI and the ID."""
    return _segment(
        "NM1",
        entity,
        "1",
        person.last_name.upper(),
        _upper(person.first_name),
        _upper(person.middle_name),
        "",  # NM106 prefix: not used in the 270
        _upper(person.suffix),
        "MI" if member_id else "",
        member_id or "",
    )


def _group(group_number: str | None) -> list[str]:
    return [_segment("REF", "6P", group_number)] if group_number else []


def _demographics(birth_date: date | None, sex: str | None) -> list[str]:
    # DMG02 is required whenever DMG is sent; inquiry_rules refuses a sex without a birth date.
    if birth_date is None:
        return []
    return [_segment("DMG", "D8", _d8(birth_date), sex or "")]


def _service(service: ServiceRequest) -> list[str]:
    """DTP*291 for the patient's loop, then one 2110 loop per code asked about."""
    if service.end_date is None:
        dtp = _segment("DTP", "291", "D8", _d8(service.date))
    else:
        dtp = _segment("DTP", "291", "RD8", f"{_d8(service.date)}-{_d8(service.end_date)}")
    return [dtp, *_eq_loops(service)]


def _eq_loops(service: ServiceRequest) -> list[str]:
    inquiries = [_segment("EQ", code) for code in service.service_types]
    for procedure in service.procedures:
        composite = COMPONENT.join([procedure.qualifier, procedure.code, *procedure.modifiers])
        inquiries.append(_segment("EQ", "", composite))
    if not inquiries:
        inquiries.append(_segment("EQ", DEFAULT_SERVICE_TYPE))
    segments: list[str] = []
    for eq in inquiries:
        segments.append(eq)
        if service.place_of_service:
            segments.append(_segment("III", "ZZ", service.place_of_service))
    return segments


def _upper(value: str | None) -> str:
    return value.upper() if value else ""


def _d8(day: date) -> str:
    # Not strftime: "%Y" is not zero-padded to four digits for years before 1000 on every platform.
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"
