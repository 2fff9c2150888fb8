"""polycheck pip-installed into a team's own repository, started from that folder: the wheel the Makefile builds,
in a fresh venv, a team folder with its own env files, conftest.py and one check of its own.

- the team's check and the shipped suites (--shipped-suites) run together, healthy (GO) and with a fault (NO-GO,
  the team's check failing with the culprit its step blames);
- the CronJob's own arguments, run twice in a row from that folder: the second run is the one that broke when the
  ledger file existed (`--ledger PATH` read as a test path, pytest-dev/pytest#8846).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

from tests.support.stack_control import StackControl
from tests.support.suite_runner import REPO, SuiteRun, as_checker, parse_junit
from tests.support.selftest_env import local_env_text

def readme_block(first_line: str) -> str:
    """A Python block of the README's "Writing your own check", by its first line (the file it is)."""
    text = (REPO / "README.md").read_text()
    start = text.index("```python\n" + first_line) + len("```python\n")
    return text[start:text.index("```", start)]


TEAM_CHECK = readme_block("# checks/test_team.py")
TEAM_CONFTEST = readme_block("# conftest.py")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel `make wheel` builds (and its dependencies), nothing of the checkout."""
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "dist"
    built = subprocess.run(["make", "-s", "wheel", f"DIST={wheels}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("polyshop_checks-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          str(wheel)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A team's repository: its own pytest config, env files under config/envs, conftest.py and check."""
    folder = tmp_path_factory.mktemp("team-repo")
    (folder / "config" / "envs").mkdir(parents=True)
    (folder / "config" / "envs" / "teamlocal.toml").write_text(local_env_text())
    (folder / "checks").mkdir()
    (folder / "checks" / "test_team.py").write_text(TEAM_CHECK)
    (folder / "conftest.py").write_text(TEAM_CONFTEST)
    (folder / "pytest.ini").write_text(textwrap.dedent("""\
        [pytest]
        testpaths = checks
        addopts = --strict-markers -p no:cacheprovider
        polycheck_env_dir = config/envs
        polycheck_shipped_suites = true
        """))
    return folder


def team_run(venv: Path, folder: Path, *args: str, stack: StackControl) -> SuiteRun:
    """`polycheck run ARGS` in the team's folder, with the installed copy only (no checkout on any path)."""
    out = folder / "out"
    junit = out / f"junit-{uuid.uuid4().hex}.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "POLYCHECK_", "PYTHONPATH"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    command = as_checker([str(venv / "bin" / "polycheck"), "run", *args, "--stack-file", str(stack.stack_file),
                          f"--junitxml={junit}", f"--reports-dir={out / 'reports'}"])
    proc = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    run = SuiteRun(proc.returncode, proc.stdout + proc.stderr, 0.0)
    if junit.exists():
        run.cases = parse_junit(junit)
    return run


def test_the_installed_copy_is_complete_and_knows_its_version(installed: Path, team: Path) -> None:
    python = str(installed / "bin" / "python")
    where = subprocess.run([python, "-c", "import polycheck, polycheck.fixtures.orders, polycheck.suites; "
                            "from polycheck.core.shipped import shipped; print(polycheck.__file__); "
                            "print(shipped('contracts')); print(shipped('envs'))"],
                           cwd=team, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.splitlines():
        assert str(installed) in line and str(REPO) not in line, f"not the installed copy: {where.stdout}"
    version = subprocess.run([str(installed / "bin" / "polycheck"), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("polycheck 0.1.0"), version.stdout + version.stderr
    fixtures = subprocess.run([python, "-c", "import importlib.util; print(importlib.util.find_spec('fixtures'))"],
                              cwd="/", capture_output=True, text=True, timeout=60)
    assert fixtures.stdout.strip() == "None", "the wheel installs no top-level `fixtures` package (PyPI has one)"


def test_a_teams_check_runs_with_the_shipped_suites_healthy_and_with_a_fault(installed: Path, team: Path,
                                                                              stack: StackControl) -> None:
    healthy = team_run(installed, team, "-m", "smoke and not postdeploy", "--env", "teamlocal", "-k", "search or team", stack=stack)
    assert healthy.returncode == 0, healthy.output[-3000:]
    assert {"test_team_search_answers", "test_team_catalogue_lists_products"} <= healthy.ids("passed"), healthy.describe()
    shipped = {name for name in healthy.ids("passed") if name.startswith("test_search_")}
    assert shipped, f"the shipped search suite did not run beside the team's check: {healthy.describe()}"
    assert "Unknown pytest.mark" not in healthy.output and "GO: env teamlocal" in healthy.output, healthy.output[-3000:]

    stack.set_fault("search", "errors", ratio=1.0)
    log = team / "out" / "rollback.jsonl"
    broken = team_run(installed, team, "-m", "smoke and not postdeploy", "--env", "teamlocal", "-k", "search or team", "--rollback", "dry-run",
                      "--rollback-log", str(log), stack=stack)
    assert broken.returncode == 1, broken.output[-3000:]
    assert "test_team_search_answers" in broken.failed, broken.describe()
    assert "test_team_catalogue_lists_products" in broken.ids("passed"), broken.describe()
    message = broken.cases["test_team_search_answers"].message
    assert "search" in message and "500" in message, message
    decisions = [json.loads(line) for line in log.read_text().splitlines()]
    assert {d["service"] for d in decisions if d["step"] == "decision"} == {"search"}, decisions


def cronjob_args() -> list[str]:
    """The probe container's arguments in deploy/base/cronjob.yaml."""
    for document in yaml.safe_load_all((REPO / "deploy" / "base" / "cronjob.yaml").read_text()):
        if document and document.get("kind") == "CronJob":
            containers = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
            (probe,) = [c for c in containers if c["name"] == "polycheck"]
            return list(probe["args"])
    raise AssertionError("no CronJob in deploy/base/cronjob.yaml")


def test_the_cronjobs_arguments_run_twice_from_another_folder(installed: Path, team: Path, stack: StackControl,
                                                              tmp_path: Path) -> None:
    """Only what cannot be reached here is changed: prod -> the team's local env, the ledger's folder, no pushgateway.
    The second run finds the ledger file, and is also given it in the `--ledger PATH` form."""
    ledger = tmp_path / "var-lib-polycheck" / "leftovers-prod.jsonl"
    ledger.parent.mkdir()
    args, skip = [], False
    for word in cronjob_args():
        if skip:
            skip = False
            continue
        if word == "--push-metrics":
            skip = True
            continue
        args.append({"prod": "teamlocal"}.get(word, word.replace("/var/lib/polycheck/leftovers-prod.jsonl", str(ledger))))
    assert f"--ledger={ledger}" in args and "--purpose=probe" in args, args
    first = team_run(installed, team, *args, stack=stack)
    assert first.returncode == 0, first.output[-3000:]
    assert ledger.is_file(), "the probe journals its synthetic data in the ledger"
    spaced = [w for a in args for w in (a.split("=", 1) if a.startswith("--ledger=") else [a])]
    second = team_run(installed, team, *spaced, stack=stack)
    assert second.returncode == 0, second.output[-3000:]
    assert "unrecognized arguments" not in second.output
    assert len(second.ids("passed")) == len(first.ids("passed")) > 10, (first.describe(), second.describe())


def test_a_folder_of_no_project_collects_the_shipped_suites_with_an_existing_ledger(installed: Path, tmp_path: Path) -> None:
    """`pytest -m synthetic --env local --ledger FILE --co` from a folder with no pytest config and no test path (a pod's
    working directory): the shipped suites are collected, also once the ledger exists (the CronJob's second run)."""
    folder = tmp_path / "anywhere"
    folder.mkdir()
    ledger = tmp_path / "var" / "leftovers.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "POLYCHECK_", "PYTHONPATH"))}
    for attempt in ("no ledger yet", "the ledger exists"):
        for form in ([f"--ledger={ledger}"], ["--ledger", str(ledger)]):
            done = subprocess.run([str(installed / "bin" / "pytest"), "-m", "synthetic", "--env", "local", *form, "--co", "-q"],
                                  cwd=folder, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"{attempt}, {form}: exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            found = re.search(r"(\d+)/\d+ tests collected", done.stdout)
            assert found and int(found.group(1)) > 20, f"{attempt}, {form}: {done.stdout[-1500:]}"
            assert "test_order_flow.py::" in done.stdout and str(REPO) not in done.stdout, done.stdout[-1500:]
        ledger.parent.mkdir(exist_ok=True)
        ledger.write_text("")
