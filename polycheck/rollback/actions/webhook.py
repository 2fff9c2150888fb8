"""`webhook`: POST the rollback request to the deploy system (`rollback.webhook_url`)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from polycheck.core.config import Secret
from polycheck.core.redact import shown_url
from polycheck.rollback.actions.protocol import Plan, RollbackActionError, Target


@dataclass(frozen=True)
class WebhookSettings:
    webhook_url: Secret  # `${VAR}`: a webhook's path and query are its secret


class Webhook:
    """One POST of the rollback request; an answer of 300 or more is a failed action."""

    name = "webhook"
    settings = WebhookSettings

    def plan(self, target: Target, settings: WebhookSettings) -> Plan:
        url = settings.webhook_url.reveal()
        shown = shown_url(url)  # scheme and host only

        def apply() -> str:
            response = httpx.post(url, json=target.payload, timeout=target.timeout)
            if response.status_code >= 300:
                raise RollbackActionError(f"webhook {shown} answered HTTP {response.status_code}: {response.text[:200]}")
            return f"webhook {shown} answered HTTP {response.status_code}"

        return Plan(self.name, f"POST the rollback request for {target.service} to {shown}", apply)
