"""The rollback engine: decides, acts (or dry-runs), escalates, and writes every step to the audit log.

Audit steps: `decision` (a rollback decided: auto, dry-run, off, failed), each action's name, `memory` (what an undo
of ours was written as), `hold` (a failure that rolled nothing back, and the rule that held it: the run's purpose,
the release scope, the blast-radius limit, the rollback memory), `escalation`.

A rollback the evidence allows waits `rollback.group_wait_seconds` for other services' failures (a timer, while
the run goes on; the run's end decides at once): a shared cause (network, ingress, a node, the checker's own load)
fails several services within moments, and the first to fail must not be rolled back for it. Requests other
checks had sent before the first failure and that are still out when the wait ends are evidence of the same
moment: the wait then lasts until they came back (at most the clients' own connect and read timeouts, twice: a
read timeout's liveness is asked after it), and one more group wait for their checks to report. When more than
`rollback.max_services` services failed by then, none is rolled back and one escalation names them all."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

import httpx

from polycheck.core.config import EnvConfig, MissingSecretError
from polycheck.core.redact import redact_text, shown_url
from polycheck.checks.release import ReleaseScope
from polycheck.rollback.memory import ANNOTATION, UNDO_ACTIONS, Memory, Revisions, refusal, remember, revisions
from polycheck.rollback.purpose import CANARY, DEPLOY, GATE, permission

if TYPE_CHECKING:
    from polycheck.clients.kube import Kube
    from polycheck.core.inflight import InFlight

Notify = Callable[[str, bool], None]  # (line, is_bad)
# Runbook Section 9 "Immediate escalation", by the culprit a failing check names.
SECTION_9 = {
    "payment": "runbook Section 9: payment errors detected",
    "order": "runbook Section 9: order creation stalled",
}


def escalation_subject(service: str, env: str) -> str:
    """What an escalation is about, as the terminal names it: its service(s), else the whole run in its env (an
    inconclusive run escalates once for the run, with no service: its audit records keep `service` empty)."""
    return service or f"the run in env {env}"


@dataclass(frozen=True)
class Waiting:
    """A rollback the evidence allowed, waiting out the group wait (with its decision's context, for the audit)."""

    service: str
    check: str
    reason: str
    section_9: str | None
    actions: list[str]
    failed_at: float | None
    rule: str


@dataclass(frozen=True)
class Unacted:
    """A failure its purpose or scope lets nobody act on (a service outside the release, a probe's), whose
    escalation waits out the group wait: when other services fail too, one escalation names them all."""

    service: str
    check: str
    reason: str
    why: str
    failed_at: float | None
    rule: str


@dataclass
class RollbackEngine:
    """Once per service per run: plan and apply the env's rollback actions; escalate; audit everything."""

    config: EnvConfig
    mode: str  # auto | dry-run | shadow | off
    run_id: str
    release: str
    audit_path: Path
    kube_factory: Callable[[], Kube]
    released: Callable[[RollbackEngine], ReleaseScope] = lambda engine: ReleaseScope(
        frozenset(engine.config.service_names), "unknown: nothing says what this release changed", known=False)
    purpose: str = DEPLOY  # deploy | canary | probe | gate: who may roll back (polycheck.rollback.purpose)
    notify: Notify = lambda line, bad: None
    fired: dict[str, float] = field(default_factory=dict)  # service -> when the rollback was requested
    escalated: set[str] = field(default_factory=set)
    held: dict[str, str] = field(default_factory=dict)  # service -> why it was not rolled back (blast radius, memory)
    records: list[dict[str, Any]] = field(default_factory=list)
    failed_at: float | None = None  # when the check that triggered the current decision failed (epoch seconds)
    reason: str = ""  # the verdict's reason behind the current decision (redacted), kept in its audit records
    rule: str = ""  # the rule behind the current decision (purpose, scope), kept in its audit records
    _kube: Kube | None = None
    _scope: ReleaseScope | None = None
    judged: bool = True  # False once the run was found inconclusive
    _lock: threading.RLock = field(default_factory=threading.RLock)  # checks running ahead fail in their own threads
    decided: set[str] = field(default_factory=set)  # the checks decided on in this run (a check ahead, then its report)
    failing: set[str] = field(default_factory=set)  # every service a failure of this run blamed (the blast radius)
    waiting: list[Waiting] = field(default_factory=list)  # rollbacks allowed, waiting for the group wait to end
    unacted: list[Unacted] = field(default_factory=list)  # escalations of failures nobody acts on, waiting likewise
    shared_cause: str = ""  # set once a verdict named a cause shared by most services: no rollback after it
    in_flight: InFlight | None = None  # this process's requests to the shop that are out (None: not measured here)
    _timer: threading.Timer | None = None
    _wait_from: float = 0.0  # when the current group wait began, on the in_flight clock
    _waited_for: str = ""  # what the current group wait waited for besides its own length (said in a hold)
    _waited_seconds: float = 0.0  # how long it waited for those requests (in the audit records of its settling)

    def decide_once(self, check: str, act: Callable[[], None]) -> None:
        """Run `act` (the decision on `check`) unless one on `check` already went through in this run. A decision
        that raised is not remembered: the check's report, in its turn, decides again."""
        with self._lock:
            if check in self.decided:
                return
            act()
            self.decided.add(check)

    # -- entry points -----------------------------------------------------------------------------
    def on_failure(self, check: str, culprits: tuple[str, ...], reason: str, *, rollback: bool, escalation: str | None = None,
                   failed_at: float | None = None, dependency: str = "") -> None:
        """A check failed for good: roll back its culprit if this release changed it, and escalate (runbook Section 9).
        A culprit that reports a dependency of its own impaired escalates naming it instead, unless the env's
        `rollback.on_dependency` (or the service's own) is "rollback": a rollback would not mend a dependency."""
        with self._lock:
            if self.purpose != GATE:
                self.failing.update(culprits)
            if dependency and len(culprits) == 1 and self.config.rollback.on_dependency_for(culprits[0]) != "rollback":
                self.failed_at, self.reason = failed_at, reason
                self.escalate(culprits[0], check, reason,
                              f"{culprits[0]} reports its dependency {dependency} impaired: a rollback would not mend it, "
                              f"nothing rolled back (rollback.on_dependency = \"escalate\")"
                              + (f"; {escalation}" if escalation else ""), key="dependency")
                return
            self._on_failure(check, culprits, reason, rollback=rollback, escalation=escalation, failed_at=failed_at)

    def _on_failure(self, check: str, culprits: tuple[str, ...], reason: str, *, rollback: bool, escalation: str | None,
                    failed_at: float | None) -> None:
        self.failed_at, self.reason, self.rule = failed_at, reason, ""
        if self.purpose == GATE:
            if rollback or escalation:
                self.rule = "purpose gate: a pre-deploy gate never acts (its verdict stops the deploy)"
                self._audit(",".join(culprits), check, "hold", "none", f"{check} failed: nothing rolled back nor escalated")
            return
        if len(culprits) != 1:
            if rollback or escalation:
                who = f"several services ({', '.join(culprits)})" if culprits else "no service"
                self.rule = "one culprit or none: the evidence does not single out one service"
                self.escalate(",".join(culprits) or "unattributed", check, reason,
                              f"{check} failed and the evidence names {who}: nothing rolled back, a human must judge"
                              + (f"; {escalation}" if escalation else ""))
            return
        culprit = culprits[0]
        section_9 = escalation or (SECTION_9.get(culprit, "runbook Section 9: a business-critical service is failing")
                                   if culprit in self.config.escalation.on_failure_of else None)
        if not rollback:
            if section_9:
                self.escalate(culprit, check, reason, section_9)
            return
        scope = self.release_scope() if self.purpose in (DEPLOY, CANARY) else ReleaseScope(frozenset(), "not read", known=False)
        allowed = permission(self.purpose, culprit, scope, actions=self.config.rollback.actions_for(culprit),
                             unknown_scope=self.config.rollback.unknown_scope)
        self.rule = allowed.rule
        if allowed.roll_back:
            self.rollback(culprit, check, reason, section_9, actions=list(allowed.actions))
            return
        if culprit in self.fired:
            return  # rolled back already in this run: that decision stands
        self._audit(culprit, check, "hold", "none", f"{check} failed: {allowed.rule}")
        if allowed.escalate:
            why = allowed.rule + (f"; {section_9}" if section_9 else "")
            if self.config.rollback.group_wait_seconds > 0:
                self.unacted.append(Unacted(culprit, check, reason, why, failed_at, self.rule))
                self._start_wait()
            else:
                self.escalate(culprit, check, reason, why, key="not-acted")

    def on_inconclusive(self, check: str, reason: str, *, shared_cause: str = "") -> None:
        """The checker could not measure: no rollback; one escalation for the whole run. For a cause shared by most
        services (`shared_cause`), the rollbacks still waiting out the group wait are held too: their failures are
        as likely that cause's as the release's."""
        with self._lock:
            if not shared_cause:
                self._on_inconclusive(check, reason)
                return
            self.shared_cause = self.shared_cause or shared_cause
            held = self._hold_for_shared_cause(shared_cause)
            unacted, self.unacted = self.unacted, []  # failures nobody acts on, still waiting: named here instead
            unnamed = sorted({u.service for u in unacted})
            note = "".join(f"; {what}: {', '.join(names)}" for what, names in (
                ("not rolled back", [w.service for w in held]), ("failing, not acted on", unnamed)) if names)
            first = held[0] if held else (unacted[0] if unacted else None)
            if first is not None and ":inconclusive" in self.escalated:  # the run escalated already: say it now
                self.escalate(",".join([w.service for w in held] + unnamed), first.check, first.reason,
                              (self.held[held[0].service] if held else shared_cause) + note, key="shared cause")
            self._on_inconclusive(check, reason, note)

    def _on_inconclusive(self, check: str, reason: str, note: str = "") -> None:
        self.judged = False
        self.failed_at, self.reason, self.rule = None, reason, "inconclusive: nothing was judged, nothing is rolled back"
        if self.purpose == GATE:
            return
        self.escalate("", check, reason, f"could not judge release {self.release or '(unnamed)'} in env {self.config.name}: "
                      f"{reason}{note}", key="inconclusive")

    def _hold_for_shared_cause(self, cause: str) -> list[Waiting]:
        """Hold every rollback waiting out the group wait, for `cause` (most services timing out): audited, said."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self.waiting = self.waiting, []
        if not waiting:
            return []
        names = ", ".join(w.service for w in waiting)
        why = f"{cause}: nothing rolled back (not {names}); its failure is as likely that cause's as the release's"
        self._hold_waiting(waiting, "shared cause", why)
        return waiting

    def _hold_waiting(self, waiting: list[Waiting], rule: str, why: str) -> None:
        """Hold each waiting rollback for `why` (audited with `rule`), said once; the caller escalates."""
        for w in waiting:
            self.failed_at, self.reason = w.failed_at, w.reason
            self.held[w.service] = why
            self.rule = f"{rule}: {why}"
            self._audit(w.service, w.check, "hold", "none", why)
        self.notify(f"NOT ROLLED BACK {', '.join(w.service for w in waiting)}: {why}", True)

    def would_roll_back(self, service: str) -> bool:
        """Whether a failure blaming `service` alone could roll it back in this run (its purpose; the release scope
        if this run read it, else every service counts): what makes a check a rollback trigger in the report."""
        if self.purpose not in (DEPLOY, CANARY):
            return False
        if self._scope is None:
            return True
        return permission(self.purpose, service, self._scope, actions=[],
                          unknown_scope=self.config.rollback.unknown_scope).roll_back

    def release_scope(self) -> ReleaseScope:
        if self._scope is None:
            self._scope = self.released(self)
            what = "a canary in progress" if self.purpose == CANARY else "released in this run"
            self.notify(f"{what}: {self._scope.describe()}", False)
        return self._scope

    # -- rollback -----------------------------------------------------------------------------------
    def rollback(self, service: str, check: str, reason: str, section_9: str | None = None,
                 actions: list[str] | None = None) -> None:
        """Roll `service` back with `actions` (default: its configured ones), once per run."""
        self._rollback(service, check, reason, section_9, self.config.rollback.actions_for(service) if actions is None else actions)

    def _rollback(self, service: str, check: str, reason: str, section_9: str | None, actions: list[str]) -> None:
        if service in self.fired or service in self.held or any(w.service == service for w in self.waiting):
            return  # once per service per run: the first decision stands, with its audit records
        if self.shared_cause:  # judged before the cause was seen, decided after it: held like those that waited
            self._hold(service, check, reason, section_9, "shared cause",
                       f"{self.shared_cause}: nothing rolled back (not {service}); its failure is as likely that "
                       f"cause's as the release's")
            return
        if self.config.rollback.group_wait_seconds > 0:
            self.waiting.append(Waiting(service, check, reason, section_9, actions, self.failed_at, self.rule))
            self._start_wait()
            return
        self._act(service, check, reason, section_9, actions)

    def _start_wait(self) -> None:
        """Start the group wait's timer, unless it runs already (its end settles everything waiting)."""
        if self._timer is None:
            self._wait_from = self.in_flight.clock() if self.in_flight is not None else 0.0
            self._waited_for, self._waited_seconds = "", 0.0
            self._arm()

    def _arm(self) -> None:
        self._timer = threading.Timer(self.config.rollback.group_wait_seconds, self._wait_ended)
        self._timer.daemon = True
        self._timer.name = "polycheck-group-wait"
        self._timer.start()

    def in_flight_bound(self) -> float:
        """The longest a request of the checker can be out: connect and read timeouts, twice (a read timeout's
        liveness is asked before its outcome is known)."""
        return 2 * (self.config.http.connect_timeout_seconds + self.config.http.read_timeout_seconds)

    def _wait_ended(self) -> None:
        """The timer's end: settle, unless requests sent before the wait began are still out. Then wait for them
        (bounded, outside the lock: their checks' failures must get in), and one more group wait for those
        checks to report; the run's end or a shared cause may settle meanwhile."""
        with self._lock:
            timer, moment, waited = self._timer, self._wait_from, bool(self._waited_for)
        if timer is None or timer is not threading.current_thread():
            return  # settled, or a later wait's: that one's own timer ends it
        in_flight = self.in_flight
        out = in_flight.out_since_before(moment) if in_flight is not None and not waited else 0
        if in_flight is not None and out:
            started = in_flight.clock()
            left = in_flight.wait_for_sent_before(moment, self.in_flight_bound())
            with self._lock:
                if self._timer is not timer:
                    return  # settled (or a new wait begun) meanwhile
                took = self._waited_seconds = in_flight.clock() - started
                self._waited_for = (f"the {out} request{'s' if out != 1 else ''} other checks had out at the first "
                                    f"failure ({took:.1f} s" + (f", {left} still out" if left else "") + ")")
                self._arm()
            return
        with self._lock:
            if self._timer is timer:
                self.settle()

    def settle(self) -> None:
        """End the group wait: roll back what waited, unless more services failed than the blast radius allows
        (then none, one hold each and one escalation naming them all). Called by its timer, and at the run's end."""
        with self._lock:
            try:
                self._settle()
            finally:
                self._waited_for, self._waited_seconds = "", 0.0

    def _settle(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self.waiting = self.waiting, []
        unacted, self.unacted = self.unacted, []
        limit = self.config.rollback.max_services
        if waiting and len(self.failing) > limit:
            if not self.fired:
                self._hold_all(waiting, limit)  # its one escalation names every failing service, unacted too
                return
            # rolled back already in this run (its wait ended first): these are held, and escalated once together
            names = [w.service for w in waiting]
            why = self._limit_reached(names, limit)
            for w in waiting:
                self.failed_at, self.reason, self.rule = w.failed_at, w.reason, w.rule
                self._hold(w.service, w.check, w.reason, w.section_9, "blast radius", why, escalate=False)
            first = waiting[0]
            sections = sorted({w.section_9 for w in waiting if w.section_9})
            self.escalate(",".join(names), first.check, first.reason, why + "".join(f"; {s}" for s in sections),
                          key="blast radius")
        else:
            for w in waiting:
                self.failed_at, self.reason, self.rule = w.failed_at, w.reason, w.rule
                self._act(w.service, w.check, w.reason, w.section_9, w.actions)
        self._escalate_unacted(unacted)

    def _escalate_unacted(self, unacted: list[Unacted]) -> None:
        """One escalation for the failures nobody acts on: alone, as it was; several, naming them all."""
        each = {u.service: u for u in reversed(unacted)}  # the first failure of each service
        if not each:
            return
        first = unacted[0]
        self.failed_at, self.reason, self.rule = first.failed_at, first.reason, first.rule
        if len(each) == 1:
            self.escalate(first.service, first.check, first.reason, first.why, key="not-acted")
            return
        services = sorted(each)
        whys = "; ".join(f"{name}: {each[name].why}" for name in services)
        self.escalate(",".join(services), first.check, first.reason,
                      f"{len(services)} services failing at once ({', '.join(services)}), none acted on — {whys}",
                      key="not-acted")

    def _hold_all(self, waiting: list[Waiting], limit: int) -> None:
        failing = sorted(self.failing)
        wait = self.config.rollback.group_wait_seconds
        within = f"the {wait:g} s group wait" + (f" and {self._waited_for}" if self._waited_for else "")
        why = (f"{len(failing)} services failing at once ({', '.join(failing)}) within {within}: suspect a "
               f"shared cause — network, ingress, the checker's own load; a run rolls back at most rollback.max_services "
               f"= {limit}: nothing rolled back (not {', '.join(w.service for w in waiting)})")
        self._hold_waiting(waiting, "blast radius", why)
        first = waiting[0]
        sections = sorted({w.section_9 for w in waiting if w.section_9})
        self.escalate(",".join(failing), first.check, first.reason, why + "".join(f"; {s}" for s in sections),
                      key="blast radius")

    def _limit_reached(self, services: list[str], limit: int) -> str:
        failing = [*self.fired, *sorted(self.failing - set(self.fired) - set(services)), *services]
        return (f"{len(failing)} services failing at once ({', '.join(failing)}): suspect a shared cause — network, "
                f"ingress, the checker's own load; a run rolls back at most rollback.max_services = {limit} "
                f"(rolled back: {', '.join(self.fired)}; not {', '.join(services)})")

    def _act(self, service: str, check: str, reason: str, section_9: str | None, actions: list[str]) -> None:
        limit = self.config.rollback.max_services
        if len(self.fired) >= limit:
            self._hold(service, check, reason, section_9, "blast radius", self._limit_reached([service], limit))
            return
        before = self._revisions_before_undo(service, actions)
        refused = refusal(service, Memory.of(before[0]), before[1]) if before is not None else None
        if refused:
            self._hold(service, check, reason, section_9, "rollback memory", refused)
            return
        self.fired[service] = time.time()
        if self.mode == "off":
            self._audit(service, check, "decision", "off", f"rollback of {service} is off (--rollback off); would run {actions}")
            self.notify(f"ROLLBACK OFF: {check} failed; {service} is NOT rolled back (mode off)", True)
            self.escalate(service, check, reason, f"rollback of {service} wanted, but rollback is off"
                          + (f"; {section_9}" if section_9 else ""), key="rollback")
            return
        if not actions:
            self._audit(service, check, "decision", "failed", f"no rollback action configured for {service}")
            self.notify(f"ROLLBACK NOT POSSIBLE: no rollback.actions for {service} in {self.config.source}", True)
            self.escalate(service, check, reason, "rollback wanted but no action is configured", key="rollback")
            return
        self._audit(service, check, "decision", self.mode, f"{check} failed for good: rolling back {service} with {actions}")
        results, failed = [], False
        for action in actions:
            outcome, detail = self._run(action, service, check, reason)
            failed = failed or outcome == "failed"
            results.append({"action": action, "outcome": outcome, "detail": detail})
        if self.mode == "auto" and before is not None and any(r["outcome"] == "done" and r["action"] in UNDO_ACTIONS for r in results):
            self._remember(service, check, before[1])
        verb = {"dry-run": "DRY-RUN ROLLBACK", "shadow": "SHADOW: WOULD ROLL BACK"}.get(self.mode) or (
            "ROLLBACK FAILED" if failed else "ROLLED BACK")
        self.notify(f"{verb} {service} (after {check}): " + "; ".join(f"{r['action']}: {r['detail']}" for r in results), failed)
        why = "rollback FAILED: " if failed else {"dry-run": "rollback planned (dry-run)",
                                                   "shadow": "would have rolled back (shadow mode: nothing done)"}.get(self.mode, "rollback fired")
        why += " " + "; ".join(r["detail"] for r in results if r["outcome"] == "failed") if failed else ""
        self.escalate(service, check, reason, why + (f"; {section_9}" if section_9 else ""), actions=results, key="rollback")

    def _hold(self, service: str, check: str, reason: str, section_9: str | None, rule: str, why: str, *,
              escalate: bool = True) -> None:
        """Not rolled back, for `why` (the blast-radius limit, the rollback memory): audited and escalated once
        (unless the caller escalates for several at once)."""
        self.held[service] = why
        self.rule = f"{rule}: {why}"
        self._audit(service, check, "hold", "none", why)
        self.notify(f"NOT ROLLED BACK {service}: {why}", True)
        if escalate:
            self.escalate(service, check, reason, why + (f"; {section_9}" if section_9 else ""), key=rule)

    def _revisions_before_undo(self, service: str, actions: list[str]) -> tuple[dict[str, Any], Revisions] | None:
        """The workload and its revisions, when an action would change its revision (None: none would, or the
        cluster cannot be read: then the action itself fails and says so)."""
        if not UNDO_ACTIONS & set(actions):
            return None
        from polycheck.clients.kube import KubeNotFound, KubeUnavailable

        try:
            return revisions(self.kube(), self.config.service(service).workload, self.config.deployment_of(service))
        except (KubeNotFound, KubeUnavailable, RuntimeError, LookupError):
            return None

    def _remember(self, service: str, check: str, before: Revisions) -> None:
        from polycheck.clients.kube import KubeNotFound, KubeUnavailable

        try:
            memory = remember(self.kube(), self.config.service(service).workload, self.config.deployment_of(service), before,
                              run_id=self.run_id, release=self.release)
            self._audit(service, check, "memory", "done", f"{ANNOTATION}: undid revision {memory.undone_revision} "
                        f"({memory.undone_hash}), restored revision {memory.restored_revision} ({memory.restored_hash})")
        except (KubeNotFound, KubeUnavailable, RuntimeError) as exc:
            self._audit(service, check, "memory", "failed", f"could not write {ANNOTATION}: {exc}")

    def _run(self, action: str, service: str, check: str, reason: str) -> tuple[str, str]:
        from polycheck.rollback.actions import REGISTRY, RollbackActionError, RollbackActionSkipped, Target  # the registry the config was validated against

        target = Target(
            service=service,
            deployment=self.config.deployment_of(service),
            workload=self.config.service(service).workload,
            payload=self.payload("rollback", service, check, reason),
            kube=self.kube,
            timeout=self.config.rollback.timeout_seconds,
        )
        try:
            kind = REGISTRY.get(action)
            settings = self.config.rollback.settings[action] if action in self.config.rollback.settings else kind.settings()
            plan = kind.plan(target, settings)
            if self.mode in ("dry-run", "shadow"):  # shadow: a gate measured before it is trusted (rollback.review)
                outcome, detail = "planned", f"would {plan.description}"
            else:
                outcome, detail = "done", plan.apply()
        except RollbackActionSkipped as exc:
            outcome, detail = "skipped", str(exc)
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
                 key: str = "failure") -> None:
        """Runbook Section 9: tell the on-call and the SRE lead (each escalation webhook), once per service and kind per run."""
        key = f"{service}:{key}"
        if key in self.escalated:
            return
        self.escalated.add(key)
        payload = self.payload("escalation", service, check, reason)
        payload.update({"why": why, "actions": actions or [], "culprit": service or None})
        subject = escalation_subject(service, self.config.name)
        self.notify(f"ESCALATION ({subject}): {why}", True)
        if not self.config.escalation.webhooks:
            self._audit(service, check, "escalation", "failed", f"no escalation.webhooks configured; not escalated: {why}")
            self.notify(f"ESCALATION NOT SENT for {subject}: no escalation.webhooks in {self.config.source}", True)
            return
        for index, secret in enumerate(self.config.escalation.webhooks):
            try:
                url = secret.reveal()
                shown = shown_url(url)
                if self.mode == "dry-run":
                    outcome, detail = "planned", f"would POST the escalation to {shown}"
                else:
                    response = httpx.post(url, json=payload, timeout=self.config.escalation.timeout_seconds)
                    outcome = "done" if response.status_code < 300 else "failed"
                    detail = f"escalation webhook {shown} answered HTTP {response.status_code}"
            except (MissingSecretError, httpx.HTTPError) as exc:
                outcome, detail = "failed", f"escalation webhook #{index + 1}: {exc}"
            self._audit(service, check, "escalation", outcome, f"{why} — {detail}")
            if outcome == "failed":
                self.notify(f"ESCALATION FAILED for {subject}: {detail}", True)

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
            "purpose": self.purpose,
            "rule": self.rule or None,
            "time": datetime.now(UTC).isoformat(),
        }

    def _audit(self, service: str, check: str, step: str, outcome: str, detail: str) -> None:
        record: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(),
            "run_id": self.run_id,
            "env": self.config.name,
            "mode": self.mode,
            "purpose": self.purpose,
            "service": service,
            "check": check,
            "step": step,
            "outcome": outcome,
            "detail": redact_text(detail),
        }
        if self.reason:
            record["reason"] = redact_text(self.reason)[:500]
        if self.rule:
            record["rule"] = self.rule
        if self.failed_at is not None:
            record["check_failed_at"] = self.failed_at
            record["seconds_after_failure"] = round(time.time() - self.failed_at, 4)
        if self._waited_seconds:
            record["waited_for_requests_seconds"] = round(self._waited_seconds, 4)
        self.records.append(record)
        self.audit_path.parent.mkdir(parents=True, exist_ok=True)
        with self.audit_path.open("a") as log:
            log.write(json.dumps(record) + "\n")
