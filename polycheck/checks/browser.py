"""Which browser the storefront checks drive: Playwright's own, or Debian's chromium where that is all there is."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from polycheck.core.failures import CheckFailure
from polycheck.core.redact import register_secret

if TYPE_CHECKING:
    from polycheck.checks.flow import Diagnosis
    from polycheck.clients.shop import Account, ShopApi

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
    failures: list[tuple[str, str]], shop: ShopApi | None = None, account: Account | None = None
) -> Callable[[], Diagnosis | None]:
    """Who broke a storefront step: a service whose API call from the page failed or answered 5xx; else what the
    page shows read from the API the page reads (an upstream's wrong or empty answer is never the gateway's): auth
    when the synthetic account cannot sign in, or /me names another user; product when the catalogue lists
    nothing; else nothing (the storefront itself)."""

    def diagnose() -> Diagnosis | None:
        if failures:
            service, what = failures[0]
            return service, f"the page's request {what}" + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
        if shop is None or account is None:
            return None
        try:
            me = shop.signed_in(shop.login(account)["access_token"]).me()
        except CheckFailure as exc:  # the API cannot sign in either: its culprit (auth), not the storefront
            return (exc.culprits or ("auth",))[0], f"signing in through the API fails too: {str(exc.msg).splitlines()[0]}"
        if me.get("email") != account.email:
            return "auth", f"/api/auth/me answers {me.get('email')!r} for the token of {account.email}: the page shows what auth says"
        try:
            listed = shop.products(limit=1)
        except CheckFailure as exc:
            return (exc.culprits or ("product",))[0], f"the product list through the API fails too: {str(exc.msg).splitlines()[0]}"
        if not listed.get("items"):
            return "product", f"/api/products lists no product (total {listed.get('total')!r}): the page has nothing to show"
        return None

    return diagnose


# -- secrets and the Playwright trace ------------------------------------------------------------------
LOGIN_PATH = "/api/auth/login"  # polyshop-api.md: where the storefront posts the credentials
PASSWORD_INPUTS = "input[type=password]"
_recorders: dict[int, TraceRecorder] = {}


class TraceRecorder:
    """Playwright tracing of one check (screenshots and DOM snapshots), in chunks: paused while a secret is typed
    and sent, so neither the fill action, nor the request carrying it, nor a snapshot taken meanwhile is in it.
    Every chunk kept is scrubbed (`scrub`) before it is attached: password inputs blanked, secrets replaced."""

    def __init__(self, context: Any, folder: Path) -> None:
        self.context, self.folder = context, folder
        self.chunks: list[Path] = []
        self.recording = False

    def start(self) -> TraceRecorder:
        self.context.tracing.start(screenshots=True, snapshots=True)
        self.recording = True
        _recorders[id(self.context)] = self
        return self

    def _next_path(self) -> Path:
        return self.folder / f"playwright-trace-{len(self.chunks) + 1}.zip"

    @contextmanager
    def paused(self) -> Iterator[None]:
        if not self.recording:
            yield
            return
        path = self._next_path()
        self.context.tracing.stop_chunk(path=str(path))
        self.chunks.append(path)
        self.recording = False
        try:
            yield
        finally:
            self.context.tracing.start_chunk()
            self.recording = True

    def stop(self, keep: bool) -> list[Path]:
        """Stop tracing; the chunks, scrubbed, when `keep` (a failed check), else none."""
        _recorders.pop(id(self.context), None)
        if self.recording:
            path = self._next_path()
            self.context.tracing.stop(path=str(path) if keep else None)
            if keep:
                self.chunks.append(path)
            self.recording = False
        else:
            self.context.tracing.stop()
        if not keep:
            return []
        from polycheck.core.scrub import scrub_file  # file scrubbing only for what is kept

        kept = [chunk for chunk in self.chunks if chunk.is_file()]
        for chunk in kept:
            scrub_file(chunk)
        return kept


@contextmanager
def trace_paused(page: Any) -> Iterator[None]:
    """Playwright tracing of `page`'s context paused for the block (nothing when it is not traced)."""
    recorder = _recorders.get(id(page.context))
    if recorder is None:
        yield
        return
    with recorder.paused():
        yield


def sign_in(page: Any, gateway: str, account: Account) -> None:
    """Sign in at the storefront's /login. The password is typed and sent with the trace paused, and the token
    the storefront gets back is registered as a secret, so neither shows in any report."""
    page.goto(f"{gateway.rstrip('/')}/login")
    page.get_by_test_id("email").fill(account.email)
    with trace_paused(page):
        page.get_by_test_id("password").fill(account.password)
        _submit_and_settle(page)


def _submit_and_settle(page: Any) -> None:
    """Click submit and wait (untraced) until the login request has its answer; a missing answer is left to the
    checks that follow, which say what the page shows."""
    from playwright.sync_api import Error as PlaywrightError

    clicked = False
    try:
        with page.expect_response(lambda r: r.request.method == "POST" and urlsplit(r.url).path == LOGIN_PATH) as answer:
            page.get_by_test_id("submit").click()
            clicked = True
        response = answer.value
        response.finished()
        if response.ok:
            body = response.json()
            if isinstance(body, dict):
                register_secret(body.get("access_token"))
    except PlaywrightError:
        if not clicked:
            raise
        # no answer to the login (or not JSON): the next step fails with what the page shows


def masked_screenshot(page: Any) -> bytes:
    """A full-page screenshot with every password input masked."""
    return page.screenshot(full_page=True, mask=[page.locator(PASSWORD_INPUTS)])
