"""What a failing check may do: roll back its culprit (`@pytest.mark.rollback`), escalate (`@pytest.mark.escalate`).

The services a rollback acts on come from the evidence (the check's culprit), never from the marker:
`rollback("order", "payment", "inventory")` only names the services the check judges (see verdicts).
"""

from __future__ import annotations

import pytest


def may_roll_back(item: pytest.Item) -> bool:
    return item.get_closest_marker("rollback") is not None


def escalation_of(item: pytest.Item) -> str | None:
    """The runbook Section 9 reason a failure of this check escalates at once, if marked `escalate("...")`."""
    marker = item.get_closest_marker("escalate")
    return str(marker.args[0]) if marker is not None and marker.args else None
