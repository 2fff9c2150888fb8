"""One typed, validated configuration per environment, loaded from `envs/NAME.toml`.

Secrets are written `${VAR}` and read from the environment only when a check needs them; any other
string may use `${VAR}` too, filled at load time. Unknown keys, wrong types and missing required values
are `ConfigError`s that say what is valid.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from polycheck.core.redact import register_secret

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
# `route` label values that are not the service's own API traffic: Prometheus's scrapes and the kubelet's probes
DEFAULT_EXCLUDED_ROUTES = ("/metrics", "/health.*")


class ConfigError(ValueError):
    """The environment's configuration is unusable; the message says what to change."""


class MissingSecretError(LookupError):
    """A `${VAR}` secret a check needs is not set in the environment."""


@dataclass(frozen=True)
class Secret:
    """A value that may come from the environment (`${VAR}`) and never shows in reports."""

    raw: str
    where: str = ""

    @property
    def variable(self) -> str | None:
        match = VARIABLE.fullmatch(self.raw.strip())
        return match.group(1) if match else None

    @property
    def is_set(self) -> bool:
        return self.variable is None or bool(os.environ.get(self.variable))

    def reveal(self, *, secret: bool = True) -> str:
        """The value; from now on no report or file of this process shows it (`redact`), unless `secret=False`
        (a value kept out of the file but meant to be shown, such as the synthetic account's email)."""
        name = self.variable
        if name is None:
            if secret:
                register_secret(self.raw)
            return self.raw
        value = os.environ.get(name)
        if not value:
            raise MissingSecretError(
                f"the environment variable {name} is not set; {self.where or 'this setting'} reads it "
                f"(export {name}=... before the run)"
            )
        if secret:
            register_secret(value)
        return value

    def __repr__(self) -> str:
        return f"Secret(${{{self.variable}}})" if self.variable else "Secret(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts every request of a check gets."""

    connect_timeout_seconds: float = 2.0
    read_timeout_seconds: float = 5.0
    # the most of one answer's body a check reads (beyond it the request fails at once, naming the size): bounded
    # memory and time whatever a service answers; /metrics has its own, larger cap
    max_body_bytes: int = 2 * 1024 * 1024
    max_metrics_body_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class Thresholds:
    """Limits the checks enforce."""

    health_latency_seconds: float = 1.0
    order_confirmation_seconds: float = 15.0
    notification_delivery_seconds: float = 30.0
    duplicate_watch_seconds: float = 1.0  # how long a check watches that a confirmation email is not sent twice
    late_duplicate_seconds: float = 300.0  # a later run looks at an earlier order once this much has passed since
    look_back_seconds: float = 1800.0  # how far back a run looks at earlier runs' orders and refunds (kept in the journal)
    look_back_limit: int = 20  # at most this many earlier orders and payments, the newest first
    search_lag_seconds: float = 60.0
    token_min_ttl_seconds: int = 60
    token_max_ttl_seconds: int = 86400


@dataclass(frozen=True)
class GatewayProbe:
    """A request through the gateway that only the service behind it answers, and the statuses that prove it did."""

    path: str
    expect_status: list[int]
    method: str = "GET"


@dataclass(frozen=True)
class ServiceConfig:
    """One PolyShop service in this environment."""

    url: str = ""
    version: str = ""
    deployment: str = ""
    metric_families: list[str] | None = None
    gateway_probe: GatewayProbe | None = None
    workload: str = "deployment"  # "deployment", or "rollout" for an Argo Rollouts canary
    routes: list[str] | None = None  # gateway path prefixes answered by this service (default: the contract's)
    # `route` label values (PromQL regexes) left out of its ratios and latencies (default: prometheus.exclude_routes)
    exclude_routes: list[str] | None = None


@dataclass(frozen=True)
class KubernetesConfig:
    """Where the services' Deployments and Rollouts live."""

    namespace: str = "polyshop"
    context: str = ""
    kubeconfig: str = ""
    in_cluster: bool = False
    rollout_deadline_seconds: float = 120.0


@dataclass(frozen=True)
class PrometheusConfig:
    """Where post-deploy validation reads metrics."""

    url: str = ""
    grafana_url: str = ""
    query_timeout_seconds: float = 5.0
    window: str = "5m"  # the rate window of post-deploy validation
    data_timeout_seconds: float = 30.0  # how long a run waits for a fresh (local) Prometheus to have data
    # how long a service's `up` must stay 0 for it to count as down (its post-deploy checks then fail): more than a
    # scrape interval, so one failed scrape between good ones is not a service down (alerting rules' `for:`)
    down_for: str = "30s"
    queries: dict[str, str] = field(default_factory=dict)  # check key -> PromQL template overriding the default
    thresholds: dict[str, float] = field(default_factory=dict)  # check key -> limit overriding the default
    canary_window: str = "1m"  # the rate window of the canary gate
    canary_margin: float = 0.01  # how much worse than the stable version the canary's 5xx ratio may be
    pod_hash_label: str = "rollouts_pod_template_hash"  # the label a pod's template hash has in Prometheus
    # evidence (README "Evidence rules"): below these a measured value is inconclusive, never a pass or a failure
    min_requests: int = 20  # requests in the window a 5xx ratio needs (below 20, one 5xx alone is above 5%)
    min_observations: int = 100  # observations a p99 needs (below 100, the p99 is the slowest request alone)
    exclude_routes: list[str] = field(default_factory=lambda: list(DEFAULT_EXCLUDED_ROUTES))  # scrapes and probes
    # runbook Section 6 "Grafana dashboard OK": no PolyShop alert firing (polycheck.checks.alerts)
    alerts_query: str = 'ALERTS{alertstate="firing"}'  # the firing alerts that concern PolyShop
    alertmanager_url: str = ""  # set: ask Alertmanager's API (active, not silenced or inhibited) instead of ALERTS
    alertmanager_filter: list[str] = field(default_factory=list)  # Alertmanager matchers, e.g. ['namespace="polyshop"']
    ignore_alerts: list[str] = field(default_factory=lambda: ["Watchdog", "InfoInhibitor"])  # always-firing alerts


@dataclass(frozen=True)
class CanaryConfig:
    """How much evidence the canary gate needs (runbook Section 2.3)."""

    min_requests: int = 50  # canary requests in canary_window (below 50, one 5xx alone is above the 2% limit)
    # canary against stable (polycheck.checks.canary_stats): a difference fails only when significant at this
    # confidence and larger than its effect size (5xx: prometheus.canary_margin, in ratio points)
    confidence: float = 0.95
    latency_effect: float = 0.1  # P(a canary request is slower than a stable one) must exceed 0.5 + this


@dataclass(frozen=True)
class ServiceRollback:
    """A service's own rollback actions, replacing the default list (and its own `on_dependency`)."""

    actions: list[str] | None = None  # None: the default list
    on_dependency: str | None = None


@dataclass(frozen=True)
class RollbackConfig:
    """What happens when a check marked for rollback fails for good."""

    mode: str = "dry-run"
    actions: list[str] = field(default_factory=list)
    services: dict[str, ServiceRollback] = field(default_factory=dict)
    timeout_seconds: float = 15.0
    audit_log: str = "reports/rollback-log.jsonl"
    # A deploy run whose release scope is unknown (no --released, --since nor --release-version, no cluster
    # access): "escalate" rolls nothing back and escalates with what it would have done; "all" counts every
    # service as released (an explicit opt-in, e.g. the local stack's).
    unknown_scope: str = "escalate"
    # the blast-radius limit: a run rolls back at most this many services; beyond it, none more and one escalation
    max_services: int = 1
    # How long a rollback the evidence allows waits for other services' failures (Alertmanager's group_wait): when
    # more than max_services services failed in the run by then, none is rolled back and one escalation names them.
    # The run's end decides at once. 0 acts on the first failure at once (the limit then holds only later ones).
    group_wait_seconds: float = 0.5
    # a failing service that reports a dependency of its own impaired: "escalate" (naming it) or "rollback" anyway
    on_dependency: str = "escalate"
    # Each listed action's own `[rollback]` keys (e.g. webhook_url, command), typed by its `settings` class
    # in the registry (polycheck/rollback/actions/); built by `_build_rollback`, never a key of its own.
    settings: dict[str, Any] = field(default_factory=dict)

    def actions_for(self, service: str) -> list[str]:
        own = self.services.get(service)
        return list(own.actions) if own is not None and own.actions is not None else list(self.actions)

    def on_dependency_for(self, service: str) -> str:
        own = self.services.get(service)
        return own.on_dependency if own is not None and own.on_dependency else self.on_dependency

    def settings_for(self, action: str) -> Any:
        """The settings of a listed action (a `LookupError` for an action the env does not list)."""
        try:
            return self.settings[action]
        except KeyError:
            raise LookupError(f"rollback action {action!r} is not listed in rollback.actions, so its settings were not read") from None


@dataclass(frozen=True)
class EscalationConfig:
    """Runbook Section 9: who is told, and for which services' failures even without a rollback."""

    webhooks: list[Secret] = field(default_factory=list)
    on_failure_of: list[str] = field(default_factory=lambda: ["payment", "order"])
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class SyntheticConfig:
    """The synthetic account checks sign in with, and the domain their data is tagged with."""

    email: Secret | None = None
    password: Secret | None = None
    email_domain: str = "synthetic.polyshop.test"
    expired_token: Secret | None = None
    skus: list[str] = field(default_factory=list)
    # cross-run SKU leases (polycheck.scope.sku_leases): auto | file | kubernetes | off
    sku_leases: str = "auto"
    card_token: str = "tok_sandbox_visa"
    decline_card_token: str = "tok_sandbox_decline"
    # a second synthetic account, for "another user's data is not readable"; provisioned per run when not set
    other_email: Secret | None = None
    other_password: Secret | None = None


@dataclass(frozen=True)
class BrowserConfig:
    """The storefront checks' browser."""

    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class LinksConfig:
    """Where a failing check's evidence lives: URL templates the report fills per failure.

    Placeholders: {trace_id}, {request_id} (from the failure message), {service} (its culprit), {env},
    {from_ms} and {to_ms} (epoch milliseconds, five minutes either side of the failure)."""

    grafana: str = ""  # e.g. https://grafana.example/d/polyshop?var-service={service}&from={from_ms}&to={to_ms}
    jaeger: str = ""  # e.g. https://jaeger.example/trace/{trace_id}
    loki: str = ""  # e.g. https://grafana.example/explore?...{request_id}...


@dataclass(frozen=True)
class ProbeConfig:
    """A probe run's metrics (polycheck.signoff.probe_metrics) and the journal of what it creates (polycheck.core.leftovers)."""

    pushgateway_url: str = ""  # where each run pushes its outcome; --push-metrics overrides
    push_timeout_seconds: float = 5.0
    job: str = "polycheck"  # the Pushgateway job (grouping key) of the probe's metrics
    ledger: str = "reports/leftovers-{env}.jsonl"  # the journal of synthetic data, relative to the rootdir
    location: str = "default"  # where this probe runs from (a cluster, a region): a label of every metric; --location overrides
    quorum: int = 2  # a check alerts when it fails in at least this many of the locations that reported (fewer: all of them)


@dataclass(frozen=True)
class DeployWindow:
    """A deployment window with Argo CD sync-window semantics: from each cron start, for `duration`, in `timezone`."""

    kind: str  # "allow" or "deny"
    schedule: str  # cron: minute hour day-of-month month day-of-week
    duration: str  # e.g. "8h", "1h30m"
    timezone: str = "UTC"  # IANA name, e.g. "Europe/Berlin"
    name: str = ""  # how messages name it, e.g. "no Friday deploys after 15:00"


@dataclass(frozen=True)
class HighRiskChange:
    """A kind of high-risk change (runbook Section 7): the changed paths (globs) or PR labels that make one."""

    paths: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GatesConfig:
    """Pre-deploy gates (runbook Sections 2.2, 5 and 7), read by `pytest -m predeploy` (polycheck.checks.gates)."""

    windows: list[DeployWindow] = field(default_factory=list)  # none: deploys are allowed at any time
    high_risk: dict[str, HighRiskChange] = field(default_factory=dict)  # name -> what makes one; needs --sre-approved
    hotfix_branches: list[str] = field(default_factory=lambda: ["hotfix/*", "release/*"])
    hotfix_max_files: int = 1
    route_paths: list[str] = field(default_factory=list)  # globs of files that define HTTP routes
    route_pattern: str = ""  # a regex of diff lines that add or remove a route ("" = the built-in one)
    openapi_paths: list[str] = field(default_factory=lambda: ["**/openapi*.yaml", "**/openapi*.yml", "**/openapi*.json"])
    github_repo: str = ""  # owner/name of the repository whose pull request is deployed
    github_api_url: str = "https://api.github.com"
    github_token: Secret | None = None  # e.g. "${GITHUB_TOKEN}"; unset: the PR and CI checks skip, naming it
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class Environment:
    """What the environment is."""

    name: str
    description: str = ""
    local_stack: bool = False
    release_version: str = ""
    # runbook steps whose checks may all skip without making the run INCONCLUSIVE (also --allow-not-run)
    allow_not_run: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Gateway:
    url: str = ""


@dataclass(frozen=True)
class EnvConfig:
    """Everything a run needs to know about the environment it checks."""

    environment: Environment
    services: dict[str, ServiceConfig]
    gateway: Gateway = field(default_factory=Gateway)
    http: HttpSettings = field(default_factory=HttpSettings)
    thresholds: Thresholds = field(default_factory=Thresholds)
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    rollback: RollbackConfig = field(default_factory=RollbackConfig)
    escalation: EscalationConfig = field(default_factory=EscalationConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    browser: BrowserConfig = field(default_factory=BrowserConfig)
    links: LinksConfig = field(default_factory=LinksConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    gates: GatesConfig = field(default_factory=GatesConfig)
    source: str = ""

    @property
    def name(self) -> str:
        return self.environment.name

    @property
    def service_names(self) -> list[str]:
        return list(self.services)

    def service(self, name: str) -> ServiceConfig:
        try:
            return self.services[name]
        except KeyError:
            raise ConfigError(f"{self.source}: no service {name!r}; configured: {', '.join(self.services)}") from None

    def deployment_of(self, name: str) -> str:
        return self.service(name).deployment or f"{name}-service"

    def excluded_routes(self, name: str) -> tuple[str, ...]:
        """The `route` label values (regexes) left out of the service's ratios and latencies."""
        own = self.service(name).exclude_routes
        return tuple(own if own is not None else self.prometheus.exclude_routes)

    def expected_version(self, name: str, cli_version: str | None = None) -> str | None:
        """The version the service must run: --release-version, else the service's pin, else the env's."""
        return cli_version or self.service(name).version or self.environment.release_version or None

    def gateway_routes(self) -> dict[str, tuple[str, ...]]:
        """Service -> the gateway path prefixes it answers: services.NAME.routes, else the contract's routes."""
        return {
            name: tuple(svc.routes if svc.routes is not None else CONTRACT_ROUTES.get(name, ()))
            for name, svc in self.services.items()
        }

    def with_urls(self, gateway: str, services: dict[str, str]) -> EnvConfig:
        """The same configuration pointed at the given URLs (the local stack's)."""
        updated = {
            name: dataclasses.replace(svc, url=services.get(name, svc.url)) for name, svc in self.services.items()
        }
        return dataclasses.replace(self, gateway=Gateway(url=gateway), services=updated)

    def with_kubeconfig(self, path: str, context: str) -> EnvConfig:
        """The same configuration pointed at a kubeconfig (the local stack's Kubernetes simulator)."""
        kube = dataclasses.replace(self.kubernetes, kubeconfig=path, context=context, in_cluster=False)
        return dataclasses.replace(self, kubernetes=kube)


# polyshop-api.md "Gateway": the /api/... prefixes the gateway routes to each service.
CONTRACT_ROUTES: dict[str, tuple[str, ...]] = {
    "auth": ("/api/auth/",),
    "product": ("/api/products",),
    "inventory": ("/api/inventory/",),
    "order": ("/api/orders",),
    "payment": ("/api/payments",),
    "notification": ("/api/notifications/",),
    "search": ("/api/search",),
}
ROLLBACK_MODES = ("auto", "dry-run", "shadow", "off")
UNKNOWN_SCOPES = ("escalate", "all")
ON_DEPENDENCY = ("escalate", "rollback")
WORKLOADS = ("deployment", "rollout")


def available_envs(env_dir: Path) -> list[str]:
    return sorted(p.stem for p in env_dir.glob("*.toml"))


def load_env(name: str, env_dir: Path, environ: typing.Mapping[str, str] | None = None) -> EnvConfig:
    """Load and validate `env_dir/NAME.toml`."""
    environ = os.environ if environ is None else environ
    path = env_dir / f"{name}.toml"
    if not path.is_file():
        known = available_envs(env_dir)
        raise ConfigError(
            f"unknown environment {name!r}: there is no {path}. "
            f"Valid environments: {', '.join(known) if known else '(none found in ' + str(env_dir) + ')'}."
        )
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    data.setdefault("environment", {}).setdefault("name", name)
    config = _build(EnvConfig, data, "", _Context(str(path), environ))
    return _validate_values(_validate(dataclasses.replace(config, source=str(path))), environ)


@dataclass(frozen=True)
class _Context:
    source: str
    environ: typing.Mapping[str, str]

    def error(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where or 'top level'}: {message}")


def _build(cls: type, data: Any, where: str, ctx: _Context) -> Any:
    if not isinstance(data, dict):
        raise ctx.error(where, f"expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ctx.error(where, f"unknown key {', '.join(map(repr, unknown))}; valid keys: {', '.join(fields)}")
    values = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name in data:
            values[name] = _convert(hints[name], data[name], key, ctx)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ctx.error(key, "is required")
    return cls(**values)


def _convert(hint: Any, value: Any, where: str, ctx: _Context) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return _convert(options[0], value, where, ctx)
    if hint is Secret:
        if not isinstance(value, str):
            raise ctx.error(where, f"expected a string or ${{VAR}}, got {value!r}")
        return Secret(value, where=f"{where} in {ctx.source}")
    if hint is RollbackConfig:
        return _build_rollback(value, where, ctx)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, where, ctx)
    if origin is list:
        if not isinstance(value, list):
            raise ctx.error(where, f"expected a list, got {value!r}")
        return [_convert(args[0], item, f"{where}[{i}]", ctx) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ctx.error(where, f"expected a table, got {value!r}")
        return {k: _convert(args[1], v, f"{where}.{k}", ctx) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ctx.error(where, f"expected true or false, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ctx.error(where, f"expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.error(where, f"expected a whole number, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ctx.error(where, f"expected a string, got {value!r}")
        return _interpolate(value, where, ctx)
    raise ctx.error(where, f"unsupported setting type {hint!r}")


def _interpolate(value: str, where: str, ctx: _Context) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in ctx.environ:
            raise ctx.error(where, f"uses ${{{name}}}, but the environment variable {name} is not set")
        return ctx.environ[name]

    return VARIABLE.sub(fill, value)


def _build_rollback(data: Any, where: str, ctx: _Context) -> RollbackConfig:
    """`[rollback]`: its own keys, then the settings of each listed action, validated against the action registry."""
    from polycheck.rollback.actions import REGISTRY  # the actions import the clients; the registry is their one list

    if not isinstance(data, dict):
        raise ctx.error(where, f"expected a table, got {type(data).__name__}")
    own = [f.name for f in dataclasses.fields(RollbackConfig) if f.name != "settings"]
    owners = REGISTRY.setting_keys()
    unknown = sorted(set(data) - set(own) - set(owners))
    if unknown:
        theirs = ", ".join(f"{key} ({action} action)" for key, action in owners.items())
        raise ctx.error(where, f"unknown key {', '.join(map(repr, unknown))}; valid keys: {', '.join(own)}, {theirs}")
    config: RollbackConfig = _build(RollbackConfig, {k: v for k, v in data.items() if k in own}, where, ctx)
    listed: dict[str, str] = {}  # action -> the first list that names it
    for key, actions in [(f"{where}.actions", config.actions)] + [
        (f"{where}.services.{name}.actions", svc.actions or []) for name, svc in config.services.items()
    ]:
        unknown = [a for a in actions if a not in REGISTRY.names()]
        if unknown:
            raise ctx.error(key, f"unknown action {', '.join(map(repr, unknown))}; valid: {', '.join(REGISTRY.names())}")
        for name in actions:
            listed.setdefault(name, key)
    settings: dict[str, Any] = {}
    for action in REGISTRY:
        hints = typing.get_type_hints(action.settings)
        fields = dataclasses.fields(action.settings)
        values = {f.name: _convert(hints[f.name], data[f.name], f"{where}.{f.name}", ctx) for f in fields if f.name in data}
        if action.name not in listed:
            continue
        for f in fields:
            if f.name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ctx.error(listed[action.name], f"the {action.name} action needs {where}.{f.name}")
        try:
            settings[action.name] = action.settings(**values)
        except ValueError as exc:
            raise ctx.error(listed[action.name], f"the {action.name} action {exc}") from None
    return dataclasses.replace(config, settings=settings)


def _validate_values(config: EnvConfig, environ: typing.Mapping[str, str]) -> EnvConfig:
    """The value rules (`polycheck.core.validate`): URLs, durations, finite numbers in range, synthetic passwords."""
    from polycheck.core.validate import synthetic_password_problems, value_problems

    ctx = _Context(config.source, {})
    for where, message in [*value_problems(config), *synthetic_password_problems(config, environ)]:
        raise ctx.error(where, message)
    return config


def _validate(config: EnvConfig) -> EnvConfig:
    ctx = _Context(config.source, {})
    if not config.services:
        raise ctx.error("services", "at least one [services.NAME] table is required")
    for name, svc in config.services.items():
        if not SERVICE_NAME.match(name):
            raise ctx.error(f"services.{name}", "a service name is lower-case letters, digits and '-'")
        if not config.environment.local_stack and not svc.url:
            raise ctx.error(f"services.{name}.url", "is required (the service's cluster-internal URL)")
        if svc.gateway_probe and not svc.gateway_probe.path.startswith("/"):
            raise ctx.error(f"services.{name}.gateway_probe.path", "must start with '/'")
    if not config.environment.local_stack and not config.gateway.url:
        raise ctx.error("gateway.url", "is required unless environment.local_stack = true")
    for name, svc in config.services.items():
        if svc.workload not in WORKLOADS:
            raise ctx.error(f"services.{name}.workload", f"must be one of {', '.join(WORKLOADS)}, got {svc.workload!r}")
    rollback = config.rollback
    for name in rollback.services:
        if name not in config.services:
            raise ctx.error(f"rollback.services.{name}", f"is not a configured service ({', '.join(config.services)})")
    if config.rollback.mode not in ROLLBACK_MODES:
        raise ctx.error("rollback.mode", f"must be one of {', '.join(ROLLBACK_MODES)}, got {config.rollback.mode!r}")
    if config.rollback.max_services < 1:
        raise ctx.error("rollback.max_services", f"must be at least 1, got {config.rollback.max_services}")
    if config.rollback.unknown_scope not in UNKNOWN_SCOPES:
        raise ctx.error("rollback.unknown_scope", f"must be one of {', '.join(UNKNOWN_SCOPES)}, got {config.rollback.unknown_scope!r}")
    from polycheck.core.steps import STEP_KEYS  # the runbook steps a run signs off

    wrong = [step for step in config.environment.allow_not_run if step not in STEP_KEYS]
    if wrong:
        raise ctx.error("environment.allow_not_run", f"unknown step {', '.join(map(repr, wrong))}; steps: {', '.join(STEP_KEYS)}")
    for key, choice in [("rollback.on_dependency", rollback.on_dependency)] + [
            (f"rollback.services.{name}.on_dependency", svc.on_dependency) for name, svc in rollback.services.items()]:
        if choice is not None and choice not in ON_DEPENDENCY:
            raise ctx.error(key, f"must be one of {', '.join(ON_DEPENDENCY)}, got {choice!r}")
    synthetic = config.synthetic
    if synthetic.sku_leases not in ("auto", "file", "kubernetes", "off"):
        raise ctx.error("synthetic.sku_leases", f"must be one of auto, file, kubernetes, off, got {synthetic.sku_leases!r}")
    if (synthetic.other_email is None) != (synthetic.other_password is None):
        raise ctx.error("synthetic", "other_email and other_password go together: set both, or neither to provision one")
    if (synthetic.email is None) != (synthetic.password is None):
        raise ctx.error("synthetic", "email and password go together: set both, or neither to provision an account")
    for token in (synthetic.card_token, synthetic.decline_card_token):
        if not token.startswith("tok_sandbox_"):
            raise ctx.error("synthetic", f"card tokens must be sandbox tokens (tok_sandbox_*), got {token!r}")
    for key in ("connect_timeout_seconds", "read_timeout_seconds"):
        if getattr(config.http, key) <= 0:
            raise ctx.error(f"http.{key}", "must be greater than 0")
    for where, value in (("prometheus.min_requests", config.prometheus.min_requests),
                         ("prometheus.min_observations", config.prometheus.min_observations),
                         ("canary.min_requests", config.canary.min_requests)):
        if value < 1:
            raise ctx.error(where, f"must be at least 1 (no evidence is never enough), got {value}")
    if not 0.5 <= config.canary.confidence < 1:
        raise ctx.error("canary.confidence", f"is a confidence level, from 0.5 to below 1 (e.g. 0.95), got {config.canary.confidence}")
    if not 0 <= config.canary.latency_effect < 0.5:
        raise ctx.error("canary.latency_effect", "is how far above 0.5 P(a canary request is slower) must be, from 0 to "
                        f"below 0.5 (e.g. 0.1), got {config.canary.latency_effect}")
    routes = [("prometheus.exclude_routes", config.prometheus.exclude_routes)]
    routes += [(f"services.{name}.exclude_routes", svc.exclude_routes or []) for name, svc in config.services.items()]
    for where, patterns in routes:
        for pattern in patterns:
            problem = _route_pattern_problem(pattern)
            if problem:
                raise ctx.error(where, f"{pattern!r} {problem}")
    from polycheck.core.gate_rules import validate_gates  # (imports the config's types: loaded when first needed)

    for where, message in validate_gates(config.gates):
        raise ctx.error(where, message)
    return config


def _route_pattern_problem(pattern: str) -> str | None:
    """Why a `route` regex cannot go into a PromQL matcher, or None."""
    if not pattern or '"' in pattern or "\\" in pattern:
        return "must be a non-empty regex of the route label without quotes or backslashes (e.g. \"/health.*\")"
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"is not a regex: {exc}"
    return None
