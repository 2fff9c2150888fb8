"""How a check fails: with a message an on-call can act on, and no library traceback."""

from __future__ import annotations

from typing import NoReturn

import pytest


def check_failed(message: str) -> NoReturn:
    """Fail the current check with `message` alone (pytest prints no traceback for it)."""
    __tracebackhide__ = True
    pytest.fail(message, pytrace=False)
