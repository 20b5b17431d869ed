"""``GET /readyz``: whether this replica should get traffic, and what is wrong if anything.

* ``not_ready`` (503): the runtime is not open yet, or the process is draining after SIGTERM. These
  are the only states in which another replica does better than this one.
* ``degraded`` (200): checks are still answered but something is off: Redis is down (no cache, no
  shared single-flight; every check goes to the payer) or a circuit breaker is open. Taking the pod
  out of rotation would not help: every replica shares the same Redis and clearinghouse, so a 503
  here would turn a partial outage into a total one.
* ``ready`` (200): everything answers.
"""

from __future__ import annotations

from eligibility_svc.api.schemas import ReadinessReport
from eligibility_svc.api.state import Lifecycle
from eligibility_svc.app_state import Runtime


async def readiness_report(runtime: Runtime | None, lifecycle: Lifecycle) -> ReadinessReport:
    if runtime is None or not lifecycle.started:
        return ReadinessReport(status="not_ready", redis="not_configured", degraded=False, reasons=["starting"])
    facts = await runtime.service.readiness()
    if lifecycle.draining:
        reasons = ["shutting down: finishing the checks in flight", *facts.reasons]
        return ReadinessReport(**{**facts.model_dump(), "status": "not_ready", "reasons": reasons})
    return ReadinessReport(**facts.model_dump(), status="degraded" if facts.degraded else "ready")
