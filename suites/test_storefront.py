"""Runbook Step 4 "Auth login test" in a real browser, and "Product listing" as a customer sees it."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from polycheck.checks.browser import diagnose_storefront, sign_in
from polycheck.core.config import EnvConfig
from polycheck.checks.flow import step
from polycheck.clients.shop import Account, ShopApi

pytestmark = [pytest.mark.smoke, pytest.mark.synthetic, pytest.mark.rollback("gateway"), pytest.mark.browser]


def test_customer_signs_in_and_sees_products(
    storefront: Any, page_errors: list[str], page_failures: list[tuple[str, str]], synthetic_account: Account,
    env_config: EnvConfig, shop: ShopApi,
) -> None:
    """Runbook Step 4: sign in through /login, land on /products with products and the user's email."""
    diagnose = diagnose_storefront(page_failures, shop, synthetic_account)
    with step(f"sign in at {env_config.gateway.url}/login as {synthetic_account.email}", blame="gateway", diagnose=diagnose):
        sign_in(storefront, env_config.gateway.url, synthetic_account)
    with step("the products page lists at least one product", blame="gateway", diagnose=diagnose):
        expect(storefront.get_by_test_id("product").first).to_be_visible()
    with step("the products page shows the signed-in user's email", blame="gateway", diagnose=diagnose):
        expect(storefront.get_by_test_id("user-email")).to_have_text(synthetic_account.email)
    with step("the storefront's script runs without errors", blame="gateway"):
        assert not page_errors, f"the storefront's script raised: {page_errors}"


def test_wrong_password_shows_an_error(
    storefront: Any, page_failures: list[tuple[str, str]], synthetic_account: Account, env_config: EnvConfig, shop: ShopApi
) -> None:
    """Runbook Step 4: a wrong password shows the login error, not the products."""
    wrong = Account(synthetic_account.email, synthetic_account.password + "-wrong")
    diagnose = diagnose_storefront(page_failures)
    with step("sign in with a wrong password", blame="gateway", diagnose=diagnose):
        sign_in(storefront, env_config.gateway.url, wrong)
    with step("the login page shows the login error, and no product", blame="gateway", diagnose=diagnose):
        expect(storefront.get_by_test_id("login-error")).to_be_visible()
        assert storefront.get_by_test_id("product").count() == 0, "products are listed after a failed sign-in"
