"""The write-back decision (pure): each branch, the comparisons that must not write noise, and convergence."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eligibility_svc.athena.diff import (
    Action,
    PackageChoice,
    WriteBackPlan,
    decide,
    resolve_package,
    verified_coverage,
)
from eligibility_svc.athena.records import AthenaInsurance
from eligibility_svc.errors import AthenaPayerUnmapped
from eligibility_svc.models import CheckStatus, Correction, CoverageSummary, MemberInfo
from eligibility_svc.settings import AthenaPayerPackage, AthenaPracticeSettings
from tests.support.athena_servers import scenario_request, summary_for

PACKAGE = PackageChoice("SBX10001", 90001, frozenset({90001, 90101}))


def policy(**fields: Any) -> AthenaInsurance:
    """A primary policy of package 90001 holding what scenario 01's request says."""
    base: dict[str, Any] = {
        "insuranceid": "5001",
        "insurancepackageid": 90001,
        "sequencenumber": "1",
        "insuranceidnumber": "ZZM0100001",
        "policynumber": "GRP0100",
        "issuedate": "01/01/2026",
        "expirationdate": "12/31/2026",
        "insurancepolicyholderfirstname": "Quill",
        "insurancepolicyholderlastname": "Fixturely",
        "insurancepolicyholderdob": "06/12/1984",
        "insurancepolicyholdersex": "F",
        "relationshiptoinsuredid": "1",
    }
    base.update(fields)
    return AthenaInsurance.model_validate({k: v for k, v in base.items() if v is not None})


REQUEST = scenario_request("01")


def plan_for(current: list[AthenaInsurance], summary: CoverageSummary, **options: Any) -> WriteBackPlan:
    return decide(current, verified_coverage(summary, REQUEST), PACKAGE, check_id="chk-1", **options)


def test_nothing_differs_nothing_is_written() -> None:
    plan = plan_for([policy()], summary_for(REQUEST, group="GRP0100"))
    assert plan.action is Action.NONE
    assert plan.fields == {}


def test_spelling_differences_are_not_changes() -> None:
    """Payers answer in upper case and with spacing athenaNet does not keep: neither is a correction."""
    current = [policy(insuranceidnumber="zzm01 00001", policynumber=" grp0100")]
    summary = summary_for(REQUEST, group="GRP0100")  # subscriber names upper-cased, no corrections
    assert plan_for(current, summary).action is Action.NONE


def test_differing_fields_are_put_and_only_those() -> None:
    current = [policy(insuranceidnumber="OLD123", policynumber=None, issuedate=None, expirationdate="06/30/2026")]
    plan = plan_for(current, summary_for(REQUEST, group="GRP0100"))
    assert plan.action is Action.UPDATE
    assert plan.insurance_id == "5001"
    assert dict(plan.fields) == {
        "insuranceidnumber": "ZZM0100001",
        "policynumber": "GRP0100",
        "issuedate": "01/01/2026",
        "expirationdate": "12/31/2026",
    }


def test_a_value_the_payer_did_not_send_never_clears_athenas() -> None:
    summary = summary_for(REQUEST, group=None, begin=None, end=None)
    assert plan_for([policy()], summary).action is Action.NONE


def test_policy_holder_is_written_only_where_the_payer_corrected_it() -> None:
    corrections = [
        Correction(field="last_name", sent="Fixturely", returned="FIXTURELEY"),
        Correction(field="birth_date", sent="1984-06-12", returned="1984-06-21"),
        Correction(field="member_id", sent="ZZM0100001", returned="ZZM0100001A"),
    ]
    summary = summary_for(
        REQUEST,
        group="GRP0100",
        member_id="ZZM0100001A",
        last_name="FIXTURELEY",
        first_name="QUILLY",  # differs, but the payer did not flag it: not written
        birth_date=dt.date(1984, 6, 21),
        corrections=corrections,
    )
    plan = plan_for([policy()], summary)
    assert plan.action is Action.UPDATE
    assert dict(plan.fields) == {
        "insuranceidnumber": "ZZM0100001A",
        "insurancepolicyholderlastname": "FIXTURELEY",
        "insurancepolicyholderdob": "06/21/1984",
    }


def test_an_unknown_sex_never_overwrites_a_known_one() -> None:
    """athenaNet takes M or F only; a payer's U (even flagged as a correction) is not written."""
    corrections = [Correction(field="sex", sent="F", returned="U")]
    plan = plan_for([policy()], summary_for(REQUEST, group="GRP0100", sex="U", corrections=corrections))
    assert plan.action is Action.NONE


def test_relationship_is_written_when_the_payer_states_another() -> None:
    request = scenario_request("14")  # a child on the parent's plan
    summary = summary_for(request, group="SFHP-300").model_copy(
        update={"patient": MemberInfo(last_name="PARENTSON", first_name="KIT", relationship="19")}
    )
    current = [policy(relationshiptoinsuredid="4", policynumber="SFHP-300", insuranceidnumber="ZZD1400014")]
    package = PackageChoice("SBX10014", 90001, frozenset({90001}))
    plan = decide(current, verified_coverage(summary, request), package)
    assert plan.action is Action.UPDATE
    assert dict(plan.fields) == {"relationshiptoinsuredid": "3"}


def test_no_policy_at_the_sequence_is_a_post_with_the_whole_policy() -> None:
    cancelled = policy(cancelled="11/01/2026")
    secondary = policy(insuranceid="5002", sequencenumber=2)
    plan = plan_for([cancelled, secondary], summary_for(REQUEST, group="GRP0100"), department_id="1")
    assert plan.action is Action.CREATE
    assert dict(plan.fields) == {
        "insurancepackageid": "90001",
        "sequencenumber": "1",
        "insuranceidnumber": "ZZM0100001",
        "policynumber": "GRP0100",
        "issuedate": "01/01/2026",
        "expirationdate": "12/31/2026",
        "insurancepolicyholderfirstname": "Quill",  # the request's spelling: the payer corrected nothing
        "insurancepolicyholderlastname": "Fixturely",
        "insurancepolicyholderdob": "06/12/1984",
        "insurancepolicyholdersex": "F",
        "relationshiptoinsuredid": "1",
        "departmentid": "1",
    }


def test_a_new_policy_without_the_holders_sex_is_refused_naming_the_field() -> None:
    request = REQUEST.model_copy(update={"patient": REQUEST.patient.model_copy(update={"sex": None})})
    summary = summary_for(request, sex=None)
    plan = decide([], verified_coverage(summary, request), PACKAGE)
    assert plan.action is Action.REFUSED
    assert "insurancepolicyholdersex" in plan.reason


def test_another_package_is_delete_then_post() -> None:
    plan = plan_for([policy(insurancepackageid=77777)], summary_for(REQUEST, group="GRP0100"))
    assert plan.action is Action.REPLACE
    assert plan.insurance_id == "5001"
    assert plan.fields["insurancepackageid"] == "90001"
    assert plan.cancellation_note is not None
    assert "chk-1" in plan.cancellation_note
    assert len(plan.cancellation_note) <= 400


def test_an_accepted_package_of_the_same_payer_is_no_change_of_package() -> None:
    plan = plan_for([policy(insurancepackageid=90101)], summary_for(REQUEST, group="GRP0100"))
    assert plan.action is Action.NONE


@pytest.mark.parametrize("status", [CheckStatus.INACTIVE, CheckStatus.NOT_FOUND, CheckStatus.ERROR])
def test_unverified_coverage_never_overwrites_an_active_policy_without_the_flag(status: CheckStatus) -> None:
    summary = summary_for(REQUEST, status=status, end=dt.date(2026, 9, 30))
    plan = plan_for([policy()], summary)
    assert plan.action is Action.REFUSED
    assert "allow_inactive_overwrite" in plan.reason
    assert plan.fields == {}


def test_with_the_flag_inactive_coverage_updates_the_same_package_only() -> None:
    summary = summary_for(REQUEST, status=CheckStatus.INACTIVE, group="GRP0100", end=dt.date(2026, 9, 30))
    plan = plan_for([policy()], summary, allow_inactive_overwrite=True)
    assert plan.action is Action.UPDATE
    assert dict(plan.fields) == {"expirationdate": "09/30/2026"}
    other = plan_for([policy(insurancepackageid=77777)], summary, allow_inactive_overwrite=True)
    assert other.action is Action.REFUSED


def test_inactive_coverage_is_not_added_as_a_new_policy() -> None:
    plan = plan_for([], summary_for(REQUEST, status=CheckStatus.INACTIVE), allow_inactive_overwrite=True)
    assert plan.action is Action.NONE


def test_a_payer_without_a_package_is_a_clear_error() -> None:
    practice = AthenaPracticeSettings(payers={"SBX10001": AthenaPayerPackage(insurance_package_id=90001)})
    assert resolve_package(practice, "195900", "SBX10001").package_id == 90001
    with pytest.raises(AthenaPayerUnmapped) as caught:
        resolve_package(practice, "195900", "SBX99999")
    assert caught.value.code == "athena.payer_unmapped"
    assert "athena.practices.195900.payers.SBX99999" in caught.value.message
    with pytest.raises(AthenaPayerUnmapped):
        resolve_package(None, "195900", "SBX10001")


def test_reasons_carry_no_patient_data() -> None:
    corrections = [Correction(field="last_name", sent="Fixturely", returned="FIXTURELEY")]
    plans = [
        plan_for([policy()], summary_for(REQUEST, last_name="FIXTURELEY", corrections=corrections)),
        plan_for([], summary_for(REQUEST)),
        plan_for([policy(insurancepackageid=77777)], summary_for(REQUEST)),
        plan_for([policy()], summary_for(REQUEST, status=CheckStatus.INACTIVE)),
    ]
    for plan in plans:
        text = " ".join([plan.reason, *plan.notes]).upper()
        for secret in ("FIXTURELY", "QUILL", "ZZM0100001", "1984"):
            assert secret not in text


# --- convergence: applying a plan and deciding again finds nothing to do ------------------------------


def apply(current: list[AthenaInsurance], plan: WriteBackPlan) -> list[AthenaInsurance]:
    """What athenaNet holds after ``plan`` (PUT merges, DELETE cancels, POST adds)."""
    if plan.action is Action.UPDATE:
        return [
            ins.model_copy(update=AthenaInsurance.model_validate(dict(plan.fields)).model_dump(exclude_unset=True))
            if ins.insuranceid == plan.insurance_id
            else ins
            for ins in current
        ]
    kept = current
    if plan.action is Action.REPLACE:
        kept = [
            ins.model_copy(update={"cancelled": "11/24/2026"}) if ins.insuranceid == plan.insurance_id else ins
            for ins in current
        ]
    if plan.action in (Action.CREATE, Action.REPLACE):
        return [*kept, AthenaInsurance.model_validate({**plan.fields, "insuranceid": "new"})]
    return current


names = st.sampled_from(["Fixturely", "FIXTURELEY", "Quill", "Q", "O'Brien"])
ids = st.sampled_from(["ZZM0100001", "zzm0100001 ", "ZZM0100001A", "X1"])
dates = st.none() | st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31))


@st.composite
def situations(draw: st.DrawFn) -> tuple[list[AthenaInsurance], CoverageSummary]:
    current = draw(
        st.sampled_from(
            [
                [],
                [policy()],
                [policy(insurancepackageid=77777)],
                [policy(insuranceidnumber=None, policynumber=None, issuedate=None, expirationdate=None)],
                [policy(cancelled="01/01/2026")],
            ]
        )
    )
    corrected = draw(st.sets(st.sampled_from(["last_name", "first_name", "birth_date", "sex"])))
    fields = {
        "last_name": draw(names),
        "first_name": draw(names),
        "birth_date": draw(dates),
        "sex": draw(st.sampled_from(["M", "F", "U"])),
    }
    corrections = [Correction(field=name, sent="x", returned=str(fields[name])) for name in sorted(corrected)]
    summary = summary_for(
        REQUEST,
        member_id=draw(ids),
        group=draw(st.none() | st.sampled_from(["GRP0100", "grp 0100", "G2"])),
        begin=draw(dates),
        end=draw(dates),
        corrections=corrections,
        **fields,
    )
    return current, summary


@given(situations())
def test_deciding_again_after_applying_finds_nothing_to_do(
    situation: tuple[list[AthenaInsurance], CoverageSummary],
) -> None:
    current, summary = situation
    first = plan_for(current, summary)
    if first.action is Action.REFUSED:
        return
    after = apply(current, first)
    second = plan_for(after, summary)
    assert second.action is Action.NONE, (first, second)
