"""How an option of polycheck is resolved: the command line, then the ini, then the environment, then the default.

One rule for the pytest plugin (its ini values through `pytest.Config.getini`) and for the `python -m polycheck`
commands (`cleanup`, `report`, `serve`), which read the same ini values from the checkout's pytest config file
with `ini_file`, so `polycheck_env = "staging"` in `[tool.pytest.ini_options]` means staging for all of them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import iniconfig  # pytest's own ini parser, installed with it

from polycheck.core.shipped import shipped

DEFAULT_ENV = "local"
DEFAULT_REPORTS = "reports"  # the folder the relative defaults of the audit log and the ledger name

#: The ini twins of the options: name -> (help, default). The plugin registers them with `parser.addini`.
INI: dict[str, tuple[str, str]] = {
    "polycheck_env": ("default environment when --env is not given", ""),
    "polycheck_env_dir": ("folder of the environment files, relative to the rootdir", "envs"),
    "polycheck_contracts_dir": ("folder of the contract files, relative to the rootdir", "contracts"),
    "polycheck_reports_dir": ("folder of the runs' result sets, relative to the rootdir", "reports"),
    "polycheck_keep_runs": ("how many run folders to keep", "20"),
    "polycheck_keep_mb": ("how many megabytes (MiB) the reports folder may take", "200"),
    "polycheck_concurrency": ("how many checks marked concurrent run at once", "16"),
    "polycheck_purpose": ("why runs run (deploy, canary, probe, gate): who may roll back", ""),
}

Ini = Callable[[str], Any]  # an ini value by name, its default when the file does not set it (pytest's getini)


def option(cli: Any, ini: Ini, name: str, *, variable: str = "", default: str = "",
           environ: Mapping[str, str] | None = None) -> str:
    """`cli` if given, else the ini value `name`, else $`variable`, else `default`."""
    environ = os.environ if environ is None else environ
    return str(cli or ini(name) or (environ.get(variable) if variable else "") or default)


def env_name(cli: str | None, ini: Ini, environ: Mapping[str, str] | None = None) -> str:
    """--env, else the ini polycheck_env, else $POLYCHECK_ENV, else 'local'."""
    return option(cli, ini, "polycheck_env", variable="POLYCHECK_ENV", default=DEFAULT_ENV, environ=environ)


def env_dir(cli: str | None, ini: Ini, root: Path, name: str = "") -> Path:
    """--env-dir (as given), else the ini polycheck_env_dir relative to the root; when the environment `name` has
    no file there, the folder of the environments polycheck ships (envs/: local, staging, prod) if it has one."""
    configured = Path(cli) if cli else root / str(ini("polycheck_env_dir"))
    if name and not (configured / f"{name}.toml").is_file():
        ours = shipped("envs")
        if (ours / f"{name}.toml").is_file():
            return ours
    return configured


def contracts_dir(ini: Ini, root: Path) -> Path:
    """The ini polycheck_contracts_dir relative to the root; the contracts polycheck ships when that folder does
    not exist (a team's repository that has none of its own)."""
    configured = root / str(ini("polycheck_contracts_dir"))
    return configured if configured.is_dir() else shipped("contracts")


def reports_dir(cli: str | None, ini: Ini, root: Path) -> Path:
    """--reports-dir (as given), else the ini polycheck_reports_dir relative to the root."""
    return Path(cli) if cli else root / str(ini("polycheck_reports_dir"))


def in_reports(path: str, reports: Path | str | None) -> Path:
    """A relative `path` under `reports/` (the defaults of rollback.audit_log and probe.ledger) lives in the run's
    reports folder `reports` (--reports-dir, else the ini polycheck_reports_dir); any other path is kept as given
    (relative ones start at the rootdir)."""
    given = Path(path)
    if reports and not given.is_absolute() and given.parts[:1] == (DEFAULT_REPORTS,):
        return Path(reports).joinpath(*given.parts[1:])
    return given


def stack_file(cli: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """--stack-file, else $POLYCHECK_STACK_FILE (no ini twin: a running stack is not a setting of the checkout)."""
    environ = os.environ if environ is None else environ
    return cli or environ.get("POLYCHECK_STACK_FILE") or None


def ini_file(root: Path) -> Ini:
    """The ini values pytest reads in `root` (the first of its config files that configures pytest, in pytest's
    order), with the defaults of `INI` where the file sets none. An unknown name raises KeyError; a malformed
    file, ValueError."""
    values = _file_values(root)

    def get(name: str) -> Any:
        default = INI[name][1]
        value = values.get(name)
        return default if value is None else value

    return get


def _file_values(root: Path) -> dict[str, Any]:
    for name, load in _LOADERS.items():
        path = root / name
        if path.is_file():
            found = load(path)
            if found is not None:
                return found
    return {}


def _toml(path: Path, table: tuple[str, ...]) -> dict[str, Any] | None:
    try:
        data: Any = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    for key in table:
        data = data.get(key) if isinstance(data, dict) else None
    if not isinstance(data, dict):
        return None
    return {k: v for k, v in data.get("ini_options", data).items() if not isinstance(v, dict)}


def _ini(path: Path, section: str, always: bool) -> dict[str, Any] | None:
    try:
        parsed = iniconfig.IniConfig(str(path))
    except iniconfig.ParseError as exc:
        raise ValueError(f"{path} is not a valid ini file: {exc}") from None
    if section in parsed:
        return dict(parsed[section].items())
    return {} if always else None


_LOADERS: dict[str, Callable[[Path], dict[str, Any] | None]] = {  # pytest's own order (findpaths)
    "pytest.toml": lambda p: _toml(p, ("pytest",)),
    ".pytest.toml": lambda p: _toml(p, ("pytest",)),
    "pytest.ini": lambda p: _ini(p, "pytest", always=True),
    ".pytest.ini": lambda p: _ini(p, "pytest", always=True),
    "pyproject.toml": lambda p: _toml(p, ("tool", "pytest")),
    "tox.ini": lambda p: _ini(p, "pytest", always=False),
    "setup.cfg": lambda p: _ini(p, "tool:pytest", always=False),
}
