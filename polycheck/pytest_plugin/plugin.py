"""The pytest plugin: options, one frozen Run resolved at configure time, the local stack, xdist hand-over.

Run-once work (starting the local stack and its Prometheus, the preflight) happens on the xdist controller
(or the only process) in `pytest_configure`; workers receive the run's inputs as one JSON value.
"""

from __future__ import annotations

import importlib
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from polycheck.core.config import ConfigError, EnvConfig, load_env
from polycheck.core.failures import inconclusive
from polycheck.core.shipped import shipped
from polycheck.clients.http import timeout_from
from polycheck.doubles.customers import CUSTOMERS_PER_SECOND, shoppers
from polycheck.doubles.localstack import LocalStack, LocalStackError, StackInfo
from polycheck.checks.preflight import preflight, seed_board
from polycheck.doubles.promserver import LocalPrometheus, LocalPrometheusError
from polycheck.checks.release import parse_released
from polycheck.scope.run import Run, RunInputs
from polycheck.signoff.runs import ALLURE_RESULTS, create_run_folder, prune
from polycheck.pytest_plugin import allure_threads, cut_off, logging_threads, markers, options, termination, verdicts
from polycheck.pytest_plugin.probe import ProbePlugin
from polycheck.pytest_plugin.rollback import RollbackPlugin
from polycheck.pytest_plugin.signoff import SignOffPlugin
from polycheck.pytest_plugin.state import RESOURCES, RUN, Resources, is_xdist_worker, run_of

WORKER_RUN = "polycheck_run"

pytest_plugins = [
    "polycheck.pytest_plugin.reporting", "polycheck.pytest_plugin.params", "polycheck.pytest_plugin.concurrent",
    "polycheck.pytest_plugin.misread_options", "polycheck.pytest_plugin.prefetch",
]
# The fixtures (fixtures/ in the checkout, polycheck.fixtures once installed), registered at configure time: after
# every plugin's entry point, so that ours override theirs (browser_type_launch_args over pytest-playwright's,
# which entry points may load after this plugin); a conftest.py's fixtures still override ours.
FIXTURE_MODULES = ("environment", "http", "synthetic", "orders", "browser", "kubernetes", "prometheus", "predeploy")


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    resources = Resources()
    config.stash[RESOURCES] = resources
    markers.register(config)
    for name in FIXTURE_MODULES:
        module = f"polycheck.fixtures.{name}"
        if config.pluginmanager.get_plugin(module) is None:
            config.pluginmanager.register(importlib.import_module(module), module)
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    _add_shipped_suites(config)
    try:
        workers = options.concurrency(config)  # (a usage error before anything is started)
        if WORKER_RUN in workerinput:
            run = Run.resolve(RunInputs.from_json(workerinput[WORKER_RUN]))
        else:
            env = load_env(options.env_name(config), Path(options.env_dir(config)))  # the one read of the env file
            run = Run.resolve(_inputs(config, env), env)
            if not (config.option.collectonly or config.option.help):
                run = _with_run_folder(config, run)
                run = _prepare(config, run, resources)
    except (ConfigError, ValueError) as exc:
        raise pytest.UsageError(f"polycheck: {exc}") from None
    config.stash[RUN] = run
    allure_threads.install()  # checks that run ahead use Allure from their own threads
    logging_threads.install()  # ... and create loggers there while pytest's log capture walks them
    termination.install(config)
    config.pluginmanager.register(termination, "polycheck-termination")
    _report_paths(config, run)
    seed_board(resources.board, run.reaches)
    config.pluginmanager.register(verdicts, "polycheck-verdicts")
    config.pluginmanager.register(verdicts.RunVerdict(verdicts.NotRunPolicy.of(run), cut_off=run.cut_off), "polycheck-verdict")
    config.pluginmanager.register(RollbackPlugin(config), "polycheck-rollback")
    config.pluginmanager.register(SignOffPlugin(config), "polycheck-signoff")
    config.pluginmanager.register(ProbePlugin(config), "polycheck-probe")
    from polycheck.pytest_plugin.concurrent import register  # a plugin module of its own (pytest_plugins): imported by pytest first

    register(config, workers)


def _add_shipped_suites(config: pytest.Config) -> None:
    """With --shipped-suites (or its ini twin), the suites polycheck ships are collected too (by each xdist
    worker as well: a worker starts from the command line's arguments, not from the controller's collection)."""
    if options.shipped_suites(config):
        suites = str(shipped("suites"))
        if suites not in config.args:
            config.args.append(suites)


def _inputs(config: pytest.Config, env: EnvConfig) -> RunInputs:
    """The run's inputs from the command line, ini and environment (before anything is started); `env` is the
    environment's config, read once, for the names --released may give."""
    name, env_dir = options.env_name(config), Path(options.env_dir(config))
    released = config.getoption("polycheck_released")
    stack_file = options.stack_file(config)
    stack = None
    if stack_file:
        try:
            stack = StackInfo.from_file(Path(stack_file)).to_json()
        except LocalStackError as exc:
            raise ValueError(str(exc)) from None
    return RunInputs(
        env=name,
        env_dir=str(env_dir),
        contracts=options.contracts_dir(config),
        run_id=uuid.uuid4().hex[:12],
        rollback_log=config.getoption("polycheck_rollback_log") or "",
        release_version=config.getoption("polycheck_release_version"),
        released=tuple(sorted(parse_released(released, env.service_names) or ())) if released else None,
        rollback_mode=config.getoption("polycheck_rollback"),
        canary_step=config.getoption("polycheck_canary_step"),
        since=_parse_since(config.getoption("polycheck_since")),
        stack=stack,
        push_metrics=config.getoption("polycheck_push_metrics") or "",
        location=config.getoption("polycheck_location") or "",
        gates=_gate_inputs(config),
        ledger=config.getoption("polycheck_ledger") or "",
        purpose=options.purpose(config),
        allow_not_run=options.allow_not_run(config),
        reports_dir=options.reports_dir(config),
        keep_runs=options.keep_runs(config),
        keep_bytes=options.keep_bytes(config),
    )


def _gate_inputs(config: pytest.Config) -> dict[str, Any]:
    """The predeploy options, as gates.DeployRequest's fields (checked here, so a typo is a usage error)."""
    from polycheck.checks.gates import parse_now

    now = config.getoption("polycheck_now")
    if now:
        parse_now(now)  # raises ValueError naming the option
    labels = config.getoption("polycheck_pr_labels") or ""
    return {
        "now": now, "emergency": config.getoption("polycheck_emergency"),
        "sre_approved": config.getoption("polycheck_sre_approved"),
        "hotfix_approved": config.getoption("polycheck_hotfix_approved"),
        "repo_dir": str(Path(config.getoption("polycheck_repo_dir") or ".").resolve()),
        "base_ref": config.getoption("polycheck_base_ref"), "head_ref": config.getoption("polycheck_head_ref") or "HEAD",
        "pull_request": config.getoption("polycheck_pr"),
        "labels": [label.strip() for label in labels.split(",") if label.strip()],
    }


def _prepare(config: pytest.Config, run: Run, resources: Resources) -> Run:
    """On the controller: start the local stack and its Prometheus when the run needs them, then the preflight;
    each extends the run with what it adds (no file is read again)."""
    if run.config.environment.local_stack and run.stack is None:
        try:
            resources.stack = LocalStack.start(cwd=config.rootpath)
        except LocalStackError as exc:
            raise pytest.UsageError(f"polycheck: could not start the local PolyShop stack: {exc}") from None
        run = run.with_stack(resources.stack.info)
        # the shop this run started has no users of its own: its customers make the traffic post-deploy judges
        resources.customers = shoppers(resources.stack.info.services, CUSTOMERS_PER_SECOND).__enter__()
        run = run.with_inputs(customers=CUSTOMERS_PER_SECOND)
    if run.config.environment.local_stack and not run.config.prometheus.url and run.stack is not None \
            and LocalPrometheus.available() is None:
        try:
            resources.prometheus = LocalPrometheus.start(run.stack.services, scrape_interval="1s")
        except LocalPrometheusError as exc:
            raise pytest.UsageError(f"polycheck: could not start the local Prometheus: {exc}") from None
        run = run.with_prometheus(resources.prometheus.url)
    cfg = run.config
    targets = {name: cfg.service(name).url for name in cfg.service_names}
    targets["gateway"] = cfg.gateway.url or targets.get("gateway", "")
    return run.with_reaches(preflight(targets, timeout_from(cfg.http.connect_timeout_seconds, cfg.http.read_timeout_seconds)))


def _parse_since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"--since {text!r} is not an ISO-8601 time such as 2026-11-27T09:30:00Z") from None


def _with_run_folder(config: pytest.Config, run: Run) -> Run:
    """On the controller: this run's own folder, reports/runs/<time>-<run id>/; older runs pruned by count and bytes."""
    reports = Path(run.inputs.reports_dir or options.reports_dir(config))
    started = time.time()
    folder = create_run_folder(reports, run.run_id, started).resolve()
    prune(reports, run.inputs.keep_runs, keep_bytes=run.inputs.keep_bytes, current=folder)
    return run.with_inputs(report_dir=str(folder), started=started)


def _report_paths(config: pytest.Config, run: Run) -> None:
    """Allure results and the JUnit XML go into the run's folder, unless --alluredir / --junitxml say otherwise.
    (Also on xdist workers: they re-parse the command line, and take the folder from the run.)"""
    folder = run.report_dir
    if folder is None:
        return
    if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
        config.option.allure_report_dir = str(folder / ALLURE_RESULTS)
    if not getattr(config.option, "xmlpath", None) and not is_xdist_worker(config):
        config.option.xmlpath = str(folder / "junit.xml")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A runner that reaches nothing judges nothing: every check is inconclusive, at once (the pre-deploy gates,
    which read git and GitHub, not the shop, run from CI runners that cannot reach it)."""
    why = run_of(item.config).cut_off
    if why and item.get_closest_marker("predeploy") is None:
        inconclusive(why)


def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the whole run to each worker as one value."""
    node.workerinput[WORKER_RUN] = run_of(node.config).inputs.to_json()


def pytest_report_header(config: pytest.Config) -> list[str]:
    run, resources = run_of(config), config.stash[RESOURCES]
    cfg = run.config
    lines = [f"polycheck: env {cfg.name} ({cfg.source}), run {run.run_id}, services: {', '.join(cfg.service_names)}"]
    if resources.stack is not None:
        lines.append(f"polycheck: local PolyShop stack started (pid {resources.stack.info.pid}), gateway {cfg.gateway.url}")
    elif run.stack is not None:
        lines.append(f"polycheck: using the local PolyShop stack of pid {run.stack.pid}, gateway {cfg.gateway.url}")
    if resources.customers is not None:
        lines.append(f"polycheck: the local stack's customers: {CUSTOMERS_PER_SECOND:g} API requests a second to each service "
                     "(the traffic post-deploy validation judges)")
    if resources.prometheus is not None:
        lines.append(f"polycheck: local Prometheus {resources.prometheus.url} scraping the stack every 1 s")
    if run.release_version:
        lines.append(f"polycheck: release under check {run.release_version}")
    if run.released is not None:
        lines.append(f"polycheck: released services (--released): {', '.join(sorted(run.released))}")
    if run.cut_off:
        lines.append(cut_off.header_line(cfg.name))  # the reason itself: once, in the sign-off
    hanging = resources.board.snapshot()
    if hanging:
        lines.append(f"polycheck: hanging at the start of the run: {'; '.join(f'{k}: {v}' for k, v in hanging.items())}")
    actions = sorted({a for name in cfg.service_names for a in cfg.rollback.actions_for(name)})
    lines.append(f"polycheck: purpose {run.purpose}; rollback {run.rollback_mode}; actions {actions or 'none'}")
    return lines


def pytest_unconfigure(config: pytest.Config) -> None:
    resources = config.stash.get(RESOURCES, None)
    if resources is not None:
        resources.stop()
