"""One run, one result set: `reports/runs/<UTC time>-<run id>/`, `reports/latest` pointing at the newest finished one.

The folder name sorts by time, so the newest is the last. A run is *finished* when its `signoff.json`
exists. Old runs are pruned, oldest first, when a run starts and again when it ends, until at most `keep`
folders are left and the reports folder takes at most `keep_bytes` (never the current run, never one still
running: an unfinished run younger than a day is kept).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

RUNS = "runs"
LATEST = "latest"
SIGNOFF_JSON = "signoff.json"
ALLURE_RESULTS = "allure-results"
UNFINISHED_GRACE_SECONDS = 24 * 3600


def run_folder_name(run_id: str, started: float) -> str:
    stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{run_id}"


def create_run_folder(reports_dir: Path, run_id: str, started: float) -> Path:
    folder = reports_dir / RUNS / run_folder_name(run_id, started)
    (folder / ALLURE_RESULTS).mkdir(parents=True, exist_ok=True)
    return folder


def run_folders(reports_dir: Path) -> list[Path]:
    """Every run folder, oldest first."""
    root = reports_dir / RUNS
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_finished(folder: Path) -> bool:
    return (folder / SIGNOFF_JSON).is_file()


def latest_run(reports_dir: Path) -> Path | None:
    """The run `reports/latest` points at, else the newest finished run."""
    link = reports_dir / LATEST
    if link.is_symlink() or link.is_dir():
        target = link.resolve()
        if target.is_dir():
            return target
    finished = [f for f in run_folders(reports_dir) if is_finished(f)]
    return finished[-1] if finished else None


def signoff_data(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / SIGNOFF_JSON).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def previous_finished(reports_dir: Path, current: Path, same: dict[str, str] | None = None) -> Path | None:
    """The newest finished run before `current`; with `same`, only a run whose signoff.json has those values (the
    environment and the selection: a trend of `-m smoke --env prod` never mixes in a staging run or a probe's)."""
    for folder in reversed(run_folders(reports_dir)):
        if folder.name >= current.name or not is_finished(folder):
            continue
        if same is None:
            return folder
        data = signoff_data(folder)
        if all(data.get(key) == value for key, value in same.items()):
            return folder
    return None


def point_latest(reports_dir: Path, folder: Path) -> None:
    """Atomically make `reports/latest` a relative symlink to `folder`."""
    link = reports_dir / LATEST
    temporary = reports_dir / f".{LATEST}.{os.getpid()}"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(os.path.relpath(folder, reports_dir))
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)  # a folder left by an older layout
    os.replace(temporary, link)


def tree_bytes(folder: Path) -> int:
    """The bytes `folder` takes, as `du -sb` counts them: the folder, and every folder and file under it (symlinks
    not followed; a file gone meanwhile counts 0)."""
    total = _size(str(folder))
    for root, dirs, files in os.walk(folder):
        total += sum(_size(os.path.join(root, name)) for name in dirs + files)
    return total


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def runs_bytes(reports_dir: Path) -> int:
    """The bytes of every run folder under `reports_dir/runs`."""
    return sum(tree_bytes(folder) for folder in run_folders(reports_dir))


def prune(reports_dir: Path, keep: int, *, keep_bytes: int | None = None, current: Path | None = None,
          now: float | None = None) -> list[Path]:
    """Delete the oldest run folders while more than `keep` are left or, with `keep_bytes`, while the reports folder
    (every run, the current one included, and what else lives there: the audit log, a ledger) takes more than
    `keep_bytes`. Only run folders are deleted; the current run and unfinished recent runs never, so the current
    run alone may exceed the limit."""
    now = time.time() if now is None else now
    folders = [f for f in run_folders(reports_dir) if f != current]
    count = len(folders) + (1 if current is not None else 0)
    sizes = {folder: tree_bytes(folder) for folder in folders} if keep_bytes is not None else {}
    total = tree_bytes(reports_dir) if keep_bytes is not None else 0
    removed: list[Path] = []
    for folder in folders:
        if count <= max(keep, 1) and (keep_bytes is None or total <= keep_bytes):
            break
        if not is_finished(folder) and now - folder.stat().st_mtime < UNFINISHED_GRACE_SECONDS:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
        count -= 1
        total -= sizes.get(folder, 0)
    return removed
