"""The runbook steps a run signs off, each selected by a marker, in the order a release goes through them."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable


@dataclass(frozen=True)
class RunbookStep:
    key: str  # the marker that selects the step's checks
    title: str  # as the sign-off and the Allure epic name it
    # True: each check is a runbook rule of its own (a pre-deploy gate), so one that skipped leaves the step NOT RUN;
    # False: the step ran when any of its checks ran
    every_check: bool = False


# A check belongs to every step whose marker it has; its Allure epic is the first of EPIC_ORDER it has.
STEPS = (
    RunbookStep("predeploy", "Section 5 pre-deploy gates", every_check=True),
    RunbookStep("rollout", "Step 3 Kubernetes rollout"),
    RunbookStep("smoke", "Step 4 smoke tests"),
    RunbookStep("postdeploy", "Section 6 post-deploy validation"),
    RunbookStep("synthetic", "Section 6 synthetic tests"),
    RunbookStep("canary", "Section 2.3 canary analysis"),
)
BY_KEY = {step.key: step for step in STEPS}
STEP_KEYS = tuple(BY_KEY)
EPIC_ORDER = ("canary", "predeploy", "rollout", "postdeploy", "smoke", "synthetic")


def steps_of(markers: Iterable[str]) -> tuple[str, ...]:
    names = set(markers)
    return tuple(step.key for step in STEPS if step.key in names)


def epic_of(markers: Iterable[str]) -> str:
    names = set(markers)
    key = next((k for k in EPIC_ORDER if k in names), None)
    return BY_KEY[key].title if key else "Other checks"


def first_line(text: str | None) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def story_of(docstring: str | None, name: str) -> str:
    """A check's story: its docstring's runbook line (the runbook line it enforces), else its name in words."""
    line = first_line(docstring)
    return line.rstrip(".") if line else name.removeprefix("test_").replace("_", " ")


def feature_of(module_docstring: str | None, module_name: str) -> str:
    """A suite's feature: the first line of its module docstring (kept when the module is renamed)."""
    line = first_line(module_docstring)
    if not line:
        return module_name.rsplit(".", 1)[-1].removeprefix("test_").replace("_", " ")
    return line.rstrip(".:")
