"""Pre-visit batches: tomorrow's appointments verified overnight, at any scale, resumable.

::

    inputs   CSV / JSONL rows (per-row errors) or athenaNet booked appointments  → AppointmentRow
    plan     (pure) rows → BatchItem per distinct patient/payer/date; summary or error → Action
    queue    Redis Streams consumer group: work stream, items hash, done set, retry zset
    runner   a worker's loop (Redis) and the in-process run (embedded default), both on EligibilityService
    progress (pure) counts, rate, ETA; a terminal bar (TTY) or plain lines
    report   results as JSONL / CSV (streamed) and a self-contained HTML report
"""
