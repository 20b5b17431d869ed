"""The procedure → service type table: built-in ranges, code kinds, overrides and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eligibility_svc.errors import ConfigurationError
from eligibility_svc.x12.codes import SERVICE_TYPES
from eligibility_svc.x12.procedures import (
    BUILTIN_RANGES,
    ProcedureTable,
    code_key,
    default_table,
    load_overrides,
    load_table,
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("99213", ["98", "1"]),  # office visit, then medical care
        ("99205", ["98", "1"]),
        ("99244", ["3", "1"]),  # consultation
        ("99284", ["86"]),  # emergency department
        ("99223", ["99", "1"]),  # hospital inpatient
        ("99291", ["IC", "1"]),  # critical care
        ("27447", ["2"]),  # surgery
        ("10004", ["2"]),
        ("69990", ["2"]),
        ("00142", ["7"]),  # anesthesia
        ("71046", ["4"]),  # chest x-ray
        ("70551", ["62", "4"]),  # MRI brain
        ("74177", ["62", "4"]),  # CT abdomen and pelvis
        ("77067", ["CN", "CM", "4"]),  # screening mammography
        ("77385", ["6"]),  # radiation therapy
        ("78815", ["PE", "4"]),  # PET/CT
        ("80053", ["5"]),  # lab
        ("88305", ["66", "5"]),  # pathology
        ("97110", ["PT", "AE"]),  # physical therapy
        ("97163", ["PT", "AE"]),
        ("97166", ["AD"]),  # occupational therapy evaluation
        ("92507", ["AF"]),  # speech therapy
        ("92523", ["AF"]),
        ("98941", ["33"]),  # chiropractic
        ("90834", ["A6", "MH"]),  # psychotherapy
        ("90791", ["A4", "MH"]),
        ("90715", ["80"]),  # a vaccine
        ("90686", ["CO", "80"]),  # flu vaccine
        ("90732", ["19", "80"]),  # pneumococcal vaccine
        ("99395", ["BZ", "81"]),  # preventive visit
        ("99391", ["68", "BZ", "81"]),  # well baby
        ("59400", ["69", "BU"]),  # obstetric care
        ("95004", ["79", "GY"]),  # allergy testing
        ("95165", ["GY"]),  # allergen immunotherapy
        ("90935", ["76"]),  # dialysis
        ("96413", ["78"]),  # chemotherapy
        ("92014", ["AL", "BR"]),  # eye exam
        ("92557", ["71"]),  # audiology
        ("E0601", ["DM", "12", "18"]),  # CPAP
        ("A0427", ["59", "56"]),  # ambulance
        ("A0430", ["57", "59", "56"]),  # air ambulance
        ("J1100", ["1"]),  # an injected drug
        ("J9035", ["78", "1"]),  # a chemotherapy drug
        ("L3000", ["DM", "75"]),  # orthotic
        ("V2100", ["AO", "CP", "AL"]),  # lenses
    ],
)
def test_built_in_mappings(code: str, expected: list[str]) -> None:
    assert default_table().service_types_for(code) == (expected, "table")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("D0120", ["23", "35"]),  # periodic oral evaluation: diagnostic
        ("D1110", ["41", "35"]),  # prophylaxis: preventive
        ("D2391", ["25", "35"]),  # resin filling: restorative
        ("D2740", ["36", "25", "35"]),  # crown
        ("D3330", ["26", "35"]),  # root canal: endodontics
        ("D4341", ["24", "35"]),  # scaling and root planing: periodontics
        ("D5110", ["39", "35"]),  # complete denture: prosthodontics
        ("D5932", ["27", "35"]),  # maxillofacial prosthetics
        ("D7140", ["40", "35"]),  # extraction: oral surgery
        ("D8080", ["38", "35"]),  # orthodontics
        ("D9222", ["28", "35"]),  # anesthesia: adjunctive
    ],
)
def test_dental_codes_map_to_their_category_then_dental_care(code: str, expected: list[str]) -> None:
    table = default_table()
    assert table.service_types_for(code, "AD") == (expected, "table")
    assert table.service_types_for(code, "HC") == (expected, "table")  # HCPCS D codes are CDT
    assert table.service_types_for(code[1:], "AD") == (expected, "table")  # "0120" with AD means D0120


def test_cj_is_the_same_code_set_as_hc_and_codes_are_case_and_space_insensitive() -> None:
    table = default_table()
    assert table.service_types_for("99213", "CJ") == (["98", "1"], "table")
    assert table.service_types_for(" e0601 ") == (["DM", "12", "18"], "table")


@pytest.mark.parametrize(
    ("code", "qualifier"),
    [
        ("99499X", "HC"),
        ("1234", "HC"),
        ("", "HC"),
        ("ABCDE", "HC"),
        ("0591F", "HC"),  # category II: quality reporting, deliberately unmapped
        ("0042T", "HC"),  # category III: emerging technology, deliberately unmapped
        ("99213", "N4"),  # an NDC qualifier: not our code set
        ("99213", "ZZ"),
        ("99999", "HC"),  # a five-digit code outside every range
        ("T1015", "HC"),  # a HCPCS letter with no ranges
    ],
)
def test_unknown_and_unmapped_codes_give_an_empty_list(code: str, qualifier: str) -> None:
    assert default_table().service_types_for(code, qualifier) == ([], "table")


def test_code_kinds() -> None:
    assert code_key("99213") == ("", 99213)
    assert code_key("00100") == ("", 100)
    assert code_key("E0601") == ("E", 601)
    assert code_key("0042T") == ("#T", 42)
    assert code_key("0591F") == ("#F", 591)
    assert code_key("0001U") == ("#U", 1)
    assert code_key("0120", "AD") == ("D", 120)
    assert code_key("0120", "HC") is None
    assert code_key("99213", "N4") is None


def test_proprietary_lab_codes_are_lab() -> None:
    assert default_table().service_types_for("0037U") == (["5"], "table")


def test_returned_lists_are_fresh_copies() -> None:
    table = default_table()
    first, _ = table.service_types_for("99213")
    first.append("XX")
    assert table.service_types_for("99213") == (["98", "1"], "table")


def test_surgical_facility_hints_follow_the_place_of_service() -> None:
    table = default_table()
    assert table.service_types_for("27447", place_of_service="24") == (["2", "13"], "table")
    assert table.service_types_for("27447", place_of_service="22") == (["2", "53"], "table")
    assert table.service_types_for("27447", place_of_service="11") == (["2"], "table")
    assert table.service_types_for("99213", place_of_service="24") == (["98", "1"], "table")
    overridden = table.with_overrides({"27447": ["2"]})
    assert overridden.service_types_for("27447", place_of_service="24") == (["2"], "override")


def test_built_in_ranges_are_well_formed() -> None:
    spans = set()
    for first, last, stcs in BUILTIN_RANGES:
        low, high = code_key(first), code_key(last)
        assert low is not None, first
        assert high is not None, last
        assert low[0] == high[0], (first, last)
        assert low[1] <= high[1], (first, last)
        assert stcs, first
        assert all(s in SERVICE_TYPES for s in stcs), (first, stcs)
        assert len(set(stcs)) == len(stcs), (first, stcs)
        assert (low[0], low[1], high[1]) not in spans, (first, last)
        spans.add((low[0], low[1], high[1]))


def _narrowest_by_brute_force(kind: str, number: int) -> list[str]:
    best: tuple[int, tuple[str, ...]] | None = None
    for first, last, stcs in BUILTIN_RANGES:
        low, high = code_key(first), code_key(last)
        assert low is not None
        assert high is not None
        if low[0] == kind and low[1] <= number <= high[1] and (best is None or high[1] - low[1] < best[0]):
            best = (high[1] - low[1], stcs)
    return list(best[1]) if best else []


@given(st.integers(min_value=0, max_value=99999))
def test_the_narrowest_built_in_range_wins_for_any_cpt_code(number: int) -> None:
    code = f"{number:05d}"
    assert default_table().service_types_for(code) == (_narrowest_by_brute_force("", number), "table")


@given(st.sampled_from("ADEGHJLV"), st.integers(min_value=0, max_value=9999))
def test_the_narrowest_built_in_range_wins_for_any_hcpcs_code(letter: str, number: int) -> None:
    code = f"{letter}{number:04d}"
    assert default_table().service_types_for(code) == (_narrowest_by_brute_force(letter, number), "table")


# --- overrides ------------------------------------------------------------------------------------------


def test_overrides_win_over_the_table_whatever_their_width() -> None:
    table = default_table().with_overrides({"99201-99499": ["1"], "99213": ["98"], "D2000-D2999": ["E12", "25"]})
    assert table.service_types_for("99213") == (["98"], "override")
    assert table.service_types_for("99214") == (["1"], "override")  # beats the narrower built-in 99201-99215
    assert table.service_types_for("D2740", "AD") == (["E12", "25"], "override")
    assert table.service_types_for("27447") == (["2"], "table")
    assert default_table().service_types_for("99213") == (["98", "1"], "table")  # the default is untouched


def test_an_override_may_map_to_nothing() -> None:
    table = default_table().with_overrides({"0042T": [], "99213": []})
    assert table.service_types_for("99213") == ([], "override")


def test_override_keys_tolerate_spaces_and_lower_case() -> None:
    table = default_table().with_overrides({"e0100 - e0105": ["DM"]})
    assert table.service_types_for("E0103") == (["DM"], "override")


@pytest.mark.parametrize(
    ("mapping", "bad_key", "words"),
    [
        ({"9921": ["98"]}, "9921", "not a procedure code"),
        ({"99213-": ["98"]}, "99213-", "not a procedure code"),
        ({"99215-99211": ["98"]}, "99215-99211", "lower to a higher"),
        ({"99213-E0601": ["98"]}, "99213-E0601", "same kind"),
        ({"99213": ["98", "ZZZ"]}, "99213", "unknown service type"),
        ({"99213": "98"}, "99213", "list of service type"),
        ({"99213": ["98", "98"]}, "99213", "twice"),
        ({"99213": ["98"], "99213-99213": ["1"]}, "99213-99213", "same codes"),
    ],
)
def test_bad_overrides_raise_configuration_errors_naming_the_key(
    mapping: dict[str, list[str]], bad_key: str, words: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        default_table().with_overrides(mapping)
    assert caught.value.details["key"] == bad_key
    assert bad_key in caught.value.message
    assert words in caught.value.message
    assert caught.value.code == "config.invalid"


def test_load_overrides_reads_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps({"99213": ["98"], "97110-97546": ["PT"]}))
    table = load_overrides(path)
    assert table.service_types_for("97530") == (["PT"], "override")
    assert table.service_types_for("99213") == (["98"], "override")
    base = ProcedureTable.builtin().with_overrides({"27447": ["CC"]})
    assert load_overrides(path, base).service_types_for("27447") == (["2"], "table")  # the file replaces overrides


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "not valid JSON"),
        ('["99213"]', "JSON object"),
        ('{"99213": "98"}', "list of service type"),
        ('{"99213": ["QQ"]}', "unknown service type"),
    ],
)
def test_load_overrides_refuses_bad_files(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "overrides.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=words):
        load_overrides(path)


def test_load_overrides_names_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigurationError) as caught:
        load_overrides(missing)
    assert caught.value.details["path"] == str(missing)


def test_load_table_is_the_default_without_a_file_and_applies_one_when_given(tmp_path: Path) -> None:
    assert load_table(None) is default_table()
    path = tmp_path / "map.json"
    path.write_text('{"99213": ["UC"]}')
    assert load_table(path).service_types_for("99213") == (["UC"], "override")
