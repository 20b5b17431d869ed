"""Which service type codes (STCs) answer for a procedure code: CPT, HCPCS level II and CDT.

Payers answer a 271 by service type; a practice asks by procedure.  ``ProcedureTable`` bridges the
two: ``service_types_for("99213")`` is ``(["98", "1"], "table")``, an ordered list, most specific
first, that the interpreter walks tier by tier (``docs/interpretation.md``, "Per requested service").

How the table is laid out:

* The built-in table (``BUILTIN_RANGES``) is a list of code ranges, each with its STC list.  Ranges
  nest: the *narrowest* range holding a code wins, so ``70551`` (MRI brain, ``62 4``) beats the
  radiology section ``70010-79999`` (``4``).  Two ranges with exactly the same span are refused.
* Codes are compared within a *code kind*: five-digit CPT, HCPCS level II (a letter and four
  digits, ``E0601``; CDT dental codes are the HCPCS ``D`` codes), and CPT codes ending in a letter
  (category II ``####F``, category III ``####T``, proprietary lab ``####U``, multianalyte ``####M``).
* An unknown or unmapped code gives ``[]``: the interpreter then has only the payer's own procedure
  rows and the plan-level (STC 30) and untyped rows to go on, and says "unknown" rather than guess.
  Category II codes (quality reporting) and category III codes (emerging technology) are
  deliberately unmapped.
* Per-deployment overrides (``with_overrides`` / ``load_overrides``) map single codes or
  ``"start-end"`` ranges and always win over the built-in table, whatever their width.

Pure apart from ``load_overrides``, which reads the one JSON file it is given.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Final, Literal

from eligibility_svc.errors import ConfigurationError
from eligibility_svc.x12.codes import is_service_type

MappingSource = Literal["table", "override"]
CodeKey = tuple[str, int]  # (code kind, number within the kind)

# --- the built-in table ---------------------------------------------------------------------------

_MRI_CT: Final = ("62", "4")
_DENTAL: Final = "35"

# (first code, last code, STCs most specific first).  Keep sections in code order; nested ranges
# follow the range they refine.
BUILTIN_RANGES: Final[tuple[tuple[str, str, tuple[str, ...]], ...]] = (
    # Anesthesia, and the add-on codes billed with it.
    ("00100", "01999", ("7",)),
    ("99100", "99140", ("7",)),
    ("99151", "99157", ("7",)),
    # Surgery.
    ("10004", "69990", ("2",)),
    ("17000", "17286", ("DG", "2")),  # destruction of skin lesions
    ("32850", "32856", ("70", "2")),  # lung transplant
    ("33927", "33945", ("70", "2")),  # heart transplant
    ("36415", "36416", ("5",)),  # blood draw: billed with the lab work
    ("38204", "38243", ("70", "2")),  # bone marrow and stem cell transplant
    ("44132", "44137", ("70", "2")),  # intestine transplant
    ("47133", "47147", ("70", "2")),  # liver transplant
    ("48550", "48556", ("70", "2")),  # pancreas transplant
    ("50300", "50380", ("70", "2")),  # kidney transplant
    ("55250", "55250", ("82", "2")),  # vasectomy
    ("58300", "58301", ("82",)),  # IUD insertion and removal
    ("58600", "58615", ("82", "2")),  # tubal ligation
    ("58970", "58976", ("61", "83")),  # in-vitro fertilization procedures
    ("59000", "59899", ("69", "BU")),  # maternity care and delivery
    ("59840", "59857", ("84",)),  # induced abortion
    # Radiology; MRI and CT first look for the "MRI/CAT scan" benefit.
    ("70010", "79999", ("4",)),
    ("70336", "70336", _MRI_CT),
    ("70450", "70498", _MRI_CT),
    ("70540", "70559", _MRI_CT),
    ("71250", "71275", _MRI_CT),
    ("71271", "71271", ("CK", "62", "4")),  # low-dose CT lung cancer screening
    ("71550", "71555", _MRI_CT),
    ("72125", "72133", _MRI_CT),
    ("72141", "72159", _MRI_CT),
    ("72191", "72194", _MRI_CT),
    ("72195", "72198", _MRI_CT),
    ("73200", "73206", _MRI_CT),
    ("73218", "73225", _MRI_CT),
    ("73700", "73706", _MRI_CT),
    ("73718", "73725", _MRI_CT),
    ("74150", "74178", _MRI_CT),
    ("74181", "74185", _MRI_CT),
    ("74261", "74263", _MRI_CT),
    ("75557", "75565", _MRI_CT),
    ("75571", "75574", _MRI_CT),
    ("76380", "76380", _MRI_CT),
    ("76390", "76390", _MRI_CT),
    ("77011", "77014", _MRI_CT),  # CT guidance
    ("77021", "77022", _MRI_CT),  # MR guidance
    ("77046", "77049", _MRI_CT),  # breast MRI
    ("77061", "77062", ("CM", "4")),  # diagnostic breast tomosynthesis
    ("77063", "77063", ("CN", "CM", "4")),  # screening breast tomosynthesis
    ("77065", "77066", ("CM", "4")),  # diagnostic mammography
    ("77067", "77067", ("CN", "CM", "4")),  # screening mammography
    ("77078", "77078", _MRI_CT),  # CT bone density
    ("77261", "77799", ("6",)),  # radiation oncology
    ("78012", "79999", ("4",)),  # nuclear medicine
    ("78608", "78609", ("PE", "4")),  # PET brain
    ("78811", "78816", ("PE", "4")),  # PET and PET/CT
    ("79005", "79999", ("6", "4")),  # radiopharmaceutical therapy
    # Pathology and laboratory.
    ("80047", "89398", ("5",)),
    ("88000", "88399", ("66", "5")),
    ("89250", "89398", ("61", "83", "5")),  # reproductive medicine lab
    ("0001U", "9999U", ("5",)),  # proprietary laboratory analyses
    ("0001M", "9999M", ("5",)),  # multianalyte assays
    # Medicine (and evaluation and management) not refined below: medical care.
    ("90281", "99607", ("1",)),
    ("90460", "90749", ("80",)),  # immunization administration and vaccines
    ("90630", "90630", ("CO", "80")),  # influenza vaccines ...
    ("90653", "90668", ("CO", "80")),
    ("90670", "90671", ("19", "80")),  # pneumococcal vaccines ...
    ("90672", "90674", ("CO", "80")),
    ("90677", "90677", ("19", "80")),
    ("90682", "90682", ("CO", "80")),
    ("90685", "90689", ("CO", "80")),
    ("90694", "90694", ("CO", "80")),
    ("90732", "90732", ("19", "80")),
    ("90756", "90756", ("CO", "80")),
    ("90785", "90899", ("MH",)),  # psychiatry
    ("90791", "90792", ("A4", "MH")),  # psychiatric diagnostic evaluation
    ("90832", "90853", ("A6", "MH")),  # psychotherapy
    ("90867", "90870", ("A4", "MH")),  # TMS, ECT
    ("90935", "90999", ("76",)),  # dialysis
    ("91010", "91299", ("73", "1")),  # gastroenterology tests
    ("92002", "92014", ("AL", "BR")),  # eye exams
    ("92015", "92015", ("AL",)),  # refraction
    ("92018", "92499", ("BR", "1")),  # other ophthalmology
    ("92310", "92326", ("EF", "AO", "AL")),  # contact lenses
    ("92340", "92371", ("CP", "AL")),  # spectacle fitting
    ("92507", "92508", ("AF",)),  # speech treatment
    ("92521", "92526", ("AF",)),  # speech and swallowing evaluation and treatment
    ("92550", "92700", ("71",)),  # audiology
    ("92597", "92597", ("AF",)),  # voice prosthesis evaluation
    ("92605", "92618", ("AF",)),  # speech-generating devices, swallowing evaluation
    ("92920", "93799", ("BL", "1")),  # cardiovascular
    ("93797", "93798", ("BG",)),  # cardiac rehabilitation
    ("94002", "94799", ("PU", "1")),  # pulmonary
    ("94625", "94626", ("BF", "PU")),  # pulmonary rehabilitation
    ("94640", "94668", ("72", "PU")),  # inhalation treatment
    ("95004", "95199", ("79", "GY")),  # allergy testing
    ("95115", "95199", ("GY",)),  # allergen immunotherapy
    ("95700", "96020", ("BQ", "1")),  # neurology
    ("96130", "96139", ("MH",)),  # psychological and neuropsychological testing
    ("96401", "96549", ("78",)),  # chemotherapy administration
    ("96900", "96999", ("DG", "1")),  # special dermatological procedures
    ("97010", "97039", ("PT", "AE")),  # physical medicine modalities
    ("97110", "97546", ("PT", "AE")),  # therapeutic procedures
    ("97151", "97158", ("E0", "MH")),  # adaptive behavior (ABA) services
    ("97161", "97164", ("PT", "AE")),  # physical therapy evaluations
    ("97165", "97168", ("AD",)),  # occupational therapy evaluations
    ("97169", "97172", ("AE",)),  # athletic training evaluations
    ("97802", "97804", ("E28", "1")),  # medical nutrition therapy
    ("97810", "97814", ("64",)),  # acupuncture
    ("98940", "98943", ("33",)),  # chiropractic manipulative treatment
    ("98966", "98972", ("E37", "1")),  # non-physician telephone and online services
    ("99201", "99215", ("98", "1")),  # office and outpatient visits
    ("99217", "99220", ("A0", "1")),  # observation care
    ("99221", "99239", ("99", "1")),  # hospital inpatient (and, since 2023, observation) care
    ("99224", "99226", ("A0", "1")),  # subsequent observation care
    ("99241", "99255", ("3", "1")),  # consultations
    ("99281", "99285", ("86",)),  # emergency department visits
    ("99288", "99288", ("86",)),  # direction of emergency medical services
    ("99291", "99292", ("IC", "1")),  # critical care
    ("99304", "99318", ("A1", "A2", "1")),  # nursing facility care
    ("99341", "99350", ("A3", "1")),  # home visits
    ("99381", "99397", ("BZ", "81")),  # preventive medicine visits
    ("99381", "99381", ("68", "BZ", "81")),  # ... new patient under one year old
    ("99391", "99391", ("68", "BZ", "81")),  # ... established patient under one year old
    ("99401", "99412", ("BZ", "81")),  # preventive counseling
    ("99406", "99407", ("67",)),  # smoking cessation counseling
    ("99421", "99423", ("E37", "1")),  # online digital visits
    ("99441", "99443", ("E37", "1")),  # telephone visits
    ("99460", "99465", ("65", "1")),  # newborn care
    ("99468", "99469", ("NI", "IC", "1")),  # neonatal critical care
    ("99471", "99476", ("IC", "1")),  # pediatric critical care
    ("99477", "99480", ("NI", "1")),  # intensive care of low birth weight infants
    ("99492", "99494", ("MH", "1")),  # psychiatric collaborative care
    ("99500", "99602", ("42",)),  # home health procedures and services
    ("99605", "99607", ("E38",)),  # medication therapy management by a pharmacist
    # HCPCS level II.
    ("A0021", "A0999", ("59", "56")),  # ambulance
    ("A0080", "A0214", ("56",)),  # non-emergency transportation
    ("A0430", "A0431", ("57", "59", "56")),  # air ambulance
    ("A0435", "A0436", ("57", "59", "56")),  # air ambulance mileage
    ("A4206", "A8004", ("DM", "12")),  # medical and surgical supplies
    ("A4238", "A4239", ("DS", "DM")),  # continuous glucose monitor supplies
    ("A4253", "A4259", ("DS", "DM")),  # blood glucose test strips, lancets
    ("A9500", "A9700", ("4",)),  # diagnostic radiopharmaceuticals and contrast
    ("B4000", "B9999", ("DM",)),  # enteral and parenteral nutrition
    ("E0100", "E9999", ("DM", "12", "18")),  # durable medical equipment
    ("G0008", "G0008", ("CO", "80")),  # flu vaccine administration
    ("G0009", "G0009", ("19", "80")),  # pneumococcal vaccine administration
    ("G0010", "G0010", ("80",)),  # hepatitis B vaccine administration
    ("G0101", "G0101", ("BT", "81")),  # cervical or vaginal cancer screening exam
    ("G0402", "G0402", ("BZ", "81")),  # welcome to Medicare preventive visit
    ("G0422", "G0423", ("E33", "BG")),  # intensive cardiac rehabilitation
    ("G0424", "G0424", ("BF", "PU")),  # pulmonary rehabilitation
    ("G0438", "G0439", ("BZ", "81")),  # annual wellness visit
    ("H0001", "H2037", ("MH",)),  # behavioral health (Medicaid)
    ("H0005", "H0016", ("AI", "MH")),  # alcohol and drug services
    ("H0020", "H0020", ("AI", "MH")),  # methadone administration
    ("J0120", "J8999", ("1",)),  # drugs given other than by mouth
    ("J9000", "J9999", ("78", "1")),  # chemotherapy drugs
    ("K0001", "K0899", ("DM", "12", "18")),  # wheelchairs and other DME
    ("L0112", "L4631", ("DM", "75")),  # orthotics
    ("L5000", "L9900", ("75",)),  # prosthetics
    ("P2028", "P9615", ("5",)),  # pathology and laboratory
    ("Q0083", "Q0085", ("78",)),  # chemotherapy administration
    ("R0070", "R0076", ("4",)),  # portable x-ray transport
    ("S0620", "S0621", ("AL",)),  # routine ophthalmological exam
    ("V2020", "V2025", ("AM", "CP", "AL")),  # frames
    ("V2100", "V2499", ("AO", "CP", "AL")),  # spectacle lenses
    ("V2500", "V2599", ("EF", "AO", "AL")),  # contact lenses
    ("V2600", "V2799", ("AL",)),  # low vision aids, other vision
    ("V5008", "V5020", ("71",)),  # hearing assessment
    ("V5030", "V5299", ("F4",)),  # hearing aids
    ("V5336", "V5364", ("AF",)),  # speech-language services
    # Dental (CDT, the HCPCS D codes): the category's STC, then dental care.
    ("D0100", "D9999", (_DENTAL,)),
    ("D0100", "D0999", ("23", _DENTAL)),  # diagnostic
    ("D1000", "D1999", ("41", _DENTAL)),  # preventive
    ("D2000", "D2999", ("25", _DENTAL)),  # restorative
    ("D2700", "D2799", ("36", "25", _DENTAL)),  # crowns
    ("D3000", "D3999", ("26", _DENTAL)),  # endodontics
    ("D4000", "D4999", ("24", _DENTAL)),  # periodontics
    ("D5000", "D5899", ("39", _DENTAL)),  # removable prosthodontics
    ("D5900", "D5999", ("27", _DENTAL)),  # maxillofacial prosthetics
    ("D6000", "D6999", ("39", _DENTAL)),  # implants and fixed prosthodontics
    ("D7000", "D7999", ("40", _DENTAL)),  # oral and maxillofacial surgery
    ("D8000", "D8999", ("38", _DENTAL)),  # orthodontics
    ("D9000", "D9999", ("28", _DENTAL)),  # adjunctive general services
)

# Facility benefits worth a look for a surgical procedure done at these places of service, after
# the table's own list: an ambulatory surgical center (24) or an outpatient hospital (19, 22).
_SURGICAL_FACILITY_HINTS: Final[dict[str, str]] = {"24": "13", "19": "53", "22": "53"}
_SURGICAL: Final = "2"

# Qualifiers whose codes this table knows: CPT/HCPCS (HC, CJ are one code set) and CDT (AD).
_KNOWN_QUALIFIERS: Final = frozenset({"HC", "CJ", "AD"})
_SUFFIX_KINDS: Final = frozenset("FTUM")
_CACHE_LIMIT: Final = 4096


# --- code keys ------------------------------------------------------------------------------------


def code_key(code: str, qualifier: str = "HC") -> CodeKey | None:
    """The ``(kind, number)`` a code sorts by, or ``None`` when it is not a code this table maps.

    ``"99213"`` → ``("", 99213)``; ``"E0601"`` → ``("E", 601)``; ``"0042T"`` → ``("#T", 42)``;
    with qualifier ``AD`` a bare ``"0120"`` is read as ``"D0120"``.
    """
    if qualifier not in _KNOWN_QUALIFIERS:
        return None
    text = code.strip().upper()
    if qualifier == "AD" and len(text) == 4 and text.isdigit():
        text = "D" + text
    if len(text) != 5:
        return None
    if text.isdigit():
        return ("", int(text))
    head, body, tail = text[0], text[1:], text[4]
    if head.isalpha() and body.isdigit():
        return (head, int(body))
    if tail in _SUFFIX_KINDS and text[:4].isdigit():
        return ("#" + tail, int(text[:4]))
    return None


# --- flattened ranges ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Range:
    kind: str
    start: int
    end: int
    service_types: tuple[str, ...]
    label: str  # as written, for error messages

    @property
    def width(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class _Segments:
    """Non-overlapping segments of one code kind, found by bisection on ``starts``."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    values: tuple[tuple[str, ...], ...]

    def find(self, number: int) -> tuple[str, ...] | None:
        at = bisect_right(self.starts, number) - 1
        if at >= 0 and number <= self.ends[at]:
            return self.values[at]
        return None


def _narrowest(ranges: Sequence[_Range], number: int) -> _Range | None:
    best: _Range | None = None
    for candidate in ranges:
        if candidate.start <= number <= candidate.end and (best is None or candidate.width < best.width):
            best = candidate
    return best


def _flatten(ranges: Sequence[_Range]) -> _Segments:
    """Cut nested ranges of one kind into segments, each holding its narrowest range's STCs."""
    cuts = sorted({r.start for r in ranges} | {r.end + 1 for r in ranges})
    starts: list[int] = []
    ends: list[int] = []
    values: list[tuple[str, ...]] = []
    for low, next_low in pairwise(cuts):
        owner = _narrowest(ranges, low)
        if owner is None:
            continue
        if ends and ends[-1] == low - 1 and values[-1] == owner.service_types:
            ends[-1] = next_low - 1  # same answer as the segment before: extend it
            continue
        starts.append(low)
        ends.append(next_low - 1)
        values.append(owner.service_types)
    return _Segments(tuple(starts), tuple(ends), tuple(values))


def _check_spans(ranges: Iterable[_Range], what: str) -> None:
    seen: dict[tuple[str, int, int], str] = {}
    for r in ranges:
        span = (r.kind, r.start, r.end)
        if span in seen:
            raise ConfigurationError(
                f"{what} {r.label!r} covers exactly the same codes as {seen[span]!r}; keep one of them",
                details={"key": r.label},
            )
        seen[span] = r.label


def _index(ranges: Sequence[_Range], what: str) -> dict[str, _Segments]:
    _check_spans(ranges, what)
    by_kind: dict[str, list[_Range]] = {}
    for r in ranges:
        by_kind.setdefault(r.kind, []).append(r)
    return {kind: _flatten(group) for kind, group in by_kind.items()}


# --- parsing ranges ----------------------------------------------------------------------------------


def _parse_range(label: str, service_types: Sequence[str], what: str) -> _Range:
    """``"97110-97546"`` or ``"99213"`` with its STCs → ``_Range``; ``ConfigurationError`` naming it."""
    first, dash, last = label.partition("-")
    low = code_key(first)
    high = code_key(last) if dash else low
    if low is None or high is None:
        raise ConfigurationError(
            f"{what} {label!r} is not a procedure code or a 'first-last' range of codes "
            "(CPT 99213, HCPCS E0601, CDT D0120, category III 0042T)",
            details={"key": label},
        )
    if low[0] != high[0] or low[1] > high[1]:
        raise ConfigurationError(
            f"{what} {label!r} must run from a lower to a higher code of the same kind",
            details={"key": label},
        )
    return _Range(low[0], low[1], high[1], _check_service_types(label, service_types, what), label)


def _check_service_types(label: str, service_types: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(service_types, str) or not all(isinstance(s, str) for s in service_types):
        raise ConfigurationError(f"{what} {label!r} must map to a list of service type codes", details={"key": label})
    unknown = [s for s in service_types if not is_service_type(s)]
    if unknown:
        raise ConfigurationError(
            f"{what} {label!r} maps to unknown service type code(s) {', '.join(map(repr, unknown))}",
            details={"key": label, "unknown": unknown},
        )
    if len(set(service_types)) != len(service_types):
        raise ConfigurationError(f"{what} {label!r} lists a service type twice", details={"key": label})
    return tuple(service_types)


# --- the table -----------------------------------------------------------------------------------------


class ProcedureTable:
    """Procedure code → ordered service types, from the built-in ranges plus deployment overrides.

    Immutable: ``with_overrides`` returns a new table.  Lookups are memoized per table.
    """

    __slots__ = ("_builtin", "_memo", "_overrides")

    def __init__(self, builtin: dict[str, _Segments], overrides: dict[str, _Segments] | None = None) -> None:
        self._builtin = builtin
        self._overrides = overrides or {}
        self._memo: dict[tuple[str, str], tuple[tuple[str, ...], MappingSource]] = {}

    @classmethod
    def builtin(cls) -> ProcedureTable:
        """A table of ``BUILTIN_RANGES`` alone (prefer the shared ``default_table()``)."""
        ranges = [_parse_range(f"{a}-{b}" if a != b else a, stcs, "built-in range") for a, b, stcs in BUILTIN_RANGES]
        return cls(_index(ranges, "built-in range"))

    def with_overrides(self, mapping: Mapping[str, Sequence[str]]) -> ProcedureTable:
        """The built-in ranges with ``mapping`` (``{"99213": ["98"], "97110-97546": ["PT"]}``) winning.

        The mapping replaces any overrides this table already had (one deployment, one file).

        Raises ``ConfigurationError`` naming the first bad key: not a code or range, a range
        running backwards or across code kinds, an unknown STC, or two keys with the same span.
        An empty list is allowed and means "no mapping" (plan-level rows answer).
        """
        ranges = [_parse_range(key, stcs, "procedure override") for key, stcs in mapping.items()]
        return ProcedureTable(self._builtin, _index(ranges, "procedure override"))

    def service_types_for(
        self, code: str, qualifier: str = "HC", *, place_of_service: str | None = None
    ) -> tuple[list[str], MappingSource]:
        """The STCs for ``code``, most specific first, and where the mapping came from.

        Unknown or unmapped codes give ``([], "table")``.  With a ``place_of_service`` of an
        ambulatory surgical center or outpatient hospital, a surgical mapping from the built-in
        table gains the matching facility STC at its end (13 ASC facility, 53 hospital ambulatory
        surgical); overrides are taken as written.
        """
        found, source = self._lookup(code, qualifier)
        stcs = list(found)
        hint = _SURGICAL_FACILITY_HINTS.get(place_of_service or "")
        if hint and source == "table" and _SURGICAL in stcs and hint not in stcs:
            stcs.append(hint)
        return stcs, source

    def _lookup(self, code: str, qualifier: str) -> tuple[tuple[str, ...], MappingSource]:
        memo_key = (code, qualifier)
        hit = self._memo.get(memo_key)
        if hit is not None:
            return hit
        answer = self._resolve(code_key(code, "HC" if qualifier == "CJ" else qualifier))
        if len(self._memo) < _CACHE_LIMIT:  # bounded: codes come from callers
            self._memo[memo_key] = answer
        return answer

    def _resolve(self, key: CodeKey | None) -> tuple[tuple[str, ...], MappingSource]:
        if key is None:
            return (), "table"
        kind, number = key
        overridden = self._overrides.get(kind)
        found = overridden.find(number) if overridden else None
        if found is not None:
            return found, "override"
        builtin = self._builtin.get(kind)
        return (builtin.find(number) if builtin else None) or (), "table"


@cache
def default_table() -> ProcedureTable:
    """The built-in table, built once per process."""
    return ProcedureTable.builtin()


def load_overrides(path: str | Path, base: ProcedureTable | None = None) -> ProcedureTable:
    """``base`` (default: the built-in table) with the overrides in the JSON file at ``path``.

    The file is one JSON object: ``{"99213": ["98", "1"], "97110-97546": ["PT", "AE"]}``.
    Any problem (missing file, bad JSON, bad key or value) is a ``ConfigurationError`` naming it.
    """
    where = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read procedure overrides {where}: {exc}", details={"path": where}) from exc
    except ValueError as exc:
        raise ConfigurationError(
            f"procedure overrides {where} is not valid JSON: {exc}", details={"path": where}
        ) from exc
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"procedure overrides {where} must be a JSON object of code → list of service types",
            details={"path": where},
        )
    for key, value in data.items():
        if not isinstance(value, list):
            raise ConfigurationError(
                f"procedure override {key!r} in {where} must map to a list of service type codes",
                details={"path": where, "key": key},
            )
    return (base or default_table()).with_overrides(data)


def load_table(path: str | Path | None) -> ProcedureTable:
    """The table a deployment uses: the built-in one, with the overrides file at ``path`` if any
    (``settings.x12.procedure_map_file``).  ``ConfigurationError`` as for ``load_overrides``."""
    return default_table() if path is None else load_overrides(path)
