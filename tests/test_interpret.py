"""The rules of docs/interpretation.md, one by one, on 271s built from the loop dataclasses.

Every expectation here is worked out from the rule it names, never copied from the code's output.
The parser is not used: each test builds exactly the loops the rule talks about.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from eligibility_svc.models import (
    CheckStatus,
    CoverageSummary,
    EligibilityRequest,
    Network,
    ServiceAnswer,
    Tristate,
)
from eligibility_svc.x12.interpret import auth_message_verdict, interpret, normalize_name, summarize
from eligibility_svc.x12.loops271 import (
    Aaa,
    Address,
    Bht,
    CompositeProcedure,
    Dmg,
    Dtp,
    Eb,
    Hl,
    Hsd,
    Iii,
    Ins,
    Loop2000A,
    Loop2000B,
    Loop2000C,
    Loop2000D,
    Loop2100A,
    Loop2100B,
    Loop2100C,
    Loop2100D,
    Loop2110,
    Loop2110C,
    Loop2110D,
    Loop2115C,
    Loop2120C,
    Msg,
    Nm1,
    Per,
    Ref,
    Transaction271,
    Trn,
)
from eligibility_svc.x12.procedures import default_table

# --- builders ----------------------------------------------------------------------------------------

_positions = itertools.count(10)


def _pos() -> int:
    """Increasing segment positions, so that building order is file order."""
    return next(_positions)


def eb(
    info: str,
    stcs: Sequence[str] = (),
    *,
    level: str = "",
    ins: str = "",
    plan: str = "",
    period: str = "",
    amount: str | None = None,
    percent: str | None = None,
    qq: str = "",
    qty: str | None = None,
    auth: str = "",
    net: str = "",
    proc: str | None = None,
) -> Eb:
    procedure = None
    if proc is not None:
        qualifier, code = proc.split(":")
        procedure = CompositeProcedure(qualifier, code)
    return Eb(
        info=info,
        coverage_level=level,
        service_types=list(stcs),
        insurance_type=ins,
        plan_description=plan,
        time_period=period,
        amount=Decimal(amount) if amount is not None else None,
        percent=Decimal(percent) if percent is not None else None,
        quantity_qualifier=qq,
        quantity=Decimal(qty) if qty is not None else None,
        auth_required=auth,
        in_plan_network=net,
        procedure=procedure,
        position=_pos(),
    )


def row(
    benefit: Eb,
    *,
    msgs: Iterable[str] = (),
    places: Iterable[str] = (),
    hsd: Iterable[Hsd] = (),
    refs: Iterable[Ref] = (),
    dates: Iterable[Dtp] = (),
    errors: Iterable[Aaa] = (),
    entities: Iterable[Loop2120C] = (),
    dependent: bool = False,
) -> Loop2110:
    cls = Loop2110D if dependent else Loop2110C
    loop = cls(eb=benefit)
    loop.delivery = list(hsd)
    loop.refs = list(refs)
    loop.dates = list(dates)
    loop.errors = list(errors)
    loop.messages = [Msg(text, _pos()) for text in msgs]
    loop.additional_info = [Loop2115C(Iii("ZZ", code, position=_pos())) for code in places]
    loop.related_entities = list(entities)
    return loop


def aaa(loop: str, reason: str, follow_up: str = "C", valid: str = "Y", position: int | None = None) -> Aaa:
    return Aaa(loop=loop, valid=valid, reason=reason, follow_up=follow_up, position=position or _pos())


def dtp(qualifier: str, start: date, end: date | None = None) -> Dtp:
    if end is None:
        return Dtp(qualifier, "D8", start.strftime("%Y%m%d"), start, start, _pos())
    return Dtp(qualifier, "RD8", f"{start:%Y%m%d}-{end:%Y%m%d}", start, end, _pos())


def person(
    last: str,
    first: str = "",
    *,
    member_id: str = "",
    born: date | None = None,
    sex: str = "",
    entity: str = "IL",
    dependent: bool = False,
    rows: Iterable[Loop2110] = (),
    refs: Iterable[Ref] = (),
    dates: Iterable[Dtp] = (),
    errors: Iterable[Aaa] = (),
    relationship: str | None = None,
) -> Loop2100C | Loop2100D:
    cls = Loop2100D if dependent else Loop2100C
    loop = cls(
        name=Nm1(entity, "1", last, first, id_qualifier="MI" if member_id else "", id=member_id, position=_pos())
    )
    if born is not None or sex:
        loop.demographics = Dmg("D8", born.strftime("%Y%m%d") if born else "", born, sex)
    if relationship is not None:
        loop.relationship = Ins("N" if dependent else "Y", relationship)
    loop.refs = list(refs)
    loop.dates = list(dates)
    loop.errors = list(errors)
    loop.benefits = list(rows)
    return loop


def subscriber_level(
    sub: Loop2100C | Loop2100D,
    dependents: Iterable[Loop2100C | Loop2100D] = (),
    traces: Iterable[Trn] = (),
    dependent_traces: Iterable[Trn] = (),
) -> Loop2000C:
    assert isinstance(sub, Loop2100C)
    level = Loop2000C(hl=Hl("3", "2", "22", "1"), traces=list(traces), subscriber=sub)
    for n, dep in enumerate(dependents):
        assert isinstance(dep, Loop2100D)
        level.dependents.append(
            Loop2000D(hl=Hl(str(4 + n), "3", "23", "0"), traces=list(dependent_traces), dependent=dep)
        )
    return level


def transaction(
    *subscribers: Loop2000C,
    source_errors: Iterable[Aaa] = (),
    payer_errors: Iterable[Aaa] = (),
    receiver_errors: Iterable[Aaa] = (),
    warnings: Iterable[str] = (),
) -> Transaction271:
    source = Loop2000A(
        hl=Hl("1", "", "20", "1"),
        errors=list(source_errors),
        source=Loop2100A(name=Nm1("PR", "2", "ACME HEALTH", id_qualifier="PI", id="12345"), errors=list(payer_errors)),
    )
    receiver = Loop2000B(
        hl=Hl("2", "1", "21", "1"),
        receiver=Loop2100B(
            name=Nm1("1P", "2", "CLINIC", id_qualifier="XX", id="1234567893"), errors=list(receiver_errors)
        ),
        subscribers=list(subscribers),
    )
    source.receivers.append(receiver)
    return Transaction271(
        control_number="0001",
        implementation="005010X279A1",
        header=Bht("0022", "11", "REF1", date(2024, 5, 1)),
        sources=[source],
        warnings=list(warnings),
    )


def one_member(*rows: Loop2110, **kwargs: Any) -> Transaction271:
    """A 271 with one subscriber (JANE DOE, W123) holding ``rows``."""
    return transaction(subscriber_level(person("DOE", "JANE", member_id="W123", rows=rows, **kwargs)))


def request(
    *,
    procedures: Sequence[str | tuple[str, str]] = (),
    service_types: Sequence[str] = (),
    place: str | None = None,
    patient: dict[str, Any] | None = None,
    subscriber: dict[str, Any] | None = None,
    member_id: str | None = "W123",
) -> EligibilityRequest:
    procs = [{"code": p} if isinstance(p, str) else {"code": p[0], "qualifier": p[1]} for p in procedures]
    body: dict[str, Any] = {
        "payer": {"id": "12345", "name": "ACME HEALTH"},
        "provider": {"npi": "1234567893", "organization_name": "CLINIC"},
        "patient": patient or {"last_name": "DOE", "first_name": "JANE"},
        "member_id": member_id,
        "service": {
            "date": "2024-05-01",
            "procedures": procs,
            "service_types": list(service_types),
            "place_of_service": place,
        },
    }
    if subscriber is not None:
        body["subscriber"] = subscriber
    return EligibilityRequest.model_validate(body)


def active(*stcs: str) -> Loop2110:
    return row(eb("1", stcs or ("30",)))


def only(summaries: list[CoverageSummary]) -> CoverageSummary:
    assert len(summaries) == 1
    return summaries[0]


def service(tx: Transaction271, req: EligibilityRequest, **kwargs: Any) -> ServiceAnswer:
    answers = summarize(tx, req, **kwargs).services
    assert len(answers) == 1
    return answers[0]


# --- members ------------------------------------------------------------------------------------------


def test_each_lone_subscriber_and_each_dependent_is_one_member_in_file_order() -> None:
    alone = subscriber_level(person("ALONE", "ANN", member_id="A1", rows=[active()]))
    parent = subscriber_level(
        person("PARENT", "PAT", member_id="P1", rows=[active()]),
        dependents=[
            person("CHILD", "ONE", entity="03", dependent=True, rows=[active()]),
            person("CHILD", "TWO", entity="03", dependent=True, rows=[row(eb("6", ["30"]), dependent=True)]),
        ],
    )
    summaries = interpret(transaction(alone, parent))

    assert [s.subscriber.last_name for s in summaries] == ["ALONE", "PARENT", "PARENT"]
    assert summaries[0].patient is None
    assert [s.patient.first_name for s in summaries[1:] if s.patient] == ["ONE", "TWO"]
    # A dependent's benefits are its 2110D rows, not the subscriber's.
    assert [s.status for s in summaries] == [CheckStatus.ACTIVE, CheckStatus.ACTIVE, CheckStatus.INACTIVE]
    assert summaries[2].benefits[0].loop == "2110D"
    assert summaries[0].benefits[0].loop == "2110C"


def test_no_member_and_a_source_aaa_is_one_rejected_summary() -> None:
    tx = transaction(source_errors=[aaa("2000A", "42", "R", valid="Y")])
    summary = only(interpret(tx))

    assert summary.status == CheckStatus.REJECTED
    assert summary.subscriber.last_name is None
    assert summary.patient is None
    assert [(e.code, e.location, e.retryable) for e in summary.errors] == [("42", "payer", True)]
    assert summarize(tx).status == CheckStatus.REJECTED


@pytest.mark.parametrize(("where", "loop"), [("payer", "2100A"), ("receiver", "2100B")])
def test_no_member_and_a_payer_or_provider_aaa_is_rejected(where: str, loop: str) -> None:
    found = [aaa(loop, "79", "N")]
    tx = transaction(payer_errors=found) if where == "payer" else transaction(receiver_errors=found)
    summary = only(interpret(tx))
    assert summary.status == CheckStatus.REJECTED
    assert summary.errors[0].loop == loop


def test_no_member_and_no_aaa_is_an_error() -> None:
    summary = only(interpret(transaction()))
    assert summary.status == CheckStatus.ERROR
    assert summary.status_detail == "the payer returned no coverage status (EB01 1-8)"


def _family() -> Transaction271:
    return transaction(
        subscriber_level(person("SMITH", "ALEX", member_id="S9", born=date(1980, 1, 1), rows=[active()])),
        subscriber_level(
            person("DOE", "JOHN", member_id="W123", born=date(1970, 2, 2), rows=[active()]),
            dependents=[
                person("DOE", "AMY", born=date(2010, 3, 3), entity="03", dependent=True, rows=[active()]),
                person("O'NEIL-DOE", "BEN", born=date(2012, 4, 4), entity="03", dependent=True, rows=[active()]),
            ],
        ),
        subscriber_level(person("ROE", "RITA", member_id="R1", born=date(1990, 5, 5), rows=[active()])),
    )


def test_summarize_picks_the_dependent_by_normalized_name_and_birth_date() -> None:
    req = request(
        patient={"last_name": "ONeil Doe", "first_name": "Ben", "birth_date": "2012-04-04"},
        subscriber={"last_name": "DOE", "first_name": "JOHN"},
    )
    summary = summarize(_family(), req)
    assert summary.patient is not None
    assert summary.patient.first_name == "BEN"
    assert summary.provenance.warnings == []


def test_summarize_does_not_pick_a_dependent_whose_birth_date_differs() -> None:
    req = request(
        patient={"last_name": "DOE", "first_name": "AMY", "birth_date": "2011-03-03"},
        subscriber={"last_name": "DOE", "first_name": "JOHN"},
    )
    summary = summarize(_family(), req)
    assert summary.subscriber.last_name == "SMITH"  # the first member, with a warning
    assert len(summary.provenance.warnings) == 1


def test_summarize_picks_a_subscriber_by_member_id_then_by_name_and_birth_date() -> None:
    by_id = summarize(_family(), request(patient={"last_name": "WHOEVER"}, member_id="r1"))
    assert by_id.subscriber.last_name == "ROE"

    by_name = summarize(
        _family(),
        request(patient={"last_name": "Roe", "first_name": "Rita", "birth_date": "1990-05-05"}, member_id="XX9"),
    )
    assert by_name.subscriber.last_name == "ROE"
    assert by_name.provenance.warnings == []


def test_summarize_finds_a_dependent_the_payer_answered_as_a_subscriber() -> None:
    """Reading (reported): the last pass takes any member whose own name and DOB match."""
    req = request(
        patient={"last_name": "Roe", "first_name": "Rita", "birth_date": "1990-05-05"},
        subscriber={"last_name": "ROE", "first_name": "RAY"},
    )
    summary = summarize(_family(), req)
    assert summary.subscriber.last_name == "ROE"
    assert summary.patient is None
    assert summary.provenance.warnings == []


def test_summarize_without_a_match_falls_back_to_the_first_member_with_a_warning() -> None:
    tx = _family()
    tx.warnings.append("parser: something odd")
    summary = summarize(tx, request(patient={"last_name": "NOBODY"}, member_id="NOPE"))
    assert summary.subscriber.last_name == "SMITH"
    assert summary.provenance.warnings[0] == "parser: something odd"
    assert len(summary.provenance.warnings) == 2


def test_name_normalization_keeps_letters_and_digits_upper_cased() -> None:
    assert normalize_name("O'Donnell-Griswold") == "ODONNELLGRISWOLD"
    assert normalize_name("st. john 3rd") == "STJOHN3RD"


# --- status --------------------------------------------------------------------------------------------


def test_active_status_detail_comes_from_the_first_active_row_that_is_plan_level() -> None:
    summary = summarize(one_member(row(eb("1", ["98"])), row(eb("5", ["30"], ins="PR"))))
    assert summary.status == CheckStatus.ACTIVE
    assert summary.status_detail == "active - pending investigation"
    assert summary.plan.insurance_type == "PR"  # the status row is the plan-level one


def test_active_status_falls_back_to_the_first_active_row() -> None:
    summary = summarize(one_member(row(eb("3", ["98"], ins="HM")), row(eb("1", ["33"], ins="PR"))))
    assert summary.status_detail == "active - services capitated"
    assert summary.plan.insurance_type == "HM"


def test_an_untyped_active_row_counts_as_plan_level() -> None:
    summary = summarize(one_member(row(eb("1", ["98"], ins="HM")), row(eb("2", [], ins="PR"))))
    assert summary.status_detail == "active - full risk capitation"
    assert summary.plan.insurance_type == "PR"


def test_any_active_row_beats_inactive_rows_in_any_order() -> None:
    summary = summarize(one_member(row(eb("6", ["30"])), row(eb("1", ["88"]))))
    assert summary.status == CheckStatus.ACTIVE
    assert summary.status_detail == "active coverage"


@pytest.mark.parametrize(
    ("code", "detail"),
    [("6", "inactive"), ("7", "inactive - pending eligibility update"), ("8", "inactive - pending investigation")],
)
def test_inactive_status_detail(code: str, detail: str) -> None:
    summary = summarize(one_member(row(eb(code, ["30"], ins="C1", plan="GOLD"))))
    assert summary.status == CheckStatus.INACTIVE
    assert summary.status_detail == detail
    assert summary.plan.name == "GOLD"


def test_a_cannot_process_row_without_status_rows_is_rejected() -> None:
    summary = summarize(one_member(row(eb("V", ["30"])), row(eb("B", ["98"], amount="20"))))
    assert summary.status == CheckStatus.REJECTED
    assert summary.status_detail == "cannot process"


def test_rows_without_any_status_code_are_an_error() -> None:
    summary = summarize(one_member(row(eb("B", ["98"], amount="20")), row(eb("C", ["30"], amount="500"))))
    assert summary.status == CheckStatus.ERROR
    assert summary.status_detail == "the payer returned no coverage status (EB01 1-8)"


@pytest.mark.parametrize("reason", ["58", "64", "65", "67", "68", "71", "72", "73", "74", "75", "76", "77", "78"])
def test_a_member_aaa_with_a_not_found_reason_and_no_rows_is_not_found(reason: str) -> None:
    summary = summarize(one_member(errors=[aaa("2100C", reason)]))
    assert summary.status == CheckStatus.NOT_FOUND


@pytest.mark.parametrize("reason", ["15", "42", "43", "57", "62", "63"])
def test_a_member_aaa_with_another_reason_and_no_rows_is_rejected(reason: str) -> None:
    summary = summarize(one_member(errors=[aaa("2100C", reason, "R")]))
    assert summary.status == CheckStatus.REJECTED


def test_a_dependent_aaa_in_2100d_gives_not_found() -> None:
    tx = transaction(
        subscriber_level(
            person("DOE", "JOHN", member_id="W123"),
            dependents=[person("DOE", "KID", entity="03", dependent=True, errors=[aaa("2100D", "77")])],
        )
    )
    assert summarize(tx).status == CheckStatus.NOT_FOUND


def test_a_member_aaa_does_not_override_benefit_rows() -> None:
    summary = summarize(one_member(active(), errors=[aaa("2100C", "72")]))
    assert summary.status == CheckStatus.ACTIVE
    assert [e.code for e in summary.errors] == ["72"]


def test_a_member_without_rows_but_a_receiver_aaa_is_rejected() -> None:
    """Reading (reported): rule 1's intent also covers a member echoed back without rows."""
    tx = transaction(
        subscriber_level(person("DOE", "JANE", member_id="W123")), receiver_errors=[aaa("2100B", "51", "N")]
    )
    summary = summarize(tx)
    assert summary.status == CheckStatus.REJECTED
    assert summary.errors[0].location == "provider"


# --- plan ----------------------------------------------------------------------------------------------


def test_plan_identity_from_member_refs_then_the_status_row() -> None:
    status_row = row(
        eb("1", ["30"], ins="PR", plan="OPEN ACCESS PLUS"),
        refs=[Ref("6P", "ROWGROUP", "ROW GROUP NAME"), Ref("18", "ROWPLAN"), Ref("N6", "NET-7")],
    )
    tx = one_member(status_row, refs=[Ref("1L", "POLICY1"), Ref("18", "PLAN-9")])
    plan = summarize(tx).plan

    assert plan.name == "OPEN ACCESS PLUS"
    assert plan.insurance_type == "PR"
    assert plan.insurance_type_description == "preferred provider organization (PPO)"
    # 6P beats 1L wherever each is (reading, reported); 18 from the member loop first.
    assert (plan.group_number, plan.group_name) == ("ROWGROUP", "ROW GROUP NAME")
    assert plan.plan_number == "PLAN-9"
    assert plan.plan_network_id == "NET-7"


def test_group_number_falls_back_to_1l() -> None:
    plan = summarize(one_member(active(), refs=[Ref("1L", "POLICY1", "POLICY NAME")])).plan
    assert (plan.group_number, plan.group_name) == ("POLICY1", "POLICY NAME")


def test_plan_dates_member_first_and_status_row_fills_the_rest() -> None:
    status_row = row(
        eb("1", ["30"]),
        dates=[dtp("291", date(2023, 1, 1), date(2024, 12, 31)), dtp("307", date(2023, 6, 1))],
    )
    tx = one_member(status_row, dates=[dtp("346", date(2024, 1, 1)), dtp("357", date(2025, 6, 30))])
    plan = summarize(tx).plan
    assert plan.coverage_begin == date(2024, 1, 1)  # member-level 346 wins over the row's 291
    assert plan.coverage_end == date(2024, 12, 31)  # RD8 291 gives the end too
    assert plan.eligibility_begin == date(2023, 6, 1)  # D8 307: begin only
    assert plan.eligibility_end == date(2025, 6, 30)


def test_a_d8_plan_date_range_gives_only_its_begin() -> None:
    plan = summarize(one_member(active(), dates=[dtp("291", date(2024, 1, 1))])).plan
    assert (plan.coverage_begin, plan.coverage_end) == (date(2024, 1, 1), None)


def test_payer_comes_from_2100a() -> None:
    payer = summarize(one_member(active())).payer
    assert (payer.name, payer.id) == ("ACME HEALTH", "12345")


# --- members as the payer knows them --------------------------------------------------------------------


def test_subscriber_as_the_payer_knows_them() -> None:
    loop = person("DOE", "JANE", member_id="W123", born=date(1980, 1, 2), sex="F", rows=[active()], relationship="18")
    loop.address = Address(line1="1 MAIN ST", city="SPRINGFIELD", state="IL", postal_code="62701")
    sub = summarize(transaction(subscriber_level(loop))).subscriber
    assert (sub.last_name, sub.first_name, sub.member_id) == ("DOE", "JANE", "W123")
    assert (sub.birth_date, sub.sex, sub.relationship) == (date(1980, 1, 2), "F", "18")
    assert (sub.address_line1, sub.city, sub.state, sub.postal_code) == ("1 MAIN ST", "SPRINGFIELD", "IL", "62701")
    assert sub.corrections == []


def test_corrections_compare_names_normalized_and_ids_upper_cased() -> None:
    loop = person("ODONNELL", "JANE", member_id="W123", born=date(1980, 1, 2), sex="F", rows=[active()])
    req = request(
        patient={"last_name": "O'Donnell", "first_name": "Jane", "birth_date": "1980-01-02"}, member_id="w123"
    )
    assert summarize(transaction(subscriber_level(loop)), req).subscriber.corrections == []


def test_corrections_list_every_field_that_differs() -> None:
    loop = person("DOE-SMITH", "JANET", member_id="W1234", born=date(1980, 1, 3), sex="F", rows=[active()])
    req = request(
        patient={"last_name": "Doe", "first_name": "Jane", "birth_date": "1980-01-02", "sex": "M"}, member_id="W123"
    )
    fixes = summarize(transaction(subscriber_level(loop)), req).subscriber.corrections
    assert [(c.field, c.sent, c.returned) for c in fixes] == [
        ("last_name", "Doe", "DOE-SMITH"),
        ("first_name", "Jane", "JANET"),
        ("birth_date", "1980-01-02", "1980-01-03"),
        ("sex", "M", "F"),
        ("member_id", "W123", "W1234"),
    ]


def test_sex_is_only_compared_when_we_sent_one_and_unknown_values_are_not_corrections() -> None:
    loop = person("DOE", "", member_id="", born=None, sex="F", rows=[active()])
    req = request(patient={"last_name": "DOE", "first_name": "JANE", "birth_date": "1980-01-02"}, member_id="W123")
    assert summarize(transaction(subscriber_level(loop)), req).subscriber.corrections == []


def test_no_request_means_no_corrections() -> None:
    loop = person("OTHER", "NAME", member_id="ZZZ", rows=[active()])
    assert summarize(transaction(subscriber_level(loop))).subscriber.corrections == []


def test_dependent_corrections_compare_subscriber_with_2100c_and_patient_with_2100d() -> None:
    tx = transaction(
        subscriber_level(
            person("DOE", "JOHNNY", member_id="W123"),
            dependents=[person("DOE", "AMY", born=date(2010, 3, 4), entity="03", dependent=True, rows=[active()])],
        )
    )
    req = request(
        patient={"last_name": "Doe", "first_name": "Amy", "birth_date": "2010-03-03"},
        subscriber={"last_name": "Doe", "first_name": "John"},
        member_id="W999",
    )
    summary = summarize(tx, req)
    assert summary.patient is not None
    assert [(c.field, c.sent, c.returned) for c in summary.subscriber.corrections] == [
        ("first_name", "John", "JOHNNY"),
        ("member_id", "W999", "W123"),
    ]
    assert [(c.field, c.returned) for c in summary.patient.corrections] == [("birth_date", "2010-03-04")]


# --- accumulators --------------------------------------------------------------------------------------


def test_accumulators_by_level_network_and_field() -> None:
    tx = one_member(
        active(),
        row(eb("C", ["30"], level="IND", period="23", amount="1500", net="Y")),
        row(eb("C", ["30"], level="IND", period="29", amount="400", net="Y")),
        row(eb("C", ["30"], level="IND", period="24", amount="1100", net="Y")),
        row(eb("C", ["30"], level="FAM", period="22", amount="3000", net="N")),
        row(eb("C", ["30"], level="ESP", period="33", amount="2500", net="N")),
        row(eb("G", [], level="EMP", period="23", amount="6000", net="Y")),
    )
    summary = summarize(tx)
    ind_in = summary.deductible.individual.in_network
    assert (ind_in.total, ind_in.remaining, ind_in.met, ind_in.time_period) == (
        Decimal("1500"),
        Decimal("400"),
        Decimal("1100"),
        "23",
    )
    fam_out = summary.deductible.family.out_of_network
    assert (fam_out.total, fam_out.remaining, fam_out.time_period) == (Decimal("3000"), Decimal("2500"), "22")
    assert summary.deductible.individual.out_of_network.total is None
    assert summary.out_of_pocket.individual.in_network.total == Decimal("6000")  # EMP, untyped


def test_w_u_and_empty_networks_fill_both_networks() -> None:
    tx = one_member(
        active(),
        row(eb("C", ["30"], level="IND", period="23", amount="500", net="W")),
        row(eb("C", ["30"], level="IND", period="29", amount="100", net="U")),
        row(eb("C", ["30"], level="", period="24", amount="400")),
    )
    ind = summarize(tx).deductible.individual
    for amounts in (ind.in_network, ind.out_of_network):
        assert (amounts.total, amounts.remaining, amounts.met) == (Decimal("500"), Decimal("100"), Decimal("400"))


def test_a_specific_network_row_wins_its_slot_regardless_of_order() -> None:
    tx = one_member(
        active(),
        row(eb("C", ["30"], level="IND", period="23", amount="500", net="W")),
        row(eb("C", ["30"], level="IND", period="23", amount="750", net="Y")),
        row(eb("C", ["30"], level="IND", period="23", amount="999", net="Y")),
    )
    ind = summarize(tx).deductible.individual
    assert ind.in_network.total == Decimal("750")  # Y beats the earlier W; the first Y wins
    assert ind.out_of_network.total == Decimal("500")  # only the W row speaks for it


def test_only_plan_level_rows_feed_accumulators_and_nothing_is_derived() -> None:
    tx = one_member(
        active(),
        row(eb("C", ["98"], level="IND", period="23", amount="50", net="Y")),
        row(eb("C", ["30", "1"], level="IND", period="23", amount="2000", net="Y")),
        row(eb("C", ["30"], level="IND", period="29", amount="300", net="Y")),
    )
    ind_in = summarize(tx).deductible.individual.in_network
    assert (ind_in.total, ind_in.remaining, ind_in.met) == (Decimal("2000"), Decimal("300"), None)


def test_a_total_without_time_period_has_no_time_period() -> None:
    tx = one_member(active(), row(eb("G", ["30"], level="IND", amount="8000", net="Y")))
    amounts = summarize(tx).out_of_pocket.individual.in_network
    assert (amounts.total, amounts.time_period) == (Decimal("8000"), None)


# --- copays, coinsurance, limitations, entities, messages, benefits --------------------------------------


def test_copays_and_coinsurance_lists_keep_every_row_as_sent() -> None:
    tx = one_member(
        active(),
        row(eb("B", ["98"], level="IND", period="27", amount="25", net="Y"), places=["11"], msgs=["OFFICE"]),
        row(eb("B", ["UC"], amount="50", net="N")),
        row(eb("B", ["86"], amount="150", net="W", proc="HC:99285")),
        row(eb("A", ["30"], level="IND", percent=".2", net="U")),
        row(eb("A", ["30"], percent=".4")),
    )
    summary = summarize(tx)
    copay = summary.copays[0]
    assert (copay.kind, copay.amount, copay.network, copay.coverage_level) == (
        "copay",
        Decimal("25"),
        Network.IN,
        "IND",
    )
    assert (copay.service_types, copay.time_period, copay.place_of_service, copay.messages) == (
        ["98"],
        "27",
        ["11"],
        ["OFFICE"],
    )
    assert copay.benefit_index == 1
    assert [c.network for c in summary.copays] == [Network.IN, Network.OUT, Network.BOTH]
    assert summary.copays[2].procedure == "99285"
    assert summary.copays[1].coverage_level is None
    assert [(c.kind, c.percent, c.network) for c in summary.coinsurance] == [
        ("coinsurance", Decimal(".2"), Network.UNSPECIFIED),
        ("coinsurance", Decimal(".4"), Network.UNSPECIFIED),
    ]


def test_limitations_render_quantities_and_periods() -> None:
    tx = one_member(
        active(),
        row(eb("F", ["PT"], qq="VS", qty="20", period="23", net="Y")),
        row(eb("D", ["AL"], qq="VS", qty="1")),
        row(eb("F", ["35"], amount="1500", period="23")),
        row(eb("F", ["AD"]), msgs=["LIMITED TO 30 DAYS"]),
        row(eb("F", ["33"])),
    )
    lims = summarize(tx).limitations
    assert [lim.description for lim in lims] == [
        "20 visits per calendar year",
        "1 visit",
        "$1500 per calendar year",
        "LIMITED TO 30 DAYS",
        "limitations",
    ]
    first = lims[0]
    assert (first.quantity, first.quantity_qualifier, first.time_period, first.network) == (
        Decimal("20"),
        "VS",
        "23",
        Network.IN,
    )
    assert [lim.benefit_index for lim in lims] == [1, 2, 3, 4, 5]


def test_limitations_from_hsd_and_cost_shares_only_with_hsd() -> None:
    tx = one_member(
        active(),
        row(eb("B", ["98"], amount="20", qq="VS", qty="10")),  # a cost share with a quantity: not a limitation
        row(eb("B", ["AL"], amount="10"), hsd=[Hsd("VS", Decimal(1), time_period="21", period_count=Decimal(2))]),
        row(eb("1", ["PT"]), hsd=[Hsd("VS", Decimal(12), time_period="22")]),
    )
    lims = summarize(tx).limitations
    assert [(lim.benefit_index, lim.description) for lim in lims] == [
        (2, "1 visit per 2 years"),
        (3, "12 visits per service year"),
    ]
    assert (lims[1].quantity, lims[1].quantity_qualifier, lims[1].time_period) == (Decimal(12), "VS", "22")


def test_related_entities_name_role_phone_and_owner() -> None:
    pcp = Loop2120C(
        name=Nm1("P3", "1", "WELBY", "MARCUS", id_qualifier="XX", id="1999999984"),
        contacts=[Per("IC", "OFFICE", [("FX", "5550000"), ("TE", "5551234")])],
    )
    other = Loop2120C(name=Nm1("PRP", "2", "OTHER PAYER", id_qualifier="PI", id="999"))
    tx = one_member(active(), row(eb("L", ["98", "1"]), entities=[pcp, other]))
    entities = summarize(tx).related_entities
    assert [(e.role, e.role_description, e.name) for e in entities] == [
        ("P3", "primary care provider", "WELBY MARCUS"),
        ("PRP", "primary payer", "OTHER PAYER"),
    ]
    assert (entities[0].identifier, entities[0].identifier_qualifier, entities[0].phone) == (
        "1999999984",
        "XX",
        "5551234",
    )
    assert entities[1].phone is None
    assert [(e.service_types, e.benefit_index) for e in entities] == [(["98", "1"], 1)] * 2


def test_messages_are_plan_level_deduplicated_in_file_order() -> None:
    tx = one_member(
        row(eb("1", ["30"]), msgs=["PLAN NOTE", "CALL US"]),
        row(eb("B", ["98"], amount="20"), msgs=["OFFICE ONLY"]),
        row(eb("D", []), msgs=["CALL US", "LAST"]),
    )
    assert summarize(tx).messages == ["PLAN NOTE", "CALL US", "LAST"]


def test_benefit_rows_flatten_every_eb_in_file_order() -> None:
    tx = one_member(
        active(),
        row(
            eb("B", ["98"], level="IND", amount="25", auth="N", net="Y", proc="HC:99213"),
            places=["11"],
            refs=[Ref("G1", "AUTH1", "NOTE")],
            dates=[dtp("292", date(2024, 1, 1))],
            errors=[aaa("2110C", "AG")],
            msgs=["M1"],
            hsd=[Hsd("VS", Decimal(3), time_period="34")],
        ),
    )
    rows = summarize(tx).benefits
    assert [r.index for r in rows] == [0, 1]
    assert (rows[0].code, rows[0].name, rows[0].service_types) == ("1", "active coverage", ["30"])
    b = rows[1]
    assert (b.code, b.name, b.amount, b.auth_required, b.in_plan_network) == ("B", "co-payment", Decimal(25), "N", "Y")
    assert (b.procedure, b.additional_info, b.messages, b.errors) == ("HC:99213", ["ZZ:11"], ["M1"], ["AG"])
    assert b.references == [{"qualifier": "G1", "value": "AUTH1", "description": "NOTE"}]
    assert b.dates == [{"qualifier": "292", "format": "D8", "value": "20240101"}]
    assert b.delivery == ["3 visits per month"]
    assert (b.loop, b.time_period, b.percent) == ("2110C", None, None)


# --- per requested service: tiers ------------------------------------------------------------------------


def test_procedure_rows_beat_service_type_rows() -> None:
    tx = one_member(
        active(),
        row(eb("B", ["98"], level="IND", amount="25", net="Y")),
        row(eb("B", ["98"], level="IND", amount="40", net="Y", proc="HC:99213")),
    )
    answer = service(tx, request(procedures=["99213"]))
    assert answer.in_network.copay == Decimal("40")
    assert (answer.mapping_source, answer.service_types) == ("payer", ["98"])
    assert (answer.code, answer.code_type, answer.qualifier) == ("99213", "procedure", "HC")


def test_cj_and_hc_procedure_rows_are_the_same_code_set() -> None:
    tx = one_member(active(), row(eb("B", [], amount="40", net="Y", proc="CJ:99213")))
    answer = service(tx, request(procedures=["99213"]))
    assert answer.in_network.copay == Decimal("40")
    # No STC on the payer's row: the table's STCs are reported.
    assert (answer.mapping_source, answer.service_types) == ("payer", ["98", "1"])


def test_a_specific_service_type_beats_plan_rows() -> None:
    tx = one_member(
        active(),
        row(eb("B", ["30"], level="IND", amount="10", net="Y")),
        row(eb("B", ["98"], level="IND", amount="25", net="Y")),
    )
    answer = service(tx, request(procedures=["99213"]))
    assert answer.in_network.copay == Decimal("25")
    assert (answer.mapping_source, answer.service_types) == ("table", ["98", "1"])


def test_the_next_mapped_service_type_answers_when_the_first_is_absent() -> None:
    tx = one_member(active(), row(eb("B", ["30"], amount="10", net="Y")), row(eb("B", ["1"], amount="30", net="Y")))
    assert service(tx, request(procedures=["99213"])).in_network.copay == Decimal("30")


def test_plan_rows_beat_untyped_rows_and_untyped_rows_answer_last() -> None:
    both = one_member(active(), row(eb("B", [], amount="5", net="Y")), row(eb("B", ["30"], amount="10", net="Y")))
    assert service(both, request(procedures=["99213"])).in_network.copay == Decimal("10")
    untyped = one_member(active(), row(eb("B", [], amount="5", net="Y")))
    assert service(untyped, request(procedures=["99213"])).in_network.copay == Decimal("5")


def test_each_field_takes_its_own_first_tier() -> None:
    tx = one_member(
        active(),
        row(eb("B", ["98"], amount="25", net="Y"), msgs=["OFFICE VISIT"]),
        row(eb("A", ["30"], percent=".2", net="Y"), msgs=["PLAN COINS"]),
        row(eb("C", ["30"], level="IND", period="29", amount="300", net="Y")),
        row(eb("F", ["1"], qq="VS", qty="5")),
    )
    answer = service(tx, request(procedures=["99213"]))
    assert (answer.in_network.copay, answer.in_network.coinsurance) == (Decimal("25"), Decimal(".2"))
    assert answer.in_network.deductible_remaining == Decimal("300")
    # Tiers used: STC 98 (copay, covered) and STC 30 (coinsurance, deductible); not STC 1.
    assert answer.messages == ["OFFICE VISIT", "PLAN COINS"]
    assert answer.limitations == []
    assert answer.benefit_indexes == [1, 2, 3]


def test_service_limitations_come_from_the_tiers_used() -> None:
    tx = one_member(
        active(),
        row(eb("B", ["PT"], amount="40", net="Y")),
        row(eb("F", ["PT"], qq="VS", qty="20", period="23")),
        row(eb("F", ["AE"], qq="VS", qty="60", period="23")),
    )
    answer = service(tx, request(procedures=["97110"]))
    assert [lim.description for lim in answer.limitations] == ["20 visits per calendar year"]
    assert answer.benefit_indexes == [1, 2]


def test_a_row_for_another_procedure_does_not_answer_for_this_one() -> None:
    tx = one_member(
        active(),
        row(eb("B", ["30"], amount="10", net="Y")),
        row(eb("B", ["98"], amount="99", net="Y", proc="HC:99214")),
    )
    assert service(tx, request(procedures=["99213"])).in_network.copay == Decimal("10")


def test_an_unmapped_procedure_uses_only_plan_and_untyped_rows() -> None:
    tx = one_member(active(), row(eb("B", ["98"], amount="25", net="Y")), row(eb("B", ["30"], amount="10", net="Y")))
    answer = service(tx, request(procedures=["0042T"]))
    assert (answer.service_types, answer.mapping_source) == ([], "table")
    assert answer.in_network.copay == Decimal("10")
    assert answer.covered == Tristate.UNKNOWN


def test_deployment_overrides_map_the_procedure() -> None:
    tx = one_member(active(), row(eb("B", ["98"], amount="25", net="Y")), row(eb("B", ["UC"], amount="75", net="Y")))
    table = default_table().with_overrides({"99213": ["UC"]})
    answer = service(tx, request(procedures=["99213"]), table=table)
    assert (answer.service_types, answer.mapping_source, answer.in_network.copay) == (["UC"], "override", Decimal(75))


def test_a_requested_service_type_uses_tiers_two_to_four() -> None:
    tx = one_member(
        active(),
        row(eb("B", ["UC"], amount="75", net="Y")),
        row(eb("B", ["UC"], amount="1", net="Y", proc="HC:99213")),
        row(eb("B", ["30"], amount="10", net="Y")),
    )
    answers = summarize(tx, request(procedures=["99213"], service_types=["UC", "33"])).services
    assert [(a.code, a.code_type, a.mapping_source) for a in answers] == [
        ("99213", "procedure", "payer"),
        ("UC", "service_type", "request"),
        ("33", "service_type", "request"),
    ]
    assert [a.in_network.copay for a in answers] == [Decimal(1), Decimal(75), Decimal(10)]
    assert answers[1].service_types == ["UC"]
    assert answers[1].qualifier is None


# --- per requested service: choosing within a tier -----------------------------------------------------------


def test_a_specific_network_beats_w_u_or_empty_within_a_tier() -> None:
    tx = one_member(
        active(),
        row(eb("B", ["98"], amount="20", net="W")),
        row(eb("B", ["98"], amount="25", net="Y")),
        row(eb("B", ["98"], amount="60", net="N")),
    )
    answer = service(tx, request(procedures=["99213"]))
    assert (answer.in_network.copay, answer.out_of_network.copay) == (Decimal(25), Decimal(60))


def test_w_rows_answer_for_both_networks_when_nothing_specific() -> None:
    tx = one_member(active(), row(eb("B", ["98"], amount="20", net="W")), row(eb("B", ["98"], amount="30", net="U")))
    answer = service(tx, request(procedures=["99213"]))
    assert (answer.in_network.copay, answer.out_of_network.copay) == (Decimal(20), Decimal(20))


def test_individual_levels_beat_family_levels() -> None:
    tx = one_member(
        active(),
        row(eb("B", ["98"], level="FAM", amount="50", net="Y")),
        row(eb("B", ["98"], level="EMP", amount="25", net="Y")),
        row(eb("B", ["98"], level="IND", amount="30", net="Y")),
    )
    assert service(tx, request(procedures=["99213"])).in_network.copay == Decimal(25)


def test_place_of_service_skips_other_places_and_prefers_its_own() -> None:
    rows = (
        active(),
        row(eb("B", ["98"], amount="100", net="Y"), places=["22"]),
        row(eb("B", ["98"], amount="30", net="Y")),
        row(eb("B", ["98"], amount="25", net="Y"), places=["11"]),
    )
    assert service(one_member(*rows), request(procedures=["99213"], place="11")).in_network.copay == Decimal(25)
    assert service(one_member(*rows), request(procedures=["99213"], place="12")).in_network.copay == Decimal(30)
    assert service(one_member(*rows), request(procedures=["99213"])).in_network.copay == Decimal(100)


def test_a_tier_whose_only_rows_are_for_other_places_does_not_answer() -> None:
    tx = one_member(
        active(),
        row(eb("B", ["98"], amount="100", net="Y"), places=["22"]),
        row(eb("B", ["30"], amount="15", net="Y")),
    )
    assert service(tx, request(procedures=["99213"], place="11")).in_network.copay == Decimal(15)


def test_coinsurance_and_remaining_accumulators_per_service() -> None:
    tx = one_member(
        active(),
        row(eb("A", ["98"], percent=".1", net="Y")),
        row(eb("A", ["98"], percent=".3", net="N")),
        row(eb("C", ["98"], level="FAM", period="29", amount="900", net="Y")),
        row(eb("C", ["98"], level="IND", period="29", amount="200", net="Y")),
        row(eb("C", ["98"], level="IND", period="23", amount="1000", net="Y")),
        row(eb("G", ["30"], level="IND", period="29", amount="4000", net="W")),
    )
    answer = service(tx, request(procedures=["99213"]))
    assert (answer.in_network.coinsurance, answer.out_of_network.coinsurance) == (Decimal(".1"), Decimal(".3"))
    assert answer.in_network.deductible_remaining == Decimal(200)
    assert answer.out_of_network.deductible_remaining is None
    assert answer.in_network.out_of_pocket_remaining == Decimal(4000)
    assert answer.out_of_network.out_of_pocket_remaining == Decimal(4000)


# --- covered -------------------------------------------------------------------------------------------


def test_covered_yes_from_an_active_row_of_a_mapped_service_type() -> None:
    tx = one_member(active(), row(eb("1", ["98"])))
    answer = service(tx, request(procedures=["99213"]))
    assert answer.covered == Tristate.YES
    assert [(e.source, e.value, e.benefit_index) for e in answer.coverage_evidence] == [("EB01", "1", 1)]


def test_covered_yes_from_a_cost_share_row_of_a_mapped_service_type() -> None:
    """Reading (reported): cost-share rows also choose the deciding tier."""
    tx = one_member(active(), row(eb("B", ["98"], amount="25", net="Y")))
    answer = service(tx, request(procedures=["99213"]))
    assert answer.covered == Tristate.YES
    assert [(e.value, e.benefit_index) for e in answer.coverage_evidence] == [("B", 1)]


def test_covered_no_from_a_non_covered_row_in_the_deciding_tier() -> None:
    tx = one_member(active(), row(eb("B", ["AL"], amount="10", net="Y")), row(eb("I", ["AL"])))
    answer = service(tx, request(procedures=["92014"]))
    assert answer.covered == Tristate.NO
    assert [(e.value, e.benefit_index) for e in answer.coverage_evidence] == [("I", 2)]


def test_covered_unknown_when_only_plan_rows_speak() -> None:
    tx = one_member(active(), row(eb("B", ["30"], amount="10", net="Y")))
    answer = service(tx, request(procedures=["99213"]))
    assert answer.covered == Tristate.UNKNOWN
    assert {e.value for e in answer.coverage_evidence} == {"1", "B"}


def test_covered_yes_from_payer_procedure_rows() -> None:
    tx = one_member(active(), row(eb("1", [], proc="HC:27447")), row(eb("I", ["2"])))
    assert service(tx, request(procedures=["27447"])).covered == Tristate.YES


def test_an_exclusion_in_the_first_speaking_tier_is_no_even_with_an_active_plan() -> None:
    tx = one_member(active(), row(eb("E", ["2"])), row(eb("1", ["1"])))
    assert service(tx, request(procedures=["27447"])).covered == Tristate.NO


@pytest.mark.parametrize("code", ["6", "7", "8"])
def test_an_inactive_member_is_not_covered(code: str) -> None:
    tx = one_member(row(eb(code, ["30"])), row(eb("B", ["98"], amount="25", net="Y")))
    answer = service(tx, request(procedures=["99213"]))
    assert answer.covered == Tristate.NO
    assert [(e.source, e.value) for e in answer.coverage_evidence] == [("EB01", code)]


def test_an_inactive_members_answer_reports_the_status_rows_messages() -> None:
    tx = one_member(row(eb("6", ["30"]), msgs=["COVERAGE TERMINATED"]), row(eb("D", ["98"]), msgs=["OFFICE NOTE"]))
    answer = service(tx, request(service_types=["33"]))
    assert answer.covered == Tristate.NO
    # The deciding status row sits in the plan tier, which is therefore used.
    assert answer.messages == ["COVERAGE TERMINATED"]
    assert answer.benefit_indexes == [0]


def test_a_member_not_found_is_not_covered() -> None:
    tx = one_member(errors=[aaa("2100C", "75")])
    assert service(tx, request(procedures=["99213"])).covered == Tristate.NO


def test_a_rejected_check_is_covered_unknown() -> None:
    """Reading (reported): the payer has not said "not covered" when it rejected the inquiry."""
    tx = one_member(errors=[aaa("2100C", "42", "R")])
    assert service(tx, request(procedures=["99213"])).covered == Tristate.UNKNOWN


# --- auth_required -------------------------------------------------------------------------------------


def test_auth_yes_from_eb11_y() -> None:
    tx = one_member(active(), row(eb("1", ["62"], auth="Y")))
    answer = service(tx, request(procedures=["70551"]))
    assert answer.auth_required == Tristate.YES
    assert [(e.source, e.value, e.benefit_index) for e in answer.auth_evidence] == [("EB11", "Y", 1)]


def test_auth_no_from_eb11_n() -> None:
    tx = one_member(active(), row(eb("B", ["98"], amount="25", auth="N", net="Y")))
    assert service(tx, request(procedures=["99213"])).auth_required == Tristate.NO


def test_eb11_absent_is_unknown_even_when_plan_rows_say_no() -> None:
    tx = one_member(row(eb("1", ["30"], auth="N")), row(eb("B", ["98"], amount="25", net="Y")))
    answer = service(tx, request(procedures=["99213"]))
    assert answer.auth_required == Tristate.UNKNOWN
    assert answer.auth_evidence == []


def test_eb11_u_is_unknown_with_evidence() -> None:
    tx = one_member(active(), row(eb("1", ["98"], auth="U")))
    answer = service(tx, request(procedures=["99213"]))
    assert answer.auth_required == Tristate.UNKNOWN
    assert [(e.source, e.value) for e in answer.auth_evidence] == [("EB11", "U")]


def test_conflicting_eb11_values_mean_yes() -> None:
    tx = one_member(
        active(),
        row(eb("B", ["62"], amount="100", auth="N", net="Y")),
        row(eb("B", ["62"], amount="300", auth="Y", net="N")),
    )
    answer = service(tx, request(procedures=["70551"]))
    assert answer.auth_required == Tristate.YES
    assert [e.value for e in answer.auth_evidence] == ["N", "Y"]


def test_auth_yes_from_a_message_alone() -> None:
    tx = one_member(active(), row(eb("1", ["62"]), msgs=["CALL 800-555-0100", "PRIOR AUTHORIZATION REQUIRED FOR MRI"]))
    answer = service(tx, request(procedures=["70551"]))
    assert answer.auth_required == Tristate.YES
    assert [(e.source, e.value) for e in answer.auth_evidence] == [("MSG", "PRIOR AUTHORIZATION REQUIRED FOR MRI")]
    assert answer.auth_evidence[0].segment_position is not None


def test_a_negated_message_means_no() -> None:
    tx = one_member(active(), row(eb("1", ["98"]), msgs=["NO PRIOR AUTHORIZATION REQUIRED"]))
    assert service(tx, request(procedures=["99213"])).auth_required == Tristate.NO


def test_a_required_message_beats_eb11_n() -> None:
    tx = one_member(active(), row(eb("1", ["2"], auth="N"), msgs=["PRECERTIFICATION REQUIRED"]))
    answer = service(tx, request(procedures=["27447"]))
    assert answer.auth_required == Tristate.YES
    assert [e.source for e in answer.auth_evidence] == ["EB11", "MSG"]


def test_auth_looks_only_at_the_first_tier_with_rows() -> None:
    tx = one_member(
        active(),
        row(eb("1", ["98"])),
        row(eb("1", ["1"], auth="Y")),
    )
    assert service(tx, request(procedures=["99213"])).auth_required == Tristate.UNKNOWN


def test_auth_from_payer_procedure_rows() -> None:
    tx = one_member(active(), row(eb("1", ["62"], auth="N")), row(eb("1", ["62"], auth="Y", proc="HC:70553")))
    assert service(tx, request(procedures=["70553"])).auth_required == Tristate.YES
    assert service(tx, request(procedures=["70551"])).auth_required == Tristate.NO


def test_the_auth_tier_is_used_even_when_it_says_nothing_about_auth() -> None:
    tx = one_member(
        active(), row(eb("V", ["AL"]), msgs=["VISION CANNOT BE RETURNED"]), row(eb("B", ["30"], amount="5"))
    )
    answer = service(tx, request(service_types=["AL"]))
    assert (answer.auth_required, answer.covered) == (Tristate.UNKNOWN, Tristate.UNKNOWN)
    assert answer.messages == ["VISION CANNOT BE RETURNED"]
    assert answer.in_network.copay == Decimal(5)


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("PRIOR AUTHORIZATION REQUIRED", "Y"),
        ("Prior auth is required for outpatient surgery", "Y"),
        ("PRE-AUTHORIZATION REQUIRED", "Y"),
        ("PRECERTIFICATION REQUIRED FOR INPATIENT STAY", "Y"),
        ("REFERRAL REQUIRED", "Y"),
        ("MEMBER MUST OBTAIN A REFERRAL FROM PCP", "Y"),
        ("AUTH REQ'D", "Y"),
        ("PRIOR AUTHORIZATION REQUIRED: YES", "Y"),
        ("NO PRIOR AUTHORIZATION REQUIRED", "N"),
        ("PRIOR AUTHORIZATION NOT REQUIRED", "N"),
        ("AUTHORIZATION IS NOT REQUIRED", "N"),
        ("REFERRAL REQUIRED: NO", "N"),
        ("PLAN DOES NOT REQUIRE PRECERTIFICATION", "N"),
        ("NO REFERRAL NEEDED", "N"),
        ("CALL 800-555-0100 FOR BENEFITS", None),
        ("AUTHORIZATION PHONE 800-555-0100", None),
        ("CERTAIN RESTRICTIONS APPLY", None),
        ("CERTAIN PROCEDURES MUST BE BILLED WITH A MODIFIER", None),
        ("AUTHORITY REQUIRED TO RELEASE RECORDS", None),
        ("DEDUCTIBLE REQUIRED BEFORE COINSURANCE", None),
    ],
)
def test_auth_message_verdict(text: str, verdict: str | None) -> None:
    assert auth_message_verdict(text) == verdict


# --- errors ---------------------------------------------------------------------------------------------


def test_errors_concern_the_member_in_file_order_with_locations() -> None:
    tx = transaction(
        subscriber_level(
            person(
                "DOE",
                "JANE",
                member_id="W123",
                errors=[aaa("2100C", "72", "C", valid="Y", position=12)],
                rows=[active(), row(eb("1", ["33"]), errors=[aaa("2110C", "AG", "C", valid="N", position=20)])],
            )
        ),
        subscriber_level(
            person("OTHER", "ONE", member_id="Z", errors=[aaa("2100C", "73", position=30)], rows=[active()])
        ),
        # Built last, but a real file has them first: errors come in segment-position order.
        source_errors=[aaa("2000A", "42", "R", position=3)],
        receiver_errors=[aaa("2100B", "51", "N", position=6)],
    )
    errors = summarize(tx).errors
    assert [(e.code, e.loop, e.location) for e in errors] == [
        ("42", "2000A", "payer"),
        ("51", "2100B", "provider"),
        ("72", "2100C", "subscriber"),
        ("AG", "2110C", "benefit"),
    ]
    assert [e.valid_request for e in errors] == [True, True, True, False]
    assert errors[2].description == "invalid or missing subscriber/insured ID"
    assert errors[2].follow_up_description == "please correct and resubmit"
    assert all(e.possible_resolutions for e in errors)


@pytest.mark.parametrize(
    ("reason", "follow_up", "retryable"),
    [
        ("42", "R", True),
        ("42", "P", True),
        ("80", "", True),
        ("79", "P", True),
        ("42", "Y", False),
        ("42", "W", False),
        ("80", "C", False),
        ("72", "R", False),
    ],
)
def test_retryable_needs_a_connectivity_reason_and_a_resubmit_follow_up(
    reason: str, follow_up: str, retryable: bool
) -> None:
    tx = one_member(errors=[aaa("2100C", reason, follow_up)])
    assert summarize(tx).errors[0].retryable is retryable


@pytest.mark.parametrize(
    ("reason", "follow_up", "needs_correction"),
    [
        ("42", "C", True),
        ("75", "N", True),
        ("58", "R", True),
        ("15", "N", True),
        ("AG", "R", True),
        ("T4", "N", True),
        ("42", "R", False),
        ("52", "N", False),
        ("80", "P", False),
    ],
)
def test_needs_correction_from_follow_up_c_or_the_reason(reason: str, follow_up: str, needs_correction: bool) -> None:
    tx = one_member(errors=[aaa("2100C", reason, follow_up)])
    assert summarize(tx).errors[0].needs_correction is needs_correction


def test_unknown_reject_codes_pass_through_with_a_fallback_description() -> None:
    error = summarize(one_member(errors=[aaa("2100C", "RC", "Q")])).errors[0]
    assert (error.code, error.follow_up_action) == ("RC", "Q")
    assert error.description == "unknown code RC"
    assert error.possible_resolutions  # always at least one sentence


def test_a_dependent_sees_its_subscribers_aaa_and_its_own() -> None:
    tx = transaction(
        subscriber_level(
            person("DOE", "JOHN", member_id="W123", errors=[aaa("2100C", "43")]),
            dependents=[person("DOE", "KID", entity="03", dependent=True, errors=[aaa("2100D", "65")])],
        )
    )
    summary = summarize(tx)
    assert [(e.code, e.location) for e in summary.errors] == [("43", "subscriber"), ("65", "dependent")]
    assert summary.status == CheckStatus.NOT_FOUND  # 65 is a not-found reason


# --- provenance -------------------------------------------------------------------------------------------


def test_trace_number_is_our_echoed_trn_2() -> None:
    sub = person("DOE", "JANE", member_id="W123", rows=[active()])
    traces = [Trn("1", "CLEARINGHOUSE-1", "9CH"), Trn("2", "OUR-TRACE", "1EL")]
    summary = summarize(transaction(subscriber_level(sub, traces=traces), warnings=["w1"]))
    assert summary.provenance.trace_number == "OUR-TRACE"
    assert (summary.provenance.control_number, summary.provenance.implementation) == ("0001", "005010X279A1")
    assert summary.provenance.warnings == ["w1"]


def test_a_dependents_trace_comes_from_2000d_first() -> None:
    tx = transaction(
        subscriber_level(
            person("DOE", "JOHN", member_id="W123"),
            dependents=[person("DOE", "KID", entity="03", dependent=True, rows=[active()])],
            traces=[Trn("2", "SUB-TRACE", "1EL")],
            dependent_traces=[Trn("2", "DEP-TRACE", "1EL")],
        )
    )
    assert summarize(tx).provenance.trace_number == "DEP-TRACE"


# --- whole answers ------------------------------------------------------------------------------------------


def _rich() -> Transaction271:
    pcp = Loop2120C(name=Nm1("P3", "1", "WELBY", "MARCUS", id="1"), contacts=[Per("IC", "", [("TE", "5551234")])])
    return one_member(
        row(eb("1", ["30", "1", "98"], ins="PR", plan="GOLD"), refs=[Ref("6P", "G1", "ACME CO")], msgs=["NOTE"]),
        row(eb("C", ["30"], level="IND", period="23", amount="1500.00", net="Y")),
        row(eb("C", ["30"], level="IND", period="29", amount="250.50", net="Y")),
        row(eb("B", ["98"], level="IND", period="27", amount="25", net="Y", auth="N"), places=["11"]),
        row(eb("A", ["98"], level="IND", percent=".2", net="N"), msgs=["PRIOR AUTH REQUIRED OUT OF NETWORK"]),
        row(eb("F", ["PT"], qq="VS", qty="20", period="23"), hsd=[Hsd("VS", Decimal(20), time_period="23")]),
        row(eb("L", ["98"]), entities=[pcp]),
        row(eb("B", ["62"], amount="100", net="Y", proc="HC:70553"), errors=[aaa("2110C", "AG")]),
        dates=[dtp("346", date(2024, 1, 1))],
    )


def test_summaries_are_valid_models_with_exact_types() -> None:
    summary = summarize(_rich(), request(procedures=["99213", "97110", "70553"], service_types=["30"], place="11"))
    again = CoverageSummary.model_validate(summary.model_dump())
    assert again == summary
    assert CoverageSummary.model_validate_json(summary.model_dump_json()) == summary
    assert isinstance(summary.deductible.individual.in_network.remaining, Decimal)
    assert isinstance(summary.plan.coverage_begin, date)
    assert isinstance(summary.services[0].covered, Tristate)


def test_interpretation_is_deterministic_and_does_not_share_state() -> None:
    req = request(procedures=["99213", "70553"], service_types=["PT"])
    tx = _rich()
    first = interpret(tx, req)
    second = interpret(tx, req)
    assert [s.model_dump() for s in first] == [s.model_dump() for s in second]
    first[0].copays.clear()
    first[0].deductible.individual.in_network.total = None
    third = interpret(tx, req)
    assert third[0].copays
    assert third[0].deductible.individual.in_network.total == Decimal("1500.00")


def test_a_rich_answer_end_to_end() -> None:
    summary = summarize(_rich(), request(procedures=["99213", "70553"], place="11"))
    office, mri = summary.services
    assert (office.covered, office.auth_required) == (Tristate.YES, Tristate.YES)
    # STC 98 tier: EB11 N on the copay, but an MSG on the coinsurance row says required → yes.
    assert [e.source for e in office.auth_evidence] == ["EB11", "MSG"]
    assert (office.in_network.copay, office.out_of_network.coinsurance) == (Decimal(25), Decimal(".2"))
    assert office.in_network.deductible_remaining == Decimal("250.50")
    assert (mri.mapping_source, mri.service_types, mri.in_network.copay) == ("payer", ["62"], Decimal(100))
    assert mri.auth_required == Tristate.UNKNOWN
    assert summary.plan.group_name == "ACME CO"
    assert summary.messages == ["NOTE"]
