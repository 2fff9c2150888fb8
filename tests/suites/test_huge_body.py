"""A service answering a huge body fails its own checks in seconds, naming the size, and the run's memory stays
bounded (its peak measured with getrusage of the child that ran it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.stack_control import StackControl
from tests.support.suite_runner import run_suites

PEAK_LIMIT_MB = 300
# run_suites' child is this wrapper: it runs pytest as its own child and prints that child's peak RSS
WRAPPER = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
           "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


@pytest.mark.parametrize("declared", [False, True], ids=["streamed", "content-length"])
def test_a_fifty_megabyte_health_body_fails_fast_naming_the_size(stack: StackControl, tmp_path: Path, declared: bool) -> None:
    stack.set_fault("payment", "huge_body", megabytes=50, declared=declared)
    run = run_suites("-m", "smoke", "suites/test_health.py", "-k", "payment and (health_reports_ok or release_version)",
                     "-p", "no:randomly", "--rollback", "off", stack_file=stack.stack_file,
                     python=[sys.executable, "-c", WRAPPER, sys.executable])
    assert run.returncode == 1, run.describe()
    assert run.failed == {"test_health_reports_ok[payment]", "test_runs_the_release_version[payment]"}, run.describe()
    for name in run.failed:
        case = run.cases[name]
        assert "over the cap of 2.0 MiB (http.max_body_bytes)" in case.message or "declares a body of 50.0 MiB" in case.message, case.message
        assert case.seconds < 5, f"{name} took {case.seconds:.1f} s"
    peak = int(run.output.rsplit("PEAK_RSS_KB", 1)[1].split()[0]) // 1024
    assert peak < PEAK_LIMIT_MB, f"the run peaked at {peak} MB"
    print(json.dumps({"declared": declared, "peak_mb": peak, "seconds": round(run.seconds, 1)}))
