"""polyshop-api.md, the promises a release could break that a customer or an operator would notice:
client mistakes are 4xx (never 5xx, never accepted), one user cannot reach another's data, listings honour
their limits and count what they list, payments are idempotent. Each answer is blamed on the service its route reaches."""

from __future__ import annotations

import secrets

import pytest

from polycheck.core.config import EnvConfig
from polycheck.core.failures import inconclusive
from polycheck.checks import diagnosis
from polycheck.checks.contract_checks import expect_client_error, expect_total_counts_the_page
from polycheck.checks.flow import step
from polycheck.checks.health import expect_gateway_passes_on
from polycheck.checks.orders import OrderLedger, SkuPool
from polycheck.clients.shop import ShopApi, new_idempotency_key

pytestmark = [pytest.mark.smoke, pytest.mark.synthetic, pytest.mark.concurrent,
              pytest.mark.rollback("auth", "product", "inventory", "order", "payment", "notification", "search")]

PAGE = 100  # the contract's largest product page; a page of search results as large
OTHER_CURRENCIES = ("USD", "EUR", "GBP")  # a payment in the first that is not the order's must be refused
PRODUCT_TOTAL = "polyshop-api.md Product, GET /api/products"
SEARCH_TOTAL = "polyshop-api.md Search, GET /api/search"


def test_order_without_idempotency_key_is_refused(orders: OrderLedger, sku_pool: SkuPool) -> None:
    """polyshop-api.md: POST /api/orders without an Idempotency-Key is 400 (retries could double orders)."""
    response = orders.shop.raw("POST", "/api/orders", json_body={"items": [{"sku": sku_pool.next(), "qty": 1}]})
    if response.status_code == 201:
        orders.order_ids.append(response.json()["id"])
    expect_client_error(response, 400, "an order without an Idempotency-Key")


def test_malformed_order_is_a_client_error(orders: OrderLedger) -> None:
    """polyshop-api.md: a malformed order body is 422, never a 500."""
    response = orders.shop.raw("POST", "/api/orders", json_body={"items": "not-a-list"},
                               headers={"Idempotency-Key": new_idempotency_key()})
    expect_client_error(response, 422, "an order whose items are not a list")


def test_malformed_login_is_a_client_error(shop: ShopApi) -> None:
    """polyshop-api.md: a malformed login body is 422, never a 500."""
    expect_client_error(shop.raw("POST", "/api/auth/login", json_body={"email": 42}), 422, "a login without a password")


def test_order_beyond_the_stock_is_refused(orders: OrderLedger, sku_pool: SkuPool) -> None:
    """polyshop-api.md: an order for more than the stock is 409 (no overselling)."""
    sku = sku_pool.next()
    with step(f"read the stock of {sku}", blame="inventory"):
        available = orders.shop.stock(sku)["available"]
    response = orders.shop.raw("POST", "/api/orders", json_body={"items": [{"sku": sku, "qty": available + 1}]},
                               headers={"Idempotency-Key": new_idempotency_key()})
    accepted = response.json()["id"] if response.status_code == 201 else None
    if accepted:
        orders.order_ids.append(accepted)
    expect_client_error(response, 409, f"an order of {available + 1} x {sku} with {available} available",
                        diagnose=lambda: diagnosis.why_oversold(orders.shop, str(accepted), sku, available))


def test_payment_must_match_the_order(orders: OrderLedger, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """polyshop-api.md: a payment whose amount differs from the order's is 422 (nobody is charged what they did not order)."""
    with step("create an order", blame="order"):
        order = orders.create([{"sku": sku_pool.next(), "qty": 1}])
    amount = order["total_cents"] + 1
    response = orders.attempt_payment(order, env_config.synthetic.card_token, amount_cents=amount)
    expect_client_error(response, 422, f"a payment of {amount} for order {order['id']} of {order['total_cents']}")


def test_payment_in_another_currency_is_refused(orders: OrderLedger, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """polyshop-api.md Payment: a payment whose currency differs from the order's is 422 (nobody is charged in a
    currency they did not order in)."""
    with step("create an order", blame="order"):
        order = orders.create([{"sku": sku_pool.next(), "qty": 1}])
    foreign = next(code for code in OTHER_CURRENCIES if code != str(order["currency"]).upper())
    response = orders.attempt_payment(order, env_config.synthetic.card_token, currency=foreign)
    expect_client_error(response, 422, f"a payment of {order['total_cents']} {foreign} for order {order['id']} in "
                                       f"{order['currency']} (polyshop-api.md Payment: a currency that differs from the "
                                       f"order's is 422)")


def test_synthetic_account_cannot_pay_with_a_real_card(orders: OrderLedger, sku_pool: SkuPool) -> None:
    """polyshop-api.md synthetic traffic: only sandbox card tokens are accepted for synthetic accounts (422)."""
    with step("create an order", blame="order"):
        order = orders.create([{"sku": sku_pool.next(), "qty": 1}])
    expect_client_error(orders.attempt_payment(order, "tok_visa"), 422, "a real (non-sandbox) card for a synthetic account")


def test_another_users_order_is_not_readable(orders: OrderLedger, other_shop: ShopApi, sku_pool: SkuPool) -> None:
    """polyshop-api.md: GET /api/orders/{id} of another user's order is 404."""
    with step("create an order", blame="order"):
        order = orders.create([{"sku": sku_pool.next(), "qty": 1}])
    expect_client_error(other_shop.raw("GET", f"/api/orders/{order['id']}"), 404, f"another user reading order {order['id']}")


def test_another_users_order_cannot_be_paid(orders: OrderLedger, other_shop: ShopApi, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """polyshop-api.md: paying another user's order is 404."""
    with step("create an order", blame="order"):
        order = orders.create([{"sku": sku_pool.next(), "qty": 1}])
    response = orders.attempt_payment(order, env_config.synthetic.card_token, by=other_shop)
    expect_client_error(response, 404, f"another user paying order {order['id']}")


def test_another_users_payment_is_not_readable(orders: OrderLedger, other_shop: ShopApi, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """Who may read what: another user's payment is not readable (the contract's 404 for another user's order,
    applied to payments; 403 is accepted too)."""
    with step("create and pay an order", blame="payment"):
        payment = orders.pay(orders.create([{"sku": sku_pool.next(), "qty": 1}]), env_config.synthetic.card_token)
    expect_client_error(other_shop.raw("GET", f"/api/payments/{payment['id']}"), (404, 403), f"another user reading payment {payment['id']}")


def test_outbox_of_a_real_address_is_refused(shop: ShopApi) -> None:
    """polyshop-api.md: only synthetic addresses' outboxes may be read (403 otherwise): customers' mail stays private."""
    response = shop.raw("GET", "/api/notifications/outbox", params={"to": "customer@example.com"})
    expect_client_error(response, 403, "reading the outbox of customer@example.com")


def test_only_synthetic_accounts_can_be_provisioned(shop: ShopApi) -> None:
    """polyshop-api.md: POST /api/auth/users is 403 for a non-synthetic email."""
    email = f"probe-{secrets.token_hex(4)}@example.invalid"
    response = shop.raw("POST", "/api/auth/users", json_body={"email": email, "password": secrets.token_urlsafe(12)})
    expect_client_error(response, 403, f"provisioning the non-synthetic account {email}")


def test_product_listing_honours_limit_and_ids(shop: ShopApi) -> None:
    """polyshop-api.md: /api/products?limit=1 lists at most one product, found again by its id; an unknown id is 404."""
    with step("list one product", blame="product"):
        page = shop.products(limit=1)
        assert len(page["items"]) == 1 <= page["total"], f"limit=1 gave {len(page['items'])} items of total {page['total']}"
    product = page["items"][0]
    with step(f"read product {product['id']} by its id", blame="product"):
        _, again = shop.call("GET", f"/api/products/{product['id']}", 200)
        assert again.get("sku") == product["sku"], f"product {product['id']} reads {again!r}, listed as {product!r}"
    expect_client_error(shop.raw("GET", f"/api/products/prd-polycheck-{secrets.token_hex(3)}"), 404, "an unknown product id")


def test_product_total_counts_the_listed_products(shop: ShopApi) -> None:
    """polyshop-api.md Product: a list's total is never smaller than the products on the page, and equals their count
    on a page that is not full (the first page, and the last one, at offset total - 1)."""
    with step(f"list the first {PAGE} products", blame="product"):
        first = shop.products(limit=PAGE)
        expect_total_counts_the_page(first, shop.last, limit=PAGE, offset=0, line=PRODUCT_TOTAL)
    offset = max(first["total"] - 1, 0)
    with step(f"list the last page of the catalogue (offset {offset})", blame="product"):
        expect_total_counts_the_page(shop.products(limit=PAGE, offset=offset), shop.last, limit=PAGE, offset=offset,
                                     line=PRODUCT_TOTAL)


def test_search_total_counts_the_results(shop: ShopApi) -> None:
    """polyshop-api.md Search: a search's total is never smaller than the results on the page, and equals their count
    on a page that is not full (a catalogue product's name, and a word no product has)."""
    with step("pick a product from the catalogue", blame="product"):
        listed = shop.products(limit=1)["items"]
        assert listed, "the catalogue lists no product"
    queries = (str(listed[0]["name"]), f"polycheck{secrets.token_hex(4)}")
    not_full = 0
    for query in queries:
        with step(f"search for {query!r} (limit {PAGE})", blame="search"):
            found = shop.search(query, limit=PAGE)
            expect_total_counts_the_page(found, shop.last, limit=PAGE, offset=0, line=SEARCH_TOTAL)
        not_full += len(found["items"]) < PAGE
    if not not_full:
        inconclusive(f"every search ({', '.join(map(repr, queries))}) filled its page of {PAGE}: the total of a page that "
                     f"is not full could not be judged")


def test_unknown_sku_has_no_stock(shop: ShopApi) -> None:
    """polyshop-api.md: GET /api/inventory/{sku} of an unknown SKU is 404."""
    expect_client_error(shop.raw("GET", f"/api/inventory/NO-SUCH-{secrets.token_hex(3)}"), 404, "the stock of an unknown SKU")


def test_repeated_payment_key_and_refund_are_idempotent(orders: OrderLedger, sku_pool: SkuPool, env_config: EnvConfig) -> None:
    """polyshop-api.md: the same payment Idempotency-Key returns the same payment; a refund twice stays refunded."""
    with step("create an order", blame="order"):
        order = orders.create([{"sku": sku_pool.next(), "qty": 1}])
    key = new_idempotency_key()
    with step(f"pay order {order['id']} twice with Idempotency-Key {key}", blame="payment"):
        first = orders.pay(order, env_config.synthetic.card_token, key)
        _, again = orders.shop.call("POST", "/api/payments", (200, 201), headers={"Idempotency-Key": key}, json_body={
            "order_id": order["id"], "amount_cents": order["total_cents"], "currency": order["currency"],
            "card_token": env_config.synthetic.card_token})
        orders.record_payment(again)
        assert again.get("id") == first["id"], f"the repeated key {key} made a second payment {again.get('id')} beside {first['id']}"
    with step(f"refund payment {first['id']} twice", blame="payment"):
        assert orders.shop.refund(first["id"])["status"] == "refunded", f"payment {first['id']} not refunded"
        assert orders.shop.refund(first["id"])["status"] == "refunded", f"a second refund of {first['id']} changed its status"
        kept = orders.shop.payment(first["id"])["status"]
        assert kept == "refunded", f"payment {first['id']} answered its refund 'refunded', yet its own GET reads {kept!r}"


@pytest.mark.rollback("gateway")
def test_gateway_passes_the_callers_token_on(signed_in_shop: ShopApi, env_config: EnvConfig) -> None:
    """polyshop-api.md Gateway: each route's request reaches its service as sent, the Bearer token included."""
    assert signed_in_shop.token
    headers = {"Authorization": f"Bearer {signed_in_shop.token}"}
    for name, service in env_config.services.items():
        if service.gateway_probe is not None:
            expect_gateway_passes_on(signed_in_shop.client, name, service.gateway_probe, headers)
