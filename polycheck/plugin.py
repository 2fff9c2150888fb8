"""The pytest plugin: options, one validated config per run, the local stack, xdist hand-over.

Run-once work (starting the local stack) happens on the xdist controller only; workers receive
what they need through `workerinput`.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from . import options
from .config import ConfigError, load_env
from .contract import MetricsContract
from .failures import inconclusive
from .http import timeout_from
from .localstack import LocalStack, LocalStackError, StackInfo
from .preflight import cut_off, preflight, reaches_from_json, seed_board
from .release import parse_released
from .promserver import LocalPrometheus, LocalPrometheusError
from .rollback.hooks import RollbackPlugin
from .run import RUN_STATE, RunState, run_state
from . import verdicts

WORKER_STACK = "polycheck_stack"
WORKER_RUN_ID = "polycheck_run_id"
WORKER_PROMETHEUS = "polycheck_prometheus"
WORKER_REACHES = "polycheck_reaches"

pytest_plugins = ["polycheck.reporting"]


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _default_report_paths(config)
    name = options.env_name(config)
    try:
        env_config = load_env(name, Path(options.env_dir(config)))
        contract = MetricsContract.load(config.rootpath / config.getini("polycheck_contracts_dir") / "metrics.toml")
    except ConfigError as exc:
        raise pytest.UsageError(f"polycheck: {exc}") from None
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    try:
        released = parse_released(config.getoption("polycheck_released"), env_config.service_names)
        since = _parse_since(config.getoption("polycheck_since"))
    except ValueError as exc:
        raise pytest.UsageError(f"polycheck: {exc}") from None
    state = RunState(
        config=env_config,
        contract=contract,
        run_id=workerinput.get(WORKER_RUN_ID) or uuid.uuid4().hex[:12],
        release_version=config.getoption("polycheck_release_version"),
        rollback_mode=config.getoption("polycheck_rollback") or env_config.rollback.mode,
        canary_step=config.getoption("polycheck_canary_step"),
        released=released,
        since=since,
    )
    config.stash[RUN_STATE] = state
    config.pluginmanager.register(RollbackPlugin(config), "polycheck-rollback")
    config.pluginmanager.register(verdicts, "polycheck-verdicts")
    config.pluginmanager.register(verdicts.RunVerdict(), "polycheck-verdict")
    if WORKER_REACHES in workerinput:
        _use_reaches(state, reaches_from_json(json.loads(workerinput[WORKER_REACHES])))
    if workerinput.get(WORKER_PROMETHEUS):
        _use_prometheus(state, workerinput[WORKER_PROMETHEUS])
    if WORKER_STACK in workerinput:
        _use_stack(state, StackInfo.from_json(json.loads(workerinput[WORKER_STACK])))
    elif env_config.environment.local_stack and options.stack_file(config):
        try:
            _use_stack(state, StackInfo.from_file(Path(options.stack_file(config))))
        except LocalStackError as exc:
            raise pytest.UsageError(f"polycheck: {exc}") from None


def _parse_since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"--since {text!r} is not an ISO-8601 time such as 2026-11-27T09:30:00Z") from None


def _use_reaches(state: RunState, reaches: dict[str, Any]) -> None:
    state.reaches = reaches
    state.cut_off = cut_off(reaches)
    seed_board(state.board, reaches)


def _default_report_paths(config: pytest.Config) -> None:
    """Allure results go to reports/allure-results unless --alluredir says otherwise."""
    if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
        default = config.getini("polycheck_allure_dir")
        if default:
            config.option.allure_report_dir = str(config.rootpath / default)


def _use_stack(state: RunState, info: StackInfo) -> None:
    state.stack_info = info
    state.config = state.config.with_urls(info.gateway, info.services)
    if info.kubeconfig:
        state.config = state.config.with_kubeconfig(info.kubeconfig, info.kube_context)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the local stack once, on the controller (or the only process), before any worker starts."""
    config = session.config
    state = run_state(config)
    if is_xdist_worker(config) or config.option.collectonly or config.option.help:
        return
    if state.config.environment.local_stack:
        if state.stack_info is None:
            try:
                state.stack = LocalStack.start(cwd=config.rootpath)
            except LocalStackError as exc:
                raise pytest.UsageError(f"polycheck: could not start the local PolyShop stack: {exc}") from None
            _use_stack(state, state.stack.info)
        if not state.config.prometheus.url:
            _start_local_prometheus(state)
    _run_preflight(state)


def _run_preflight(state: RunState) -> None:
    """Can this runner reach the environment? One concurrent liveness probe of the gateway and every service."""
    cfg = state.config
    targets = {name: cfg.service(name).url for name in cfg.service_names}
    targets["gateway"] = cfg.gateway.url or targets.get("gateway", "")
    _use_reaches(state, preflight(targets, timeout_from(cfg.http.connect_timeout_seconds, cfg.http.read_timeout_seconds)))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A runner that reaches nothing judges nothing: every check is inconclusive, at once."""
    why = run_state(item.config).cut_off
    if why:
        inconclusive(why)


def _start_local_prometheus(state: RunState) -> None:
    """For a local run: a real Prometheus scraping the local stack every second, if the machine has one."""
    if LocalPrometheus.available() is not None or state.stack_info is None:
        return
    try:
        state.prometheus = LocalPrometheus.start(state.stack_info.services, scrape_interval="1s")
    except LocalPrometheusError as exc:
        raise pytest.UsageError(f"polycheck: could not start the local Prometheus: {exc}") from None
    _use_prometheus(state, state.prometheus.url)


def _use_prometheus(state: RunState, url: str) -> None:
    state.prometheus_url = url
    state.config = dataclasses.replace(state.config, prometheus=dataclasses.replace(state.config.prometheus, url=url))


def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the run id and the local stack to each worker."""
    state = run_state(node.config)
    node.workerinput[WORKER_RUN_ID] = state.run_id
    if state.stack_info is not None:
        node.workerinput[WORKER_STACK] = json.dumps(state.stack_info.to_json())
    if state.prometheus_url:
        node.workerinput[WORKER_PROMETHEUS] = state.prometheus_url
    if state.reaches:
        node.workerinput[WORKER_REACHES] = json.dumps({k: r.to_json() for k, r in state.reaches.items()})


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = run_state(config)
    cfg = state.config
    lines = [f"polycheck: env {cfg.name} ({cfg.source}), run {state.run_id}, services: {', '.join(cfg.service_names)}"]
    if state.stack is not None:
        lines.append(f"polycheck: local PolyShop stack started (pid {state.stack.info.pid}), gateway {cfg.gateway.url}")
    elif state.stack_info is not None:
        lines.append(f"polycheck: using the local PolyShop stack of pid {state.stack_info.pid}, gateway {cfg.gateway.url}")
    if state.prometheus is not None:
        lines.append(f"polycheck: local Prometheus {state.prometheus.url} scraping the stack every 1 s")
    if state.release_version:
        lines.append(f"polycheck: release under check {state.release_version}")
    if state.released is not None:
        lines.append(f"polycheck: released services (--released): {', '.join(sorted(state.released))}")
    if state.cut_off:
        lines.append(f"polycheck: INCONCLUSIVE: {state.cut_off}")
    hanging = state.board.snapshot()
    if hanging:
        lines.append(f"polycheck: hanging at the start of the run: {'; '.join(f'{k}: {v}' for k, v in hanging.items())}")
    actions = {name: cfg.rollback.actions_for(name) for name in cfg.service_names}
    lines.append(f"polycheck: rollback {state.rollback_mode}; actions {sorted({a for acts in actions.values() for a in acts}) or 'none'}")
    return lines


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(RUN_STATE, None)
    if state is not None and state.prometheus is not None:
        state.prometheus.stop()
        state.prometheus = None
    if state is not None and state.stack is not None:
        state.stack.stop()
        state.stack = None
