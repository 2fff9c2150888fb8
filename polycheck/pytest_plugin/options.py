"""Command-line options of polycheck, each with an ini twin, resolved once per run."""

from __future__ import annotations

import argparse

import pytest

from polycheck.core import resolve
from polycheck.core.steps import STEP_KEYS
from polycheck.core.validate import parse_canary_step
from polycheck.rollback.purpose import DEPLOY, PURPOSES

MIB = 1024 * 1024


def _canary_step(text: str) -> int:
    """--canary-step's value, 1 to 100; anything else is a usage error (exit 4) saying what is valid."""
    try:
        return parse_canary_step(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("polycheck", "PolyShop smoke and synthetic checks")
    group.addoption(
        "--env",
        dest="polycheck_env",
        metavar="NAME",
        help="environment to check: envs/NAME.toml (default: ini polycheck_env, $POLYCHECK_ENV, else 'local')",
    )
    group.addoption("--env-dir", dest="polycheck_env_dir", metavar="DIR", help="folder of the environment files (default: envs/)")
    group.addoption(
        "--release-version",
        dest="polycheck_release_version",
        metavar="VERSION",
        help="the version every service must run after this deploy (overrides the env's pins)",
    )
    group.addoption(
        "--stack-file",
        dest="polycheck_stack_file",
        metavar="PATH",
        help="use the already running local stack described by PATH (`python -m stack --ready-file PATH`) "
        "instead of starting one (default: $POLYCHECK_STACK_FILE)",
    )
    group.addoption(
        "--rollback",
        dest="polycheck_rollback",
        choices=("auto", "dry-run", "shadow", "off"),
        help="what a failing check marked for rollback does: act (auto), only log what it would do (dry-run), "
        "record that it would have rolled back, escalating as usual, so later runs measure the gate's precision "
        "(shadow; see `polycheck decisions`), or nothing (off); default: the env's rollback.mode",
    )
    group.addoption(
        "--purpose",
        dest="polycheck_purpose",
        choices=PURPOSES,
        help="why this run runs, which decides who may roll back: deploy (right after a deploy: the services this "
        "release changed), canary (an Argo analysis: abort only the Rollout in progress), probe (scheduled: push "
        "metrics and escalate, never roll back), gate (pre-deploy: never act); default: ini polycheck_purpose, else deploy",
    )
    group.addoption(
        "--allow-not-run",
        dest="polycheck_allow_not_run",
        metavar="STEPS",
        help="runbook steps (comma-separated: " + ", ".join(STEP_KEYS) + ") whose checks may all skip without "
        "making the run INCONCLUSIVE (default: the env's environment.allow_not_run)",
    )
    group.addoption(
        "--rollback-log",
        dest="polycheck_rollback_log",
        metavar="PATH",
        help="audit log of rollback decisions and outcomes (JSON lines; default: the env's rollback.audit_log)",
    )
    group.addoption(
        "--since",
        dest="polycheck_since",
        metavar="TIME",
        help="the deploy time post-deploy windows start at (ISO-8601, e.g. 2026-11-27T09:30:00Z); "
        "default: when the service's current ReplicaSet was created",
    )
    group.addoption(
        "--released",
        dest="polycheck_released",
        metavar="SERVICES",
        help="the services this release changed, comma-separated (e.g. order,payment): only they may be rolled back; "
        "default: read from Kubernetes (revision since --since, or image tag = --release-version), else every service",
    )
    group.addoption(
        "--canary-step",
        dest="polycheck_canary_step",
        type=_canary_step,
        metavar="PERCENT",
        help="the canary weight this run gates (Argo Rollouts analysis), a whole percentage from 1 to 100: checks "
        "expect the canary at this weight",
    )
    group.addoption(
        "--reports-dir",
        dest="polycheck_reports_dir",
        metavar="DIR",
        help="where runs write their result sets: DIR/runs/<time>-<run id>/ (Allure results, junit.xml, signoff.md, "
        "signoff.json), DIR/latest pointing at the newest (default: ini polycheck_reports_dir, else reports/)",
    )
    group.addoption(
        "--keep-runs",
        dest="polycheck_keep_runs",
        type=int,
        metavar="N",
        help="how many run folders to keep under DIR/runs; older ones are deleted when a run starts and ends "
        "(default: ini polycheck_keep_runs, else 20); --keep-mb bounds their bytes too",
    )
    group.addoption(
        "--keep-mb",
        dest="polycheck_keep_mb",
        type=int,
        metavar="MB",
        help="how many megabytes (MiB) DIR may take, its runs, audit log and ledger together; the oldest runs are "
        "deleted until it fits, never the current run (default: ini polycheck_keep_mb, else 200)",
    )
    group.addoption(
        "--push-metrics",
        dest="polycheck_push_metrics",
        metavar="URL",
        help="push each check's and the run's outcome to this Prometheus Pushgateway (default: the env's "
        "[probe] pushgateway_url, else nothing is pushed)",
    )
    group.addoption(
        "--location",
        dest="polycheck_location",
        metavar="NAME",
        help="where this probe runs from (a cluster, a region): the `location` label of every metric it pushes, so "
        "alerts can ask how many locations agree (default: the env's [probe] location, else 'default')",
    )
    group.addoption(
        "--ledger",
        dest="polycheck_ledger",
        metavar="PATH",
        help="the journal every synthetic order and payment is written to before it is created, for "
        "`python -m polycheck cleanup` (default: the env's [probe] ledger, reports/leftovers-ENV.jsonl)",
    )
    group.addoption(
        "--concurrency",
        dest="polycheck_concurrency",
        metavar="N",
        type=int,
        help="how many checks marked `concurrent` run at once, ahead of their turn (default: ini "
        "polycheck_concurrency, else 16; 1 runs every check "
        "in its turn; under xdist each worker runs its checks in their turn)",
    )
    gates = parser.getgroup("polycheck-predeploy", "PolyShop pre-deploy gates (pytest -m predeploy)")
    gates.addoption("--now", dest="polycheck_now", metavar="TIME",
                    help="judge the deployment windows at this moment (ISO-8601 with offset, e.g. 2026-11-27T16:00:00+01:00): "
                    "would a deploy be allowed then; default: now")
    gates.addoption("--emergency", dest="polycheck_emergency", metavar="REASON",
                    help="an emergency deploy outside the deployment windows, and why (runbook Section 7)")
    gates.addoption("--sre-approved", dest="polycheck_sre_approved", metavar="NAME",
                    help="the SRE who approved this high-risk change (schema migration, payment provider, Kafka partitions)")
    gates.addoption("--hotfix-approved", dest="polycheck_hotfix_approved", metavar="NAME",
                    help="who approved a hotfix that changes more files than gates.hotfix_max_files (runbook Section 2.2)")
    gates.addoption("--repo-dir", dest="polycheck_repo_dir", metavar="DIR", default=".",
                    help="the git checkout of the change to deploy (default: the current directory)")
    gates.addoption("--base-ref", dest="polycheck_base_ref", metavar="REF",
                    help="the base of the change (e.g. origin/main); without it the change checks skip")
    gates.addoption("--head-ref", dest="polycheck_head_ref", metavar="REF", default="HEAD",
                    help="the head of the change, a branch name for the hotfix rule (e.g. hotfix/payment-timeout); default HEAD")
    gates.addoption("--pr", dest="polycheck_pr", metavar="NUMBER", type=int,
                    help="the pull request being deployed, checked approved and green through the GitHub API")
    gates.addoption("--pr-labels", dest="polycheck_pr_labels", metavar="LABELS",
                    help="the pull request's labels, comma-separated (also read from GitHub when a token is given)")
    group.addoption(
        "--shipped-suites", dest="polycheck_shipped_suites", action="store_true", default=None,
        help="also collect the suites polycheck ships (health, login, order flow, ...) beside the tests of this "
        "folder: a team's repository with checks of its own (default: ini polycheck_shipped_suites; neither set, "
        "only when no test path is named nor configured, as from a folder of no project)",
    )
    for name, (help_text, default) in resolve.INI.items():
        parser.addini(name, help_text, default=default)
    parser.addini("polycheck_shipped_suites", "also collect the suites polycheck ships (see --shipped-suites)",
                  type="bool", default=None)


def env_name(config: pytest.Config) -> str:
    """--env, else the ini value, else $POLYCHECK_ENV, else 'local' (resolve.env_name, as for the commands)."""
    return resolve.env_name(config.getoption("polycheck_env"), config.getini)


def env_dir(config: pytest.Config) -> str:
    return str(resolve.env_dir(config.getoption("polycheck_env_dir"), config.getini, config.rootpath, env_name(config)))


def contracts_dir(config: pytest.Config) -> str:
    return str(resolve.contracts_dir(config.getini, config.rootpath))


def stack_file(config: pytest.Config) -> str | None:
    return resolve.stack_file(config.getoption("polycheck_stack_file"))


def reports_dir(config: pytest.Config) -> str:
    """--reports-dir, else the ini value (relative to the rootdir)."""
    return str(resolve.reports_dir(config.getoption("polycheck_reports_dir"), config.getini, config.rootpath))


def _at_least_one(config: pytest.Config, name: str, flag: str) -> int:
    """The option `flag` (dest polycheck_NAME), else the ini value polycheck_NAME: a whole number, at least 1."""
    given = config.getoption(f"polycheck_{name}")
    if given is None:
        text = config.getini(f"polycheck_{name}")
        try:
            given = int(text)
        except ValueError:
            raise ValueError(f"ini polycheck_{name} must be a whole number, got {text!r}") from None
    if given < 1:
        raise ValueError(f"{flag} must be at least 1, got {given}")
    return int(given)


def keep_runs(config: pytest.Config) -> int:
    """--keep-runs, else the ini value (20)."""
    return _at_least_one(config, "keep_runs", "--keep-runs")


def keep_bytes(config: pytest.Config) -> int:
    """--keep-mb, else the ini value (200), in bytes (MiB)."""
    return _at_least_one(config, "keep_mb", "--keep-mb") * MIB


def concurrency(config: pytest.Config) -> int:
    """--concurrency, else the ini value (16); 1 runs one check at a time."""
    return _at_least_one(config, "concurrency", "--concurrency")


def purpose(config: pytest.Config) -> str:
    """--purpose, else the ini polycheck_purpose, else deploy."""
    value = resolve.option(config.getoption("polycheck_purpose"), config.getini, "polycheck_purpose", default=DEPLOY)
    if value not in PURPOSES:
        raise ValueError(f"ini polycheck_purpose must be one of {', '.join(PURPOSES)}, got {value!r}")
    return value


def allow_not_run(config: pytest.Config) -> tuple[str, ...]:
    """--allow-not-run STEP,...: checked against the runbook steps."""
    given = [part.strip() for part in (config.getoption("polycheck_allow_not_run") or "").split(",") if part.strip()]
    wrong = [step for step in given if step not in STEP_KEYS]
    if wrong:
        raise ValueError(f"--allow-not-run names unknown step(s) {', '.join(wrong)}; steps: {', '.join(STEP_KEYS)}")
    return tuple(given)


def shipped_suites(config: pytest.Config) -> bool:
    """--shipped-suites, else the ini polycheck_shipped_suites; neither set: only when the run names no test path and
    its folder configures none (pytest would collect the bare invocation folder), so `pytest -m synthetic` from any
    folder collects the shipped suites rather than nothing (exit 5)."""
    given = config.getoption("polycheck_shipped_suites")
    if given is not None:
        return bool(given)
    ini = config.getini("polycheck_shipped_suites")
    if ini is not None:
        return bool(ini)
    return config.args_source == pytest.Config.ArgsSource.INVOCATION_DIR
