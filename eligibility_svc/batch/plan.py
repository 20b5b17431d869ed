"""Pure batch decisions: rows → items (dedupe), and an answer (or a failure) → the front desk's action.

Dedupe: appointments of the same patient with the same payer on the same date ask the payer one
question, carrying the procedures of all of them (in first-seen order, without repeats).  Identity is
the request with its procedures (and per-call options) left out, so two rows that differ in anything
the payer sees (member id, name, birth date, provider) stay two checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

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
from eligibility_svc.models import CheckStatus, CoverageSummary, EligibilityRequest, ProcedureCode, Tristate

PATIENT_LOCATIONS = frozenset({"subscriber", "dependent"})


# --- dedupe ------------------------------------------------------------------------------------------


def identity_key(request: EligibilityRequest) -> str:
    """A digest of what makes two appointments one question (everything but the procedures)."""
    data = request.model_dump(mode="json", exclude={"max_age_seconds": True, "force_refresh": True})
    data["service"].pop("procedures", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(slots=True)
class _Group:
    first: AppointmentRow
    procedures: dict[tuple[str, str, tuple[str, ...]], ProcedureCode] = field(default_factory=dict)
    appointments: list[AppointmentRef] = field(default_factory=list)

    def add(self, row: AppointmentRow) -> None:
        for code in row.request.service.procedures:
            self.procedures.setdefault((code.qualifier, code.code, tuple(code.modifiers)), code)
        self.appointments.append(
            AppointmentRef(appointment_id=row.appointment_id, patient_id=row.patient_id, row=row.row)
        )


def plan_items(rows: Iterable[AppointmentRow]) -> list[BatchItem]:
    """One item per distinct patient/payer/date (see the module docstring); ids ``i000001`` ..."""
    groups: dict[str, _Group] = {}
    for row in rows:
        groups.setdefault(identity_key(row.request), _Group(row)).add(row)
    return [_item(number, group) for number, group in enumerate(groups.values(), start=1)]


def _item(number: int, group: _Group) -> BatchItem:
    request = group.first.request
    service = request.service.model_copy(update={"procedures": list(group.procedures.values())})
    return BatchItem(
        item_id=f"i{number:06d}",
        request=request.model_copy(update={"service": service}),
        appointments=group.appointments,
        target=group.first.target,
    )


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


def _row(ref: AppointmentRef, common: dict[str, object]) -> ItemResult:
    return ItemResult.model_validate(
        {"appointment_id": ref.appointment_id, "patient_id": ref.patient_id, "row": ref.row, **common}
    )


def is_failure(results: Iterable[ItemResult]) -> bool:
    """Whether an item's rows count as failed (no usable answer) in the progress counters."""
    return any(r.action in (Action.ERROR, Action.PAYER_UNAVAILABLE) for r in results)
