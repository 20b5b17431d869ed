"""Subset comparison for golden files: the hand-written ``expected.json`` against a model dump.

``assert_subset(expected, actual)`` checks only what ``expected`` says:

* a dict checks each of its keys (a key missing from ``actual`` is a failure; keys ``actual`` has
  and ``expected`` omits are not checked);
* a list checks the length and then every element, in order;
* numbers and decimal strings compare as ``Decimal`` (``"1200.50"`` equals ``1200.5`` and
  ``"1200.5"``), so money and percentages can be written either way;
* anything else compares with ``==`` (``null`` only equals ``None``).

Every difference is collected and reported together, each with its JSON path
(``services[1].in_network.copay: expected 25, got 40``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["assert_subset", "subset_differences"]

_DECIMAL_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
# "01", "001": codes with leading zeros (INS02, maintenance types) are text, never numbers.
_CODE_TEXT = re.compile(r"^[+-]?0\d")


def _as_decimal(value: Any) -> Decimal | None:
    """``value`` as a Decimal when it is a number or a decimal string; ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str) and _DECIMAL_TEXT.match(value) and not _CODE_TEXT.match(value):
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern only lets valid text through
            return None
    return None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _where(path: str) -> str:
    return path or "<root>"


def subset_differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every way ``actual`` fails to match ``expected`` (empty when it matches)."""
    if isinstance(expected, Mapping):
        return _dict_differences(expected, actual, path)
    if isinstance(expected, Sequence) and not isinstance(expected, str):
        return _list_differences(expected, actual, path)
    return _scalar_differences(expected, actual, path)


def _dict_differences(expected: Mapping[str, Any], actual: Any, path: str) -> list[str]:
    if not isinstance(actual, Mapping):
        return [f"{_where(path)}: expected an object, got {_describe(actual)}"]
    problems: list[str] = []
    for key, value in expected.items():
        child = f"{path}.{key}" if path else str(key)
        if key not in actual:
            problems.append(f"{child}: missing (expected {_describe(value)})")
        else:
            problems.extend(subset_differences(value, actual[key], child))
    return problems


def _list_differences(expected: Sequence[Any], actual: Any, path: str) -> list[str]:
    if not isinstance(actual, Sequence) or isinstance(actual, str):
        return [f"{_where(path)}: expected a list, got {_describe(actual)}"]
    if len(expected) != len(actual):
        return [f"{_where(path)}: expected {len(expected)} item(s), got {len(actual)}: {_describe(list(actual))}"]
    problems: list[str] = []
    for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
        problems.extend(subset_differences(want, got, f"{path}[{index}]"))
    return problems


def _scalar_differences(expected: Any, actual: Any, path: str) -> list[str]:
    want_number, got_number = _as_decimal(expected), _as_decimal(actual)
    if want_number is not None and got_number is not None:
        return [] if want_number == got_number else [f"{_where(path)}: expected {expected}, got {actual}"]
    if isinstance(expected, bool) != isinstance(actual, bool) or expected != actual:
        return [f"{_where(path)}: expected {_describe(expected)}, got {_describe(actual)}"]
    return []


def assert_subset(expected: Any, actual_json: Any, path: str = "") -> None:
    """Fail with every difference when ``actual_json`` does not contain ``expected`` (see module doc)."""
    problems = subset_differences(expected, actual_json, path)
    if problems:
        listed = "\n  ".join(problems)
        raise AssertionError(f"{len(problems)} difference(s) from the golden file:\n  {listed}")
