"""Put a hand-written fixture 271 into canonical form, or check that it already is.

Usage::

    python x12_fixtures/tools/canonicalize.py x12_fixtures/scenarios/NN-name/271.x12 [...]
    python x12_fixtures/tools/canonicalize.py --check x12_fixtures/scenarios/*/271.x12

Canonical form (what ``tests/test_fixtures_golden.py`` checks):

* delimiters ``*`` element, ``^`` repetition, ``:`` component, ``~`` segment, and a newline after each ``~``;
* the ISA is exactly 106 characters including its terminator (ISA02/04 10 wide, ISA06/08 15 wide,
  ISA13 9 digits);
* SE01 is the number of segments from ST to SE inclusive, SE02 equals ST02, GE01 counts the ST
  sets of the group and GE02 equals GS06, IEA01 counts the groups and IEA02 equals ISA13;
* no trailing empty elements.

Write the 271 by hand with any SE01 (``0`` is fine), then run this to fix the counts and padding.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_WIDTHS = {2: 10, 4: 10, 6: 15, 8: 15}


def canonical(text: str) -> str:
    """The canonical text of one hand-written interchange (``*`` ``^`` ``:`` ``~`` delimiters)."""
    segments = [piece.strip() for piece in text.split("~")]
    rows = [seg.split("*") for seg in segments if seg]
    if not rows or rows[0][0] != "ISA":
        raise ValueError("the file must start with an ISA segment")
    isa = rows[0]
    if len(isa) != 17:
        raise ValueError(f"the ISA has {len(isa) - 1} elements, expected 16")
    for index, width in _WIDTHS.items():
        isa[index] = isa[index].strip().ljust(width)[:width]
    isa[13] = isa[13].strip().zfill(9)
    groups = 0
    sets_in_group = 0
    st_index = -1
    for position, row in enumerate(rows):
        # Trailing empty elements are not allowed (the ISA is fixed-width and never ends empty).
        while row[0] != "ISA" and len(row) > 1 and row[-1] == "":
            row.pop()
        if row[0] == "GS":
            groups += 1
            sets_in_group = 0
            gs = row
        elif row[0] == "ST":
            sets_in_group += 1
            st_index = position
        elif row[0] == "SE":
            row[1:] = [str(position - st_index + 1), rows[st_index][2]]
        elif row[0] == "GE":
            row[1:] = [str(sets_in_group), gs[6]]
        elif row[0] == "IEA":
            row[1:] = [str(groups), isa[13]]
    out = "".join("*".join(row) + "~\n" for row in rows)
    first = out.split("\n", 1)[0]
    if len(first) != 106:
        raise ValueError(f"the ISA is {len(first)} characters, expected 106")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that are not canonical")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    bad = 0
    for path in args.files:
        text = path.read_text(encoding="ascii")
        fixed = canonical(text)
        if fixed == text:
            continue
        if args.check:
            print(f"{path}: not canonical", file=sys.stderr)
            bad += 1
        else:
            path.write_text(fixed, encoding="ascii")
            print(f"{path}: rewritten")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
