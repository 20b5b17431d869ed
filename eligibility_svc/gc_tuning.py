"""Garbage collection for a long-running process: what startup built is frozen out of the collector's walks.

``freeze_startup_objects()`` runs once a process is ready: ``serve`` after its runtime opened, the
batch ``worker`` after its runtime and queue are built.
"""

from __future__ import annotations

import gc
from typing import Final

# Allocations (net of frees) between young-generation collections; CPython's default is 700.
YOUNG_GC_THRESHOLD: Final = 10_000
# The batch worker's: it holds hundreds of items, each a parsed 271, a summary and its JSON, so many
# more objects are alive at once than in an API request (see ``freeze_startup_objects``).
WORKER_YOUNG_GC_THRESHOLD: Final = 50_000


def freeze_startup_objects(young_threshold: int = YOUNG_GC_THRESHOLD) -> None:
    """Exempt what startup built (X12 maps, code tables, settings, the app) from garbage collection,
    and collect the young generation less often.

    The cached API path allocates thousands of short-lived objects per request, so full collections are
    frequent, and each one walked every long-lived object too: freezing them doubled cached-path
    throughput and cut its p99 several times (``benchmarks/bench_api.py``).  A young collection costs
    what is alive when it runs (the requests in flight), not what was allocated since the last one,
    so running it every 10,000 allocations instead of 700 cuts its share of a request several times;
    reference counting still frees everything that is not a cycle at once.  The batch worker spent 12%
    of its CPU in the collector before it froze its startup objects too, and still about 10% at 10,000
    once its items held full 271s (500 items in hand); it runs at ``WORKER_YOUNG_GC_THRESHOLD``, where
    the collector is about 2% (``benchmarks/bench_batch.py``, profiled with py-spy).  ``serve`` keeps
    10,000: a young collection pauses every request in flight, and a bigger one pauses them longer."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)
