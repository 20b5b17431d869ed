"""Booked appointments: paging over HTTP, the filters, and the batch inputs they become."""

from __future__ import annotations

import datetime as dt

from eligibility_svc.athena.appointments import (
    AppointmentQuery,
    appointment_checks,
    booked_appointments,
    next_query,
)
from eligibility_svc.athena.client import BOOKED
from tests.support.athena_servers import PRACTICE, athena_client, athena_sandbox, settings_for

DAY = dt.date(2026, 11, 20)


async def test_every_page_is_followed_and_becomes_batch_inputs() -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box)
        async with athena_client(settings) as parts:
            query = AppointmentQuery(PRACTICE, DAY, DAY, page_size=5)
            appointments = [item async for item in booked_appointments(parts.client, query)]
    # 36 scenario appointments and one open slot; the cancelled one is left out by athenaNet itself.
    assert len(appointments) == 37
    assert len({a.appointmentid for a in appointments}) == 37
    assert box.state.calls[f"GET {BOOKED}"] == 8  # ceil(37 / 5) pages, no more
    checks = appointment_checks(appointments, PRACTICE, settings.athena)
    assert len(checks) == 36  # the open slot holds no patient
    ready = [c for c in checks if c.request is not None]
    problems = {c.patient_id: c.problem for c in checks if c.problem is not None}
    assert len(ready) == 35
    assert set(problems) == {"1010"}  # scenario 10 has no member ID on file
    assert problems["1010"].field == "insuranceidnumber"
    first = next(c for c in checks if c.patient_id == "1001")
    assert first.request is not None
    assert first.request.member_id == "ZZM0100001"
    assert first.request.service.date == DAY
    assert [p.code for p in first.procedures] == ["99203"]  # appointment type 3, mapped by the practice
    assert first.request.service.procedures == first.procedures
    assert first.target is not None
    assert first.target.patient_id == "1001"


async def test_departments_and_providers_filter_and_are_queried_one_department_at_a_time() -> None:
    async with athena_sandbox() as box:
        settings = settings_for(box)
        async with athena_client(settings) as parts:
            both = AppointmentQuery(PRACTICE, DAY, DAY, department_ids=["1", "2"], page_size=1000)
            everyone = [a async for a in booked_appointments(parts.client, both)]
            one = AppointmentQuery(PRACTICE, DAY, DAY, department_ids=["1"], provider_ids=["71", "72"])
            some = [a async for a in booked_appointments(parts.client, one)]
            later = AppointmentQuery(PRACTICE, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=7))
            none = [a async for a in booked_appointments(parts.client, later)]
    assert len(everyone) == 37
    assert box.state.calls[f"GET {BOOKED}"] == 2 + 1 + 1
    assert some
    assert {a.departmentid for a in some} == {"1"}
    assert {a.providerid for a in some} <= {"71", "72"}
    assert none == []


def test_next_query_follows_next_then_offsets_and_never_loops() -> None:
    current = {"startdate": "11/20/2026", "limit": "2", "offset": "0"}
    link = {"next": "/v1/195900/appointments/booked?startdate=11%2F20%2F2026&limit=2&offset=2"}
    assert next_query(link, current, 2) == {"startdate": "11/20/2026", "limit": "2", "offset": "2"}
    assert next_query({"next": "/v1/195900/appointments/booked?offset=0"}, current, 2) is None  # no progress
    assert next_query({"totalcount": 5}, current, 2) == {**current, "offset": "2"}
    assert next_query({"totalcount": 2}, current, 2) is None
    assert next_query({}, current, 1) is None  # a short page is the last
    assert next_query({}, current, 2) == {**current, "offset": "2"}
    assert next_query({"totalcount": 50}, current, 0) is None  # an empty page ends the walk
