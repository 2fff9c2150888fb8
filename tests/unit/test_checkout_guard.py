"""The guard that keeps the self-tests' output out of the checkout sees what a run left there."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.checkout_guard import written


def test_a_run_folder_left_in_reports_is_seen_and_tool_caches_are_not(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "README.md").write_text("what runs write here\n")
    (tmp_path / ".gitignore").write_text("reports/*\n!reports/README.md\n.venv\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    before = written(tmp_path)
    (tmp_path / ".venv").mkdir()
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_text("")
    assert written(tmp_path) == before
    (tmp_path / "reports" / "runs").mkdir()
    (tmp_path / "reports" / "runs" / "signoff.json").write_text("{}")
    (tmp_path / "leftovers-local.jsonl").write_text("")
    assert written(tmp_path) - before == {"reports/runs/signoff.json", "leftovers-local.jsonl"}
    seen = written(tmp_path)
    (tmp_path / "reports" / "runs" / "second").mkdir()
    (tmp_path / "reports" / "runs" / "second" / "signoff.json").write_text("{}")
    assert written(tmp_path) - seen == {"reports/runs/second/signoff.json"}, "a new run inside an existing runs/ folder"
    (tmp_path / "reports" / "runs" / "killed" / "allure-results").mkdir(parents=True)
    assert written(tmp_path) - seen == {"reports/runs/second/signoff.json", "reports/runs/killed/allure-results/"}, \
        "the empty folder a killed run leaves"
