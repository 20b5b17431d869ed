"""Schemathesis hooks for this API (``SCHEMATHESIS_HOOKS=tests.support.schemathesis_hooks``).

``POST /v1/x12/271`` takes a raw 271 as ``application/edi-x12``, which schemathesis cannot send by
itself: it goes on the wire as text, like ``text/plain``.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/edi-x12")
def edi_x12(context: schemathesis.SerializationContext, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
