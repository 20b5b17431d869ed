"""Batch results out: JSONL and CSV (streamed, a row at a time) and a self-contained HTML report (escaped)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html import escape

from eligibility_svc.batch.models import NEEDS_ATTENTION, Action, ItemResult

CSV_FIELDS = (
    "appointment_id",
    "patient_id",
    "row",
    "item_id",
    "payer_id",
    "service_date",
    "action",
    "status",
    "plan_name",
    "copay",
    "coinsurance",
    "deductible_remaining",
    "out_of_pocket_remaining",
    "auth_required",
    "check_id",
    "error_code",
    "message",
    "attempts",
    "final_failure",
)
ACTION_TEXT = {
    Action.OK: "OK",
    Action.NEEDS_AUTH: "Needs prior authorization",
    Action.INACTIVE: "Coverage inactive",
    Action.NOT_FOUND: "Not found: fix demographics",
    Action.PAYER_UNAVAILABLE: "Payer unavailable: retry scheduled",
    Action.ERROR: "Error",
}


def jsonl_lines(rows: Iterable[ItemResult]) -> Iterator[str]:
    for row in rows:
        yield row.model_dump_json() + "\n"


def _auth(row: ItemResult) -> str:
    return " ".join(f"{p.code}:{p.auth_required}" for p in row.procedures)


def csv_row(row: ItemResult) -> dict[str, object]:
    data = row.model_dump(mode="json", exclude={"procedures"})
    data["auth_required"] = _auth(row)
    return {name: "" if data.get(name) is None else data[name] for name in CSV_FIELDS}


def csv_lines(rows: Iterable[ItemResult], *, header: bool = True) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow(csv_row(row))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if header and buffer.getvalue():
        yield buffer.getvalue()


@dataclass(slots=True)
class ReportData:
    """What the HTML report shows, gathered in one pass (only the rows needing action are kept)."""

    actions: Counter[str] = field(default_factory=Counter)
    payer_total: Counter[str] = field(default_factory=Counter)
    payer_failed: Counter[str] = field(default_factory=Counter)
    attention: list[ItemResult] = field(default_factory=list)

    def add(self, row: ItemResult) -> None:
        self.actions[row.action.value] += 1
        payer = row.payer_id or "(none)"
        self.payer_total[payer] += 1
        if row.action in (Action.PAYER_UNAVAILABLE, Action.ERROR):
            self.payer_failed[payer] += 1
        if row.action in NEEDS_ATTENTION:
            self.attention.append(row)


def gather(rows: Iterable[ItemResult]) -> ReportData:
    data = ReportData()
    for row in rows:
        data.add(row)
    return data


_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #999;padding:4px 8px;text-align:left}th{background:#eee}"
)


def render_html(batch_id: str, data: ReportData) -> str:
    """A page a person can read: counts by action, the appointments needing action, payer failure rates."""
    e = escape
    counts = "".join(
        f"<tr><td>{e(ACTION_TEXT[a])}</td>"
        f"<td class='count' data-action='{e(a.value)}'>{data.actions.get(a.value, 0)}</td></tr>"
        for a in Action
    )
    attention = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(str(v))}</td>"
            for v in (
                r.appointment_id,
                r.patient_id or "",
                r.payer_id or "",
                r.service_date or "",
                ACTION_TEXT[r.action],
                _auth(r),
                r.message or "",
            )
        )
        + "</tr>"
        for r in data.attention
    )
    payers = "".join(
        f"<tr><td>{e(p)}</td><td>{n}</td><td>{data.payer_failed[p]}</td>"
        f"<td>{100 * data.payer_failed[p] / n:.0f}%</td></tr>"
        for p, n in sorted(data.payer_total.items())
    )
    total = sum(data.actions.values())
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Pre-visit batch {e(batch_id)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Pre-visit eligibility batch {e(batch_id)}</h1><p id='total'>{total} appointments</p>"
        f"<h2>Counts</h2><table id='counts'><tr><th>Action</th><th>Appointments</th></tr>{counts}</table>"
        f"<h2>Needing action ({len(data.attention)})</h2><table id='attention'><tr><th>Appointment</th><th>Patient</th>"
        f"<th>Payer</th><th>Date</th><th>Action</th><th>Auth</th><th>Reason</th></tr>{attention}</table>"
        f"<h2>Payer failure rates</h2><table id='payers'><tr><th>Payer</th><th>Appointments</th><th>Failed</th>"
        f"<th>Rate</th></tr>{payers}</table></body></html>"
    )
