"""Who ran the checks, and where: GitHub Actions, an Argo Rollouts AnalysisRun, the CronJob, or a person's shell.

Allure's `executor.json` and the sign-off's "where" come from here. GitHub Actions sets its own variables;
the manifests in `deploy/` set `POLYCHECK_EXECUTOR` (`argo-analysis`, `cronjob`) and the Job's name
(`POLYCHECK_JOB_NAME`, from the pod's `job-name` label), and may set `POLYCHECK_ANALYSIS_RUN`.
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import Any
from collections.abc import Mapping


def _user(environ: Mapping[str, str]) -> str:
    if environ.get("GITHUB_ACTOR"):
        return environ["GITHUB_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return environ.get("USER", "unknown")


def detect_executor(environ: Mapping[str, str] | None = None, host: str | None = None) -> dict[str, Any]:
    """Allure's executor fields (name, type, buildName, buildUrl, reportName) plus who and host for the sign-off."""
    environ = os.environ if environ is None else environ
    host = host or socket.gethostname()
    who = _user(environ)
    if environ.get("GITHUB_ACTIONS") == "true":
        server = environ.get("GITHUB_SERVER_URL", "").rstrip("/")
        repo, run_id = environ.get("GITHUB_REPOSITORY", ""), environ.get("GITHUB_RUN_ID", "")
        attempt = environ.get("GITHUB_RUN_ATTEMPT", "")
        url = f"{server}/{repo}/actions/runs/{run_id}" + (f"/attempts/{attempt}" if attempt and attempt != "1" else "") \
            if server and repo and run_id else ""
        name = f"{environ.get('GITHUB_WORKFLOW', 'workflow')} #{environ.get('GITHUB_RUN_NUMBER', run_id)}"
        if environ.get("GITHUB_JOB"):
            name += f" ({environ['GITHUB_JOB']})"
        return {"name": "GitHub Actions", "type": "github", "buildName": name, "buildUrl": url, "buildOrder": _int(environ.get("GITHUB_RUN_NUMBER")),
                "who": who, "host": host, "ci_url": url}
    kind = environ.get("POLYCHECK_EXECUTOR", "")
    job = environ.get("POLYCHECK_JOB_NAME", "")
    namespace = environ.get("POD_NAMESPACE") or environ.get("POLYCHECK_NAMESPACE", "")
    if kind == "argo-analysis" or environ.get("POLYCHECK_ANALYSIS_RUN"):
        analysis = environ.get("POLYCHECK_ANALYSIS_RUN", "")
        name = f"AnalysisRun {analysis}" if analysis else f"AnalysisRun job {job or host}"
        return {"name": "Argo Rollouts analysis", "type": "argo", "buildName": name, "buildUrl": "",
                "who": who, "host": host, "ci_url": "", "job": job, "namespace": namespace}
    if kind == "cronjob" or job:
        return {"name": "Kubernetes CronJob", "type": "kubernetes", "buildName": f"Job {job or host}", "buildUrl": "",
                "who": who, "host": host, "ci_url": "", "job": job, "namespace": namespace}
    if environ.get("CI", "").lower() in ("1", "true", "yes"):
        return {"name": "CI", "type": "ci", "buildName": f"CI on {host}", "buildUrl": environ.get("BUILD_URL", ""),
                "who": who, "host": host, "ci_url": environ.get("BUILD_URL", "")}
    return {"name": "local run", "type": "local", "buildName": f"{who} on {host}", "buildUrl": "", "who": who, "host": host,
            "ci_url": ""}


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def allure_executor(executor: Mapping[str, Any], report_name: str) -> dict[str, Any]:
    """The executor.json Allure reads (only its own keys)."""
    keys = ("name", "type", "buildName", "buildUrl", "buildOrder")
    out = {k: executor[k] for k in keys if executor.get(k) not in (None, "")}
    out["reportName"] = report_name
    return out
