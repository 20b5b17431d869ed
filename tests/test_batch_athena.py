"""athenaNet booked appointments as a batch's input: the sandbox practice's appointments, paged, each
checked against the sandbox clearinghouse; a patient whose record cannot make an inquiry is a row error."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from eligibility_svc.app_state import build_runtime
from eligibility_svc.batch.models import ItemResult
from eligibility_svc.batch.plan import plan_items
from eligibility_svc.batch.runner import run_in_process
from eligibility_svc.batch.sources import AthenaSource, read_athena
from eligibility_svc.metrics import Metrics
from eligibility_svc.sandbox.athena_seed import PRACTICE_ID
from eligibility_svc.settings import BatchSettings
from tests.support.web_app import embedded_settings

SCENARIO_DAY = dt.date(2026, 11, 20)  # the sandbox books every scenario's appointment on its service date


async def test_athena_booked_appointments_batch() -> None:
    async with build_runtime(embedded_settings(), metrics=Metrics()) as runtime:
        assert runtime.athena is not None
        source = AthenaSource(practice_id=PRACTICE_ID, start=SCENARIO_DAY, end=SCENARIO_DAY)
        rows, errors = await read_athena(runtime.athena, source)
        items = plan_items(rows)
        results: list[ItemResult] = [*errors]

        async def keep(batch: list[ItemResult], failed: bool) -> None:
            results.extend(batch)

        await run_in_process(runtime.service, items, BatchSettings(max_attempts=1), on_rows=keep)
    assert len(rows) + len(errors) == len(results)
    by_patient = {row.patient_id: row for row in results}
    assert by_patient["1001"].action == "ok"
    assert by_patient["1005"].action == "inactive"
    assert by_patient["1008"].action == "not_found_fix_demographics"
    assert by_patient["1011"].action == "payer_unavailable_retry_scheduled"
    assert by_patient["1011"].final_failure
    assert errors
    assert all(e.action == "error" and e.message and "field" in e.message for e in errors)
    assert Counter(r.action for r in results)["ok"] >= 20
