"""A pytest plugin for the self-tests (`-p tests.support.count_reads`): counts how often the run reads each file
named in $COUNT_READS (os.pathsep-separated) and writes {path: count} as JSON to $COUNT_READS_OUT at the end.
It wraps the real `Path.read_text`, which still does the reading."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

WATCHED = {str(Path(p).resolve()) for p in os.environ.get("COUNT_READS", "").split(os.pathsep) if p}
COUNTS: Counter[str] = Counter()
_read_text = Path.read_text


def _counting_read_text(self: Path, *args: Any, **kwargs: Any) -> str:
    key = str(self.resolve())
    if key in WATCHED:
        COUNTS[key] += 1
    return _read_text(self, *args, **kwargs)


Path.read_text = _counting_read_text  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    Path(os.environ["COUNT_READS_OUT"]).write_text(json.dumps({path: COUNTS[path] for path in sorted(WATCHED)}))
