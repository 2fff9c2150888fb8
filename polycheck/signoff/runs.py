"""One run, one result set: `reports/runs/<UTC time>-<run id>/`, `reports/latest` pointing at the newest finished one.

The folder name sorts by time, so the newest is the last. A run is *finished* when its `signoff.json`
exists. Old runs are pruned by count when a run starts (never one still running: an unfinished run
younger than a day is kept).
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, UTC
from pathlib import Path

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


def previous_finished(reports_dir: Path, current: Path) -> Path | None:
    """The newest finished run before `current`."""
    earlier = [f for f in run_folders(reports_dir) if f.name < current.name and is_finished(f)]
    return earlier[-1] if earlier else None


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


def prune(reports_dir: Path, keep: int, *, current: Path | None = None, now: float | None = None) -> list[Path]:
    """Delete the oldest run folders beyond `keep` (the current run and unfinished recent runs are never deleted)."""
    now = time.time() if now is None else now
    folders = [f for f in run_folders(reports_dir) if f != current]
    excess = len(folders) + (1 if current is not None else 0) - max(keep, 1)
    removed: list[Path] = []
    for folder in folders:
        if excess <= 0:
            break
        if not is_finished(folder) and now - folder.stat().st_mtime < UNFINISHED_GRACE_SECONDS:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
        excess -= 1
    return removed
