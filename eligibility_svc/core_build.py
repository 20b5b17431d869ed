"""The compiled X12 core: which modules it is made of, and whether this process runs them compiled.

The pure-logic X12 modules below are plain, strictly typed Python.  A production build compiles them to C
extension modules with mypyc (``ELIGIBILITY_SVC_COMPILE=1 pip wheel .``, as the Dockerfile does); the
same source then parses, validates and interprets about twice as fast.  Editable and development installs
stay pure Python, so an edited ``.py`` is always what runs.

Dataclasses built on the hot path write their ``__init__`` by hand (``init=False``): mypyc compiles
those, while the one ``dataclasses`` generates (through ``exec``) stays interpreted; it was about an
eighth of parse + interpret.  ``tests/test_core_inits.py`` holds each to its fields.

This module imports nothing from the package: ``setup.py`` reads ``CORE_MODULES`` from it before the
package exists anywhere importable.
"""

from __future__ import annotations

import importlib
import importlib.machinery
from typing import Final, Literal

COMPILE_ENV: Final = "ELIGIBILITY_SVC_COMPILE"

CORE_MODULES: Final = (
    "eligibility_svc.x12.reader",
    "eligibility_svc.x12.loops271",
    "eligibility_svc.x12.parse271",
    "eligibility_svc.x12.interpret",
    "eligibility_svc.x12.codes",
    "eligibility_svc.x12.procedures",
    "eligibility_svc.x12.fastcheck",
    "eligibility_svc.x12.build270",
    "eligibility_svc.x12.inquiry_rules",
    "eligibility_svc.x12.parse270",
    "eligibility_svc.x12.render",
)

CoreKind = Literal["compiled", "pure", "mixed"]


def core_kind() -> CoreKind:
    """``compiled`` when every core module loads from an extension module, ``pure`` when none does.

    ``mixed`` means a broken install (some extension modules missing): it still works, at partial speed.
    The core modules are imported to find out; every process that asks is about to use them anyway.
    """
    compiled = sum(
        1 for name in CORE_MODULES if _is_extension(getattr(importlib.import_module(name), "__file__", None))
    )
    if compiled == 0:
        return "pure"
    return "compiled" if compiled == len(CORE_MODULES) else "mixed"


def _is_extension(path: str | None) -> bool:
    return path is not None and path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
