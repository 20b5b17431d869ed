"""Simulators of the outside systems, driven by ``x12_fixtures`` scenarios: the embedded default and the test peers.

``clearinghouse``: a CAQH CORE clearinghouse (MIME and SOAP real-time envelopes) answering 270s
with scenario 271s, with per-payer latency and faults (``ch_config``).
"""
