"""Unique ids that guard nothing: request ids, trace numbers, CORE PayloadIDs and MIME boundaries, limiter leases.

They must not repeat (across replicas, without coordination), and 128 random bits do that; they need
not be unguessable, so they come from ``random`` (seeded from the OS at start and again in every
forked child) rather than a system call for OS entropy on each one.  Ids that are capabilities (a
check id names a stored answer; API keys) come from ``secrets``/``uuid4``, never from here.
"""

from __future__ import annotations

import random

_VERSION_4 = 0x4000_0000_0000_0000_0000  # version nibble 4, in bits 76-79
_VARIANT_RFC = 0x8000_0000_0000_0000  # variant bits 10, in bits 62-63
_VERSION_MASK = ~(0xF << 76) & ~(0x3 << 62) & ((1 << 128) - 1)


def unique_hex() -> str:
    """32 lower-case hex digits."""
    return f"{random.getrandbits(128):032x}"


def unique_uuid() -> str:
    """A random (version 4) UUID in its canonical 8-4-4-4-12 form."""
    value = f"{(random.getrandbits(128) & _VERSION_MASK) | _VERSION_4 | _VARIANT_RFC:032x}"
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
