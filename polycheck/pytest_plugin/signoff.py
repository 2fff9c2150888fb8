"""The run's sign-off, on the xdist controller (or the only process), and the last scrub of every file it wrote.

- session start: the environment (service versions, images, checker versions) is read in the background;
- session finish (after JUnit is written): the Allure results get their categories, environment, executor,
  verdict-following statuses, stable ids and the earlier runs' history; `signoff.json` and `signoff.md` are
  written; every file of the run is scrubbed of every secret this process knows; `reports/latest` moves; the
  oldest runs are pruned until the rest fit --keep-runs and --keep-mb;
- unconfigure: the terminal ends with the sign-off's few lines.

On an xdist worker only the scrub runs (of the files it wrote, with the secrets it saw).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from polycheck.clients.http import timeout_from
from polycheck.core.redact import redact_secrets
from polycheck.core.scrub import scrub_file, scrub_tree
from polycheck.rollback.review import precision_line, read_records, review
from polycheck.signoff.environment import EnvironmentProbe, checker_versions, environment_properties, service_images, service_versions
from polycheck.signoff.executor import detect_executor
from polycheck.signoff.results import HISTORY_FILE, carry_history, finalise_results
from polycheck.signoff.runs import ALLURE_RESULTS, SIGNOFF_JSON, point_latest, previous_finished, prune
from polycheck.signoff.summary import EXIT_CODES, SignOff
from polycheck.pytest_plugin.state import board_of, is_xdist_worker, run_of
from polycheck.pytest_plugin.termination import terminated_by

ENVIRONMENT_DEADLINE_SECONDS = 15.0


class SignOffPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.probe: EnvironmentProbe | None = None
        self.signoff: SignOff | None = None
        self.executor = detect_executor()

    # -- helpers ---------------------------------------------------------------------------------------
    def _active(self) -> bool:
        return not (self.config.option.collectonly or getattr(self.config.option, "help", False)) and \
            run_of(self.config).report_dir is not None

    def _allure_dir(self) -> Path | None:
        given = getattr(self.config.option, "allure_report_dir", None)
        return Path(given).resolve() if given else None

    def _gather_environment(self) -> dict[str, str]:
        run = run_of(self.config)
        cfg = run.config
        skip = set(board_of(self.config).snapshot())
        versions: dict[str, str] = {}
        if not run.cut_off:
            versions = service_versions(cfg, timeout_from(cfg.http.connect_timeout_seconds, min(cfg.http.read_timeout_seconds, 3.0)), skip)

        def connect() -> Any:
            from polycheck.clients.kube import Kube  # the cluster client only for this read

            return Kube.connect(cfg.kubernetes, timeout=10.0)

        images = service_images(cfg, connect) if not run.cut_off else {"*": "(not read: the environment is unreachable)"}
        return environment_properties(self._head(), versions, images, checker_versions(self.config.rootpath))

    def _head(self) -> dict[str, str]:
        run = run_of(self.config)
        cfg = run.config
        return {
            "env": cfg.name,
            "env.file": _shown(Path(cfg.source), self.config.rootpath) if cfg.source else "",
            "release.version": run.release_version or cfg.environment.release_version or "(unnamed)",
            "run.id": run.run_id,
            "executor": f"{self.executor.get('name')}: {self.executor.get('buildName')}",
        }

    # -- hooks -----------------------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if is_xdist_worker(self.config) or not self._active():
            return
        self.probe = EnvironmentProbe(self._gather_environment).start()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self._active():
            return
        allure_dir = self._allure_dir()
        if is_xdist_worker(self.config):
            if allure_dir is not None:
                scrub_tree(allure_dir)
            return
        run = run_of(self.config)
        folder = run.report_dir
        assert folder is not None
        environment = self.probe.properties(ENVIRONMENT_DEADLINE_SECONDS) if self.probe else self._head()
        if allure_dir is not None:
            finalise_results(allure_dir, environment=environment, executor=self.executor, records=self._records(),
                             rolls_back=self._rolls_back)
        reports = folder.parent.parent
        previous = previous_finished(reports, folder, {"env": run.config.name, "selection": self.selection()})
        if previous is not None:
            carry_history(previous / HISTORY_FILE, _allure_results_of(previous), folder / HISTORY_FILE,
                          timestamp_ms=int(previous.stat().st_mtime * 1000))
        self.signoff = self._signoff(session, environment, allure_dir)
        self._review(self.signoff)
        records = self._records()
        if records:
            (folder / "rollback-log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        self.signoff.write(folder)
        for place in {folder, *(p for p in (allure_dir,) if p is not None)}:
            scrub_tree(place)
        for path in (getattr(self.config.option, "xmlpath", None), str(run.rollback_log if run.rollback_log.is_absolute()
                                                                        else self.config.rootpath / run.rollback_log)):
            if path and Path(path).is_file():
                scrub_file(Path(path))
        try:
            point_latest(reports, folder)
        except OSError as exc:  # e.g. a filesystem without symlinks: the run folder is still complete
            sys.stderr.write(f"polycheck: {reports / 'latest'} not updated: {exc}\n")
        # now that this run's bytes are known: the older runs make room for it (--keep-runs, --keep-mb)
        prune(reports, run.inputs.keep_runs, keep_bytes=run.inputs.keep_bytes, current=folder)

    def selection(self) -> str:
        """What the run selected (-m, -k, the paths), as its history and trend are kept per env and selection."""
        option = self.config.option
        parts = [*(["-m", option.markexpr] if getattr(option, "markexpr", "") else []),
                 *(["-k", option.keyword] if getattr(option, "keyword", "") else [])]
        parts += [_shown(Path(arg.split("::", 1)[0]), self.config.rootpath) + ("::" + arg.split("::", 1)[1] if "::" in arg else "")
                  for arg in self.config.args]
        return shlex.join(parts)

    def _rolls_back(self, service: str) -> bool:
        from polycheck.pytest_plugin.rollback import ENGINE

        engine = self.config.stash.get(ENGINE, None)
        if engine is None:
            from polycheck.rollback.purpose import CANARY, DEPLOY

            return run_of(self.config).purpose in (DEPLOY, CANARY)
        return bool(engine.would_roll_back(service))

    def _audit_log(self) -> Path:
        log = run_of(self.config).rollback_log
        return log if log.is_absolute() else self.config.rootpath / log

    def _review(self, signoff: SignOff) -> None:
        """Review the earlier runs' rollback decisions by this run's outcomes (polycheck.rollback.review), and show
        the tally of the checks that decided in this run. A run that judged nothing reviews nothing."""
        if signoff.verdict == "INCONCLUSIVE" and not any(c.outcome in ("passed", "failed") for c in signoff.checks):
            return
        log = self._audit_log()
        run = run_of(self.config)
        try:
            signoff.reviews = review(log, env=run.config.name, run_id=run.run_id,
                                     outcomes={c.nodeid: c.outcome for c in signoff.checks})
            deciding = [str(r.get("check")) for r in signoff.rollbacks if r.get("step") == "decision"]
            signoff.precision = precision_line(read_records(log), run.config.name, deciding)
        except OSError as exc:  # the audit log cannot be read or appended to: the sign-off still stands
            signoff.note = (signoff.note + "; " if signoff.note else "") + f"decisions not reviewed: {exc}"

    def _records(self) -> list[dict[str, Any]]:
        from polycheck.pytest_plugin.rollback import ENGINE

        engine = self.config.stash.get(ENGINE, None)
        return list(engine.records) if engine is not None else []

    def _signoff(self, session: pytest.Session, environment: dict[str, str], allure_dir: Path | None) -> SignOff:
        run = run_of(self.config)
        judge = self.config.pluginmanager.get_plugin("polycheck-verdict")
        checks = list(judge.checks.values()) if judge is not None else []
        exit_code = int(session.exitstatus)
        verdict = judge.verdict if judge is not None else "INCONCLUSIVE"
        note = ""
        if EXIT_CODES.get(verdict) != exit_code:
            stopped = terminated_by(self.config)
            note = {2: f"terminated ({stopped}): the finalisers ran" if stopped else "the run was interrupted", 3: "pytest hit an internal error", 4: "usage error",
                    5: "no check was selected or collected"}.get(exit_code, f"the run ended with exit code {exit_code}")
            if verdict != "NO-GO":
                verdict = "INCONCLUSIVE"
        records = self._records()
        rollbacks = [r for r in records if r.get("step") != "escalation"]
        escalations = [r for r in records if r.get("step") == "escalation"]
        folder = run.report_dir
        assert folder is not None
        return SignOff(
            verdict=verdict, exit_code=exit_code, env=run.config.name,
            release=run.release_version or run.config.environment.release_version, run_id=run.run_id,
            run_folder=_shown(folder, self.config.rootpath), started=run.inputs.started or time.time(), finished=time.time(),
            executor=self.executor, checks=checks, rollbacks=rollbacks, escalations=escalations, note=note,
            command=redact_secrets(shlex.join([Path(sys.argv[0]).name, *self.config.invocation_params.args])),
            environment=environment, allure_results=str(allure_dir) if allure_dir else "",
            not_run=judge.not_run() if judge is not None else [], selection=self.selection(),
        )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """The terminal ends with the sign-off's lines."""
        if self.signoff is None:
            return
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None:
            return
        verdict = self.signoff.verdict
        terminal.write_sep("-", "polycheck sign-off", bold=True)
        colour = {"red": verdict == "NO-GO", "yellow": verdict == "INCONCLUSIVE", "green": verdict == "GO"}
        for index, line in enumerate(self.signoff.summary_lines()):
            terminal.write_line(line, bold=index == 0, **(colour if index == 0 else {}))


def _allure_results_of(folder: Path) -> Path | None:
    """Where an earlier run wrote its Allure results (its own folder's, unless it was given --alluredir)."""
    try:
        data = json.loads((folder / SIGNOFF_JSON).read_text())
        given = data.get("allure_results")
        if given and Path(given).is_dir():
            return Path(given)
    except (OSError, ValueError):
        pass
    own = folder / ALLURE_RESULTS
    return own if own.is_dir() else None


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.resolve()))
    except ValueError:
        return str(path)
