"""Can a valid 005010X279A1 270 be built from this request?  Every problem, field by field.

Pure: an ``EligibilityRequest`` and today's date in, ``None`` or ``InquiryInvalid`` out.  The model
(``models.py``) already checks each field's shape; the rules here need the whole request, today's
date, or knowledge of X12:

* ``writable_problems``: values X12 cannot carry (characters outside the X12 extended character
  set, or our own delimiters).  ``build_270`` refuses such a request, so it can never write a
  delimiter inside an element.
* ``check_inquiry``: those, plus the NPI check digit, the CORE 154 date window, birth dates,
  member ID shape, the TR3 search options, and the other combinations the TR3 demands.

Each problem is ``(field path, what is wrong and how to fix it)``; the messages are for the person
at the front desk, so they name the value and the fix, not the X12 segment.
"""

from __future__ import annotations

import calendar
import functools
import unicodedata
from collections.abc import Iterator
from datetime import date

from eligibility_svc.errors import InquiryInvalid
from eligibility_svc.models import EligibilityRequest, Patient, PersonName, Subscriber
from eligibility_svc.x12.codes import TR3_SERVICE_TYPES

Problem = tuple[str, str]

# The X12 extended character set (X12.6): letters, digits, space and these specials.
_SPECIALS = frozenset("!\"&'()*+,-./:;?=%@[]_{}\\|<>#$")
# The delimiters build_270 writes (element, repetition, component, segment terminator).
_OUR_DELIMITERS = frozenset("*^:~")
_ASCII_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
X12_TEXT_CHARACTERS = frozenset((_ASCII_ALNUM | _SPECIALS | {" "}) - _OUR_DELIMITERS)
"""Every character ``build_270`` can write inside an element value."""

MAX_EQ_LOOPS = 99  # 2110C/2110D repeat at most 99 times
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
_MEMBER_ID_CHARACTERS = _ASCII_ALNUM | {"-"}
_PLACEHOLDER_IDS = frozenset({"UNKNOWN", "UNK", "NONE", "NULL", "NA", "TBD", "PENDING", "SELFPAY", "SELF-PAY"})
_NPI_PREFIX = "80840"  # ISO 7812 prefix for US health identifiers; the NPI check digit covers it


def check_inquiry(request: EligibilityRequest, *, today: date) -> None:
    """Raise ``InquiryInvalid`` listing every reason a 270 for ``request`` would be wrong.

    ``today`` is the date the inquiry is sent (the CORE 154 window is relative to it).
    Returns ``None`` when the request can be sent as it is.
    """
    problems = [
        *writable_problems(request),
        *_npi_problems(request),
        *_date_problems(request, today),
        *_member_id_problems(request.member_id),
        *_search_option_problems(request),
        *_combination_problems(request),
        *_service_type_problems(request),
    ]
    if problems:
        raise InquiryInvalid(problems)


def writable_problems(request: EligibilityRequest) -> list[Problem]:
    """Text values of ``request`` that X12 cannot carry (the part of the rules ``build_270`` enforces)."""
    problems: list[Problem] = []
    for field, value, is_name in _text_fields(request):
        message = text_problem(value, upper=is_name)
        if message is not None:
            problems.append((field, message))
    return problems


def text_problem(value: str, *, upper: bool = False) -> str | None:
    """Why ``value`` cannot be written as an X12 element, or ``None`` when it can.

    ``upper`` says the builder upper-cases the value, so the suggested spelling is upper case.
    """
    if X12_TEXT_CHARACTERS.issuperset(value):  # the common case, at C speed
        return None
    bad = list(dict.fromkeys(ch for ch in value if ch not in X12_TEXT_CHARACTERS))
    listed = " and ".join(_describe_character(ch) for ch in bad)
    return f"{value!r} contains {listed}, which X12 cannot carry; {_suggestion(value, upper=upper)}"


@functools.lru_cache(maxsize=4096)  # a practice asks with few NPIs, over and over
def npi_is_valid(npi: str) -> bool:
    """True when ``npi`` is ten digits whose last is the Luhn check digit over ``80840`` + the first nine."""
    if len(npi) != 10 or not npi.isascii() or not npi.isdigit():
        return False
    digits = [int(ch) for ch in _NPI_PREFIX + npi]
    # Luhn: from the rightmost (check) digit leftwards, double every second digit.
    total = 0
    for offset, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if offset % 2 == 1 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


@functools.lru_cache(maxsize=8)  # asked on every check, with the same today all day
def core_date_window(today: date) -> tuple[date, date]:
    """The service dates CORE 154 obliges payers to answer for: 12 months back through month end."""
    back = _same_day(today.year - 1, today.month, today.day)
    last_day = calendar.monthrange(today.year, today.month)[1]
    return back, date(today.year, today.month, last_day)


# --- character set --------------------------------------------------------------------------------


def _text_fields(request: EligibilityRequest) -> Iterator[tuple[str, str, bool]]:
    """``(field path, value, upper-cased by the builder)`` for every free-text value the 270 carries."""
    yield "payer.id", request.payer.id, False
    yield "payer.name", request.payer.name, True
    provider = request.provider
    for name in ("organization_name", "last_name", "first_name"):
        value = getattr(provider, name)
        if value:
            yield f"provider.{name}", value, True
    yield from _name_fields("patient", request.patient)
    if request.subscriber is not None:
        yield from _name_fields("subscriber", request.subscriber)
    if request.member_id:
        yield "member_id", request.member_id, False
    if request.group_number:
        yield "group_number", request.group_number, False


def _name_fields(prefix: str, person: PersonName) -> Iterator[tuple[str, str, bool]]:
    for name in ("last_name", "first_name", "middle_name", "suffix"):
        value = getattr(person, name)
        if value:
            yield f"{prefix}.{name}", value, True


def _describe_character(ch: str) -> str:
    if ch in _OUR_DELIMITERS:
        return f"{ch!r} (an X12 delimiter)"
    if ch.isprintable():
        return repr(ch)
    # Invisible characters are named, so the person can find them (a no-break space pasted from a PDF).
    name = unicodedata.name(ch, "")
    return f"the character U+{ord(ch):04X} ({name})" if name else f"the control character U+{ord(ch):04X}"


def _suggestion(value: str, *, upper: bool) -> str:
    """How to fix it: the accent-free spelling when that is all it takes, else what to remove."""
    stripped = "".join(ch for ch in unicodedata.normalize("NFKD", value) if not unicodedata.combining(ch))
    kept = "".join(ch for ch in stripped if ch in X12_TEXT_CHARACTERS)
    if upper:
        kept = kept.upper()
    if stripped != value and kept and len(kept) == len(stripped):
        return f"send it without accents ({kept})"
    if kept.strip():
        return f"remove or replace those characters (for example {kept.strip()})"
    return "remove or replace those characters"


# --- identifiers ---------------------------------------------------------------------------------


def _npi_problems(request: EligibilityRequest) -> list[Problem]:
    npi = request.provider.npi
    if npi_is_valid(npi):
        return []
    return [("provider.npi", f"{npi} is not a valid NPI (its check digit is wrong); copy the NPI again from NPPES")]


def _member_id_problems(member_id: str | None) -> list[Problem]:
    """Member IDs are what is printed on the card: 2-80 letters, digits and hyphens, not a placeholder."""
    if member_id is None:
        return []
    field = "member_id"  # its length (2 to 80, as NM109) is checked by the model
    # Characters X12 cannot carry at all are reported by writable_problems; here the shape only.
    odd = (
        []
        if _MEMBER_ID_CHARACTERS.issuperset(member_id)
        else [ch for ch in dict.fromkeys(member_id) if ch in X12_TEXT_CHARACTERS and ch not in _MEMBER_ID_CHARACTERS]
    )
    if odd:
        shown = ", ".join(repr(ch) for ch in odd)
        return [(field, f"{member_id!r} contains {shown}; a member ID holds only letters, digits and hyphens")]
    if member_id.upper() in _PLACEHOLDER_IDS or len(set(member_id)) == 1:
        return [
            (
                field,
                f"{member_id!r} looks like a placeholder, not a member ID; send the ID from the card, "
                "or leave member_id out and send the patient's first name and birth date",
            )
        ]
    return []


# --- dates ---------------------------------------------------------------------------------------


def _date_problems(request: EligibilityRequest, today: date) -> list[Problem]:
    service = request.service
    start, end = core_date_window(today)
    problems = [*_window_problems("service.date", service.date, start, end)]
    if service.end_date is not None:
        problems.extend(_window_problems("service.end_date", service.end_date, start, end))
        if service.end_date < service.date:
            problems.append(
                ("service.end_date", f"{service.end_date} is before service.date {service.date}; swap the two dates")
            )
    problems.extend(_birth_date_problems("patient.birth_date", request.patient.birth_date, today, service.date))
    if request.subscriber is not None:
        problems.extend(_birth_date_problems("subscriber.birth_date", request.subscriber.birth_date, today, None))
    return problems


def _window_problems(field: str, day: date, start: date, end: date) -> list[Problem]:
    if day < start:
        return [
            (
                field,
                f"{day} is more than 12 months ago; payers answer for dates from {start} through {end} "
                "(CORE 154): ask about a date in that range",
            )
        ]
    if day > end:
        return [
            (
                field,
                f"{day} is after the end of this month; payers answer for dates from {start} through {end} "
                "(CORE 154): check again from the first of that month",
            )
        ]
    return []


def _birth_date_problems(field: str, born: date | None, today: date, service_date: date | None) -> list[Problem]:
    if born is None:
        return []
    if born > today:
        return [(field, f"{born} is in the future; check the birth date")]
    if born < EARLIEST_BIRTH_DATE:
        return [(field, f"{born} is before {EARLIEST_BIRTH_DATE}; check the birth date (year typed wrong?)")]
    if service_date is not None and born > service_date:
        return [(field, f"{born} is after the service date {service_date}; check both dates")]
    return []


def _same_day(year: int, month: int, day: int) -> date:
    """``date(year, month, day)``, with 29 February becoming 28 February in a common year."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


# --- combinations --------------------------------------------------------------------------------


def _search_option_problems(request: EligibilityRequest) -> list[Problem]:
    """The TR3 search options: who the payer must be able to find, from what we send."""
    if request.is_dependent:
        return _dependent_search_problems(request)
    patient = request.patient
    if request.member_id:
        if patient.first_name or patient.birth_date:
            return []
        return [
            (
                "patient",
                "a member ID with only a last name is not enough for payers to find the member; "
                "add the patient's first name or birth date",
            )
        ]
    problems: list[Problem] = []
    if not patient.first_name:
        problems.append(("patient.first_name", _NO_ID_SEARCH))
    if patient.birth_date is None:
        problems.append(("patient.birth_date", _NO_ID_SEARCH))
    return problems


_NO_ID_SEARCH = (
    "required when no member_id is sent (payers then search by last name, first name and birth date); "
    "add it, or send the member ID from the insurance card"
)


def _dependent_search_problems(request: EligibilityRequest) -> list[Problem]:
    """A dependent is found under the subscriber's member ID by name and birth date."""
    patient = request.patient
    problems: list[Problem] = []
    if not request.member_id:
        problems.append(
            ("member_id", "a dependent is looked up under the subscriber's member ID; send the ID from the card")
        )
    if not patient.first_name:
        problems.append(("patient.first_name", "payers find a dependent by name and birth date; add the first name"))
    if patient.birth_date is None:
        problems.append(("patient.birth_date", "payers find a dependent by name and birth date; add the birth date"))
    return problems


def _service_type_problems(request: EligibilityRequest) -> list[Problem]:
    """Every EQ01 must be a service type code the 005010X279A1 TR3 lists."""
    return [
        (
            f"service.service_types[{i}]",
            f"{code!r} is not a 005010X279A1 service type code; use one such as 30 (health benefit plan), "
            "98 (office visit) or MH (mental health), or ask by procedure code instead",
        )
        for i, code in enumerate(request.service.service_types)
        if code not in TR3_SERVICE_TYPES
    ]


def _combination_problems(request: EligibilityRequest) -> list[Problem]:
    problems: list[Problem] = []
    service = request.service
    count = len(service.service_types) + len(service.procedures)
    if count > MAX_EQ_LOOPS:
        problems.append(
            (
                "service",
                f"{count} service types and procedures were asked about; one inquiry carries at most "
                f"{MAX_EQ_LOOPS}: split the request",
            )
        )
    provider = request.provider
    if provider.last_name and not provider.first_name:
        problems.append(
            (
                "provider.first_name",
                "a provider who is a person needs a first name; add it, or send organization_name for a practice",
            )
        )
    if request.patient.relationship is not None and not request.is_dependent:
        problems.append(
            (
                "patient.relationship",
                "only a dependent has a relationship to the subscriber; remove it, or add the subscriber",
            )
        )
    problems.extend(_sex_problems("patient", request.patient))
    if request.subscriber is not None:
        problems.extend(_sex_problems("subscriber", request.subscriber))
    return problems


def _sex_problems(prefix: str, person: Patient | Subscriber) -> list[Problem]:
    """X12 carries sex only next to the birth date (DMG02 is required whenever DMG is sent)."""
    if person.sex is not None and person.birth_date is None:
        return [(f"{prefix}.sex", f"can only be sent with the birth date; add {prefix}.birth_date or leave sex out")]
    return []
