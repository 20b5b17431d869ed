"""The ``eligibility-svc`` command as a user runs it: a subprocess, exit codes, ``code: message`` on stderr."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from eligibility_svc.models import CoverageSummary
from eligibility_svc.security import ApiKeyAuthenticator
from eligibility_svc.settings import ApiKeySettings
from tests.support.web_app import command

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "x12_fixtures" / "scenarios" / "01-ppo-active-deductible-copays"
DEPENDENT = ROOT / "x12_fixtures" / "scenarios" / "14-dependent-child"


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ELIG_")}
    environment.update(env or {})
    return subprocess.run(
        [*command(), *map(str, args)], capture_output=True, text=True, timeout=120, env=environment, check=False
    )


def one_error_line(stderr: str) -> tuple[str, str]:
    """``code: message`` of the last stderr line."""
    code, _, message = stderr.strip().splitlines()[-1].partition(": ")
    return code, message


@pytest.fixture
def request_today(tmp_path: Path) -> Path:
    """Scenario 01's request asking about today (the fixture's own date leaves CORE's window in a year)."""
    request = json.loads((SCENARIO / "scenario.json").read_text())["request"]
    request["service"]["date"] = dt.date.today().isoformat()
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    return path


# --- x12 build -------------------------------------------------------------------------------------


def test_build_prints_a_270(request_today: Path) -> None:
    done = run("x12", "build", request_today, "--control", "42", "--trace", "TRACE-1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ISA*")
    assert "ST*270*0042*005010X279A1~" in done.stdout
    assert "TRN*1*TRACE-1*" in done.stdout
    assert done.stdout.rstrip().endswith("~")


def test_build_takes_a_request_on_stdin(request_today: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ELIG_")}
    done = subprocess.run(
        [*command(), "x12", "build", "-"],
        input=request_today.read_text(),
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ST*270*" in done.stdout


def test_build_missing_file() -> None:
    done = run("x12", "build", "/nonexistent/request.json")
    assert done.returncode == 1
    assert one_error_line(done.stderr) == (
        "request.invalid",
        "cannot read /nonexistent/request.json: No such file or directory",
    )
    assert done.stdout == ""


def test_build_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"payer": ')
    done = run("x12", "build", path)
    assert done.returncode == 1
    code, message = one_error_line(done.stderr)
    assert code == "request.invalid"
    assert message.startswith(f"{path} is not JSON")
    assert "Traceback" not in done.stderr


def test_build_names_the_failing_fields(tmp_path: Path, request_today: Path) -> None:
    request = json.loads(request_today.read_text())
    del request["provider"]["npi"]
    request["patient"]["sex"] = "X"
    path = tmp_path / "invalid.json"
    path.write_text(json.dumps(request))
    done = run("x12", "build", path)
    assert done.returncode == 1
    code, message = one_error_line(done.stderr)
    assert code == "request.invalid"
    assert "provider.npi" in message
    assert "patient.sex" in message


def test_build_refuses_a_date_outside_the_core_window(tmp_path: Path, request_today: Path) -> None:
    request = json.loads(request_today.read_text())
    request["service"]["date"] = (dt.date.today() - dt.timedelta(days=800)).isoformat()
    path = tmp_path / "old.json"
    path.write_text(json.dumps(request))
    done = run("x12", "build", path)
    assert done.returncode == 1
    code, message = one_error_line(done.stderr)
    assert code == "request.inquiry_invalid"
    assert "service.date" in message


# --- x12 parse -------------------------------------------------------------------------------------


def test_parse_answers_the_request() -> None:
    done = run("x12", "parse", SCENARIO / "271.x12", "--request", SCENARIO / "scenario.json")
    assert done.returncode == 0, done.stderr
    summary = CoverageSummary.model_validate_json(done.stdout)
    expected = json.loads((SCENARIO / "expected.json").read_text())
    assert summary.status.value == expected["status"] == "active"
    assert summary.payer.id == "SBX10001"


def test_parse_all_prints_a_list() -> None:
    done = run("x12", "parse", DEPENDENT / "271.x12", "--all")
    assert done.returncode == 0, done.stderr
    summaries = [CoverageSummary.model_validate(item) for item in json.loads(done.stdout)]
    assert summaries


def test_parse_missing_file() -> None:
    done = run("x12", "parse", "/nonexistent/271.x12")
    assert done.returncode == 1
    assert one_error_line(done.stderr)[0] == "request.invalid"


def test_parse_refuses_4010(tmp_path: Path) -> None:
    text = (SCENARIO / "271.x12").read_text()
    old = text.replace("*00501*", "*00401*").replace("005010X279A1", "004010X092A1")
    path = tmp_path / "4010.x12"
    path.write_text(old)
    done = run("x12", "parse", path)
    assert done.returncode == 1
    code, message = one_error_line(done.stderr)
    assert code == "x12.unsupported_version"
    assert "005010X279A1" in message
    assert done.stdout == ""


def test_parse_not_x12(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not an interchange")
    done = run("x12", "parse", path)
    assert done.returncode == 1
    assert one_error_line(done.stderr)[0].startswith("x12.")


# --- x12 validate ----------------------------------------------------------------------------------


def test_validate_a_good_271_and_write_its_999(tmp_path: Path) -> None:
    ack = tmp_path / "999.x12"
    done = run("x12", "validate", SCENARIO / "271.x12", "--ack", ack)
    assert done.returncode == 0, done.stderr
    assert "0 error(s)" in done.stderr
    assert "ST*999*" in ack.read_text()


def test_validate_reports_errors_with_a_non_zero_exit(tmp_path: Path) -> None:
    text = (SCENARIO / "271.x12").read_text()
    broken = text.replace("EB*1*", "EB*Q9*", 1)
    path = tmp_path / "broken.x12"
    path.write_text(broken)
    done = run("x12", "validate", path)
    assert done.returncode == 1
    assert "error" in done.stderr


def test_validate_refuses_4010(tmp_path: Path) -> None:
    text = (SCENARIO / "271.x12").read_text()
    path = tmp_path / "4010.x12"
    path.write_text(text.replace("*00501*", "*00401*").replace("005010X279A1", "004010X092A1"))
    done = run("x12", "validate", path)
    assert done.returncode == 1
    assert one_error_line(done.stderr)[0] == "x12.unsupported_version"


def test_validate_missing_file() -> None:
    done = run("x12", "validate", "/nonexistent/271.x12")
    assert done.returncode != 0
    code, message = one_error_line(done.stderr)
    assert code == "io.error"
    assert "/nonexistent/271.x12" in message


# --- usage, keys, serve refusing ---------------------------------------------------------------------


def test_usage_errors_exit_2() -> None:
    assert run().returncode == 2
    done = run("x12", "build")
    assert done.returncode == 2
    assert "usage:" in done.stderr


def test_keys_new_prints_a_token_and_its_settings_line() -> None:
    done = run("keys", "new", "--scope", "eligibility:check", "--scope", "batch:run", "--name", "front desk")
    assert done.returncode == 0, done.stderr
    token_line, settings_line = done.stdout.strip().splitlines()
    token = token_line.removeprefix("token: ")
    name, _, value = settings_line.partition("=")
    assert name == "ELIG_API_KEYS"
    entries = [ApiKeySettings.model_validate(item) for item in json.loads(value.strip("'"))]
    assert entries[0].scopes == ["eligibility:check", "batch:run"]
    assert entries[0].name == "front desk"
    assert token.split("_", 2)[2] not in settings_line  # only the hash is configured (the secret may hold "_")
    principal = ApiKeyAuthenticator(entries).authenticate(f"Bearer {token}")
    assert principal.allows("batch:run")
    assert not principal.allows("admin")


def test_keys_new_refuses_an_unknown_scope() -> None:
    done = run("keys", "new", "--scope", "everything", "--name", "x")
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


def test_serve_refuses_real_endpoints_without_keys() -> None:
    done = run("serve", "--port", "1", env={"ELIG_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert done.returncode == 1
    code, message = one_error_line(done.stderr)
    assert code == "config.invalid"
    assert "no API keys are configured" in message
    assert "eligibility-svc keys new" in message


def test_serve_on_a_taken_port_says_so() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run("serve", "--port", str(port))
    assert done.returncode == 1
    code, message = one_error_line(done.stderr)
    assert code == "config.invalid"
    assert message.startswith(f"cannot listen on 127.0.0.1:{port}")
