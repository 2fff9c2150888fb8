# make smoke: the smoke suite against the local PolyShop stack (or ENV=staging|prod).
# make test:  the project's own tests (unit tests, fault-injection runs of the suites, the Kubernetes simulator's).
PYTHON ?= python3
VENV ?= .venv
ENV ?= local
ARGS ?=
BIN := $(VENV)/bin
# The project's runs write bytecode whatever the shell says: with PYTHONDONTWRITEBYTECODE set, every pytest process
# parses and compiles again each module whose asserts pytest rewrites (the checks, the plugins), and every stack
# process its own modules (measured: tests/suites/test_health_suite.py 75-77 s of CPU with it set, 46-52 s with
# the caches; README, Performance). The caches go to __pycache__, which git ignores.
unexport PYTHONDONTWRITEBYTECODE
STAMP := $(VENV)/.polycheck-installed

.PHONY: smoke test test-stress test-beside lint bench stack report wheel clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

smoke: $(STAMP)
	$(BIN)/pytest -m smoke --env $(ENV) -v $(ARGS)

# checkov in a venv of its own (its pins clash with the dev extra's), at the version pyproject.toml pins
CHECKOV_VENV ?= .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
$(CHECKOV): pyproject.toml $(STAMP)
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	    "$$($(BIN)/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["tool"]["polycheck"]["lint"]["checkov"])')"
	touch $(CHECKOV)

# Workers: twice the CPUs this process may use (os.cpu_count() where the platform has no sched_getaffinity), at most
# 8. The self-tests wait on real conditions (a Prometheus window filling, a hang's read timeout, a stack starting)
# about half their time. Measured on the 2-core machine: `-n 2` 592 s with the CPUs 52 % busy, `-n 4` 418 s and
# 410 s, `-n 6` 480 s (README, The project's own tests). The cap of 8 bounds how many local stacks start at once on
# a big machine; it was not measured there.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; f = getattr(os, "sched_getaffinity", None); print(min(8, 2 * (len(f(0)) if f else os.cpu_count() or 1)))')
# the manifests (tests/suites/test_kustomize.py, tests/unit/test_deploy_manifests.py) are linted by the self-tests
test: $(STAMP) $(CHECKOV) lint
	$(BIN)/pytest -c tests/pytest.ini --rootdir . tests kubesim/tests -n $(TEST_WORKERS) --dist loadfile $(ARGS)

test-stress: $(STAMP)
	$(BIN)/pytest -c tests/pytest.ini tests -m stress $(ARGS)

# make test three times in a row on a fresh clone of HEAD while another fresh clone runs make test beside it
test-beside: $(STAMP)
	$(BIN)/python benchmarks/beside.py $(ARGS)

# lint: import-linter's layers and contracts, ruff (pyflakes, bugbear, pyupgrade) and mypy on polycheck/
lint: $(STAMP)
	$(BIN)/lint-imports --config pyproject.toml
	$(BIN)/ruff check polycheck fixtures suites stack kubesim tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_smoke.py $(ARGS)

stack: $(STAMP)
	$(BIN)/python -m stack

# report: the single-file HTML report of the latest run (reports/latest/report/index.html), built offline by
# Allure 3 (package.json pins it; installed into node_modules on first use).
ALLURE := node_modules/.bin/allure
$(ALLURE): package.json
	npm install --no-audit --no-fund --no-package-lock --loglevel=error
	touch $(ALLURE)

# wheel: the installable product (pip install dist/polyshop_checks-*.whl into a team's repository)
DIST ?= dist
wheel: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir $(DIST) .
	rm -rf build  # setuptools' staging folder, left in the checkout

report: $(STAMP) $(ALLURE)
	$(BIN)/python -m polycheck report $(ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) dist build reports/runs reports/latest reports/allure-results reports/junit.xml node_modules *.egg-info
