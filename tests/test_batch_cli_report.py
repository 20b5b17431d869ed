"""``eligibility-svc batch run`` on the embedded default (in process, no Redis) from a CSV with a bad
row, and its HTML report rendered headless in Chromium: what a person sees (counts, rows needing action)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

from eligibility_svc.batch.inputs import CSV_COLUMNS
from tests.support.service_peers import request_for, today

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def csv_row(appointment_id: str, prefix: str) -> str:
    request = request_for(prefix)
    values = {
        "appointment_id": appointment_id,
        "patient_id": f"10{prefix}",
        "service_date": today().isoformat(),
        "payer_id": request.payer.id,
        "payer_name": request.payer.name,
        "member_id": request.member_id or "",
        "group_number": request.group_number or "",
        "last_name": request.patient.last_name,
        "first_name": request.patient.first_name or "",
        "birth_date": request.patient.birth_date.isoformat() if request.patient.birth_date else "",
        "sex": request.patient.sex or "",
        "provider_npi": request.provider.npi,
        "provider_name": request.provider.organization_name or "",
        "procedures": ";".join(p.code for p in request.service.procedures) or "99213",
    }
    return ",".join(values[column] for column in CSV_COLUMNS)


def write_csv(path: Path) -> None:
    lines = [",".join(CSV_COLUMNS)]
    lines += [csv_row("APT-1", "01"), csv_row("APT-2", "05"), csv_row("APT-3", "10"), csv_row("APT-4", "16")]
    lines.append(csv_row("APT-5", "01").replace(today().isoformat(), "2026-02-30"))  # no such date
    lines.append(csv_row("APT-6", "01"))  # the same patient again: deduped with APT-1
    path.write_text("\n".join(lines) + "\n")


async def run_cli(*args: str) -> tuple[int, str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ELIG_")}
    env["PYTHONPATH"] = str(ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "eligibility_svc", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Visible(HTMLParser):
    """The text a person sees, by table: {table id: [[cell text, ...], ...]}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


async def render(page: Path, profile: Path) -> str:
    chromium = shutil.which("chromium")
    assert chromium is not None, "chromium is missing: run scripts/install-test-tools (Debian's chromium)"
    process = await asyncio.create_subprocess_exec(
        chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    dom, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    return dom.decode()


async def test_batch_run_embedded_and_the_report_in_chromium(tmp_path: Path) -> None:
    source, output, report = tmp_path / "appointments.csv", tmp_path / "results.jsonl", tmp_path / "report.html"
    write_csv(source)
    code, out, err = await run_cli(
        "batch", "run", "--input", str(source), "--output", str(output), "--report", str(report)
    )
    assert code == 0, err
    assert out.strip().startswith("b")
    assert "4/4 done 4 failed 0" in err  # plain progress lines (stderr is not a TTY); APT-1/6 one check
    rows = {row["appointment_id"]: row for row in map(json.loads, output.read_text().splitlines())}
    assert {key: row["action"] for key, row in rows.items()} == {
        "APT-1": "ok",
        "APT-2": "inactive",
        "APT-3": "not_found_fix_demographics",
        "APT-4": "needs_auth",
        "APT-5": "error",
        "APT-6": "ok",
    }
    assert "service_date" in (rows["APT-5"]["message"] or "")
    assert rows["APT-1"]["item_id"] == rows["APT-6"]["item_id"]

    seen = Visible()
    seen.feed(await render(report, tmp_path / "chromium-profile"))
    counts = {row[0]: row[1] for row in seen.tables["counts"][1:]}
    assert counts == {
        "OK": "2",
        "Needs prior authorization": "1",
        "Coverage inactive": "1",
        "Not found: fix demographics": "1",
        "Payer unavailable: retry scheduled": "0",
        "Error": "1",
    }
    attention = {row[0]: row[4] for row in seen.tables["attention"][1:]}
    assert attention == {
        "APT-2": "Coverage inactive",
        "APT-3": "Not found: fix demographics",
        "APT-4": "Needs prior authorization",
        "APT-5": "Error",
    }
    payers = {row[0]: row[1:] for row in seen.tables["payers"][1:]}
    assert payers["SBX10001"] == ["2", "0", "0%"]
