"""Which service a failing check rolls back: `rollback("order")`, or the check's parametrised service."""

from __future__ import annotations

import pytest

PARAM_NAMES = ("service", "routed_service")
USER_PROPERTY = "polycheck_rollback"
SERVICE_PROPERTY = "polycheck_service"


def rollback_target(item: pytest.Item) -> str | None:
    """The service named by the item's rollback marker: its argument, `service=`, or the parametrised service."""
    marker = item.get_closest_marker("rollback")
    if marker is None:
        return None
    named = marker.args[0] if marker.args else marker.kwargs.get("service")
    if named:
        return str(named)
    params = getattr(getattr(item, "callspec", None), "params", {})
    for name in PARAM_NAMES:
        if name in params:
            return str(params[name])
    raise pytest.UsageError(
        f"{item.nodeid}: @pytest.mark.rollback needs a service: rollback('order'), or a check parametrised by 'service'"
    )


def checked_service(item: pytest.Item) -> str | None:
    """The service a check is about (for escalation): the rollback target, else the parametrised service."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    for name in PARAM_NAMES:
        if name in params:
            return str(params[name])
    marker = item.get_closest_marker("rollback")
    return str(marker.args[0]) if marker is not None and marker.args else None
