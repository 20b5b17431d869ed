"""Talking to the clearinghouse: the ``Transport`` seam, CAQH CORE MIME and SOAP, and resilience around them.

::

    transport.py    Transport protocol, TransportResult, CORE constants, deadline_after()
    envelope.py     the CORE real-time envelope fields (pure)
    core_mime.py    HTTP MIME multipart transport (encode/decode pure, one attempt per call)
    core_soap.py    SOAP 1.2 + WS-Security transport (build/read pure, defusedxml)
    replies.py      what a reply means: the 271 or a typed ClearinghouseError (pure)
    ack999.py       a 999's IK3/IK4/IK5 as a sentence (pure)
    http_client.py  TLS, one POST within a deadline, aiohttp errors translated
    resilience.py   retry decisions (pure) and ResilientTransport
    breaker.py      circuit breaker state machine (pure) and BreakerBoard
    limiter.py      per-payer concurrency and rate limits, in process or shared through Redis
    factory.py      the stack the settings describe (imports the sandbox; import it explicitly)
"""

from eligibility_svc.clearinghouse.transport import Attempt, Transport, TransportResult, deadline_after

__all__ = ["Attempt", "Transport", "TransportResult", "deadline_after"]
