"""`polycheck report`: the sign-off page of a run with its Allure report beside it, offline.

`<run>/report/index.html` is the sign-off page (polycheck.signoff.page: the verdict first, the runbook steps,
culprits, rollbacks, the sign-off line); `<run>/report/allure.html` is Allure's detail, shown at its end. Allure 3 (the npm package `allure`, pinned in package.json, run by Node) renders the classic Allure report
(`allure2` plugin) as a single file: overview, categories, suites, behaviours (runbook epic / feature /
story), graphs, timeline, environment, executor and the trend from the run's `history.jsonl`. With
`ALLURE_NO_ANALYTICS=true` that plugin includes no analytics script; the build checks the file for one
anyway, and nothing else in it loads anything from the network (the self-tests open it in Chromium with
every non-file request refused). GO / NO-GO is never read from Allure: it is the run's own `signoff.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from polycheck.core import resolve
from polycheck.signoff.results import HISTORY_FILE, REPORT_NAME
from polycheck.signoff.page import render
from polycheck.signoff.runs import ALLURE_RESULTS, SIGNOFF_JSON, latest_run, signoff_data

REPO = Path(__file__).resolve().parents[2]
ALLURE_BIN = Path("node_modules") / ".bin" / "allure"
ANALYTICS_MARKERS = ("googletagmanager", "gtag(", "google-analytics")
BUILD_TIMEOUT_SECONDS = 600


class ReportError(RuntimeError):
    """The report cannot be built; the message says what to do."""


def allure_command(root: Path = REPO) -> Path:
    binary = root / ALLURE_BIN
    if not binary.exists():
        raise ReportError(f"Allure 3 is not installed in {root / 'node_modules'}: run `make report` (it runs "
                          "`npm install` with the version pinned in package.json), or `npm install` there yourself")
    return binary


def results_of(run: Path) -> Path:
    try:
        given = json.loads((run / SIGNOFF_JSON).read_text()).get("allure_results")
    except (OSError, ValueError):
        given = None
    results = Path(given) if given else run / ALLURE_RESULTS
    if not results.is_dir():
        raise ReportError(f"{run} has no Allure results ({results} is missing)")
    return results


def config_text(output: Path, history: Path | None, name: str) -> str:
    config: dict[str, Any] = {
        "name": name,
        "output": str(output),
        "plugins": {"allure2": {"options": {"singleFile": True, "reportName": name, "reportLanguage": "en"}}},
    }
    if history is not None:
        config["historyPath"] = str(history)
        config["appendHistory"] = False  # the run's history is the earlier runs'; this one is carried by the next run
    return "export default " + json.dumps(config, indent=2) + ";\n"


ALLURE_PAGE = "allure.html"


def build_report(run: Path, *, root: Path = REPO, output: Path | None = None, timeout: float = BUILD_TIMEOUT_SECONDS) -> Path:
    """Build `<run>/report/` (or `output/`): index.html, the sign-off page, and allure.html, Allure's single-file
    report; returns the sign-off page. Raises ReportError."""
    binary = allure_command(root)
    results = results_of(run)
    output = output or run / "report"
    history = run / HISTORY_FILE
    with tempfile.TemporaryDirectory(prefix="polycheck-report-") as work:
        config = Path(work) / "allurerc.mjs"
        staged = Path(work) / "out"
        config.write_text(config_text(staged, history if history.is_file() else None, REPORT_NAME))
        env = {**os.environ, "ALLURE_NO_ANALYTICS": "true", "NO_COLOR": "1"}
        try:
            done = subprocess.run([str(binary), "generate", "--config", str(config), str(results)], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ReportError(f"allure generate did not finish within {timeout:g} s") from None
        page = staged / "index.html"
        if done.returncode != 0 or not page.is_file():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise ReportError(f"allure generate failed (exit {done.returncode}):\n{tail}")
        text = page.read_text(errors="replace")
        found = [m for m in ANALYTICS_MARKERS if m in text]
        if found:
            raise ReportError(f"the generated report would call an analytics service ({', '.join(found)}): not written")
        page.rename(staged / ALLURE_PAGE)
        (staged / "index.html").write_text(render(signoff_data(run), allure_href=ALLURE_PAGE))
        if output.exists():
            shutil.rmtree(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staged, output)
    return output / "index.html"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m polycheck report",
                                     description="Build the HTML report of a run (default: reports/latest): "
                                     "<run>/report/index.html, the sign-off page (verdict, runbook steps, culprits, "
                                     "rollbacks, the sign-off line), with Allure's single-file report beside it as "
                                     "allure.html.")
    parser.add_argument("--reports-dir", help="the runs' folder (default, as for the plugin: ini polycheck_reports_dir "
                        "under ROOT, reports/)")
    parser.add_argument("--root", default=".", help="the checkout whose pytest ini is read (default: the current directory)")
    parser.add_argument("--run", help="a run folder (default: the one reports/latest points at)")
    parser.add_argument("--output", help="folder to write index.html into (default: <run>/report)")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    try:
        reports = resolve.reports_dir(args.reports_dir, resolve.ini_file(root), root)
    except ValueError as exc:
        print(f"polycheck report: {exc}", file=sys.stderr)
        return 2
    run = Path(args.run) if args.run else latest_run(reports)
    if run is None or not run.is_dir():
        print(f"polycheck report: no finished run under {reports} (run the checks first)", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        page = build_report(run.resolve(), output=Path(args.output) if args.output else None)
    except ReportError as exc:
        print(f"polycheck report: {exc}", file=sys.stderr)
        return 1
    verdict = ""
    try:
        verdict = json.loads((run / SIGNOFF_JSON).read_text())["verdict"] + " — "
    except (OSError, ValueError, KeyError):
        pass
    print(f"polycheck report: {verdict}{page} ({page.stat().st_size // 1024} KiB, built in {time.monotonic() - started:.1f} s)")
    return 0
