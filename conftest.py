"""The checkout's conftest. The polycheck plugin (its options, markers and fixtures) is loaded by its pytest11
entry point (pyproject.toml), whatever the rootdir and the current folder, so nothing is registered here: this
is where a checkout adds fixtures of its own, as a team's repository does in its conftest.py."""
