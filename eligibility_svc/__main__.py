"""``python -m eligibility_svc`` is the same as the ``eligibility-svc`` command."""

from eligibility_svc.cli import main

raise SystemExit(main())
