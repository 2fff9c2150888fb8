"""`polycheck COMMAND` (or `python -m polycheck COMMAND`): the run itself and the commands beside it."""

from __future__ import annotations

import os
import sys

USAGE = (
    "usage: polycheck --version\n"
    "       polycheck run [PYTEST_ARGS]   the checks: exactly `python -m pytest PYTEST_ARGS` (polycheck run --help: every option)\n"
    "       polycheck serve [--env NAME] [--port N] [--root DIR] [--marker EXPR] [--token-file PATH] [--workers N] [--queue N]\n"
    "                       [--max-body BYTES] [--read-timeout S] [-- PYTEST_ARGS]   (token: --token-file or $POLYCHECK_SERVE_TOKEN)\n"
    "       polycheck report [--reports-dir DIR] [--root DIR] [--run RUN_DIR] [--output DIR]\n"
    "       polycheck cleanup [--env NAME] [--root DIR] [--dry-run] [--older-than 30m] [--ledger PATH] [--stack-file PATH]\n"
    "       polycheck decisions [--env NAME] [--audit-log PATH] [--root DIR] [--json]   were the rollbacks right?"
)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        ours = installed("polyshop-checks")
    except PackageNotFoundError:  # a checkout on PYTHONPATH, never installed
        ours = "(not installed)"
    import pytest

    return f"polycheck {ours} (polyshop-checks; pytest {pytest.__version__}, Python {sys.version.split()[0]})"


def run(args: list[str]) -> int:
    """The pytest invocation, in this process's place (same PID and signals: a pod's SIGTERM reaches pytest)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "pytest", *args])
    return 0  # pragma: no cover - execv does not return


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in ("--version", "-V"):
        print(version())
        return 0
    if command == "run":
        return run(rest)
    if command == "serve":
        from polycheck.serve import main as serve

        return serve(rest)
    if command == "report":
        from polycheck.signoff.html import main as report

        return report(rest)
    if command == "decisions":
        from polycheck.rollback.review import main as decisions

        return decisions(rest)
    if command == "cleanup":
        from polycheck.scope.cleanup import main as cleanup

        return cleanup(rest)
    print(f"polycheck: unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


def console() -> None:
    """The `polycheck` console command (pyproject.toml [project.scripts])."""
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
