"""Which browser the storefront checks drive: Playwright's own, or Debian's chromium where that is all there is."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

SYSTEM_CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_FLAGS = ("--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu")


@dataclass(frozen=True)
class BrowserChoice:
    executable: str | None  # None: Playwright's bundled browser
    args: tuple[str, ...]
    reason: str


def choose_chromium(bundled_path: str | None, environ: dict[str, str] | os._Environ[str] = os.environ) -> BrowserChoice | None:
    """$POLYCHECK_CHROMIUM, else Playwright's bundled chromium, else the system chromium; None when there is none."""
    named = environ.get("POLYCHECK_CHROMIUM")
    if named:
        return BrowserChoice(named, CHROMIUM_FLAGS, f"$POLYCHECK_CHROMIUM={named}")
    if bundled_path and Path(bundled_path).exists():
        return BrowserChoice(None, (), f"Playwright's chromium {bundled_path}")
    for candidate in SYSTEM_CHROMIUM:
        if Path(candidate).exists() or shutil.which(Path(candidate).name) == candidate:
            return BrowserChoice(candidate, CHROMIUM_FLAGS, f"system chromium {candidate}")
    return None


def in_ci(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    return environ.get("CI", "").lower() in ("1", "true", "yes")
