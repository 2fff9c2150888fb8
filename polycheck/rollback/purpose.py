"""Who may roll back: a run's purpose, and the rule that decides what a failure of one culprit may do.

- deploy (right after a deploy, the default): may roll back the services this release changed. When the release
  scope is unknown (no --released, --since nor --release-version, no cluster access), nothing is rolled back
  and the run escalates with what it would have done, unless the env file opts in (`rollback.unknown_scope =
  "all"`);
- canary (an Argo Rollouts analysis): may abort only the Rollout with a canary in progress (`argo-abort`);
- probe (a scheduled synthetic probe): pushes its metrics and escalates; never rolls back;
- gate (pre-deploy): never acts.

`permission` is pure: the engine hands it the culprit, the purpose and the release scope, and writes the rule it
returns into every audit record of the decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from polycheck.checks.release import ReleaseScope

DEPLOY, CANARY, PROBE, GATE = "deploy", "canary", "probe", "gate"
PURPOSES = (DEPLOY, CANARY, PROBE, GATE)
CANARY_ACTIONS = ("argo-abort",)  # all a canary run may do: abort the Rollout in progress


@dataclass(frozen=True)
class Permission:
    """What a failure of one culprit may do under the run's purpose, and the rule that says so."""

    roll_back: bool  # run the actions
    escalate: bool  # tell the on-call (also when nothing is rolled back)
    rule: str  # the rule that decided, as the audit log and the sign-off say it
    actions: tuple[str, ...] = ()  # the actions the purpose allows for this service


def permission(purpose: str, culprit: str, scope: ReleaseScope, *, actions: list[str], unknown_scope: str) -> Permission:
    """May a failure whose evidence names `culprit` alone roll it back in a run of `purpose`?"""
    if purpose == GATE:
        return Permission(False, False, "purpose gate: a pre-deploy gate never acts (its verdict stops the deploy)")
    if purpose == PROBE:
        return Permission(False, True, "purpose probe: a scheduled probe escalates and never rolls back")
    if purpose == CANARY:
        if not scope.known:
            return Permission(False, True, f"purpose canary: no canary is known to be in progress ({scope.source}): nothing aborted")
        if culprit not in scope.services:
            return Permission(False, True, f"purpose canary: {culprit} has no canary in progress ({scope.source}): nothing aborted")
        return Permission(True, True, f"purpose canary: {culprit}'s Rollout has a canary in progress: abort it only",
                          CANARY_ACTIONS)
    if not scope.known and unknown_scope != "all":
        return Permission(False, True, f"purpose deploy: the release scope is unknown ({scope.source}): nothing rolled back "
                                       f"(rollback.unknown_scope = \"all\" opts in); would run {actions or 'no action'} on {culprit}")
    if culprit not in scope.services:
        return Permission(False, True, f"purpose deploy: {culprit} was not part of this release "
                                       f"(released: {scope.describe()}): nothing rolled back")
    how = "every service counts as released: rollback.unknown_scope = \"all\"" if not scope.known else f"released: {scope.describe()}"
    return Permission(True, True, f"purpose deploy: {culprit} is in this release ({how})", tuple(actions))
