"""Every file of the public corpus (../shared/corpus) through 005010X279A1 validation.

Each 5010 file's findings are recorded here with the defect behind each one, checked against the
file's bytes; a map that stops finding one of them, or starts finding something else, fails.
4010 files are refused with the version.  Positions count segments from the ISA (1).

Defects the validator does not report are noted too, with why (a rule no map can state).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eligibility_svc.errors import X12Error, X12UnsupportedVersion
from eligibility_svc.x12.validate import validate_x12

Row = tuple[str, str, int | None, str | None, str]  # severity, segment, position, element, code

# The Inteligenz 5010 files share one envelope, and its four defects:
INTELIGENZ_ENVELOPE: list[Row] = [
    # ISA11 and ISA16 are both '^' (bytes 83 and 105 of the ISA): delimiters must be distinct.
    ("error", "ISA", 1, "ISA11", "7"),
    # GS*XX: the functional identifier of a 271 is HB.
    ("error", "GS", 2, "GS01", "7"),
    # GS08 and ST03 say 005010X279, the guide before its addenda; HIPAA adopted 005010X279A1.
    ("error", "GS", 2, "GS08", "7"),
    ("error", "ST", 3, "ST03", "7"),
]
# An ISA 00401 envelope (ISA11 'U') around a GS/ST saying 005010X279.
OLD_ENVELOPE_270: list[Row] = [
    ("error", "ISA", 1, "ISA12", "7"),
    ("error", "GS", 2, "GS08", "7"),
    ("error", "ST", 3, "ST03", "7"),
]

FINDINGS: dict[str, list[Row]] = {
    "270/EdiFabric-X12.NET__GenericRequest.txt": [
        ("error", "GS", 2, "GS01", "7"),  # GS*HC (claims) around a 270, which is HS
    ],
    "270/Inteligenz-X12Parser__Example1_IG.txt": OLD_ENVELOPE_270,
    "270/Inteligenz-X12Parser__Example1_IG_0x1D.txt": OLD_ENVELOPE_270,  # same, 0x1D terminators
    "270/LinuxForHealth-x12__demo-single-line.270": [],
    "270/LinuxForHealth-x12__dependent-commercial-health-insurance@284e4b1.270": [
        ("error", "PRV", 20, "PRV02", "7"),  # PRV*PC*HPI: 5010 takes the taxonomy code only, PRV02 PXC
    ],
    "270/LinuxForHealth-x12__dependent-health-benefit-check.270": [],
    "270/LinuxForHealth-x12__subscriber-drug-in-office@284e4b1.270": [
        ("error", "PRV", 18, "PRV02", "7"),  # PRV*PC*HPI, as above
    ],
    "270/LinuxForHealth-x12__subscriber-health-benefit-check.270": [],
    # LS/LE after the last EB*B, so the PCP (NM1*P3) belongs to that row and EB*L has none: the
    # structure is valid, the meaning is not checkable.
    "271/EdiFabric-X12.NET__GenericResponse.txt": [
        ("error", "GS", 2, "GS01", "7"),  # GS*HC around a 271, which is HB
    ],
    "271/Inteligenz-X12Parser__Example_3_1_3.txt": [
        *INTELIGENZ_ENVELOPE,
        ("warning", "HL", 7, "HL04", "I12"),  # HL*2*1*21*1 rejected with AAA*Y**50*N, no HL follows
    ],
    "271/Inteligenz-X12Parser__Example_3_2_2.txt": [
        *INTELIGENZ_ENVELOPE,
        ("error", "HL", 14, "HL04", "7"),  # HL*4*3*23*1: a dependent (2000D) has no subordinate, HL04 0
    ],
    "271/Inteligenz-X12Parser__Example_ErrorWithoutBenefitInfo.txt": INTELIGENZ_ENVELOPE,
    # The BHT03 GUID, the 7-digit BHT05 (HHMMSSD) and AAA*Y**42*R are all valid.  NM1*1P ... XX*000000000
    # is not a real NPI (nine digits), but NPI check digits are beyond a map: not reported.
    "271/Inteligenz-X12Parser__From_georgiosd.txt": [],
    "271/Inteligenz-X12Parser__Hipaa-Example_3_1_2.txt": [
        *INTELIGENZ_ENVELOPE,
        ("error", "NM1", 13, "NM106", "10"),  # NM1*1P*1*Smith*John*M*Mr*Sr: NM106 (prefix) is not used
        ("error", "AAA", 25, "AAA03", "7"),  # AAA*N**51*N after an EB: 51 (provider not on file) is a 2100B/C reason
        ("error", "SE", 42, None, "4"),  # SE*22*4321: there are 40 segments from ST to SE
    ],
    "271/Inteligenz-X12Parser__Parsing-Example_3_1_2.txt": INTELIGENZ_ENVELOPE,
    "271/Inteligenz-X12Parser__ValidationForDependentBenefitInfo.txt": [
        *INTELIGENZ_ENVELOPE,
        ("error", "HL", 9, "HL04", "I12"),  # HL*3*2*22*0 then HL*4*3*23: HL04 says no subordinate
        ("error", "SE", 18, None, "4"),  # SE*22: 16 segments
    ],
    "271/Inteligenz-X12Parser__ValidationForDependentName.txt": [
        *INTELIGENZ_ENVELOPE,
        ("error", "HL", 9, "HL04", "I12"),  # HL*3*2*22*0 then HL*4*3*23
        ("error", "SE", 18, None, "4"),  # SE*22: 16 segments
    ],
    "271/Inteligenz-X12Parser__ValidationForReceiverName.txt": [
        *INTELIGENZ_ENVELOPE,
        ("warning", "HL", 7, "HL04", "I12"),  # HL*2*1*21*1, rejected by four AAA, no HL follows
        ("error", "SE", 13, None, "4"),  # SE*22: 11 segments
    ],
    "271/Inteligenz-X12Parser__ValidationForSource.txt": [
        *INTELIGENZ_ENVELOPE,
        ("warning", "HL", 5, "HL04", "I12"),  # HL*1**20*1 and nothing under it
        ("error", "SE", 7, None, "4"),  # SE*22: 5 segments
        ("error", "NM1", 7, None, "3"),  # HL, AAA, SE: the required 2100A (NM1*PR) never comes
    ],
    "271/Inteligenz-X12Parser__ValidationForSourceName.txt": [
        *INTELIGENZ_ENVELOPE,
        ("warning", "HL", 5, "HL04", "I12"),  # HL*1**20*1, rejected at 2100A (AAA*N**79*C)
        ("error", "SE", 8, None, "4"),  # SE*22: 6 segments
    ],
    # AAA*N**CI*C after the EB: CI (certification information does not match patient) is on the
    # 5010 2110C list, so it is not a finding despite the corpus note calling it non-standard.
    "271/Inteligenz-X12Parser__ValidationForSubscriberBenefitInfo.txt": [
        *INTELIGENZ_ENVELOPE,
        ("error", "SE", 19, None, "4"),  # SE*22: 17 segments
    ],
    "271/Inteligenz-X12Parser__ValidationForSubscriberName.txt": [
        *INTELIGENZ_ENVELOPE,
        ("error", "N4", 13, "N401", "1"),  # N4**MO*64108: the city is required
        ("error", "SE", 18, None, "4"),  # SE*22: 16 segments
    ],
    "271/Inteligenz-X12Parser__ValidationOnAll.txt": [
        *INTELIGENZ_ENVELOPE,
        ("error", "HL", 15, "HL04", "I12"),  # HL*3*2*22*0 then HL*4*3*23
        ("error", "SE", 31, None, "4"),  # SE*22: 29 segments
    ],
    "271/LinuxForHealth-x12__dependent-health-benefit-check.271": [],
    # NM1*IL where the dependent's NM1*03 belongs (2100D): nothing after it has a place, and the
    # required 2100D is reported missing at SE.
    "271/LinuxForHealth-x12__dependent@284e4b1.271": [
        ("error", "NM1", 17, None, "1"),
        ("error", "N3", 18, None, "1"),
        ("error", "N4", 19, None, "1"),
        ("error", "DMG", 20, None, "1"),
        ("error", "DTP", 21, None, "1"),
        ("error", "EB", 22, None, "1"),
        ("error", "EB", 23, None, "1"),
        ("error", "LS", 24, None, "1"),
        ("error", "NM1", 25, None, "1"),
        ("error", "LE", 26, None, "1"),
        ("error", "EB", 27, None, "1"),
        ("error", "EB", 28, None, "1"),
        ("error", "EB", 29, None, "1"),
        ("error", "NM1", 30, None, "3"),
    ],
    "271/LinuxForHealth-x12__dependent@a391dfb.271": [
        # NM1*03*1*DOE*JAMES****MI*00000000002: a dependent with its own ID is sent as a subscriber;
        # 2100D NM108/NM109 are not used.
        ("error", "NM1", 17, "NM108", "10"),
        ("error", "NM1", 17, "NM109", "10"),
    ],
    "271/LinuxForHealth-x12__subscriber-health-benefit-check-error.271": [
        ("error", "SE", 10, None, "3"),  # SE*8*4323 closes ST*271*4321 (the count, 8, is right)
    ],
    "271/LinuxForHealth-x12__subscriber-health-benefit-check.271": [],
    "271/LinuxForHealth-x12__subscriber@284e4b1.271": [],
    "271/aaronhuggins-node-x12__271.edi": [
        ("error", "IEA", None, None, "023"),  # the file ends at SE: no IEA
        ("error", "GE", None, None, "3"),  # ... and no GE
        ("error", "GS", 2, "GS01", "7"),  # GS*HS (inquiry) around a 271
    ],
    # ISA 00401 and GS08 004010X092A1 around ST*271*4321*005010X279A1.
    "271/imsweb-x12-parser__x271.txt": [
        ("error", "ISA", 1, "ISA12", "7"),  # 00401 in a 5010 interchange
        ("error", "GS", 2, "GS08", "7"),  # 004010X092A1 over a 005010X279A1 transaction
        ("error", "EB", 16, None, "SEG1"),  # EB*1**30**GOLD 123 PLAN******** ends with empty elements
        ("error", "SE", 20, None, "4"),  # SE*22: 18 segments
        ("error", "IEA", 22, None, "001"),  # IEA02 000014420 is not ISA13 000003438
    ],
}

# 4010 (004010X092 / X092A1) interchanges: refused, naming the guide.
REFUSED = {
    "270/Inteligenz-X12Parser__Example1_DHHS.txt": "004010X092",
    "270/Inteligenz-X12Parser__Example2_EHCCA.txt": "004010X092",
    "270/Inteligenz-X12Parser__Example3_Aetna.txt": "004010X092",
    "270/azoner-pyx12__x12testdata-repeat_init_segment.270": "004010X092A1",
    "270/imsweb-x12-parser__x270.txt": "004010X092A1",
    "271/Inteligenz-X12Parser__Example2_TMHP.txt": "004010X092A1",
    "271/Inteligenz-X12Parser__FromMunawarAbad.txt": "004010X092A1",
    "271/Inteligenz-X12Parser__From_tcplex.txt": "004010X092A1",  # its ISA is also 105 characters
    "271/Inteligenz-X12Parser__Hipaa-Example1_DHHS.txt": "004010X092",
    "271/Inteligenz-X12Parser__Hipaa-Example3_CMS_HETS.txt": "004010X092A1",
    "271/Inteligenz-X12Parser__Parsing-Example1_DHHS.txt": "004010X092",
    "271/Inteligenz-X12Parser__Parsing-Example3_CMS_HETS.txt": "004010X092A1",
}


def test_every_corpus_file_is_accounted_for(corpus_dir: Path) -> None:
    files = {f"{p.parent.name}/{p.name}" for p in corpus_dir.glob("27[01]/*")}

    assert files == FINDINGS.keys() | REFUSED.keys()
    assert not FINDINGS.keys() & REFUSED.keys()


@pytest.mark.parametrize("name", sorted(FINDINGS))
def test_5010_file_findings_are_its_true_defects(corpus_dir: Path, name: str) -> None:
    result = validate_x12((corpus_dir / name).read_bytes())

    found = [(f.severity, f.segment_id, f.position, f.element, f.code) for f in result.findings]
    assert found == FINDINGS[name]
    assert result.ok == (not any(row[0] == "error" for row in FINDINGS[name]))


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_4010_file_is_refused_with_its_version(corpus_dir: Path, name: str) -> None:
    with pytest.raises(X12UnsupportedVersion) as raised:
        validate_x12((corpus_dir / name).read_bytes())

    assert raised.value.message.startswith(f"{REFUSED[name]} is a 4010 guide")


ENVELOPE = {"ISA", "IEA", "GS", "GE"}


def test_every_5010_file_gets_a_999_that_rejects_exactly_the_failed_transactions(corpus_dir: Path) -> None:
    # IK5 answers for ST..SE; interchange and group errors are the TA1's and AK9's business.
    for name, rows in FINDINGS.items():
        try:
            result = validate_x12((corpus_dir / name).read_bytes(), want_ack=True)
        except X12Error as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{name}: {exc}")
        assert result.ack is not None
        rejected = any(row[0] == "error" and row[1] not in ENVELOPE for row in rows)
        assert ("IK5*R" in result.ack) == rejected, name
        assert ("IK5*A~" in result.ack) == (not rejected), name
