"""Ids that guard nothing but must not repeat: shape, uniqueness, and a forked worker's own sequence."""

from __future__ import annotations

import os
import re
import uuid

from eligibility_svc.ids import unique_hex, unique_uuid


def test_unique_uuid_is_a_canonical_version_4_uuid() -> None:
    for _ in range(200):
        text = unique_uuid()
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text  # lower case, 8-4-4-4-12


def test_unique_hex_is_32_lower_case_hex_digits_and_does_not_repeat() -> None:
    values = [unique_hex() for _ in range(20_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in values)
    assert len(set(values)) == len(values)


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    """Batch workers and servers may fork: each child must draw its own ids, not its parent's next ones."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write_end, unique_hex().encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    assert child != unique_hex()
