"""Run the check suites as a release manager would (a pytest subprocess) and read the outcome check by check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import selftest_env

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CaseResult:
    outcome: str  # passed | failed | error | skipped | blocked | inconclusive
    message: str
    seconds: float


@dataclass
class SuiteRun:
    returncode: int
    output: str
    seconds: float
    cases: dict[str, CaseResult] = field(default_factory=dict)
    allure_dir: Path | None = None

    def ids(self, outcome: str) -> set[str]:
        return {name for name, case in self.cases.items() if case.outcome == outcome}

    @property
    def failed(self) -> set[str]:
        return self.ids("failed") | self.ids("error")

    def describe(self) -> str:
        lines = [f"exit {self.returncode} in {self.seconds:.1f} s"]
        lines += [f"  {c.outcome:7} {name}: {c.message[:300]}" for name, c in sorted(self.cases.items()) if c.outcome != "passed"]
        return "\n".join(lines) + "\n--- output tail ---\n" + "\n".join(self.output.splitlines()[-25:])


# The shop a self-test checks shares the 2 cores with the checker runs that judge it, and under `make test-beside`
# with two make tests' worth of them: measured on b1219bf, the local stack's own 5 s timeouts then expired inside
# healthy answers (the gateway's 504 upstream_timeout, order's refund call to payment), so healthy runs were NO-GO.
# In production the checker and the shop do not share CPUs; here the product's runs yield the CPU to the shop (nice
# 10: the stack, Prometheus and the test processes stay at the default priority) and the shop answers in its time.
NICE = ("nice", "-n", "10")


def as_checker(command: list[str]) -> list[str]:
    """`command`, a run of the product against the self-tests' shop, at a lower CPU priority than that shop."""
    return [*NICE, *command] if shutil.which(NICE[0]) else command


def suite_env() -> dict[str, str]:
    """The environment a run of the product starts with: this process's, without the PYTEST_ and POLYCHECK_
    variables of the run around it (xdist's worker id, addopts, a stack file, an env name)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "POLYCHECK_"))}


def run_suites(*args: str, stack_file: Path | None = None, extra_env: dict[str, str] | None = None, timeout: float = 300,
               reports_dir: Path | None = None, python: list[str] | None = None) -> SuiteRun:
    """`python -m pytest ARGS` in the repo root. By default JUnit and Allure output go to a temp folder (and the run's
    own folder under a temp reports dir); with `reports_dir`, the run keeps its default layout there
    (reports_dir/runs/<run>/, reports_dir/latest) and its JUnit is read from there."""
    out = Path(tempfile.mkdtemp(prefix="suite-run-"))
    env = suite_env()
    if stack_file is not None:
        env["POLYCHECK_STACK_FILE"] = str(stack_file)
    env.update(extra_env or {})
    if reports_dir is None:
        junit, allure_dir = out / "junit.xml", out / "allure"
        outputs = [f"--junitxml={junit}", f"--alluredir={allure_dir}", f"--reports-dir={out / 'reports'}"]
    else:
        junit, allure_dir, outputs = reports_dir / "latest" / "junit.xml", reports_dir / "latest" / "allure-results", [f"--reports-dir={reports_dir}"]
    command = as_checker([*(python or [sys.executable]), "-m", "pytest", *selftest_env.with_env_dir([*args, *outputs])])
    started = time.monotonic()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    run = SuiteRun(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started, allure_dir=allure_dir)
    if junit.exists():
        run.cases = parse_junit(junit)
    return run


def parse_junit(path: Path) -> dict[str, CaseResult]:
    cases: dict[str, CaseResult] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (element.text or "") + "\n" + element.get("message", "")
                if outcome == "skipped":  # polycheck's blocked and inconclusive outcomes are skips with their word first
                    word = element.get("message", "").split(" ", 1)[0].rstrip(":")
                    outcome = {"blocked": "blocked", "inconclusive": "inconclusive"}.get(word, outcome)
                break
        cases[case.get("name", "")] = CaseResult(outcome, message.strip(), float(case.get("time", "0")))
    return cases
