"""Config loading: the shipped envs load, and every error path says what to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from polycheck.core.config import ConfigError, MissingSecretError, Secret, available_envs, load_env

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
        ("[rollback]\nmode = 'sometimes'\n", r"rollback.mode: must be one of auto, dry-run, off"),
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
