"""The container image: hadolint finds nothing, and the Dockerfile does what the deployment relies on.

No container engine runs here, so the build itself is not run: hadolint lints it, the stages are read
as a builder reads them, the build context is computed from ``.dockerignore`` with Docker's rules, and the
HEALTHCHECK command is run for real against a health endpoint.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from eligibility_svc.settings import Settings
from tests.support.deploy_dockerfile import DOCKERFILE, Stage, ignore_rules, ignored, stages
from tests.support.deploy_tools import ROOT, run_tool

NOT_SETTINGS = {"ELIG_SECRETS_DIR"}


@pytest.fixture(scope="module")
def final() -> Stage:
    return stages()[-1]


def exec_form(args: str) -> list[str]:
    """An instruction's JSON (exec) form; shell form is not what we ship."""
    parsed = json.loads(args)
    assert isinstance(parsed, list), args
    assert all(isinstance(a, str) for a in parsed), args
    return parsed


def test_hadolint_finds_nothing() -> None:
    done = run_tool("hadolint", "--no-color", "--format", "json", str(DOCKERFILE))
    findings = json.loads(done.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings)
    assert done.returncode == 0


def test_hadolint_really_lints(tmp_path: Path) -> None:
    """The same call on a careless Dockerfile reports it, so an empty answer above means something."""
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN pip install aiohttp\nUSER root\n")
    done = run_tool("hadolint", "--no-color", "--format", "json", str(careless))
    codes = {f["code"] for f in json.loads(done.stdout)}
    assert {"DL3006", "DL3013", "DL3002"} <= codes
    assert done.returncode != 0


def test_two_stages_and_only_the_virtualenv_crosses(final: Stage) -> None:
    builder, *_ = stages()
    assert len(stages()) == 2
    assert builder.name == "builder"
    assert builder.base == final.base == "${PYTHON_IMAGE}"
    arg = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert arg is not None
    assert re.fullmatch(r"python:3\.1[1-3]-slim(-\w+)?", arg[1]), "a slim CPython 3.11+ base"
    crossing = [args for args in final.all("COPY") if "--from=" in args]
    assert crossing == ["--from=builder /opt/venv /opt/venv"]


def test_final_stage_has_no_build_tools_or_caches(final: Stage) -> None:
    for args in final.all("RUN"):
        assert not re.search(r"\b(apt-get|apt|pip|gcc|make|curl|wget)\b", args), args
    builder_run = " ".join(stages()[0].all("RUN"))
    assert "PIP_NO_CACHE_DIR=1" in " ".join(stages()[0].all("ENV"))
    assert "--no-index" in builder_run, "the virtualenv is installed from the wheels built here, nothing else"
    assert "--without-pip" in builder_run, "no pip inside the shipped virtualenv"


def test_runs_as_a_numeric_non_root_user(final: Stage) -> None:
    user = final.last("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "numeric, so Kubernetes' runAsNonRoot can check it"
    assert gid.isdigit()
    assert int(uid) >= 10000
    assert int(gid) >= 10000
    assert f"--uid {uid}" in " ".join(final.all("RUN"))


def test_entrypoint_is_the_service_and_serves_on_every_interface(final: Stage) -> None:
    assert exec_form(final.last("ENTRYPOINT")) == ["eligibility-svc"]
    assert exec_form(final.last("CMD")) == ["serve", "--host", "0.0.0.0"]
    assert "8080" in final.last("EXPOSE").split()


def test_environment_holds_only_known_settings_and_no_secrets(final: Stage) -> None:
    env = " ".join(final.all("ENV"))
    names = re.findall(r"\b(ELIG_[A-Z0-9_]+)=", env)
    assert "ELIG_SANDBOX__FIXTURES_DIR" in names
    for name in names:
        path = name[5:].lower().split("__")
        model: type = Settings
        for part in path:
            assert part in model.model_fields, f"{name} is not a setting"
            annotation = model.model_fields[part].annotation
            model = annotation if isinstance(annotation, type) else object
    assert not re.search(r"(?i)(password|secret|token|key)=", env), "secrets come from mounted files only"
    assert not (set(names) & NOT_SETTINGS)


def test_build_context_holds_what_the_dockerfile_copies_and_nothing_else() -> None:
    rules = ignore_rules()
    copied = ["pyproject.toml", "README.md", "setup.py", "build_support/build_backend.py"]
    copied += ["eligibility_svc/settings.py", "eligibility_svc/x12/maps"]
    copied += [str(p.relative_to(ROOT)) for p in (ROOT / "x12_fixtures" / "scenarios").rglob("*") if p.is_file()]
    for path in copied:
        assert (ROOT / path).exists(), path
        assert not ignored(path, rules), f"{path} is copied but left out of the context"
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/test_deploy_image.py",
        "k8s/base/kustomization.yaml",
        "eligibility_svc/__pycache__/cli.cpython-312.pyc",
        "x12_fixtures/tools/canonicalize.py",
        "benchmarks",
        "eligibility_svc.egg-info/PKG-INFO",
        "build/compiled-core/0123456789abcdef/eligibility_svc/x12/reader.cpython-312-x86_64-linux-gnu.so",
    ):
        assert ignored(path, rules), f"{path} would be sent to the builder"


def test_every_copied_source_exists(final: Stage) -> None:
    for stage in stages():
        for args in stage.all("COPY"):
            if "--from=" in args:
                continue
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source


def test_the_wheel_carries_every_data_file_of_the_package() -> None:
    """The image installs the built wheel, not the source tree: a data file outside package-data would be missing."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["eligibility_svc"]
    package = ROOT / "eligibility_svc"
    data_files = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
    ]
    assert data_files
    missing = [f for f in data_files if not any(fnmatch.fnmatchcase(f, pattern) for pattern in patterns)]
    assert missing == [], "add them to [tool.setuptools.package-data] in pyproject.toml"


def test_the_builder_compiles_the_x12_core_and_the_image_carries_no_compiler(final: Stage) -> None:
    builder = stages()[0]
    assert "ELIGIBILITY_SVC_COMPILE=1" in " ".join(builder.all("ENV")), "production runs the compiled core"
    assert "gcc" in " ".join(builder.all("RUN"))
    assert "ELIGIBILITY_SVC_COMPILE" not in " ".join(final.all("ENV"))
    assert not any("apt-get" in args for args in final.all("RUN"))


def test_tzdata_ships_for_the_cache_timezone() -> None:
    """zoneinfo needs IANA data; the image installs the tzdata wheel whatever the base carries."""
    builder_run = " ".join(stages()[0].all("RUN"))
    assert re.search(r"\btzdata==\d{4}\.\d+\b", builder_run)


# --- the HEALTHCHECK, run for real ---------------------------------------------------------------------------


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def health_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def healthcheck(final: Stage, port: int) -> int:
    options, _, command = final.last("HEALTHCHECK").partition("CMD ")
    assert "--timeout=" in options
    assert "--start-period=" in options
    argv = exec_form(command)
    assert argv[0] == "python"
    env = {**os.environ, "ELIG_PORT": str(port)}
    return subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30, check=False).returncode


def test_healthcheck_passes_on_a_healthy_service(final: Stage, health_server: ThreadingHTTPServer) -> None:
    _Health.status = 200
    assert healthcheck(final, health_server.server_address[1]) == 0


def test_healthcheck_fails_on_an_unhealthy_or_absent_service(final: Stage, health_server: ThreadingHTTPServer) -> None:
    _Health.status = 503
    try:
        assert healthcheck(final, health_server.server_address[1]) != 0
    finally:
        _Health.status = 200
    port = health_server.server_address[1]
    health_server.shutdown()
    health_server.server_close()
    assert healthcheck(final, port) != 0
