"""`python -m polycheck COMMAND`: the commands beside the pytest plugin."""

from __future__ import annotations

import sys

USAGE = (
    "usage: python -m polycheck serve [--env NAME] [--port N] [--root DIR] [--marker EXPR] [--token-file PATH] [--workers N] [--queue N]\n"
    "                                 [--max-body BYTES] [--read-timeout S] [-- PYTEST_ARGS]   (token: --token-file or $POLYCHECK_SERVE_TOKEN)\n"
    "       python -m polycheck report [--reports-dir DIR] [--root DIR] [--run RUN_DIR] [--output DIR]\n"
    "       python -m polycheck cleanup [--env NAME] [--root DIR] [--dry-run] [--older-than 30m] [--ledger PATH] [--stack-file PATH]"
)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        from polycheck.serve import main as serve

        return serve(rest)
    if command == "report":
        from polycheck.signoff.html import main as report

        return report(rest)
    if command == "cleanup":
        from polycheck.scope.cleanup import main as cleanup

        return cleanup(rest)
    print(f"polycheck: unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
