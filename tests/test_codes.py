"""Code lists: complete where the standard lists are closed, and safe for codes we do not know."""

from __future__ import annotations

import re

import pytest

from eligibility_svc.x12 import codes

_ALL_TABLES = {
    name: value
    for name, value in vars(codes).items()
    if name.isupper() and isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
}


def test_every_5010_service_type_code_is_described() -> None:
    numeric = {str(n) for n in range(1, 100)} - {"29", "31"}  # 29 and 31 were never service types
    lettered = {f"A{d}" for d in "0123456789"} | {f"A{c}" for c in "ABCDEFGHIJKLMNOQR"}
    lettered |= {"B1", "B2", "B3"} | {f"B{c}" for c in "ABCDEFGHIJKLMNPQRSTUVWXYZ"}
    lettered |= {"C1"} | {f"C{c}" for c in "ABCDEFGHIJKLMNOPQ"}
    lettered |= {"DG", "DM", "DS", "GF", "GN", "GY", "IC", "MH", "NI", "ON", "PT", "PU", "RN", "RT", "TC", "TN", "UC"}
    missing = (numeric | lettered) - codes.SERVICE_TYPES.keys()
    assert not missing


def test_newer_service_type_codes_are_described() -> None:
    for code in ("E0", "E37", "E40", "EA", "ED", "F1", "F8", "PE"):
        assert codes.is_service_type(code)


@pytest.mark.parametrize(
    ("code", "description"),
    [
        ("1", "active coverage"),
        ("6", "inactive"),
        ("7", "inactive - pending eligibility update"),
        ("8", "inactive - pending investigation"),
        ("V", "cannot process"),
        ("B", "co-payment"),
    ],
)
def test_eligibility_descriptions_used_as_status_details(code: str, description: str) -> None:
    assert codes.eligibility_description(code) == description


def test_every_eb01_code_is_described() -> None:
    expected = set("12345678ABCDEFGHIJKLMNOPQRSTUVWXY") | {"CB", "MC"}
    assert expected == codes.ELIGIBILITY_CODES.keys()


def test_coverage_levels_split_into_individual_and_family() -> None:
    assert codes.COVERAGE_LEVELS.keys() == {"CHD", "DEP", "ECH", "EMP", "ESP", "FAM", "IND", "SPC", "SPO"}
    assert {"", "IND", "EMP"} == codes.INDIVIDUAL_LEVELS
    assert codes.FAMILY_LEVELS | {"IND", "EMP"} == codes.COVERAGE_LEVELS.keys()


def test_reject_reasons_cover_every_code_the_rules_name() -> None:
    named = {"58", "64", "65", "67", "68", "71", "72", "73", "74", "75", "76", "77", "78"}  # NOT_FOUND
    named |= {"15", "33", "43", "44", "45", "46", "47", "48", "49", "50", "51", "56", "57", "60", "61", "62"}
    named |= {"63", "69", "70", "97", "AA", "AE", "AF", "AG", "T4", "42", "79", "80", "04", "41", "35", "52"}
    assert named <= codes.REJECT_REASONS.keys()
    assert codes.REJECT_REASONS.keys() <= codes.REJECT_RESOLUTIONS.keys()


def test_follow_up_actions_are_complete_with_resolutions() -> None:
    assert codes.FOLLOW_UP_ACTIONS.keys() == set("CNPRSWXY")
    assert codes.FOLLOW_UP_RESOLUTIONS.keys() == set("CNPRSWXY")


def test_entity_identifiers_seen_in_271s() -> None:
    for code in ("PR", "1P", "IL", "03", "P3", "PRP", "SEP", "TTP", "VN", "X3", "Y2", "GP", "13", "1I", "2B", "36"):
        assert code in codes.ENTITY_IDENTIFIERS
    assert codes.entity_description("P3") == "primary care provider"


def test_time_periods_and_quantity_qualifiers() -> None:
    for period in ("6", "7", "13", "21", "22", "23", "24", "25", "26", "27", "29", "32", "33", "34", "35", "36"):
        assert period in codes.TIME_PERIODS
        assert period in codes.TIME_PERIOD_PHRASES
    assert codes.QUANTITY_NOUNS.keys() == codes.QUANTITY_QUALIFIERS.keys()
    assert codes.QUANTITY_NOUNS["VS"] == ("visit", "visits")


def test_plan_reference_and_date_qualifiers() -> None:
    assert codes.ref_qualifier_description("6P") == "group number"
    assert codes.ref_qualifier_description("18") == "plan number"
    assert codes.dtp_qualifier_description("346") == "plan begin"
    assert codes.dtp_qualifier_description("307") == "eligibility"
    assert codes.relationship_description("19") == "child"


@pytest.mark.parametrize(
    "lookup",
    [
        codes.eligibility_description,
        codes.coverage_level_description,
        codes.service_type_description,
        codes.insurance_type_description,
        codes.time_period_description,
        codes.quantity_qualifier_description,
        codes.reject_reason_description,
        codes.follow_up_description,
        codes.entity_description,
        codes.ref_qualifier_description,
        codes.dtp_qualifier_description,
        codes.relationship_description,
    ],
)
def test_unknown_codes_fall_back_without_raising(lookup: object) -> None:
    assert callable(lookup)
    assert lookup("QQ9") == "unknown code QQ9"
    assert lookup("") == "no code"


@pytest.mark.parametrize("name", sorted(_ALL_TABLES))
def test_tables_are_well_formed(name: str) -> None:
    table = _ALL_TABLES[name]
    assert table, name
    for code, description in table.items():
        assert re.fullmatch(r"[0-9A-Z]{1,3}", code), (name, code)
        assert description, (name, code)
        assert description.strip() == description, (name, code)
        assert not description.startswith("unknown code"), (name, code)
