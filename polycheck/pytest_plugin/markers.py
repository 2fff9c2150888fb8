"""What a failing check may do: roll back its culprit (`@pytest.mark.rollback`), escalate (`@pytest.mark.escalate`).

The services a rollback acts on come from the evidence (the check's culprit), never from the marker:
`rollback("order", "payment", "inventory")` only names the services the check judges (see verdicts).
"""

from __future__ import annotations

import pytest

#: The markers of the checks, registered by the plugin wherever it runs (the checkout or a team's repository).
MARKERS = (
    "smoke: runbook Step 4, run right after a deploy (pytest -m smoke)",
    "synthetic: runbook Section 6 synthetic checks, also run by the CronJob probes",
    "browser: needs a real browser (Playwright)",
    "rollout: Kubernetes rollout state (runbook Step 3)",
    "postdeploy: post-deploy validation from Prometheus (runbook Section 6)",
    "predeploy: checks before a deploy (runbook Section 5)",
    "canary: gates an Argo Rollouts canary step (runbook Section 2.3)",
    "rollback(*services): a failure of this check rolls back its culprit, if this release changed it; the services named (and the parametrised one) are those the check judges",
    "requests(*reads): the read-only requests a check makes (a Read such as HEALTH, 'GET /path' to its service, or GATEWAY_PROBE), fanned out concurrently once per run",
    "concurrent: the check shares no state with any other: it runs ahead, at once with the others, as soon as the run starts (--concurrency)",
    "escalate(reason): a failure of this check escalates at once (runbook Section 9) with this reason",
)


def register(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)


def may_roll_back(item: pytest.Item) -> bool:
    return item.get_closest_marker("rollback") is not None


def escalation_of(item: pytest.Item) -> str | None:
    """The runbook Section 9 reason a failure of this check escalates at once, if marked `escalate("...")`."""
    marker = item.get_closest_marker("escalate")
    return str(marker.args[0]) if marker is not None and marker.args else None
