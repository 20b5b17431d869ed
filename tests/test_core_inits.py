"""The X12 core's dataclasses write their ``__init__`` by hand (``init=False``) so that mypyc compiles
construction.  These tests hold each one to what ``dataclasses`` would have generated: the fields as
parameters, in order, and every field set - to its default (a fresh one from a factory) when not given.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any

import pytest

from eligibility_svc.core_build import CORE_MODULES


def _hand_written() -> list[type[Any]]:
    found = []
    for name in CORE_MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and value.__module__ == module.__name__
                and dataclasses.is_dataclass(value)
                and not value.__dataclass_params__.init  # type: ignore[attr-defined]
            ):
                found.append(value)
    return found


HAND_WRITTEN = _hand_written()


def test_the_hot_classes_are_covered() -> None:
    names = {cls.__name__ for cls in HAND_WRITTEN}
    assert {"Eb", "Nm1", "Hl", "Loop2110", "Loop2100Member", "Transaction271", "_Row", "Transaction"} <= names


@pytest.mark.parametrize("cls", HAND_WRITTEN, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_init_takes_the_fields_in_order_and_sets_every_one(cls: type[Any]) -> None:
    fields = dataclasses.fields(cls)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [p.name for p in parameters] == [f.name for f in fields]
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters)
    required = {f.name: object() for f in fields if _no_default(f)}
    made = cls(**required)
    for field in fields:
        value = getattr(made, field.name)  # AttributeError: a field the __init__ forgot
        if field.name in required:
            assert value is required[field.name], field.name
        elif field.default is not dataclasses.MISSING:
            assert value == field.default, field.name
        else:
            assert field.default_factory is not dataclasses.MISSING
            assert value == field.default_factory(), field.name
            assert value is not getattr(cls(**required), field.name), f"{field.name} shared between instances"


def _no_default(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
