"""Redaction: Authorization, passwords and tokens never reach a message or an attachment."""

from __future__ import annotations

import json

from polycheck.clients.http import Exchange
from polycheck.core.redact import REDACTED, redact_data, redact_headers, redact_text


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
