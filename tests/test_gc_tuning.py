"""Garbage-collector tuning at start-up: run in a child process, since it changes the interpreter's state."""

from __future__ import annotations

import subprocess
import sys

import pytest

from eligibility_svc.gc_tuning import WORKER_YOUNG_GC_THRESHOLD, YOUNG_GC_THRESHOLD

_PROBE = """
import gc, sys
from eligibility_svc.gc_tuning import freeze_startup_objects
kept = [{"startup": n} for n in range(1000)]
before = gc.get_threshold()
freeze_startup_objects(*map(int, sys.argv[1:]))
print(gc.get_freeze_count() >= len(kept), *gc.get_threshold(), *before[1:])
"""


@pytest.mark.parametrize(("args", "young"), [([], YOUNG_GC_THRESHOLD), ([str(WORKER_YOUNG_GC_THRESHOLD)], 50_000)])
def test_startup_objects_are_frozen_and_the_young_generation_collected_less_often(args: list[str], young: int) -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True).stdout
    frozen, threshold, older, oldest, older_before, oldest_before = out.split()
    assert frozen == "True", "what start-up built is out of the collector's walks"
    assert int(threshold) == young > 700, "young collections rarer than CPython's default"
    assert (older, oldest) == (older_before, oldest_before), "the older generations keep their thresholds"
