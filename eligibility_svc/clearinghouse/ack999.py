"""Read a 999 implementation acknowledgment well enough to tell a person what the payer refused.

Pure.  A clearinghouse answers a 270 it cannot accept with a 999 (005010X231A1) instead of a 271:
``AK1`` names the group, ``AK2`` the transaction set, ``IK3`` a segment in error, ``IK4`` an element
in error, ``IK5`` the verdict for the set and ``AK9`` for the group.  ``IK404`` (the bad value as
sent) is deliberately left out of every message: it may be a member ID or a name.
"""

from __future__ import annotations

from dataclasses import dataclass

from eligibility_svc.x12.reader import Segment, Transaction, split_components

# IK304 implementation segment syntax error codes.
SEGMENT_ERRORS: dict[str, str] = {
    "1": "unrecognized segment ID",
    "2": "unexpected segment",
    "3": "required segment missing",
    "4": "loop occurs over maximum times",
    "5": "segment exceeds maximum use",
    "6": "segment not in defined transaction set",
    "7": "segment not in proper sequence",
    "8": "segment has data element errors",
    "I4": "implementation 'not used' segment present",
    "I6": "implementation dependent segment missing",
    "I7": "implementation loop occurs under minimum times",
    "I8": "implementation segment below minimum use",
    "I9": "implementation dependent 'not used' segment present",
}

# IK403 implementation data element syntax error codes.
ELEMENT_ERRORS: dict[str, str] = {
    "1": "required data element missing",
    "2": "conditional required data element missing",
    "3": "too many data elements",
    "4": "data element too short",
    "5": "data element too long",
    "6": "invalid character in data element",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "exclusion condition violated",
    "12": "too many repetitions",
    "13": "too many components",
    "I6": "code value not used in implementation",
    "I9": "implementation dependent data element missing",
    "I10": "implementation 'not used' data element present",
    "I11": "implementation too few repetitions",
    "I12": "implementation pattern match failure",
    "I13": "implementation dependent 'not used' data element present",
}

# IK501 / AK901 acknowledgment codes.
ACK_CODES: dict[str, str] = {
    "A": "accepted",
    "E": "accepted, but errors were noted",
    "M": "rejected, message authentication code failed",
    "P": "partially accepted",
    "R": "rejected",
    "W": "rejected, assurance failed validity tests",
    "X": "rejected, content after decryption could not be analyzed",
}

# IK502..IK506 implementation transaction set syntax error codes.
SET_ERRORS: dict[str, str] = {
    "1": "transaction set not supported",
    "2": "transaction set trailer missing",
    "3": "transaction set control number in header and trailer do not match",
    "4": "number of included segments does not match actual count",
    "5": "one or more segments in error",
    "6": "missing or invalid transaction set identifier",
    "7": "missing or invalid transaction set control number",
    "23": "transaction set control number not unique within the functional group",
    "I5": "implementation one or more segments in error",
    "I6": "implementation convention not supported",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One IK3 segment error with its IK4 element errors, as text."""

    segment: str
    elements: tuple[str, ...]


def describe_999(transaction: Transaction) -> str:
    """One sentence per 999: the verdict, then every segment and element the payer refused."""
    verdict = _verdict(transaction.segments)
    findings = _findings(transaction)
    if not findings:
        return f"the clearinghouse answered with a 999 instead of a 271: {verdict}"
    parts = [f"{f.segment}" + (f" ({'; '.join(f.elements)})" if f.elements else "") for f in findings]
    return f"the clearinghouse answered with a 999 instead of a 271: {verdict}; " + "; ".join(parts)


def _verdict(segments: list[Segment]) -> str:
    """IK5 (or AK9 when there is no IK5) as words: ``rejected (one or more segments in error)``."""
    for segment in segments:
        if segment.id in ("IK5", "AK9"):
            code = segment.el(1)
            text = ACK_CODES.get(code, f"acknowledgment code {code!r}")
            reasons = [_code(SET_ERRORS, segment.el(i)) for i in range(2, 7) if segment.el(i)]
            if segment.id == "AK9":
                reasons = []
            return f"{segment.id} {code} {text}" + (f" ({', '.join(reasons)})" if reasons else "")
    return "no IK5 or AK9 verdict"


def _findings(transaction: Transaction) -> list[Finding]:
    findings: list[Finding] = []
    current: tuple[str, list[str]] | None = None
    for segment in transaction.segments:
        if segment.id == "IK3":
            if current is not None:
                findings.append(Finding(current[0], tuple(current[1])))
            current = (_segment_text(segment), [])
        elif segment.id == "IK4" and current is not None:
            current[1].append(_element_text(segment, transaction))
    if current is not None:
        findings.append(Finding(current[0], tuple(current[1])))
    return findings


def _segment_text(ik3: Segment) -> str:
    """``IK3*NM1*12*2100C*8`` → ``segment NM1 at position 12 in loop 2100C: segment has data element errors``."""
    text = f"segment {ik3.el(1) or '?'}"
    if ik3.el(2):
        text += f" at position {ik3.el(2)}"
    if ik3.el(3):
        text += f" in loop {ik3.el(3)}"
    return f"{text}: {_code(SEGMENT_ERRORS, ik3.el(4))}"


def _element_text(ik4: Segment, transaction: Transaction) -> str:
    """``IK4*9*67*6`` → ``element 9 (data element 67): invalid character in data element``."""
    position = split_components(ik4.el(1), transaction.delimiters) or ["?"]
    where = "element " + "-".join(position)
    if ik4.el(2):
        where += f" (data element {ik4.el(2)})"
    return f"{where}: {_code(ELEMENT_ERRORS, ik4.el(3))}"


def _code(table: dict[str, str], code: str) -> str:
    return f"{table[code]} ({code})" if code in table else f"code {code or '?'}"
