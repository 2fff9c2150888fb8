"""Thin: registers the polycheck plugin and the fixture modules."""

pytest_plugins = [
    "polycheck.plugin",
    "fixtures.environment",
    "fixtures.http",
    "fixtures.synthetic",
    "fixtures.orders",
    "fixtures.browser",
    "fixtures.kubernetes",
    "fixtures.prometheus",
]
