"""`--ledger PATH` works like `--ledger=PATH`, whatever PATH is.

pytest finds its rootdir and config file before any plugin's options are known (pytest-dev/pytest#8846): in
`--ledger /var/lib/polycheck/leftovers.jsonl`, once that file exists, the path reads as a test path, the rootdir
becomes /var/lib/polycheck, the project's config file (markers, testpaths, addopts) is not read, and its
conftest.py not loaded. The same holds for every option of every plugin (`--env-dir DIR`, `--alluredir DIR`).

Once the plugins are loaded the options are known, and this module sees which words pytest took for test paths
although they are option values. When that changed the rootdir or the config file, the run starts again at once,
in the same process (exec: same PID, same signals, nothing started yet), with each such option written
`--opt=VALUE`, which pytest reads correctly. Called from code (`pytest.main([...])`) instead of a command line,
it stops with a usage error naming the form to use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

RESTARTED = "POLYCHECK_OPTIONS_REWRITTEN"  # set across the exec: never restart twice


def misread_values(args: Sequence[str], positionals: Sequence[str], invocation_dir: Path) -> list[int]:
    """Indexes of the words in `args` that are the value of the long option before them (`--opt VALUE`) but
    look like a test path to pytest's first reading: an existing path that the full reading does not count
    among the test paths `positionals`."""
    real = list(positionals)
    found = []
    for i in range(1, len(args)):
        word, before = args[i], args[i - 1]
        if word.startswith("-") or not before.startswith("--") or "=" in before or before == "--":
            continue
        if not _exists(invocation_dir, word):
            continue
        if word in real:
            real.remove(word)  # one occurrence is a real test path
            continue
        found.append(i)
    return found


def joined(args: Sequence[str], indexes: Sequence[int]) -> list[str]:
    """`args` with each misread value joined to its option: `--opt VALUE` -> `--opt=VALUE`."""
    out: list[str] = []
    skip = set(indexes)
    for i, word in enumerate(args):
        if i in skip:
            continue
        out.append(f"{word}={args[i + 1]}" if i + 1 in skip else word)
    return out


def _exists(invocation_dir: Path, word: str) -> bool:
    path = Path(word.split("::", 1)[0])
    try:
        return (path if path.is_absolute() else invocation_dir / path).exists()
    except OSError:
        return False


def _setup_changes(config: pytest.Config) -> bool:
    """Whether the rootdir or config file pytest found differ from those of the arguments read correctly."""
    try:
        from _pytest.config.findpaths import determine_setup  # the function pytest used (private, stable since 6)
    except ImportError:  # pragma: no cover - a future pytest: restart whenever a value was misread
        return True
    ns = config.known_args_namespace
    try:
        rootpath, inipath, *_ = determine_setup(
            inifile=ns.inifilename, override_ini=ns.override_ini, args=list(ns.file_or_dir),
            rootdir_cmd_arg=ns.rootdir or None, invocation_dir=config.invocation_params.dir)
    except TypeError:  # pragma: no cover - its signature changed
        return True
    return (rootpath, inipath) != (config.rootpath, config.inipath)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    if os.environ.pop(RESTARTED, None):
        return
    given = list(early_config.invocation_params.args)
    indexes = misread_values(given, early_config.known_args_namespace.file_or_dir, early_config.invocation_params.dir)
    if not indexes or not _setup_changes(early_config):
        return
    fixed = joined(given, indexes)
    options = ", ".join(f"{given[i - 1]}={given[i]}" for i in indexes)
    if given != sys.argv[1:]:
        raise pytest.UsageError(
            f"polycheck: pytest reads {', '.join(given[i] for i in indexes)} as a test path and looks for its "
            f"configuration there (pytest-dev/pytest#8846): write {options}")
    capture = early_config.pluginmanager.getplugin("capturemanager")
    if capture is not None:  # pytest captures fds 1 and 2 while it loads conftests: give them back first
        capture.stop_global_capturing()
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[RESTARTED] = "1"
    interpreter = sys.orig_argv[1:len(sys.orig_argv) - len(sys.argv) + 1]  # e.g. [".venv/bin/pytest"] or ["-m", "pytest"]
    os.execv(sys.executable, [sys.executable, *interpreter, *fixed])
