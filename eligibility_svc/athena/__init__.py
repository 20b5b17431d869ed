"""athenaNet: write the verified plan back, read patients and booked appointments.

    records.py       wire formats read leniently (mm/dd/yyyy, string IDs, string booleans)   pure
    diff.py          CoverageSummary + current insurances → the minimal change (WriteBackPlan)  pure
    http.py          the one-method HTTP seam (AthenaHttp) and its aiohttp implementation        I/O
    token.py         OAuth2 client credentials: one token per process, shared through Redis      I/O
    ratelimit.py     token request window and per-practice rate, shared through Redis            I/O
    client.py        AthenaClient: 401 refresh, retries where safe, typed errors, audit           I/O
    audit.py         one record per call (endpoint template, status, duration, check id)          I/O
    patients.py      check by athenaNet patient id: patient → EligibilityRequest + WriteTarget     pure + I/O
    appointments.py  booked appointments (paged) → batch inputs                                    pure + I/O
    outbox.py        durable write-back: Redis Stream, consumer group, retries, dead letters      I/O
    factory.py       all of the above from Settings
    intake.py        what the API and runtime wire: resolve {"athena": ...} bodies, the WriteBackSink

The facts this package honours are in ``shared/reference/athenanet.md``.
"""
