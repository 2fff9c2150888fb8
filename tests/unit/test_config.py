"""Config loading: the shipped envs load, and every error path says what to change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from polycheck.core.config import ConfigError, MissingSecretError, Secret, available_envs, load_env
from tests.support.suite_runner import suite_env

ENVS = Path(__file__).resolve().parents[2] / "envs"

MINIMAL = """
[environment]
local_stack = false
[gateway]
url = "http://gw:8080"
[services.order]
url = "http://order:8080"
"""


def write_env(tmp_path: Path, text: str, name: str = "test") -> Path:
    (tmp_path / f"{name}.toml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("name", ["local", "staging", "prod"])
def test_shipped_envs_load_with_eight_services(name: str) -> None:
    config = load_env(name, ENVS, environ={})
    assert config.name == name
    assert config.service_names == ["auth", "product", "inventory", "order", "payment", "notification", "search", "gateway"]
    assert config.deployment_of("order") == "order-service"


def test_cluster_envs_use_in_cluster_urls() -> None:
    config = load_env("prod", ENVS, environ={})
    assert config.service("order").url == "http://order-service.polyshop.svc.cluster.local:8080"
    assert not config.environment.local_stack
    assert config.synthetic.password is not None and config.synthetic.password.variable == "POLYSHOP_SYNTHETIC_PASSWORD"


def test_unknown_env_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        load_env("nosuch", ENVS)
    message = str(err.value)
    assert "unknown environment 'nosuch'" in message
    assert "Valid environments: local, prod, staging" in message


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"test.toml is not valid TOML"):
        load_env("test", write_env(tmp_path, "[environment\nname = 1"))


def test_unknown_key_lists_valid_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_env("test", write_env(tmp_path, MINIMAL + 'urll = "x"\n'))
    message = str(err.value)
    assert "services.order: unknown key 'urll'" in message
    assert "valid keys: url, version, deployment, metric_families, gateway_probe" in message


def test_unknown_section_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"top level: unknown key 'promethus'; valid keys: environment, services"):
        load_env("test", write_env(tmp_path, MINIMAL + "[promethus]\nurl = 'x'\n"))


@pytest.mark.parametrize(
    "extra, expected",
    [
        ("[http]\nread_timeout_seconds = 'fast'\n", r"http.read_timeout_seconds: expected a number, got 'fast'"),
        ("[http]\nread_timeout_seconds = 0\n", r"http.read_timeout_seconds: must be greater than 0"),
        ("[environment.x]\n", r"environment: unknown key 'x'; valid keys: name, description"),
        ("[rollback]\nmode = 'sometimes'\n", r"rollback.mode: must be one of auto, dry-run, shadow, off"),
        ("[kubernetes]\nin_cluster = 'yes'\n", r"kubernetes.in_cluster: expected true or false"),
    ],
)
def test_wrong_values_are_named(tmp_path: Path, extra: str, expected: str) -> None:
    text = MINIMAL + extra
    with pytest.raises(ConfigError, match=expected):
        load_env("test", write_env(tmp_path, text))


def test_a_cluster_env_needs_service_urls(tmp_path: Path) -> None:
    text = MINIMAL.replace('url = "http://order:8080"', 'version = "1.0.0"')
    with pytest.raises(ConfigError, match=r"services.order.url: is required"):
        load_env("test", write_env(tmp_path, text))


def test_a_cluster_env_needs_a_gateway(tmp_path: Path) -> None:
    text = MINIMAL.replace('[gateway]\nurl = "http://gw:8080"\n', "")
    with pytest.raises(ConfigError, match=r"gateway.url: is required"):
        load_env("test", write_env(tmp_path, text))


def test_plain_variables_are_filled_at_load(tmp_path: Path) -> None:
    text = MINIMAL + '[prometheus]\nurl = "${PROM_URL}/"\n'
    config = load_env("test", write_env(tmp_path, text), environ={"PROM_URL": "http://prom:9090"})
    assert config.prometheus.url == "http://prom:9090/"


def test_a_missing_plain_variable_is_named_at_load(tmp_path: Path) -> None:
    text = MINIMAL + '[prometheus]\nurl = "${PROM_URL}"\n'
    with pytest.raises(ConfigError, match=r"prometheus.url: uses \$\{PROM_URL\}, but the environment variable PROM_URL is not set"):
        load_env("test", write_env(tmp_path, text), environ={})


def test_secrets_are_read_only_when_needed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = MINIMAL + '[synthetic]\nemail = "probe@synthetic.polyshop.test"\npassword = "${SYNTH_PW}"\n'
    monkeypatch.delenv("SYNTH_PW", raising=False)
    config = load_env("test", write_env(tmp_path, text))  # loads although the variable is unset
    secret = config.synthetic.password
    assert secret is not None and not secret.is_set
    with pytest.raises(MissingSecretError) as err:
        secret.reveal()
    assert "SYNTH_PW is not set" in str(err.value) and "synthetic.password" in str(err.value)
    monkeypatch.setenv("SYNTH_PW", "hunter2")
    assert secret.reveal() == "hunter2"
    assert "hunter2" not in repr(config)


def test_literal_secret_never_shows_in_repr() -> None:
    assert repr(Secret("hunter2")) == "Secret(***)"
    assert Secret("hunter2").reveal() == "hunter2"


def test_expected_version_precedence(tmp_path: Path) -> None:
    text = MINIMAL.replace("local_stack = false\n", 'local_stack = false\nrelease_version = "1.0.0"\n')
    text += '[services.search]\nurl = "http://s:8080"\nversion = "2.0.0"\n'
    config = load_env("test", write_env(tmp_path, text))
    assert config.expected_version("order") == "1.0.0"
    assert config.expected_version("search") == "2.0.0"
    assert config.expected_version("search", "3.0.0") == "3.0.0"


def test_with_urls_points_the_config_at_a_stack() -> None:
    config = load_env("local", ENVS).with_urls("http://gw", {"order": "http://o"})
    assert config.gateway.url == "http://gw"
    assert config.service("order").url == "http://o"
    with pytest.raises(ConfigError, match="no service 'nosuch'"):
        config.service("nosuch")


def test_available_envs_lists_toml_files() -> None:
    assert available_envs(ENVS) == ["local", "prod", "staging"]


# -- issue #17 item 6: a config mistake is a usage error, refused at load with what is valid ---------------------
@pytest.mark.parametrize(
    "extra, expected",
    [
        ("[services.payment]\nurl = 'http//payment:8080'\n", r"services.payment.url: 'http//payment:8080' has no http:// or https:// scheme: write a URL with a scheme and a host"),
        ("[services.payment]\nurl = 'payment-service:8080'\n", r"services.payment.url: 'payment-service:8080' has no http:// or https:// scheme"),
        ("[services.payment]\nurl = 'http://'\n", r"services.payment.url: 'http://' has no host"),
        ("[services.payment]\nurl = 'http://payment:80x'\n", r"services.payment.url: 'http://payment:80x' is not a URL"),
        ("[services.payment]\nurl = 'http://pay ment:8080'\n", r"services.payment.url: 'http://pay ment:8080' contains whitespace"),
        ("[prometheus]\nurl = 'prometheus:9090'\n", r"prometheus.url: 'prometheus:9090' has no http:// or https:// scheme"),
        ("[links]\njaeger = 'jaeger/trace/{trace_id}'\n", r"links.jaeger: 'jaeger/trace/x' has no http:// or https:// scheme \(placeholders aside\)"),
        ("[prometheus]\nwindow = '-5s'\n", r"prometheus.window: '-5s' is not a Prometheus duration: write a positive one such as 30s, 5m"),
        ("[prometheus]\nwindow = '0s'\n", r"prometheus.window: '0s' is out of range: a rate window is from 1s to 7d"),
        ("[prometheus]\ndown_for = '1h'\n", r"prometheus.down_for: '1h' is out of range: a time up must stay 0 is from 1s to 10m"),
        ("[prometheus]\ndown_for = 'soon'\n", r"prometheus.down_for: 'soon' is not a Prometheus duration"),
        ("[prometheus]\ndown_for = '45s'\n", r"prometheus.down_for: \(45s\) is longer than prometheus.data_timeout_seconds \(30 s\): a service whose metrics cannot be scraped would never be judged down"),
        ("[prometheus]\ncanary_window = '5 minutes'\n", r"prometheus.canary_window: '5 minutes' is not a Prometheus duration"),
        ("[thresholds]\nhealth_latency_seconds = inf\n", r"thresholds.health_latency_seconds: is a time in seconds, more than 0 and at most 86400 \(1 day\), got inf"),
        ("[thresholds]\nhealth_latency_seconds = 1e308\n", r"thresholds.health_latency_seconds: is a time in seconds, more than 0 and at most 86400 \(1 day\), got 1e\+308"),
        ("[thresholds]\nsearch_lag_seconds = nan\n", r"thresholds.search_lag_seconds: is a time in seconds, more than 0 and at most 86400 \(1 day\), got nan"),
        ("[thresholds]\norder_confirmation_seconds = -1\n", r"thresholds.order_confirmation_seconds: is a time in seconds, more than 0"),
        ("[thresholds]\ntoken_min_ttl_seconds = 600\ntoken_max_ttl_seconds = 60\n", r"thresholds.token_min_ttl_seconds: \(600\) is above thresholds.token_max_ttl_seconds \(60\)"),
        ("[prometheus.thresholds]\nerror_rate = inf\n", r"prometheus.thresholds.error_rate: must be a finite number, got inf"),
        ("[prometheus.thresholds]\nerror_rate = 5.0\n", r"prometheus.thresholds.error_rate: is a ratio from 0 to 1 \(0.05 = 5%\), got 5.0"),
        ("[prometheus.thresholds]\nkafka_consumer_lag = 1e308\n", r"prometheus.thresholds.kafka_consumer_lag: is a limit from 0 to 1e\+09, got 1e\+308"),
        ("[prometheus]\ncanary_margin = -0.5\n", r"prometheus.canary_margin: is a share of requests from 0 to 1"),
        ("[http]\nconnect_timeout_seconds = 1e308\n", r"http.connect_timeout_seconds: is a time in seconds, more than 0 and at most 86400"),
        ("[rollback]\ntimeout_seconds = inf\n", r"rollback.timeout_seconds: is a time in seconds, more than 0"),
        ("[browser]\ntimeout_seconds = 0\n", r"browser.timeout_seconds: is a time in seconds, more than 0"),
        ("[kubernetes]\nrollout_deadline_seconds = -120\n", r"kubernetes.rollout_deadline_seconds: is a time in seconds, more than 0"),
        ("[gates]\ntimeout_seconds = nan\n", r"gates.timeout_seconds: is a time in seconds"),
    ],
)
def test_a_value_out_of_its_rule_is_refused_at_load_saying_what_is_valid(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as err:
        load_env("test", write_env(tmp_path, MINIMAL + extra))
    assert str(err.value).startswith(str(tmp_path / "test.toml") + ": ") and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "extra",
    [
        "[services.payment]\nurl = 'https://payment.polyshop.svc.cluster.local'\n",
        "[services.payment]\nurl = 'http://10.0.0.7:8080/base/'\n",
        "[services.payment]\nurl = 'http://[::1]:8080'\n",
        "[prometheus]\nwindow = '1h30m'\ncanary_window = '30s'\ncanary_margin = 0\n",
        "[prometheus.thresholds]\nerror_rate = 0.1\nkafka_consumer_errors = 0\nkafka_consumer_lag = 50000\np99_latency = 3.5\n",
        "[thresholds]\nhealth_latency_seconds = 0.25\ntoken_min_ttl_seconds = 60\ntoken_max_ttl_seconds = 2592000\n",
        "[links]\njaeger = 'https://jaeger.example/trace/{trace_id}'\ngrafana = 'https://g.example/d/x?var-service={service}&from={from_ms}'\n",
    ],
)
def test_valid_values_still_load(tmp_path: Path, extra: str) -> None:
    assert load_env("test", write_env(tmp_path, MINIMAL + extra), environ={}).name == "test"


SHORT = "[synthetic]\nemail = 'probe@synthetic.polyshop.test'\npassword = '{password}'\n"


def test_a_short_synthetic_password_is_refused_saying_why(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_env("test", write_env(tmp_path, MINIMAL + SHORT.format(password="hunt2")))
    message = str(err.value)
    assert "synthetic.password: is a password of 5 characters; a synthetic account's password needs at least 12" in message
    assert "guessable" in message and "redacted" in message and "hunt2" not in message
    text = MINIMAL + "[synthetic]\nemail = '${E}'\npassword = '${PW}'\nother_email = 'x@synthetic.polyshop.test'\nother_password = '${PW2}'\n"
    with pytest.raises(ConfigError, match=r"synthetic.other_password: \$PW2 holds a password of 11 characters; .* needs at least 12"):
        load_env("test", write_env(tmp_path, text), environ={"PW": "x" * 12, "PW2": "y" * 11})


def test_a_synthetic_password_of_twelve_or_an_unset_variable_loads(tmp_path: Path) -> None:
    assert load_env("test", write_env(tmp_path, MINIMAL + SHORT.format(password="twelve-chars"))).synthetic.password is not None
    text = MINIMAL + "[synthetic]\nemail = '${E}'\npassword = '${PW}'\n"
    assert load_env("test", write_env(tmp_path, text), environ={}).synthetic.password is not None  # read when a check needs it
    assert load_env("test", write_env(tmp_path, text), environ={"PW": "p" * 12}).synthetic.password is not None


def _pytest_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = suite_env()
    return subprocess.run([sys.executable, "-m", "pytest", "suites/test_health.py", "-p", "no:cacheprovider",
                           f"--rollback-log={tmp_path / 'rollback.jsonl'}", f"--reports-dir={tmp_path / 'reports'}", *args],
                          cwd=ENVS.parent, env=environ, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "change, expected",
    [
        (('"http://order-service.polyshop.svc.cluster.local:8080"', '"http//order-service.polyshop.svc.cluster.local:8080"'),
         "services.order.url: 'http//order-service.polyshop.svc.cluster.local:8080' has no http:// or https:// scheme"),
        (('grafana_url = "https://grafana.prod.polyshop.example"', 'grafana_url = "https://grafana.prod.polyshop.example"\nwindow = "-5s"'), "prometheus.window: '-5s' is not a Prometheus duration"),
    ],
)
def test_a_config_mistake_ends_the_run_with_exit_4_before_any_check(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    text = (ENVS / "prod.toml").read_text()
    assert change[0] in text
    (tmp_path / "broken.toml").write_text(text.replace(change[0], change[1], 1))
    done = _pytest_run(tmp_path, "--env", "broken", f"--env-dir={tmp_path}")
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"ERROR: polycheck: {tmp_path / 'broken.toml'}: {expected}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and " passed" not in done.stdout and " failed" not in done.stdout
    assert not (tmp_path / "rollback.jsonl").exists()  # never a rollback decision


def test_canary_step_is_a_percentage_from_1_to_100(tmp_path: Path) -> None:
    for wrong in ("150", "0", "-5", "20.5", "x"):
        done = _pytest_run(tmp_path, "--co", f"--canary-step={wrong}")
        assert done.returncode == 4, done.stdout + done.stderr
        assert f"argument --canary-step: a canary step is the canary's weight, a whole percentage from 1 to 100 (e.g. 20), got '{wrong}'" in done.stderr
    done = _pytest_run(tmp_path, "--co", "--canary-step=20")
    assert done.returncode == 0, done.stdout + done.stderr


def test_evidence_minimums_and_excluded_routes_have_defaults_and_overrides(tmp_path: Path) -> None:
    """README "Evidence rules": the minimums and the routes left out; a service may leave out routes of its own."""
    config = load_env("test", write_env(tmp_path, MINIMAL))
    assert (config.prometheus.min_requests, config.prometheus.min_observations, config.canary.min_requests) == (20, 100, 50)
    assert config.excluded_routes("order") == ("/metrics", "/health.*")
    text = MINIMAL + 'exclude_routes = ["/metrics", "/internal/.*"]\n[prometheus]\nmin_requests = 40\n[canary]\nmin_requests = 80\n'
    tuned = load_env("test", write_env(tmp_path, text))
    assert tuned.excluded_routes("order") == ("/metrics", "/internal/.*")
    assert (tuned.prometheus.min_requests, tuned.canary.min_requests) == (40, 80)


@pytest.mark.parametrize("text, error", [
    ("[prometheus]\nmin_requests = 0\n", r"prometheus.min_requests: must be at least 1 \(no evidence is never enough\)"),
    ("[canary]\nmin_requests = -1\n", r"canary.min_requests: must be at least 1"),
    ("[prometheus]\nmin_observations = 2.5\n", r"prometheus.min_observations: expected a whole number"),
    ('[prometheus]\nexclude_routes = ["/health("]\n', r"prometheus.exclude_routes: '/health\(' is not a regex"),
])
def test_evidence_settings_are_validated(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load_env("test", write_env(tmp_path, MINIMAL + text))


def test_a_service_route_pattern_that_cannot_go_into_promql_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"services.order.exclude_routes: '/a\"b' must be a non-empty regex"):
        load_env("test", write_env(tmp_path, MINIMAL + 'exclude_routes = [\'/a"b\']\n'))
