"""The pytest11 entry point (pyproject.toml): loads the plugin by its module name, so that a run that also names
it (`-p polycheck.pytest_plugin.plugin`, or `pytest_plugins` in a conftest.py written for an older release)
loads it once instead of failing with "Plugin already registered under a different name"."""

pytest_plugins = ["polycheck.pytest_plugin.plugin"]
