"""A copy of the package with the X12 core compiled by mypyc, for the tests and benchmarks that need one.

    .venv/bin/python build_support/compiled_tree.py      # builds when needed, prints the directory

The directory holds the installed wheel (``pip install --target``): put it first on ``PYTHONPATH`` and
``import eligibility_svc`` is the compiled build.  It is built the way the Dockerfile builds the
image (``ELIGIBILITY_SVC_COMPILE=1 pip wheel .``) and kept under ``build/compiled-core/<key>``, where
the key hashes every file the build reads; a build takes about a minute, a kept one is reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from eligibility_svc.core_build import COMPILE_ENV

ROOT = Path(__file__).resolve().parent.parent
KEPT = ROOT / "build" / "compiled-core"
INPUTS = ("pyproject.toml", "setup.py", "build_support/build_backend.py")
COPIED = (*INPUTS, "README.md", "eligibility_svc")


def source_key(root: Path = ROOT) -> str:
    """A hash of what the compiled tree is made from: the package sources and the build files."""
    digest = hashlib.sha256(sys.version.encode())
    files = [root / name for name in INPUTS]
    files += sorted(p for p in (root / "eligibility_svc").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def compiled_tree(root: Path = ROOT) -> Path:
    """The directory of a compiled build of the current sources, built when none is kept."""
    target = KEPT / source_key(root)
    if (target / "eligibility_svc").is_dir():
        return target
    print("building the compiled X12 core (about a minute) ...", file=sys.stderr, flush=True)
    KEPT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=KEPT) as scratch:
        sources, wheels, staging = (Path(scratch) / name for name in ("src", "wheels", "tree"))
        _copy_sources(root, sources)  # the build writes build/ and egg-info: not into the working tree
        env = {**os.environ, COMPILE_ENV: "1"}
        _pip("wheel", "--no-deps", "--wheel-dir", str(wheels), str(sources), env=env)
        (wheel,) = wheels.glob("*.whl")
        _pip("install", "--no-deps", "--no-compile", "--target", str(staging), str(wheel), env=env)
        for old in KEPT.iterdir():
            if old.name != Path(scratch).name:
                shutil.rmtree(old, ignore_errors=True)
        staging.rename(target)  # whole or not at all: a build cut short leaves nothing behind
    return target


def _copy_sources(root: Path, sources: Path) -> None:
    skip = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    for name in COPIED:
        origin, copy = root / name, sources / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, copy, ignore=skip)
        else:
            shutil.copy2(origin, copy)


def _pip(*args: str, env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"compiling the X12 core failed ({' '.join(args[:1])}):\n{done.stdout}{done.stderr}")


if __name__ == "__main__":
    print(compiled_tree())
