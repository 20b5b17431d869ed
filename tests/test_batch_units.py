"""Batch pure parts: inputs (per-row errors), dedupe, actions, progress, report escaping."""

from __future__ import annotations

import json

from eligibility_svc.batch.inputs import read_csv, read_jsonl
from eligibility_svc.batch.models import Action, AppointmentRow, ItemResult, RowError
from eligibility_svc.batch.plan import plan_items, retry_delay
from eligibility_svc.batch.progress import Snapshot, render_line
from eligibility_svc.batch.report import csv_lines, gather, render_html

HEADER = (
    "appointment_id,patient_id,service_date,payer_id,member_id,last_name,first_name,birth_date,"
    "provider_npi,procedures\n"
)


def test_csv_bad_rows_reported_per_row_and_the_rest_goes_on() -> None:
    text = HEADER + (
        "A1,p1,2026-11-25,SBX10001,M1,Doe,Jane,1980-01-02,1234567893,99213\n"
        "A2,p2,not-a-date,SBX10001,M2,Roe,Jim,1980-01-02,1234567893,99213\n"
        "A3,p3,2026-11-25,SBX10001,M3,,Al,1980-01-02,1234567893,99213\n"
        "A4,p4,2026-11-25,SBX10001,M4,Poe,Ed,1980-01-02,12345,99213\n"
        "A5,p5,2026-11-25,SBX10002,M5,Moe,Li,1980-01-02,1234567893,97110;99213\n"
    )
    parsed = list(read_csv(text.splitlines(keepends=True)))
    errors = [p for p in parsed if isinstance(p, RowError)]
    assert [(e.row, e.field) for e in errors] == [(2, "service_date"), (3, "last_name"), (4, "provider_npi")]
    good = [p for p in parsed if isinstance(p, AppointmentRow)]
    assert [g.appointment_id for g in good] == ["A1", "A5"]
    assert [c.code for c in good[1].request.service.procedures] == ["97110", "99213"]


def test_jsonl_errors_name_line() -> None:
    lines = ['{"appointment_id": "A1"}', "not json", "[1]"]
    errors = list(read_jsonl(lines))
    assert all(isinstance(e, RowError) for e in errors)
    assert [(e.row, e.field) for e in errors if isinstance(e, RowError)] == [(1, "service_date"), (2, None), (3, None)]


def test_dedupe_merges_procedures_of_one_patient_payer_date() -> None:
    text = HEADER + (
        "A1,p1,2026-11-25,SBX10001,M1,Doe,Jane,1980-01-02,1234567893,99213\n"
        "A2,p1,2026-11-25,SBX10001,M1,Doe,Jane,1980-01-02,1234567893,97110;99213\n"
        "A3,p1,2026-11-26,SBX10001,M1,Doe,Jane,1980-01-02,1234567893,99213\n"
    )
    rows = [p for p in read_csv(text.splitlines(keepends=True)) if isinstance(p, AppointmentRow)]
    items = plan_items(rows)
    assert len(items) == 2
    assert [a.appointment_id for a in items[0].appointments] == ["A1", "A2"]
    assert [c.code for c in items[0].request.service.procedures] == ["99213", "97110"]


def test_retry_delay_grows_and_is_capped() -> None:
    assert retry_delay(1, 2.0, 10.0, 0.0) == 1.0
    assert retry_delay(3, 2.0, 10.0, 1.0) == 8.0
    assert retry_delay(9, 2.0, 10.0, 1.0) == 10.0


def test_progress_rate_and_eta() -> None:
    snap = Snapshot(total=100, done=40, failed=10, elapsed=10.0)
    assert snap.rate == 5.0
    assert snap.eta == 10.0
    assert render_line(snap, width=10).startswith("[#####.....] 50/100")
    assert "ETA --:--" in render_line(Snapshot(10, 0, 0, 1.0), bar=False)


def test_report_escapes_and_csv_streams() -> None:
    rows = [
        ItemResult(appointment_id="<b>x</b>", payer_id="P1", action=Action.NOT_FOUND, message="<script>"),
        ItemResult(appointment_id="A2", payer_id="P1", action=Action.OK),
    ]
    html = render_html("b1", gather(rows))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    lines = "".join(csv_lines(rows)).splitlines()
    assert lines[0].startswith("appointment_id,")
    assert len(lines) == 3
    assert lines[2].startswith("A2,")
    assert json.loads(rows[1].model_dump_json())["action"] == "ok"
