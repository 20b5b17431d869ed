"""setuptools' PEP 517 backend, plus what mypyc needs in the build environment when compiling the X12 core.

Only ``ELIGIBILITY_SVC_COMPILE=1`` builds need it: mypy (mypyc ships with it) and the runtime
dependencies, because mypyc type-checks the core against the libraries it imports; both pins are
pyproject.toml's (mypy: the test extra's).  A plain ``pip install .`` downloads neither.  An
editable install is never compiled: the extension modules would shadow the sources being edited.
"""

from __future__ import annotations

import os
import runpy
import tomllib
from pathlib import Path

from setuptools import build_meta
from setuptools.build_meta import *  # noqa: F403  (this module *is* setuptools' backend, extended)

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
COMPILE_ENV: str = runpy.run_path(str(ROOT / "eligibility_svc" / "core_build.py"))["COMPILE_ENV"]


def _compiling() -> bool:
    return os.environ.get(COMPILE_ENV) == "1"


def _compile_requires() -> list[str]:
    if not _compiling():
        return []
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    mypy = [r for r in project["optional-dependencies"]["test"] if r.startswith("mypy")]
    return [*mypy, *project["dependencies"]]


def get_requires_for_build_wheel(config_settings: dict[str, str | list[str]] | None = None) -> list[str]:
    # setuptools' own version runs setup.py to ask it, which would import mypyc before it is installed.
    return ["wheel", *_compile_requires()]


def get_requires_for_build_sdist(config_settings: dict[str, str | list[str]] | None = None) -> list[str]:
    return _compile_requires()  # setup.py runs for an sdist too, and imports mypyc when compiling


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, str | list[str]] | None = None,
    metadata_directory: str | None = None,
) -> str:
    if _compiling():
        raise RuntimeError(f"{COMPILE_ENV}=1 compiles a wheel (pip wheel . / pip install .), not an editable install")
    return str(build_meta.build_editable(wheel_directory, config_settings, metadata_directory))
