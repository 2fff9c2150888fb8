"""Runbook Step 4 "Auth login test" and Section 6 synthetic "login", through the gateway's API."""

from __future__ import annotations


import pytest

from polycheck.core.config import EnvConfig
from polycheck.checks.flow import step
from polycheck.clients.shop import Account, ShopApi
from polycheck.clients.auth import expect_rejected, forge

pytestmark = [pytest.mark.smoke, pytest.mark.synthetic, pytest.mark.concurrent, pytest.mark.rollback("auth")]


def test_login_returns_a_sane_bearer_token(shop: ShopApi, synthetic_account: Account, env_config: EnvConfig) -> None:
    """Runbook Step 4: the synthetic account logs in and gets a Bearer token with a sane lifetime."""
    with step(f"log in as {synthetic_account.email}", blame="auth"):
        token = shop.login(synthetic_account)
    low, high = env_config.thresholds.token_min_ttl_seconds, env_config.thresholds.token_max_ttl_seconds
    with step("the token is a Bearer token with a sane lifetime", blame="auth"):
        _sane(token, low, high)


def _sane(token: dict, low: int, high: int) -> None:
    assert token["token_type"] == "Bearer", f"token_type is {token['token_type']!r}, expected 'Bearer'"
    assert isinstance(token["expires_in"], int) and low <= token["expires_in"] <= high, (
        f"expires_in is {token['expires_in']!r} s, expected {low}..{high} s: sessions would "
        + ("expire at once" if isinstance(token["expires_in"], int) and token["expires_in"] < low else "outlive the policy")
    )


def test_me_returns_the_synthetic_user(signed_in_shop: ShopApi, synthetic_account: Account) -> None:
    """Runbook Step 4: the token identifies the synthetic user on /api/auth/me."""
    with step("read /api/auth/me with the fresh token", blame="auth"):
        me = signed_in_shop.me()
        assert me["email"] == synthetic_account.email, f"/me is {me['email']!r}, expected {synthetic_account.email!r}"
        assert me["synthetic"] is True, f"/me says synthetic={me['synthetic']!r} for a synthetic account: its data would pollute analytics"


def test_wrong_password_is_rejected(shop: ShopApi, synthetic_account: Account) -> None:
    """Runbook Step 4: a wrong password is 401 invalid_credentials."""
    wrong = Account(synthetic_account.email, synthetic_account.password + "-wrong")
    response = shop.raw("POST", "/api/auth/login", json_body={"email": wrong.email, "password": wrong.password})
    expect_rejected(response, "a wrong password", error="invalid_credentials")


@pytest.mark.parametrize("tampering", ["forged-signature", "forged-claims", "malformed"])
def test_forged_or_malformed_token_is_rejected(signed_in_shop: ShopApi, tampering: str) -> None:
    """Security: /api/auth/me refuses a token that was tampered with or is not a token."""
    assert signed_in_shop.token
    bad = forge(signed_in_shop.token, tampering)
    response = signed_in_shop.signed_in(bad).raw("GET", "/api/auth/me")
    expect_rejected(response, f"a {tampering.replace('-', ' ')} token")


def test_expired_token_is_rejected(shop: ShopApi, expired_token: str) -> None:
    """Security: /api/auth/me refuses an expired token."""
    response = shop.signed_in(expired_token).raw("GET", "/api/auth/me")
    expect_rejected(response, "an expired token")
