"""Pure batch decisions: rows → items (dedupe), and an answer (or a failure) → the front desk's action.

Dedupe: appointments of the same patient with the same payer on the same date ask the payer one
question, carrying the procedures of all of them (in first-seen order, without repeats).  Identity is
the request with its procedures (and per-call options) left out, so two rows that differ in anything
the payer sees (member id, name, birth date, provider) stay two checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from eligibility_svc.athena.patients import WriteTarget
from eligibility_svc.backoff import equal_jitter
from eligibility_svc.batch.models import (
    Action,
    AppointmentRef,
    AppointmentRow,
    BatchItem,
    ItemResult,
    ProcedureVerdict,
)
from eligibility_svc.errors import ClearinghouseCircuitOpen, ClearinghouseError, EligibilityError
from eligibility_svc.models import (
    CheckStatus,
    CoverageSummary,
    EligibilityRequest,
    ProcedureCode,
    Tristate,
    model_json,
)

PATIENT_LOCATIONS = frozenset({"subscriber", "dependent"})


# --- dedupe ------------------------------------------------------------------------------------------


# What a request holds that is not the question: the procedures (merged per question) and cache options.
_NOT_THE_QUESTION: Final = {"max_age_seconds": True, "force_refresh": True, "service": {"procedures": True}}


def identity_key(request: EligibilityRequest) -> str:
    """A digest of what makes two appointments one question (everything but the procedures).

    The request's JSON, fields in declaration order (the models hold no dicts, so equal requests give
    equal bytes)."""
    return hashlib.sha256(model_json(request, exclude=_NOT_THE_QUESTION)).hexdigest()


@dataclass(slots=True)
class Group:
    """The appointments asking one question, and the procedures of them all (first-seen order)."""

    request: EligibilityRequest
    target: WriteTarget | None = None
    procedures: dict[tuple[str, str, tuple[str, ...]], ProcedureCode] = field(default_factory=dict)
    appointments: list[AppointmentRef] = field(default_factory=list)

    @classmethod
    def of_item(cls, item: BatchItem) -> Group:
        """An item planned before (another chunk of the input), to add more appointments to."""
        group = cls(item.request, item.target, appointments=list(item.appointments))
        group._add_procedures(item.request.service.procedures)
        return group

    def add(self, row: AppointmentRow) -> None:
        self._add_procedures(row.request.service.procedures)
        self.appointments.append(
            AppointmentRef(appointment_id=row.appointment_id, patient_id=row.patient_id, row=row.row)
        )

    def absorb(self, other: Group) -> None:
        """Add the appointments (and procedures) of ``other``, which asks the same question."""
        self._add_procedures(other.procedures.values())
        self.appointments.extend(other.appointments)

    def _add_procedures(self, codes: Iterable[ProcedureCode]) -> None:
        for code in codes:
            self.procedures.setdefault((code.qualifier, code.code, tuple(code.modifiers)), code)

    def item(self, item_id: str) -> BatchItem:
        service = self.request.service.model_copy(update={"procedures": list(self.procedures.values())})
        return BatchItem(
            item_id=item_id,
            request=self.request.model_copy(update={"service": service}),
            appointments=self.appointments,
            target=self.target,
        )


def item_id(number: int) -> str:
    """Item ids in planning order: ``i000001`` ..."""
    return f"i{number:06d}"


def group_rows(rows: Iterable[AppointmentRow]) -> dict[str, Group]:
    """Rows by the question they ask (``identity_key``), in first-seen order."""
    groups: dict[str, Group] = {}
    for row in rows:
        group = groups.get(key := identity_key(row.request))
        if group is None:
            group = groups[key] = Group(row.request, row.target)
        group.add(row)
    return groups


def plan_items(rows: Iterable[AppointmentRow]) -> list[BatchItem]:
    """One item per distinct patient/payer/date (see the module docstring), all in memory (the embedded
    default); with Redis, ``queue.BatchPlanner`` does the same a chunk at a time."""
    return [group.item(item_id(number)) for number, group in enumerate(group_rows(rows).values(), start=1)]


# --- outcome → action ---------------------------------------------------------------------------------


def action_for(summary: CoverageSummary) -> Action:
    """The front desk's action for an answer (see ``Action``)."""
    if summary.status is CheckStatus.ACTIVE:
        return Action.NEEDS_AUTH if any(s.auth_required is Tristate.YES for s in summary.services) else Action.OK
    if summary.status is CheckStatus.INACTIVE:
        return Action.INACTIVE
    if any(error.retryable for error in summary.errors):
        return Action.PAYER_UNAVAILABLE
    if summary.status is CheckStatus.NOT_FOUND or any(
        error.needs_correction and error.location in PATIENT_LOCATIONS for error in summary.errors
    ):
        return Action.NOT_FOUND
    return Action.ERROR


def retry_wanted(summary: CoverageSummary) -> bool:
    """The payer could not answer now (AAA 42/80 with a retry follow-up): try again later in the run."""
    return action_for(summary) is Action.PAYER_UNAVAILABLE


def error_retryable(error: EligibilityError) -> bool:
    """A payer or clearinghouse that is down (unavailable, timeout, 429, breaker open): try again later."""
    return isinstance(error, ClearinghouseCircuitOpen) or (isinstance(error, ClearinghouseError) and error.retryable)


def retry_delay(attempt: int, base: float, cap: float, rand: float) -> float:
    """Backoff before attempt ``attempt + 1``: exponential from ``base``, at most ``cap``, half of it jittered."""
    return equal_jitter(attempt, base, cap, rand)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def results_from_summary(
    item: BatchItem, summary: CoverageSummary, attempts: int, *, final: bool = False
) -> list[ItemResult]:
    """One row per appointment of ``item`` for the payer's answer."""
    action = action_for(summary)
    first = next((s for s in summary.services if s.in_network.copay is not None), None)
    network = summary.services[0].in_network if summary.services else None
    deductible = summary.deductible.individual.in_network.remaining
    oop = summary.out_of_pocket.individual.in_network.remaining
    error = summary.errors[0] if summary.errors else None
    common = {
        "item_id": item.item_id,
        "payer_id": item.request.payer.id,
        "service_date": item.request.service.date,
        "action": action,
        "status": summary.status.value,
        "plan_name": summary.plan.name,
        "copay": _text(first.in_network.copay) if first else None,
        "coinsurance": _text(network.coinsurance) if network else None,
        "deductible_remaining": _text(deductible),
        "out_of_pocket_remaining": _text(oop),
        "procedures": [
            ProcedureVerdict(code=s.code, covered=s.covered.value, auth_required=s.auth_required.value)
            for s in summary.services
            if s.code_type == "procedure"
        ],
        "check_id": summary.check_id,
        "error_code": f"AAA{error.code}" if error else None,
        "message": (error.description if error else summary.status_detail),
        "attempts": attempts,
        "final_failure": final,
    }
    return [_row(ref, common) for ref in item.appointments]


def results_from_error(
    item: BatchItem, error: EligibilityError, attempts: int, *, final: bool = False
) -> list[ItemResult]:
    """One row per appointment of ``item`` when no answer came (ours or the clearinghouse's failure)."""
    action = Action.PAYER_UNAVAILABLE if error_retryable(error) else Action.ERROR
    common = {
        "item_id": item.item_id,
        "payer_id": item.request.payer.id,
        "service_date": item.request.service.date,
        "action": action,
        "error_code": error.code,
        "message": error.message[:300],
        "attempts": attempts,
        "final_failure": final,
    }
    return [_row(ref, common) for ref in item.appointments]


def unreadable_item(item_id: str, error: EligibilityError) -> ItemResult:
    """The row for an item that cannot be read back (its appointments are unknown): counted, not lost."""
    return ItemResult(
        appointment_id=f"item-{item_id}",
        item_id=item_id,
        action=Action.ERROR,
        error_code=error.code,
        message=f"the stored check cannot be read ({error.message}); submit the appointments again",
        attempts=0,
        final_failure=True,
    )


def _row(ref: AppointmentRef, common: dict[str, object]) -> ItemResult:
    return ItemResult.model_validate(
        {"appointment_id": ref.appointment_id, "patient_id": ref.patient_id, "row": ref.row, **common}
    )


def is_failure(results: Iterable[ItemResult]) -> bool:
    """Whether an item's rows count as failed (no usable answer) in the progress counters."""
    return any(r.action in (Action.ERROR, Action.PAYER_UNAVAILABLE) for r in results)
