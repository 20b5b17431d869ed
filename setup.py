"""Build hook for the optional compiled X12 core; everything else about the package is in pyproject.toml.

    ELIGIBILITY_SVC_COMPILE=1 pip wheel .     # the X12 core compiled with mypyc (needs a C compiler)
    pip install -e .                          # pure Python (development, the README's first command)

The backend in build_support/ adds mypy to the isolated build environment only when compiling.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
CORE = runpy.run_path(str(HERE / "eligibility_svc" / "core_build.py"))


def compiled_core() -> list[Extension]:
    """mypyc extensions for the core modules when ``ELIGIBILITY_SVC_COMPILE=1``, else none."""
    if os.environ.get(CORE["COMPILE_ENV"]) != "1":
        return []
    from mypyc.build import mypycify  # noqa: PLC0415 - in the build environment only when compiling

    paths = [name.replace(".", "/") + ".py" for name in CORE["CORE_MODULES"]]
    return list(mypycify(paths, opt_level="3"))


setup(ext_modules=compiled_core())
