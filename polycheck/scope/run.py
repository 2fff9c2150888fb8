"""One run, resolved once: what it checks, where, with which release and rollback settings.

`Run` is frozen. The xdist controller reads the env file once, resolves the run from it, and extends it with
`dataclasses.replace` for what the local stack, its Prometheus and the preflight add (`with_stack`,
`with_prometheus`, `with_reaches`): nothing is read twice. It hands the run's `RunInputs` to each worker as one
JSON value; a worker resolves the same `Run` from them with the same function (reading the env file once, in
its own process). Fixtures and suites read it, never raw options.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from polycheck.core.config import EnvConfig, load_env
from polycheck.core.contract import MetricsContract
from polycheck.core.resolve import in_reports
from polycheck.checks.gates import DeployRequest
from polycheck.doubles.localstack import StackInfo
from polycheck.checks.preflight import Reach, cut_off, reaches_from_json


@dataclass(frozen=True)
class RunInputs:
    """Everything a run is resolved from, as plain values (JSON for the xdist workers)."""

    env: str
    env_dir: str
    contracts: str
    run_id: str
    rollback_log: str
    release_version: str | None = None
    released: tuple[str, ...] | None = None
    rollback_mode: str | None = None
    canary_step: int | None = None
    since: float | None = None
    stack: dict[str, Any] | None = None  # StackInfo.to_json() of the local stack in use
    prometheus_url: str = ""  # the Prometheus a local run started
    reaches: dict[str, dict[str, Any]] = field(default_factory=dict)  # the preflight's Reach per target
    report_dir: str = ""  # this run's own result set, reports/runs/<time>-<run id> ("" for --collect-only)
    started: float = 0.0  # when the run began (epoch seconds)
    push_metrics: str = ""  # --push-metrics: the Pushgateway the run pushes its outcome to
    location: str = ""  # --location: where the probe runs from (default: the env's probe.location)
    gates: dict[str, Any] = field(default_factory=dict)  # the predeploy options: gates.DeployRequest's fields
    ledger: str = ""  # --ledger: the journal of synthetic data (default: the env's probe.ledger)
    purpose: str = "deploy"  # --purpose: deploy | canary | probe | gate (polycheck.rollback.purpose)
    allow_not_run: tuple[str, ...] = ()  # --allow-not-run: steps that may all skip
    customers: float = 0.0  # API requests a second to each service that this run makes (the local stack it started)
    reports_dir: str = ""  # --reports-dir, else the ini polycheck_reports_dir: where the relative reports/ paths live
    keep_runs: int = 20  # --keep-runs: how many run folders are kept
    keep_bytes: int = 200 * 1024 * 1024  # --keep-mb, in bytes: how much the run folders may take together

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunInputs:
        data = json.loads(text)
        if data.get("released") is not None:
            data["released"] = tuple(data["released"])
        data["allow_not_run"] = tuple(data.get("allow_not_run") or ())
        return cls(**data)


@dataclass(frozen=True)
class Run:
    """The run: the environment's config pointed at what this run uses, and every setting of the run."""

    inputs: RunInputs
    config: EnvConfig
    contract: MetricsContract
    stack: StackInfo | None
    reaches: dict[str, Reach]

    @classmethod
    def resolve(cls, inputs: RunInputs, config: EnvConfig | None = None) -> Run:
        """The run from its inputs. `config` is the env file of `inputs.env` when the caller has read it already
        (the controller reads it once, for --released as well); otherwise it is read here, once.
        Raises ConfigError for a missing, malformed or invalid environment file."""
        config = load_env(inputs.env, Path(inputs.env_dir)) if config is None else config
        contract = MetricsContract.load(Path(inputs.contracts) / "metrics.toml")
        run = cls(inputs, config, contract, None, reaches_from_json(inputs.reaches))
        if inputs.stack and config.environment.local_stack:
            run = run.with_stack(StackInfo.from_json(inputs.stack))
        return run.with_prometheus(inputs.prometheus_url) if inputs.prometheus_url else run

    def with_inputs(self, **changes: Any) -> Run:
        """The same run with inputs that do not change the config (its folder, when it started)."""
        return replace(self, inputs=replace(self.inputs, **changes))

    def with_stack(self, stack: StackInfo) -> Run:
        """The run pointed at the local stack `stack`: its URLs and its Kubernetes simulator."""
        config = self.config.with_urls(stack.gateway, stack.services)
        if stack.kubeconfig:
            config = config.with_kubeconfig(stack.kubeconfig, stack.kube_context)
        return replace(self, inputs=replace(self.inputs, stack=stack.to_json()), config=config, stack=stack)

    def with_prometheus(self, url: str) -> Run:
        """The run pointed at the Prometheus at `url` (the one a local run started)."""
        config = replace(self.config, prometheus=replace(self.config.prometheus, url=url))
        return replace(self, inputs=replace(self.inputs, prometheus_url=url), config=config)

    def with_reaches(self, reaches: dict[str, Reach]) -> Run:
        """The run with the preflight's answer: what this runner reaches."""
        inputs = replace(self.inputs, reaches={name: reach.to_json() for name, reach in reaches.items()})
        return replace(self, inputs=inputs, reaches=dict(reaches))

    @property
    def run_id(self) -> str:
        return self.inputs.run_id

    @property
    def release_version(self) -> str | None:
        """--release-version, if the run was given one."""
        return self.inputs.release_version

    @property
    def released(self) -> frozenset[str] | None:
        """--released, if given."""
        return frozenset(self.inputs.released) if self.inputs.released is not None else None

    @property
    def purpose(self) -> str:
        """--purpose: who may roll back (deploy, canary, probe, gate)."""
        return self.inputs.purpose

    @property
    def allowed_not_run(self) -> frozenset[str]:
        """The steps whose checks may all skip: --allow-not-run and the env's environment.allow_not_run."""
        return frozenset(self.inputs.allow_not_run) | frozenset(self.config.environment.allow_not_run)

    @property
    def rollback_mode(self) -> str:
        return self.inputs.rollback_mode or self.config.rollback.mode

    @property
    def rollback_log(self) -> Path:
        """--rollback-log, else the env's rollback.audit_log; a relative path under reports/ is in --reports-dir,
        other relative paths start at the rootdir."""
        return in_reports(self.inputs.rollback_log or self.config.rollback.audit_log, self.inputs.reports_dir)

    @property
    def canary_step(self) -> int | None:
        """--canary-step: the canary weight this run gates (None: the step the Rollout is at)."""
        return self.inputs.canary_step

    @property
    def since(self) -> float | None:
        """--since, as epoch seconds: when the deploy under check began."""
        return self.inputs.since

    @property
    def report_dir(self) -> Path | None:
        """This run's folder: Allure results, JUnit XML, the sign-off (None when the run writes none)."""
        return Path(self.inputs.report_dir) if self.inputs.report_dir else None

    @property
    def push_metrics_url(self) -> str:
        """--push-metrics, else the env's [probe] pushgateway_url; empty: the run pushes nothing."""
        return self.inputs.push_metrics or self.config.probe.pushgateway_url

    @property
    def probe_location(self) -> str:
        """--location, else the env's [probe] location: the `location` label of every metric the run pushes."""
        return self.inputs.location or self.config.probe.location

    @property
    def ledger_path(self) -> Path:
        """--ledger, else the env's [probe] ledger with {env} filled in; a relative path under reports/ is in
        --reports-dir, other relative paths start at the rootdir."""
        return in_reports(self.inputs.ledger or self.config.probe.ledger.replace("{env}", self.config.name), self.inputs.reports_dir)

    @property
    def deploy_request(self) -> DeployRequest:
        """What a predeploy run judges: --now, --emergency, --sre-approved, --hotfix-approved, the git refs, the PR."""
        values = dict(self.inputs.gates)
        values["labels"] = tuple(values.get("labels") or ())
        return DeployRequest(**values)

    @property
    def cut_off(self) -> str | None:
        """Why this runner cannot reach the environment at all (every check INCONCLUSIVE), else None."""
        return cut_off(self.reaches)
