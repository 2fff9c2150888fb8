"""Redaction: Authorization, passwords and tokens never reach a message or an attachment."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import patch

import pytest

from polycheck.checks.browser import TraceRecorder, choose_chromium, in_ci
from polycheck.clients.http import Exchange
from polycheck.core.redact import (REDACTED, forget_secrets, known_secrets, redact_bytes, redact_data, redact_headers,
                                   redact_secrets, redact_text, register_secret)
from polycheck.core.scrub import scrub_file


def test_secret_headers_are_redacted_case_insensitively() -> None:
    headers = redact_headers({"Authorization": "Bearer abc.def", "cookie": "s=1", "X-Request-ID": "r1"})
    assert headers == {"Authorization": REDACTED, "cookie": REDACTED, "X-Request-ID": "r1"}


def test_nested_json_secrets_are_redacted() -> None:
    data = {"email": "a@synthetic.polyshop.test", "password": "pw", "nested": [{"access_token": "t", "id": 1}]}
    assert redact_data(data) == {"email": "a@synthetic.polyshop.test", "password": REDACTED, "nested": [{"access_token": REDACTED, "id": 1}]}


def test_json_text_is_redacted_structurally() -> None:
    text = json.dumps({"access_token": "eyJ.abc.def", "token_type": "Bearer", "expires_in": 900})
    out = json.loads(redact_text(text))
    assert out["access_token"] == REDACTED and out["expires_in"] == 900


def test_free_text_bearer_and_key_values_are_redacted() -> None:
    text = "sent Authorization: Bearer eyJhbGci.payload.sig and password=hunter2&x=1 token: abc"
    out = redact_text(text)
    assert "eyJhbGci" not in out and "hunter2" not in out and "abc" not in out.split("token:")[1]
    assert "Bearer [REDACTED]" in out and "x=1" in out


def test_exchange_attachment_carries_no_secret() -> None:
    exchange = Exchange(
        service="auth", method="POST", url="http://auth/api/auth/login",
        request_headers={"Authorization": "Bearer sekret", "X-Synthetic": "true"},
        request_body=json.dumps(redact_data({"email": "a@synthetic.polyshop.test", "password": "hunter2"})),
        request_id="r", trace_id="t", status=200,
        response_body=json.dumps({"access_token": "tok.en", "token_type": "Bearer"}),
    )
    text = exchange.as_text()
    assert "sekret" not in text and "hunter2" not in text and "tok.en" not in text
    assert "X-Synthetic: true" in text and "HTTP 200" in text


# -- issue #17 item 7: secrets of any length; redaction rewrites nothing but the secret; traces blanked in any order --
@pytest.fixture
def registry() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


def test_a_short_secret_is_registered_and_replaced_wherever_it_stands_whole(registry: None) -> None:
    register_secret("hunt2")
    assert known_secrets() == ("hunt2",)
    aria = '- textbox "Password": hunt2\n- button "Sign in"'
    assert redact_secrets(aria) == '- textbox "Password": [REDACTED]\n- button "Sign in"'
    assert redact_secrets(json.dumps({"snapshot": aria})) == json.dumps({"snapshot": aria.replace("hunt2", REDACTED)})
    assert redact_secrets("password=hunt2&next=%2Fproducts") == "password=[REDACTED]&next=%2Fproducts"
    assert redact_secrets("body=email%3Dx%26password%3Dhunt2%26a") == "body=email%3Dx%26password%3D[REDACTED]%26a"
    assert redact_bytes(b'{"__playwright_value_":"hunt2"}') == b'{"__playwright_value_":"[REDACTED]"}'


def test_redaction_never_rewrites_text_that_is_not_the_secret(registry: None) -> None:
    register_secret("shop1")
    register_secret("12345")
    untouched = ["workshop1 failed", "shop12 is the SKU", "order_shop1_x", "id 1234567, total 123456",
                 "sku-shop1x", '{"trace_id": "a12345b"}', "ärshop1"]
    for text in untouched:
        assert redact_secrets(text) == text and redact_text(text) == text, text
        assert redact_bytes(text.encode()) == text.encode(), text
    assert redact_secrets("shop1: 12345.") == f"{REDACTED}: {REDACTED}."


def _record_login_trace(folder: Path, password: str) -> list[Path]:
    """A trace recorded by the pinned Playwright of a page whose two password inputs write `type` before and after
    other attributes, typed into with tracing paused (as sign_in does), then snapshotted by the actions that follow."""
    from playwright.sync_api import sync_playwright

    choice = choose_chromium(None)
    if choice is None:
        if in_ci():
            pytest.fail("no chromium for the trace scrubbing test — CI must install one")
        pytest.skip("no chromium to record a Playwright trace with (apt-get install chromium)")
    page_html = ('<form><input type="password" data-testid="password"><input id="again" name="again" type="password">'
                 '<input data-testid="email" type="text"><button type="button">Sign in</button></form>')
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=choice.executable, args=list(choice.args), headless=True)
        try:
            context = browser.new_context()
            page = context.new_page()
            recorder = TraceRecorder(context, folder).start()
            page.set_content(page_html)
            with recorder.paused():
                page.get_by_test_id("password").fill(password)
                page.locator("#again").fill(password)
            page.get_by_test_id("email").fill("probe@synthetic.polyshop.test")
            page.get_by_role("button").click()
            return recorder.stop(keep=True)
        finally:
            browser.close()


def test_password_inputs_of_a_real_playwright_trace_are_blanked_whatever_the_attribute_order(registry: None, tmp_path: Path) -> None:
    password = "not-registered-pw"  # not known to the registry: the blanking alone must keep it out
    raw = tmp_path / "raw"
    raw.mkdir()
    with patch("polycheck.core.scrub.scrub_file", lambda path: False):  # keep the chunks as Playwright wrote them
        chunks = _record_login_trace(raw, password)
    written = "".join(_members(chunk) for chunk in chunks)
    assert password in written  # the snapshots after the paused fill do carry the typed value
    assert re.search(r'\["INPUT",\{"__playwright_value_":"' + password + '","type":"password"', written), "Playwright's order"
    assert re.search(r'"__playwright_value_":"' + password + '","id":"again","name":"again","type":"password"', written)
    for chunk in chunks:
        scrub_file(chunk)
    scrubbed = "".join(_members(chunk) for chunk in chunks)
    assert password not in scrubbed
    assert '"__playwright_value_":"probe@synthetic.polyshop.test"' in scrubbed  # the email field is left as it was
    for chunk in chunks:
        with zipfile.ZipFile(chunk) as archive:
            for line in archive.read("trace.trace").decode().splitlines():
                json.loads(line)  # still a trace Playwright can show


def _members(chunk: Path) -> str:
    with zipfile.ZipFile(chunk) as archive:
        return "".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
