"""The storefront the gateway serves: a sign-in page and a product list, plain HTML and JavaScript.

`/login` posts the credentials to /api/auth/login with fetch, keeps the token in sessionStorage and
goes to `/products`, which loads /api/auth/me and /api/products and renders `data-testid="product"`
rows and the user's email. The `broken_storefront` fault serves a script whose product rendering
throws (it reads a field the API does not have), so the page loads but the list never appears.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .context import ServiceContext

NO_STORE = {"cache-control": "no-store"}

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · PolyShop</title>
  <style>
    body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 40rem; color: #1d2330; }}
    header {{ display: flex; justify-content: space-between; align-items: baseline; }}
    form {{ display: grid; gap: .75rem; max-width: 20rem; }}
    input, button {{ font: inherit; padding: .4rem .6rem; }}
    [data-testid="login-error"] {{ color: #b00020; }}
    ul {{ list-style: none; padding: 0; }}
    [data-testid="product"] {{ display: flex; justify-content: space-between; padding: .5rem 0;
                               border-bottom: 1px solid #e3e6ec; }}
  </style>
  <script src="/assets/storefront.js" defer></script>
</head>
<body data-page="{page}">
{body}
</body>
</html>
"""

LOGIN_BODY = """<header><h1>PolyShop</h1></header>
<main>
  <h2>Sign in</h2>
  <form id="login-form" novalidate>
    <label>Email <input data-testid="email" name="email" type="email" autocomplete="username" required></label>
    <label>Password <input data-testid="password" name="password" type="password" autocomplete="current-password" required></label>
    <button data-testid="submit" type="submit">Sign in</button>
  </form>
</main>"""

PRODUCTS_BODY = """<header><h1>PolyShop</h1><span>Signed in as <strong data-testid="user-email"></strong></span></header>
<main>
  <h2>Products</h2>
  <p data-testid="status" role="status">Loading products…</p>
  <ul data-testid="product-list"></ul>
</main>"""

STOREFRONT_JS = """(function () {
  "use strict";
  var TOKEN_KEY = "polyshop.access_token";

  function byTestId(id) { return document.querySelector('[data-testid="' + id + '"]'); }

  function showLoginError(text) {
    var box = byTestId("login-error");
    if (!box) {
      box = document.createElement("p");
      box.setAttribute("data-testid", "login-error");
      box.setAttribute("role", "alert");
      document.getElementById("login-form").after(box);
    }
    box.textContent = text;
  }

  async function signIn(event) {
    event.preventDefault();
    var submit = byTestId("submit");
    var credentials = { email: byTestId("email").value.trim(), password: byTestId("password").value };
    submit.disabled = true;
    try {
      var response = await fetch("/api/auth/login", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify(credentials)
      });
      if (!response.ok) {
        showLoginError(response.status === 401 || response.status === 422
          ? "Wrong email or password." : "Sign-in failed (HTTP " + response.status + "). Try again.");
        return;
      }
      var body = await response.json();
      sessionStorage.setItem(TOKEN_KEY, body.access_token);
      window.location.assign("/products");
    } catch (error) {
      showLoginError("PolyShop cannot be reached. Try again.");
    } finally {
      submit.disabled = false;
    }
  }

  function formatPrice(product) {
    return new Intl.NumberFormat("en-IE", { style: "currency", currency: product.currency })
      .format(product.price_cents / 100);
  }

  function renderProducts(items) {
    var list = byTestId("product-list");
    list.replaceChildren();
    items.forEach(function (product) {
      var row = document.createElement("li");
      row.setAttribute("data-testid", "product");
      row.dataset.sku = product.sku;
      var name = document.createElement("span");
      name.textContent = product.name;
      var price = document.createElement("span");
      price.textContent = formatPrice(product);
      row.append(name, price);
      list.append(row);
    });
    byTestId("status").textContent = items.length + " products";
  }

  async function showProducts() {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) { window.location.replace("/login"); return; }
    var accept = { "Accept": "application/json" };
    var answers = await Promise.all([
      fetch("/api/auth/me", { headers: Object.assign({ "Authorization": "Bearer " + token }, accept) }),
      fetch("/api/products?limit=20", { headers: accept })
    ]);
    if (answers[0].status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      window.location.replace("/login");
      return;
    }
    if (!answers[0].ok || !answers[1].ok) {
      byTestId("status").textContent = "Products are unavailable right now.";
      return;
    }
    var user = await answers[0].json();
    var catalogue = await answers[1].json();
    byTestId("user-email").textContent = user.email;
    renderProducts(__ITEMS__);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var page = document.body.dataset.page;
    if (page === "login") {
      document.getElementById("login-form").addEventListener("submit", signIn);
    } else if (page === "products") {
      showProducts();
    }
  });
})();
"""

HEALTHY_ITEMS = "catalogue.items"
BROKEN_ITEMS = "catalogue.products.items"  # the bug: a field the API does not have -> TypeError


def storefront_script(broken: bool) -> str:
    return STOREFRONT_JS.replace("__ITEMS__", BROKEN_ITEMS if broken else HEALTHY_ITEMS)


def storefront_routes(ctx: ServiceContext) -> list[Route]:
    async def home(request: Request) -> Response:
        return RedirectResponse("/login", status_code=302)

    async def login_page(request: Request) -> HTMLResponse:
        return HTMLResponse(_PAGE.format(title="Sign in", page="login", body=LOGIN_BODY), headers=NO_STORE)

    async def products_page(request: Request) -> HTMLResponse:
        return HTMLResponse(_PAGE.format(title="Products", page="products", body=PRODUCTS_BODY), headers=NO_STORE)

    async def script(request: Request) -> Response:
        broken = ctx.faults.is_set(ctx.name, "broken_storefront")
        return Response(storefront_script(broken), media_type="text/javascript", headers=NO_STORE)

    return [
        Route("/", home, methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/products", products_page, methods=["GET"]),
        Route("/assets/storefront.js", script, methods=["GET"]),
    ]
