"""The rollback engine: decides, acts (or dry-runs), escalates, and writes every step to the audit log."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import httpx

from ..config import EnvConfig, MissingSecretError
from ..kube import Kube
from ..redact import redact_text
from .actions import PLANNERS, ActionContext, RollbackActionError
from .allure_report import report_rollback

Notify = Callable[[str, bool], None]  # (line, is_bad)


@dataclass
class RollbackEngine:
    """Once per service per run: plan and apply the env's rollback actions; escalate; audit everything."""

    config: EnvConfig
    mode: str  # auto | dry-run | off
    run_id: str
    release: str
    audit_path: Path
    kube_factory: Callable[[], Kube]
    notify: Notify = lambda line, bad: None
    fired: dict[str, float] = field(default_factory=dict)  # service -> when the rollback was requested
    escalated: set[str] = field(default_factory=set)
    records: list[dict[str, Any]] = field(default_factory=list)
    allure_dir: Path | None = None  # also write each rollback as an Allure result there
    _reported: set[str] = field(default_factory=set)
    failed_at: float | None = None  # when the check that triggered the current decision failed (epoch seconds)
    _kube: Kube | None = None

    # -- entry point ------------------------------------------------------------------------------
    def on_failure(self, check: str, target: str | None, service: str | None, reason: str, failed_at: float | None = None) -> None:
        """A check failed for good: roll its target back, or escalate a payment/order failure."""
        self.failed_at = failed_at
        if target is not None:
            self.rollback(target, check, reason)
        elif service is not None and service in self.config.escalation.on_failure_of:
            self.escalate(service, check, reason, "a check of a business-critical service failed")

    # -- rollback -----------------------------------------------------------------------------------
    def rollback(self, service: str, check: str, reason: str) -> None:
        first = len(self.records)
        self._rollback(service, check, reason)
        if self.allure_dir is not None and service not in self._reported:
            self._reported.add(service)
            report_rollback(self.allure_dir, service, check, [r for r in self.records[first:] if r["service"] == service])

    def _rollback(self, service: str, check: str, reason: str) -> None:
        if service in self.fired:
            self._audit(service, check, "decision", "skipped", f"{service} was already rolled back in this run")
            return
        self.fired[service] = time.time()
        actions = self.config.rollback.actions_for(service)
        if self.mode == "off":
            self._audit(service, check, "decision", "off", f"rollback of {service} is off (--rollback off); would run {actions}")
            self.notify(f"ROLLBACK OFF: {check} failed; {service} is NOT rolled back (mode off)", True)
            return
        if not actions:
            self._audit(service, check, "decision", "failed", f"no rollback action configured for {service}")
            self.notify(f"ROLLBACK NOT POSSIBLE: no rollback.actions for {service} in {self.config.source}", True)
            self.escalate(service, check, reason, "rollback wanted but no action is configured", force=True)
            return
        self._audit(service, check, "decision", self.mode, f"{check} failed for good: rolling back {service} with {actions}")
        results, failed = [], False
        for action in actions:
            outcome, detail = self._run(action, service, check, reason)
            failed = failed or outcome == "failed"
            results.append({"action": action, "outcome": outcome, "detail": detail})
        verb = "DRY-RUN ROLLBACK" if self.mode == "dry-run" else ("ROLLBACK FAILED" if failed else "ROLLED BACK")
        self.notify(f"{verb} {service} (after {check}): " + "; ".join(f"{r['action']}: {r['detail']}" for r in results), failed)
        why = "rollback FAILED: " if failed else ("rollback planned (dry-run)" if self.mode == "dry-run" else "rollback fired")
        self.escalate(service, check, reason, why + (" " + "; ".join(r["detail"] for r in results if r["outcome"] == "failed") if failed else ""),
                      actions=results, force=True)

    def _run(self, action: str, service: str, check: str, reason: str) -> tuple[str, str]:
        ctx = ActionContext(
            service=service,
            deployment=self.config.deployment_of(service),
            workload=self.config.service(service).workload,
            payload=self.payload("rollback", service, check, reason),
            kube=self.kube,
            webhook_url=lambda: self.config.rollback.webhook_url.reveal() if self.config.rollback.webhook_url else "",
            command=list(self.config.rollback.command),
            timeout=self.config.rollback.timeout_seconds,
        )
        try:
            plan = PLANNERS[action](ctx)
            if self.mode == "dry-run":
                outcome, detail = "planned", f"would {plan.description}"
            else:
                outcome, detail = "done", plan.apply()
        except (RollbackActionError, MissingSecretError, RuntimeError, LookupError, httpx.HTTPError, OSError) as exc:
            outcome, detail = "failed", f"{action}: {exc}"
        self._audit(service, check, action, outcome, detail)
        return outcome, detail

    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = self.kube_factory()
        return self._kube

    # -- escalation --------------------------------------------------------------------------------
    def escalate(self, service: str, check: str, reason: str, why: str, *, actions: list[dict[str, Any]] | None = None,
                 force: bool = False) -> None:
        """Runbook Section 9: tell the on-call and the SRE lead (each escalation webhook), once per service per run."""
        key = f"{service}:{'rollback' if force else 'failure'}"
        if key in self.escalated:
            return
        self.escalated.add(key)
        payload = self.payload("escalation", service, check, reason)
        payload.update({"why": why, "actions": actions or []})
        if not self.config.escalation.webhooks:
            self._audit(service, check, "escalation", "failed", f"no escalation.webhooks configured; not escalated: {why}")
            self.notify(f"ESCALATION NOT SENT for {service}: no escalation.webhooks in {self.config.source}", True)
            return
        for index, secret in enumerate(self.config.escalation.webhooks):
            try:
                url = secret.reveal()
                shown = redact_text(url.split("?")[0])
                if self.mode == "dry-run":
                    outcome, detail = "planned", f"would POST the escalation to {shown}"
                else:
                    response = httpx.post(url, json=payload, timeout=self.config.escalation.timeout_seconds)
                    outcome = "done" if response.status_code < 300 else "failed"
                    detail = f"escalation webhook {shown} answered HTTP {response.status_code}"
            except (MissingSecretError, httpx.HTTPError) as exc:
                outcome, detail = "failed", f"escalation webhook #{index + 1}: {exc}"
            self._audit(service, check, "escalation", outcome, detail)
            if outcome == "failed":
                self.notify(f"ESCALATION FAILED for {service}: {detail}", True)

    # -- records -----------------------------------------------------------------------------------
    def payload(self, event: str, service: str, check: str, reason: str) -> dict[str, Any]:
        return {
            "event": event,
            "service": service,
            "deployment": self.config.deployment_of(service) if service in self.config.services else service,
            "check": check,
            "reason": redact_text(reason)[:2000],
            "release": self.release,
            "run_id": self.run_id,
            "env": self.config.name,
            "mode": self.mode,
            "time": datetime.now(timezone.utc).isoformat(),
        }

    def _audit(self, service: str, check: str, step: str, outcome: str, detail: str) -> None:
        record = {
            "time": datetime.now(timezone.utc).isoformat(),
            "run_id": self.run_id,
            "env": self.config.name,
            "mode": self.mode,
            "service": service,
            "check": check,
            "step": step,
            "outcome": outcome,
            "detail": redact_text(detail),
        }
        if self.failed_at is not None:
            record["check_failed_at"] = self.failed_at
            record["seconds_after_failure"] = round(time.time() - self.failed_at, 4)
        self.records.append(record)
        self.audit_path.parent.mkdir(parents=True, exist_ok=True)
        with self.audit_path.open("a") as log:
            log.write(json.dumps(record) + "\n")
