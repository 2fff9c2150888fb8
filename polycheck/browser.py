"""Which browser the storefront checks drive: Playwright's own, or Debian's chromium where that is all there is."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .failures import CheckFailure

if TYPE_CHECKING:
    from .flow import Diagnosis
    from .shop import Account, ShopApi

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


def diagnose_storefront(
    failures: list[tuple[str, str]], shop: "ShopApi | None" = None, account: "Account | None" = None
) -> Callable[[], "Diagnosis | None"]:
    """Who broke a storefront step: a service whose API call from the page failed or answered 5xx; else, when the
    synthetic account cannot sign in through the API either, auth; else nothing (the storefront itself)."""

    def diagnose() -> "Diagnosis | None":
        if failures:
            service, what = failures[0]
            return service, f"the page's request {what}" + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
        if shop is not None and account is not None:
            try:
                shop.signed_in(shop.login(account)["access_token"]).me()
            except CheckFailure as exc:  # the API cannot sign in either: its culprit (auth), not the storefront
                return (exc.culprits or ("auth",))[0], f"signing in through the API fails too: {str(exc.msg).splitlines()[0]}"
        return None

    return diagnose
