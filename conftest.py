"""Thin: registers the polycheck plugin and the fixture modules."""

pytest_plugins = [
    "polycheck.pytest_plugin.plugin",
    "fixtures.environment",
    "fixtures.http",
    "fixtures.synthetic",
    "fixtures.orders",
    "fixtures.browser",
    "fixtures.kubernetes",
    "fixtures.prometheus",
    "fixtures.predeploy",
]
