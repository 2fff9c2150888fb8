"""The run is resolved once: the env file is read once, and the plugin, `cleanup`, `report` and `serve` resolve
their options with one rule (polycheck.core.resolve: CLI, then the pytest ini, then the environment, then the default)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from polycheck.core import resolve
from polycheck.doubles.localstack import StackInfo
from polycheck.checks.preflight import Reach
from polycheck.doubles.promserver import LocalPrometheus
from polycheck.scope.run import Run, RunInputs
from polycheck.serve import parse
from tests.support.suite_runner import suite_env

REPO = Path(__file__).resolve().parents[2]
ENVS, CONTRACTS = REPO / "envs", REPO / "contracts"


def clean_environ(**extra: str) -> dict[str, str]:
    env = suite_env()
    return {**env, **extra}


def checkout(root: Path, polycheck_env: str | None) -> Path:
    """A checkout whose pyproject's [tool.pytest.ini_options] points at the repo's envs and contracts."""
    lines = ["[tool.pytest.ini_options]", f'polycheck_env_dir = "{ENVS}"', f'polycheck_contracts_dir = "{CONTRACTS}"']
    if polycheck_env:
        lines.append(f'polycheck_env = "{polycheck_env}"')
    (root / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return root


def test_ini_file_reads_pytests_config_file_in_pytests_order(tmp_path: Path) -> None:
    checkout(tmp_path, "staging")
    assert resolve.ini_file(tmp_path)("polycheck_env") == "staging"
    assert resolve.ini_file(tmp_path)("polycheck_keep_runs") == "20", "an unset value is the plugin's default"
    (tmp_path / "pytest.ini").write_text("[pytest]\npolycheck_env = prod\n")
    assert resolve.ini_file(tmp_path)("polycheck_env") == "prod", "pytest.ini comes before pyproject.toml, as for pytest"
    with pytest.raises(KeyError):
        resolve.ini_file(tmp_path)("polycheck_nosuch")


def test_an_option_is_the_cli_then_the_ini_then_the_environment_then_the_default(tmp_path: Path) -> None:
    ini, no_ini = resolve.ini_file(checkout(tmp_path, "staging")), resolve.ini_file(tmp_path / "nothing")
    assert resolve.env_name("prod", ini, {"POLYCHECK_ENV": "local"}) == "prod"
    assert resolve.env_name(None, ini, {"POLYCHECK_ENV": "prod"}) == "staging"
    assert resolve.env_name(None, no_ini, {"POLYCHECK_ENV": "prod"}) == "prod"
    assert resolve.env_name(None, no_ini, {}) == "local"


def plugin_env(root: Path) -> str:
    """The env the plugin resolves in `root` (from its report header; --collect-only starts nothing)."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "polycheck.pytest_plugin.plugin", "--collect-only",
                           "--rootdir", str(root), "-p", "no:cacheprovider"], cwd=root, env=clean_environ(),
                          capture_output=True, text=True, timeout=120)
    found = re.search(r"^polycheck: env (\S+) ", done.stdout, re.MULTILINE)
    assert found, done.stdout + done.stderr
    return found.group(1)


@pytest.mark.parametrize("ini_env", [None, "staging"])
def test_cleanup_and_serve_name_the_env_the_plugin_does(tmp_path: Path, ini_env: str | None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = checkout(tmp_path, ini_env)
    expected = ini_env or "local"
    assert plugin_env(root) == expected
    cleanup = subprocess.run([sys.executable, "-m", "polycheck", "cleanup", "--root", str(root), "--dry-run",
                              "--ledger", str(tmp_path / "ledger.jsonl")], cwd=REPO, env=clean_environ(),
                             capture_output=True, text=True, timeout=60)
    if ini_env:
        assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
        assert f"in env {expected} (dry run)" in cleanup.stdout
    else:  # local needs its running stack: the message names the env it resolved
        assert cleanup.returncode == 4 and f"--env {expected} needs the running stack" in cleanup.stderr, cleanup.stderr
    monkeypatch.delenv("POLYCHECK_ENV", raising=False)
    monkeypatch.setenv("POLYCHECK_SERVE_TOKEN", "a-token-of-sixteen-or-more")
    _, analysis, _ = parse(["--root", str(root)])
    assert analysis.env == expected
    assert analysis.command(None)[analysis.command(None).index("--env") + 1] == expected


def test_report_reads_its_reports_dir_from_the_ini(tmp_path: Path) -> None:
    root = checkout(tmp_path, None)
    with (root / "pyproject.toml").open("a") as file:
        file.write('polycheck_reports_dir = "elsewhere"\n')
    done = subprocess.run([sys.executable, "-m", "polycheck", "report", "--root", str(root)], cwd=REPO,
                          env=clean_environ(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and f"no finished run under {root / 'elsewhere'}" in done.stderr, done.stderr


def test_run_is_extended_without_reading_the_env_file_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    reads: list[str] = []
    read_text = Path.read_text

    def counting(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self.name)
        return read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", counting)
    inputs = RunInputs(env="local", env_dir=str(ENVS), contracts=str(CONTRACTS), run_id="r1", rollback_log="")
    run = Run.resolve(inputs)
    stack = StackInfo(1, "http://127.0.0.1:1", {"order": "http://127.0.0.1:2"}, "http://127.0.0.1:3", "", "")
    done = run.with_stack(stack).with_prometheus("http://127.0.0.1:4").with_reaches({"order": Reach("order", "http://127.0.0.1:2", "answered", "200")})
    done = done.with_inputs(report_dir=str(tmp_path), started=1.0)
    assert reads.count("local.toml") == 1 and reads.count("metrics.toml") == 1, reads
    assert done.contract is run.contract
    assert done.config.service("order").url == "http://127.0.0.1:2" and done.config.prometheus.url == "http://127.0.0.1:4"
    assert done.reaches == {"order": Reach("order", "http://127.0.0.1:2", "answered", "200")} and done.report_dir == tmp_path
    again = Run.resolve(RunInputs.from_json(done.inputs.to_json()))  # what an xdist worker resolves
    assert (again.config, again.stack, again.reaches, again.inputs) == (done.config, done.stack, done.reaches, done.inputs)


def test_a_run_reads_the_env_file_and_the_stack_file_once(tmp_path: Path) -> None:
    """Through the whole configure of a real run: the stack file, its Prometheus (when installed), the preflight."""
    stack_file = tmp_path / "stack.json"
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens, the preflight is refused at once
    stack_file.write_text(json.dumps(StackInfo(os.getpid(), dead, {"order": dead, "auth": dead}, dead, "", "").to_json()))
    watched = [ENVS / "local.toml", CONTRACTS / "metrics.toml", stack_file]
    out = tmp_path / "reads.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.count_reads", "suites/test_health.py", "-k", "no_such_check",
         "--env", "local", "--stack-file", str(stack_file), "--reports-dir", str(tmp_path / "reports"), "--released", "order"],
        cwd=REPO, env=clean_environ(COUNT_READS=os.pathsep.join(map(str, watched)), COUNT_READS_OUT=str(out)),
        capture_output=True, text=True, timeout=180)
    assert out.exists(), done.stdout + done.stderr
    assert json.loads(out.read_text()) == {str(p): 1 for p in watched}, done.stdout + done.stderr
    assert f"using the local PolyShop stack of pid {os.getpid()}" in done.stdout, done.stdout
    if LocalPrometheus.available() is None:
        assert "polycheck: local Prometheus http" in done.stdout, done.stdout
