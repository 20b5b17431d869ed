"""Settings come from the environment and a secrets directory; the error tree keeps stable codes."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from eligibility_svc import errors
from eligibility_svc.settings import Settings


def test_defaults_describe_the_embedded_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ELIG_REDIS_URL", "ELIG_CLEARINGHOUSE__TRANSPORT", "ELIG_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.embedded
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.clearinghouse.deadline_seconds == 20.0  # CORE 156
    assert settings.x12.validation == "warn"


def test_environment_with_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELIG_REDIS_URL", "redis://127.0.0.1:6390/0")
    monkeypatch.setenv("ELIG_X12__VALIDATION", "strict")
    monkeypatch.setenv("ELIG_CLEARINGHOUSE__TRANSPORT", "core_soap")
    monkeypatch.setenv("ELIG_CLEARINGHOUSE__PASSWORD", "s3cret")
    settings = Settings()
    assert not settings.embedded
    assert settings.x12.validation == "strict"
    assert settings.clearinghouse.transport == "core_soap"
    assert settings.clearinghouse.password is not None
    assert settings.clearinghouse.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_secrets_directory_one_value_per_file(tmp_path: Path) -> None:
    (tmp_path / "ELIG_REDIS_URL").write_text("redis://10.0.0.1:6379/2")
    settings = Settings(_secrets_dir=tmp_path)
    assert settings.redis_url == "redis://10.0.0.1:6379/2"


def test_bad_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELIG_X12__VALIDATION", "sometimes")
    with pytest.raises(ValueError, match="validation"):
        Settings()


def _error_classes() -> list[type[errors.EligibilityError]]:
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.EligibilityError)]


def test_every_error_has_its_own_stable_code() -> None:
    codes = [cls.code for cls in _error_classes()]
    assert len(codes) == len(set(codes)), sorted(codes)
    for cls in _error_classes():
        assert 400 <= cls.http_status < 600, cls


def test_x12_error_names_position_segment_and_expectation() -> None:
    exc = errors.X12SyntaxError("element 3 is empty", position=7, segment_id="NM1", expected="a last name")
    assert str(exc) == "x12.syntax: segment 7 (NM1): element 3 is empty; expected a last name"
    assert exc.to_dict()["details"] == {"position": 7, "segment_id": "NM1", "expected": "a last name"}


def test_inquiry_invalid_lists_every_field() -> None:
    exc = errors.InquiryInvalid([("provider.npi", "check digit is wrong"), ("service.date", "in the future")])
    assert exc.http_status == 422
    assert exc.details["fields"][1] == {"field": "service.date", "problem": "in the future"}
    assert "provider.npi: check digit is wrong" in exc.message
