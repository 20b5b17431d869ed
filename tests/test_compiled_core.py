"""The compiled X12 core (mypyc, as the image builds it) computes exactly what the Python source does.

A real compiled build of the current sources is made (``build_support/compiled_tree.py``, about a
minute, kept between runs while the sources stay the same), then ``tests/support/core_digest.py`` runs
against it in a child process: every fixture and corpus file through parse, interpret, fast check,
validation, render and the 270 round trip, plus seeded mutations that end in the project's errors.
Its lines must equal the ones the pure package gives in this process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from build_support import build_backend
from build_support.compiled_tree import compiled_tree
from eligibility_svc.core_build import CORE_MODULES, core_kind
from eligibility_svc.metrics import Metrics
from tests.support import core_digest

ROOT = Path(__file__).resolve().parent.parent
DIGEST_SCRIPT = Path(core_digest.__file__)


@pytest.fixture(scope="module")
def tree() -> Path:
    return compiled_tree()


def run_on(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python args`` with ``tree`` first on the path, outside the source tree (so it cannot shadow it)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=tree, capture_output=True, text=True, timeout=300, check=False
    )


def kind_in(tree: Path) -> str:
    done = run_on(tree, "-c", "from eligibility_svc.core_build import core_kind; print(core_kind())")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_compiled_build_runs_every_core_module_compiled(tree: Path) -> None:
    assert kind_in(tree) == "compiled"
    for name in CORE_MODULES:
        folder, _, module = name.rpartition(".")
        assert list((tree / folder.replace(".", "/")).glob(f"{module}.*.so")), f"{name} was not compiled"


def test_compiled_and_pure_cores_agree_on_every_file_and_mutation(tree: Path) -> None:
    done = run_on(tree, str(DIGEST_SCRIPT))
    assert done.returncode == 0, done.stderr
    kind, *compiled = done.stdout.splitlines()
    pure = list(core_digest.digest())
    assert kind == "compiled"
    assert len(pure) > 1000, "every fixture, corpus file and mutation"
    assert any('"error"' in line for line in pure), "the mutations reach the error paths"
    differing = [(ours, theirs) for ours, theirs in zip(pure, compiled, strict=False) if ours != theirs]
    assert len(compiled) == len(pure)
    assert differing == [], (
        f"{len(differing)} results differ; first:\npure:     {differing[0][0][:600]}\ncompiled: "
        + (differing[0][1][:600])
    )


def test_a_build_missing_one_extension_is_reported_mixed_and_still_answers(tree: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(tree, partial, symlinks=True)
    (missing,) = (partial / "eligibility_svc" / "x12").glob("interpret.*.so")
    missing.unlink()
    assert kind_in(partial) == "mixed"
    done = run_on(partial, str(DIGEST_SCRIPT))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == list(core_digest.digest())


def test_the_development_install_runs_the_source_itself() -> None:
    """An editable install is never compiled: what runs is the .py being edited."""
    assert core_kind() == "pure"
    exposition = generate_latest(Metrics().registry).decode()
    assert 'eligibility_x12_core{kind="pure"} 1.0' in exposition


def test_the_metric_shows_a_compiled_process(tree: Path) -> None:
    script = (
        "from prometheus_client import generate_latest\n"
        "from eligibility_svc.metrics import Metrics\n"
        "print(generate_latest(Metrics().registry).decode())\n"
    )
    done = run_on(tree, "-c", script)
    assert done.returncode == 0, done.stderr
    assert 'eligibility_x12_core{kind="compiled"} 1.0' in done.stdout
    assert 'kind="pure"' not in done.stdout


@pytest.fixture
def compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELIGIBILITY_SVC_COMPILE", "1")


def test_compiling_adds_mypy_and_the_runtime_dependencies_to_the_build(compiling: None) -> None:
    requires = build_backend.get_requires_for_build_wheel()
    assert any(r.startswith("mypy") for r in requires)
    assert any(r.startswith("pydantic>=") for r in requires), "mypyc type-checks against the real libraries"


def test_a_plain_build_downloads_no_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELIGIBILITY_SVC_COMPILE", raising=False)
    assert build_backend.get_requires_for_build_wheel() == ["wheel"]


def test_an_editable_install_refuses_to_compile(compiling: None, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not an editable install"):
        build_backend.build_editable(str(tmp_path))
