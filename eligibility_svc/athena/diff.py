"""The write-back decision: what to change in athenaNet so it holds the plan the payer just confirmed.

Pure: the patient's current insurances and a verified ``CoverageSummary`` in, one ``WriteBackPlan``
out.  athenaNet's documented rule drives the shape of the change::

    status not active ──┬─ policy at the sequence, no allow_inactive_overwrite ─► REFUSED
                        ├─ policy at the sequence, flag set, same package ───────► UPDATE (differing fields) / NONE
                        └─ otherwise ────────────────────────────────────────────► NONE (nothing verified to add)
    active ─────────────┬─ no policy at the sequence ───────────────────────────► CREATE  (POST)
                        ├─ policy of another package ───────────────────────────► REPLACE (DELETE + POST)
                        ├─ same package, some fields differ ────────────────────► UPDATE  (PUT those fields only)
                        └─ same package, nothing differs ───────────────────────► NONE

Fields compared (payer's answer → athenaNet field): member ID → ``insuranceidnumber``, group number
→ ``policynumber``, coverage (else eligibility) begin / end → ``issuedate`` / ``expirationdate``; the
policy holder's name, DOB and sex only when the payer *corrected* them (a ``Correction`` on the
subscriber), and the relationship only when the payer stated one.  A value the payer did not send
never clears one athenaNet holds.  Comparisons ignore case, spacing and punctuation where athenaNet
and payers differ only in spelling (``"ZZM01 00001"`` is ``"zzm0100001"``), so re-deciding after a
write finds nothing to do: applying a plan and deciding again always gives ``NONE``, which is what
makes a redelivered write-back harmless.

A payer with no insurance package in the practice's mapping is an ``AthenaPayerUnmapped`` error,
never a guess.  Reasons and notes name fields and statuses, never patient data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from eligibility_svc.athena.records import AthenaInsurance, format_date, policy_at
from eligibility_svc.cache import normalize_member_id, normalize_name
from eligibility_svc.errors import AthenaPayerUnmapped
from eligibility_svc.models import CheckStatus, CoverageSummary, EligibilityRequest, MemberInfo
from eligibility_svc.settings import AthenaPracticeSettings

# X12 INS02 (271) → athenaNet relationshiptoinsuredid, and back for inquiries.
X12_TO_ATHENA_RELATIONSHIP: Mapping[str, int] = {
    "18": 1,  # self
    "01": 2,  # spouse
    "19": 3,  # child
    "G8": 4,  # other relationship
    "20": 12,  # employee
    "21": 13,  # unknown
    "53": 26,  # life partner
}
ATHENA_SELF = 1
CANCELLATION_NOTE_MAX = 400
_SEXES = frozenset({"M", "F"})


class Action(StrEnum):
    NONE = "none"
    UPDATE = "update"  # PUT /patients/{pid}/insurances/{insuranceid}
    CREATE = "create"  # POST /patients/{pid}/insurances
    REPLACE = "replace"  # DELETE the old policy, then POST the new one
    REFUSED = "refused"  # a rule forbids writing this check


@dataclass(frozen=True, slots=True)
class WriteBackPlan:
    """What to do; ``fields`` are form values ready to send (strings, ``mm/dd/yyyy`` dates)."""

    action: Action
    reason: str
    insurance_id: str | None = None  # the policy updated or deleted
    fields: Mapping[str, str] = field(default_factory=dict)
    cancellation_note: str | None = None  # REPLACE: the DELETE's note
    notes: tuple[str, ...] = ()  # what was seen but deliberately not written

    @property
    def changed(self) -> tuple[str, ...]:
        """The athenaNet field names written (for the check's state and the audit, no values)."""
        return tuple(sorted(self.fields))


@dataclass(frozen=True, slots=True)
class PackageChoice:
    """The payer's insurance package in one practice, and the packages counting as the same payer."""

    payer_id: str
    package_id: int
    accepted: frozenset[int]


@dataclass(frozen=True, slots=True)
class Holder:
    """The policy holder as the new policy should record them."""

    first_name: str | None
    last_name: str | None
    birth_date: dt.date | None
    sex: str | None


@dataclass(frozen=True, slots=True)
class VerifiedCoverage:
    """The facts of a check that may be written to athenaNet."""

    status: CheckStatus
    payer_id: str
    member_id: str | None
    group_number: str | None
    issue_date: dt.date | None
    expiration_date: dt.date | None
    holder: Holder  # for a new policy: the request's spelling unless the payer corrected it
    holder_corrections: Mapping[str, str | dt.date]  # corrected holder field → the payer's value
    stated_relationship: int | None  # athenaNet relationship the payer stated, if any
    relationship: int  # for a new policy: stated, else what the request implied
    patient_corrections: tuple[str, ...] = ()  # a dependent's own corrected fields (not written)


# --- from a check --------------------------------------------------------------------------------


def resolve_package(practice: AthenaPracticeSettings | None, practice_id: str, payer_id: str) -> PackageChoice:
    """The package ``payer_id`` maps to in ``practice``; ``AthenaPayerUnmapped`` when it has none."""
    mapping = practice.payers.get(payer_id) if practice is not None else None
    if mapping is None:
        raise AthenaPayerUnmapped(
            f"payer {payer_id} has no insurance package in the configuration of athenaNet practice {practice_id} "
            f"(athena.practices.{practice_id}.payers.{payer_id}.insurance_package_id); nothing was written",
            details={"practice_id": practice_id, "payer_id": payer_id},
        )
    accepted = frozenset({mapping.insurance_package_id, *mapping.also_accept})
    return PackageChoice(payer_id, mapping.insurance_package_id, accepted)


def verified_coverage(summary: CoverageSummary, request: EligibilityRequest) -> VerifiedCoverage:
    """What ``summary`` (the payer's answer to ``request``) lets us write."""
    plan, subscriber = summary.plan, summary.subscriber
    corrections = _holder_corrections(subscriber)
    stated = _stated_relationship(summary)
    return VerifiedCoverage(
        status=summary.status,
        payer_id=request.payer.id,
        member_id=subscriber.member_id or request.member_id,
        group_number=plan.group_number,
        issue_date=plan.coverage_begin or plan.eligibility_begin,
        expiration_date=plan.coverage_end or plan.eligibility_end,
        holder=_holder(request, subscriber, corrections),
        holder_corrections=corrections,
        stated_relationship=stated,
        relationship=stated or _requested_relationship(request),
        patient_corrections=tuple(c.field for c in summary.patient.corrections) if summary.patient else (),
    )


_HOLDER_FIELDS = ("last_name", "first_name", "birth_date", "sex")


def _holder_corrections(subscriber: MemberInfo) -> dict[str, str | dt.date]:
    corrected = {c.field for c in subscriber.corrections}
    values: dict[str, str | dt.date] = {}
    for name in _HOLDER_FIELDS:
        value = getattr(subscriber, name)
        if name in corrected and value:
            values[name] = value
    return values


def _holder(request: EligibilityRequest, subscriber: MemberInfo, corrected: Mapping[str, object]) -> Holder:
    asked = request.subscriber or request.patient

    def pick(name: str) -> object:
        if name in corrected:
            return corrected[name]
        return getattr(asked, name, None) or getattr(subscriber, name)

    birth = pick("birth_date")
    return Holder(
        first_name=_str_or_none(pick("first_name")),
        last_name=_str_or_none(pick("last_name")),
        birth_date=birth if isinstance(birth, dt.date) else None,
        sex=_str_or_none(pick("sex")),
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _stated_relationship(summary: CoverageSummary) -> int | None:
    """The relationship the payer stated: the dependent's INS02, or INS02 18 on the subscriber."""
    if summary.patient is not None:
        code = summary.patient.relationship
    else:
        code = summary.subscriber.relationship if summary.subscriber.relationship == "18" else None
    return X12_TO_ATHENA_RELATIONSHIP.get(code) if code else None


def _requested_relationship(request: EligibilityRequest) -> int:
    if request.subscriber is None:
        return ATHENA_SELF
    code = request.patient.relationship
    return X12_TO_ATHENA_RELATIONSHIP.get(code, 4) if code else 4


# --- the decision --------------------------------------------------------------------------------


def decide(
    current: Sequence[AthenaInsurance],
    coverage: VerifiedCoverage,
    package: PackageChoice,
    *,
    sequence: int = 1,
    department_id: str | None = None,
    allow_inactive_overwrite: bool = False,
    check_id: str | None = None,
) -> WriteBackPlan:
    """The minimal change making the policy at ``sequence`` agree with ``coverage`` (see the module doc)."""
    existing = policy_at(list(current), sequence)
    notes = _notes(coverage)
    if coverage.status is not CheckStatus.ACTIVE:
        return _not_active(existing, coverage, package, allow_inactive_overwrite, notes)
    if existing is None:
        why = f"no active policy holds sequence {sequence}"
        return _create(coverage, package=package, sequence=sequence, department_id=department_id, notes=notes, why=why)
    if existing.insurancepackageid not in package.accepted:
        return _replace(
            existing,
            coverage,
            package=package,
            sequence=sequence,
            department_id=department_id,
            notes=notes,
            check_id=check_id,
        )
    return _update(existing, coverage, notes)


def _notes(coverage: VerifiedCoverage) -> tuple[str, ...]:
    if not coverage.patient_corrections:
        return ()
    fields = ", ".join(coverage.patient_corrections)
    return (f"the payer corrected the dependent's own {fields}: patient demographics are not written",)


def _not_active(
    existing: AthenaInsurance | None,
    coverage: VerifiedCoverage,
    package: PackageChoice,
    allowed: bool,
    notes: tuple[str, ...],
) -> WriteBackPlan:
    status = coverage.status.value
    if existing is None:
        return WriteBackPlan(Action.NONE, f"coverage is {status}: not added as a new policy", notes=notes)
    if not allowed:
        reason = (
            f"coverage is {status}: not written over the active policy "
            "(set athena.allow_inactive_overwrite to allow it)"
        )
        return WriteBackPlan(Action.REFUSED, reason, insurance_id=existing.insuranceid, notes=notes)
    if existing.insurancepackageid not in package.accepted:
        reason = f"coverage is {status} and the policy holds another insurance package: not replaced"
        return WriteBackPlan(Action.REFUSED, reason, insurance_id=existing.insuranceid, notes=notes)
    return _update(existing, coverage, notes)


def _update(existing: AthenaInsurance, coverage: VerifiedCoverage, notes: tuple[str, ...]) -> WriteBackPlan:
    fields = differing_fields(existing, coverage)
    if not fields:
        return WriteBackPlan(
            Action.NONE, "athenaNet already holds the verified plan", existing.insuranceid, notes=notes
        )
    reason = f"{len(fields)} field(s) differ from the verified plan"
    return WriteBackPlan(Action.UPDATE, reason, existing.insuranceid, fields, notes=notes)


def differing_fields(existing: AthenaInsurance, coverage: VerifiedCoverage) -> dict[str, str]:
    """The form fields to PUT so ``existing`` agrees with ``coverage`` (empty when it does)."""
    fields: dict[str, str] = {}
    if coverage.member_id and normalize_member_id(coverage.member_id) != normalize_member_id(
        existing.insuranceidnumber
    ):
        fields["insuranceidnumber"] = coverage.member_id.strip()
    if coverage.group_number and _code(coverage.group_number) != _code(existing.policynumber):
        fields["policynumber"] = coverage.group_number.strip()
    if coverage.issue_date and coverage.issue_date != existing.issuedate:
        fields["issuedate"] = format_date(coverage.issue_date)
    if coverage.expiration_date and coverage.expiration_date != existing.expirationdate:
        fields["expirationdate"] = format_date(coverage.expiration_date)
    fields.update(_holder_changes(existing, coverage.holder_corrections))
    relationship = coverage.stated_relationship
    if relationship is not None and relationship != existing.relationshiptoinsuredid:
        fields["relationshiptoinsuredid"] = str(relationship)
    return fields


def _holder_changes(existing: AthenaInsurance, corrected: Mapping[str, str | dt.date]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for name, value in corrected.items():
        if name == "birth_date" and isinstance(value, dt.date):
            if value != existing.insurancepolicyholderdob:
                changes["insurancepolicyholderdob"] = format_date(value)
        elif name == "sex" and isinstance(value, str):
            sex = value.upper()  # athenaNet knows M and F only: an unknown sex never overwrites one
            if sex in _SEXES and sex != (existing.insurancepolicyholdersex or "").upper():
                changes["insurancepolicyholdersex"] = sex
        elif isinstance(value, str):
            athena_field = f"insurancepolicyholder{name.replace('_name', 'name')}"
            if normalize_name(value) != normalize_name(getattr(existing, athena_field)):
                changes[athena_field] = value
    return changes


def _code(value: str | None) -> str:
    return "".join((value or "").split()).upper()


def _create(
    coverage: VerifiedCoverage,
    *,
    package: PackageChoice,
    sequence: int,
    department_id: str | None,
    notes: tuple[str, ...],
    why: str,
) -> WriteBackPlan:
    fields, missing = new_policy_fields(coverage, package, sequence, department_id)
    if missing:
        reason = f"{why}, but a new policy needs {', '.join(missing)}, which neither the payer nor the request gave"
        return WriteBackPlan(Action.REFUSED, reason, notes=notes)
    return WriteBackPlan(Action.CREATE, why, fields=fields, notes=notes)


def _replace(
    existing: AthenaInsurance,
    coverage: VerifiedCoverage,
    *,
    package: PackageChoice,
    sequence: int,
    department_id: str | None,
    notes: tuple[str, ...],
    check_id: str | None,
) -> WriteBackPlan:
    why = f"the policy holds insurance package {existing.insurancepackageid}, the payer maps to {package.package_id}"
    created = _create(coverage, package=package, sequence=sequence, department_id=department_id, notes=notes, why=why)
    if created.action is not Action.CREATE:
        return created
    note = f"Replaced by eligibility-svc: insurance package changed to {package.package_id}"
    if check_id:
        note += f" (check {check_id})"
    return WriteBackPlan(
        Action.REPLACE,
        why,
        insurance_id=existing.insuranceid,
        fields=created.fields,
        cancellation_note=note[:CANCELLATION_NOTE_MAX],
        notes=notes,
    )


def new_policy_fields(
    coverage: VerifiedCoverage, package: PackageChoice, sequence: int, department_id: str | None
) -> tuple[dict[str, str], list[str]]:
    """The POST form for a new policy, and the required fields nobody could fill."""
    holder = coverage.holder
    candidates: dict[str, str | None] = {
        "insurancepackageid": str(package.package_id),
        "sequencenumber": str(sequence),
        "insuranceidnumber": coverage.member_id.strip() if coverage.member_id else None,
        "policynumber": coverage.group_number.strip() if coverage.group_number else None,
        "issuedate": format_date(coverage.issue_date) if coverage.issue_date else None,
        "expirationdate": format_date(coverage.expiration_date) if coverage.expiration_date else None,
        "insurancepolicyholderfirstname": holder.first_name,
        "insurancepolicyholderlastname": holder.last_name,
        "insurancepolicyholderdob": format_date(holder.birth_date) if holder.birth_date else None,
        "insurancepolicyholdersex": holder.sex.upper() if holder.sex and holder.sex.upper() in _SEXES else None,
        "relationshiptoinsuredid": str(coverage.relationship),
        "departmentid": department_id,
    }
    required = ("insuranceidnumber", "insurancepolicyholderlastname", "insurancepolicyholdersex")
    missing = [name for name in required if not candidates[name]]
    return {name: value for name, value in candidates.items() if value}, missing
